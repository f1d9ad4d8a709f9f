"""Indexing and searching: ``index``, ``search``, ``similar``, ``tag``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from retrieval.cli.args import Commands, add_json_option, positive_int, print_json, unit_float

DEFAULT_INDEX = "the demo index ($RETRIEVAL_HOME/demo/index)"


def _index(args: argparse.Namespace) -> int:
    from retrieval.index.build import index_corpus, index_folder

    if args.corpus:
        report = index_corpus(args.model, args.out, corpus_root=args.source, backend=args.backend,
                              progress=not args.quiet)
    else:
        report = index_folder(args.model, args.source, args.out, backend=args.backend, cache_dir=args.cache_dir,
                              progress=not args.quiet)
    print(report.format())
    return 0


def _hits_table(hits, as_json: bool, extra: dict | None = None) -> str:
    if as_json:
        rows = [dict(rank=r, **{k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(h).items()})
                for r, h in enumerate(hits, 1)]
        return json.dumps({**(extra or {}), "hits": rows}, indent=2)
    lines = [f"{r:>3}. {h}" for r, h in enumerate(hits, 1)]
    return "\n".join(lines)


def _search(args: argparse.Namespace) -> int:
    from retrieval.api import load

    result = load(args.index).search(args.query, k=args.k, near=args.near, blend=args.blend)
    extra = {"query": result.query, "terms": result.terms,
             "matched_tags": [{"tag": t, "score": s} for t, s in result.matched_tags]}
    if not args.json:
        tags = ", ".join(f"{t} ({s:.2f})" for t, s in result.matched_tags[:5])
        print(f"query {result.query!r} → terms: {', '.join(result.terms) or '-'}; nearest tags: {tags}")
    print(_hits_table(result, args.json, extra))
    return 0


def _similar(args: argparse.Namespace) -> int:
    from retrieval.api import load

    retriever = load(args.index)
    if Path(args.item).is_file():
        hits = retriever.search_by_audio(args.item, k=args.k)
    else:
        hits = retriever.similar(args.item, k=args.k)
    print(_hits_table(hits, args.json, {"query": args.item}))
    return 0


def _tag(args: argparse.Namespace) -> int:
    from retrieval.api import load

    tags = load(args.index).tag(args.file, k=args.k, head=args.head)
    if args.json:
        print_json({"file": args.file, "tags": [{"tag": t, "score": s} for t, s in tags]})
    else:
        for rank, (tag, score) in enumerate(tags, 1):
            print(f"{rank:>3}. {score:.3f}  {tag}")
    return 0


def _add_index_and_k(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("-k", type=positive_int, default=10, help=f"how many {what} (default 10)")
    parser.add_argument("--index", default=None, help=f"index or run folder (default: {DEFAULT_INDEX})")


def add_commands(commands: Commands) -> None:
    """Add ``index``, ``search``, ``similar`` and ``tag``."""
    from retrieval.index import DEFAULT_BACKEND, INDEX_BACKENDS

    index = commands.add_parser("index", help="index a folder of audio files (or a corpus) for search")
    index.add_argument("source", help="folder of audio files (or, with --corpus, a corpus folder)")
    index.add_argument("--model", required=True, help="trained run folder")
    index.add_argument("--out", required=True, help="index folder to write")
    index.add_argument("--backend", default=DEFAULT_BACKEND, choices=sorted(INDEX_BACKENDS),
                       help="exact (brute force, the reference) or annoy (approximate, fast); default %(default)s")
    index.add_argument("--corpus", action="store_true", help="SOURCE is a corpus (MSD500 layout), not a folder")
    index.add_argument("--cache-dir", default=None,
                       help="per-file embedding cache (default $RETRIEVAL_HOME/embeddings)")
    index.set_defaults(func=_index)

    search = commands.add_parser("search", help="tracks for a text query")
    search.add_argument("query", help='words or tags, e.g. "dreamy piano"')
    _add_index_and_k(search, "tracks")
    search.add_argument("--near", default=None, help="a track id to blend listening similarity toward")
    search.add_argument("--blend", type=unit_float, default=0.0, help="weight of listening similarity (0..1)")
    add_json_option(search)
    search.set_defaults(func=_search)

    similar = commands.add_parser("similar", help="tracks like an indexed track id or an audio file")
    similar.add_argument("item", help="a track id of the index, or an audio file")
    _add_index_and_k(similar, "tracks")
    add_json_option(similar)
    similar.set_defaults(func=_similar)

    tag = commands.add_parser("tag", help="zero-shot tags of an audio file (nearest vocabulary tags)")
    tag.add_argument("file", help="an audio file")
    _add_index_and_k(tag, "tags")
    tag.add_argument("--head", default=None, help="a tagger from `retrieval train-head --features shared`")
    add_json_option(tag)
    tag.set_defaults(func=_tag)
