"""Indexing and searching: ``index``, ``search``, ``similar``, ``tag``, ``vocab``, ``models``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from retrieval.cli.args import Commands, add_device_options, add_json_option, positive_int, print_json, unit_float

DEFAULT_INDEX = "the demo index ($RETRIEVAL_HOME/demo/index)"


def _index(args: argparse.Namespace) -> int:
    from retrieval.errors import RetrievalError
    from retrieval.index.build import index_corpus, index_folder
    from retrieval.pretrained.names import PRETRAINED

    corpus = args.corpus or _is_corpus(args.source, args.model)
    if corpus and args.model in PRETRAINED:
        raise RetrievalError(f"--model {args.model} is a pretrained tagger: index the corpus' audio folder "
                             f"without --corpus (e.g. `retrieval index {args.source}/audio --model {args.model} "
                             "--out INDEX`)")
    if args.engine == "local" and (args.address or args.workers):
        raise RetrievalError("--address and --workers are for --engine ray")
    if corpus and args.engine != "local":
        raise RetrievalError("--engine ray indexes a folder of audio files; a corpus (--corpus) is embedded from its "
                             "feature cache in this process")
    if corpus:
        report = index_corpus(args.model, args.out, corpus_root=args.source, backend=args.backend,
                              progress=not args.quiet, device=args.device, precision=args.precision)
    else:
        report = index_folder(args.model, args.source, args.out, backend=args.backend, cache_dir=args.cache_dir,
                              progress=not args.quiet, engine=args.engine, address=args.address,
                              workers=args.workers, device=args.device, precision=args.precision)
    print(report.format())
    return 0


def _is_corpus(source: str, model: str) -> bool:
    """Whether ``source`` (given without --corpus) is an MSD500-layout corpus; says what it does about it."""
    from retrieval.data.corpus import AUDIO_DIR, SELECTED_TAGS_FILE, TRACK_TAGS_FILE
    from retrieval.pretrained.tagger import PRETRAINED

    folder = Path(source)
    if not ((folder / TRACK_TAGS_FILE).is_file() and (folder / SELECTED_TAGS_FILE).is_file()):
        return False
    if model in PRETRAINED:
        return True  # _index explains that a pretrained model indexes the corpus' audio folder
    print(f"note: {folder} is an MSD500-layout corpus ({TRACK_TAGS_FILE}, {SELECTED_TAGS_FILE}): indexing it as a "
          "corpus (its titles, artists, tags and listening data), as with --corpus; to index its audio as loose "
          f"files instead, give its audio folder ({folder / AUDIO_DIR})", file=sys.stderr)
    return True


def _export(hits, args: argparse.Namespace) -> None:
    """``--m3u FILE`` / ``--csv FILE``: write the hits there too (and say so on stderr)."""
    from retrieval.index.export import write_csv, write_m3u

    if args.m3u:
        written = write_m3u(hits, args.m3u)
        print(f"wrote {written} of {len(hits)} hits to the playlist {args.m3u}"
              + (" (the others have no audio file)" if written < len(hits) else ""), file=sys.stderr)
    if args.csv:
        print(f"wrote {write_csv(hits, args.csv)} hits to {args.csv}", file=sys.stderr)


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
    _export(result, args)
    return 0


def _similar(args: argparse.Namespace) -> int:
    from retrieval.api import load

    retriever = load(args.index)
    if Path(args.item).is_file():
        hits = retriever.search_by_audio(args.item, k=args.k)
    else:
        hits = retriever.similar(args.item, k=args.k)
    print(_hits_table(hits, args.json, {"query": args.item}))
    _export(hits, args)
    return 0


def _tag(args: argparse.Namespace) -> int:
    from retrieval.api import load

    tags = load(args.model or args.index).tag(args.file, k=args.k, head=args.head)
    if args.json:
        print_json({"file": args.file, "tags": [{"tag": t, "score": s} for t, s in tags]})
    else:
        for rank, (tag, score) in enumerate(tags, 1):
            print(f"{rank:>3}. {score:.3f}  {tag}")
    return 0


def _vocab(args: argparse.Namespace) -> int:
    from retrieval.api import locate
    from retrieval.runs import load_run, text_encoder_for

    run = load_run(locate(args.run)[0])  # a run folder, or an index folder naming its run
    settings = run.config.model.text
    encoder = text_encoder_for(run.config, run.folder / "text", train=False)
    words = [word.replace("_", " ") for word in getattr(encoder, "vocabulary", [])]
    by_category: dict[str, list[str]] = {}
    for tag, category in zip(run.vocabulary.tags, run.vocabulary.categories, strict=True):
        by_category.setdefault(category, []).append(tag)
    reads = {"word2vec": f"{len(words):,} word2vec entries (phrases joined)",
             "sentence": "all-MiniLM-L6-v2: any English",
             "fused": f"{len(words):,} word2vec entries beside all-MiniLM-L6-v2 (any English)"}[settings.kind]
    if settings.kind != "sentence" and settings.backoff == "sentence":
        reads += "; other words through MiniLM and the nearest tags"
    if args.json:
        print_json({"run": str(run.folder), "tags": by_category, "text_encoder": settings.kind,
                    "backoff": settings.backoff, "words": words})
        return 0
    print(f"{len(run.vocabulary.tags)} tags (the anchors), by category:")
    for category, tags in by_category.items():
        print(f"  {category:<12} {', '.join(tags)}")
    print(f"word tower: {settings.kind} — {reads}")
    if args.words:
        print("\n".join(words))
    elif words:
        print(f"  most frequent: {', '.join(words[:30])} … (--words lists all)")
    return 0


def _models(args: argparse.Namespace) -> int:
    from retrieval.pretrained.musicnn import musicnn_package_dir
    from retrieval.pretrained.names import PRETRAINED

    rows = []
    for name, checkpoint in PRETRAINED.items():
        result = musicnn_package_dir() / checkpoint / "experiment.result"
        figures = " ".join(result.read_text().split()) if result.is_file() else "no experiment.result"
        rows.append({"name": name, "checkpoint": checkpoint, "source": "pip package musicnn 0.1.0 (ISC)",
                     "tags": 50, "published": figures})
    if args.json:
        print_json({"models": rows})
        return 0
    for row in rows:
        print(f"{row['name']:<12} {row['checkpoint']:<12} 50 tags  {row['published']}")
    print("use: retrieval tag FILE --model NAME; retrieval index FOLDER --model NAME --out INDEX")
    return 0


def _add_index_and_k(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("-k", type=positive_int, default=10, help=f"how many {what} (default 10)")
    parser.add_argument("--index", default=None, help=f"index or run folder (default: {DEFAULT_INDEX})")


def _add_export(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--m3u", default=None, metavar="FILE", help="also write the hits as an M3U playlist")
    parser.add_argument("--csv", default=None, metavar="FILE", help="also write the hits as a CSV table")


def add_commands(commands: Commands) -> None:
    """Add ``index``, ``search``, ``similar``, ``tag``, ``vocab`` and ``models``."""
    from retrieval.index.build import AUDIO_EXTENSIONS
    from retrieval.index.registry import APPROXIMATE_DEFAULT, AUTO, DEFAULT_BACKEND, EXACT_BELOW, INDEX_BACKENDS

    index = commands.add_parser("index", help="index a folder of audio files (or a corpus) for search")
    index.add_argument("source", help="folder of audio files (or, with --corpus, a corpus folder); indexed: "
                                      f"{' '.join(AUDIO_EXTENSIONS)}")
    index.add_argument("--model", required=True,
                       help="trained run folder, or a pretrained model name (`retrieval models`)")
    index.add_argument("--out", required=True, help="index folder to write")
    index.add_argument("--backend", default=DEFAULT_BACKEND, choices=[AUTO, *sorted(INDEX_BACKENDS)],
                       help="exact (brute force, the reference), an approximate one (hnswlib, faiss-hnsw, "
                            "faiss-ivfpq: pip install 'retrieval[ann]'; annoy), or auto: exact below "
                            f"{EXACT_BELOW:,} tracks, else {APPROXIMATE_DEFAULT} (measured); default %(default)s")
    index.add_argument("--corpus", action="store_true",
                       help="SOURCE is a corpus (MSD500 layout), not a folder (detected when SOURCE has "
                            "track_tags.tsv and selected_tags.tsv)")
    index.add_argument("--cache-dir", default=None,
                       help="per-file embedding cache (default $RETRIEVAL_HOME/embeddings)")
    index.add_argument("--engine", default="local", choices=["local", "ray"],
                       help="embed in this process (default) or in an actor pool on a Ray cluster "
                            "(pip install 'retrieval[ray]'); both use the same cache and give the same vectors")
    index.add_argument("--address", default=None,
                       help="with --engine ray: the cluster to join (default: start a local one on 127.0.0.1)")
    index.add_argument("--workers", type=positive_int, default=None,
                       help="with --engine ray: actors, one model each (default: one per CPU of the cluster)")
    add_device_options(index)
    index.set_defaults(func=_index)

    search = commands.add_parser("search", help="tracks for a text query")
    search.add_argument("query", help='words or tags, e.g. "dreamy piano"')
    _add_index_and_k(search, "tracks")
    search.add_argument("--near", default=None, help="a track id to blend listening similarity toward")
    search.add_argument("--blend", type=unit_float, default=0.0, help="weight of listening similarity (0..1)")
    add_json_option(search)
    _add_export(search)
    search.set_defaults(func=_search)

    similar = commands.add_parser("similar", help="tracks like an indexed track id or an audio file")
    similar.add_argument("item", help="a track id of the index, or an audio file")
    _add_index_and_k(similar, "tracks")
    add_json_option(similar)
    _add_export(similar)
    similar.set_defaults(func=_similar)

    vocab = commands.add_parser("vocab", help="the tags and words a trained model knows")
    vocab.add_argument("run", help="a run folder (or an index folder, for its run)")
    vocab.add_argument("--words", action="store_true", help="list every word2vec entry, most frequent first")
    add_json_option(vocab)
    vocab.set_defaults(func=_vocab)

    tag = commands.add_parser("tag", help="zero-shot tags of an audio file (nearest vocabulary tags)")
    tag.add_argument("file", help="an audio file")
    _add_index_and_k(tag, "tags")
    tag.add_argument("--head", default=None, help="a tagger from `retrieval train-head --features shared`")
    tag.add_argument("--model", default=None,
                     help="a pretrained model name (`retrieval models`) or run folder, instead of --index")
    add_json_option(tag)
    tag.set_defaults(func=_tag)

    models = commands.add_parser("models", help="the pretrained models that need no training")
    add_json_option(models)
    models.set_defaults(func=_models)
