"""The ``retrieval`` command: a thin layer over the library's functions.

    retrieval demo [--home DIR]                               `make demo`: corpus → train → evaluate → search
    retrieval data demo --out DIR [--tracks N] [--seed S]     build the demo corpus (MSD500 layout)
    retrieval data summary DIR                                what a corpus holds
    retrieval data subset DIR --top-n 100 --out SPLITS        the paper's subset builder (artist split)
    retrieval data import-splits DIR PUBLISHED --out SPLITS   the authors' published splits → TSV
    retrieval train --config configs/X.yaml --out RUN [--set key=value ...] [--resume]   (retrieval or tagging)
    retrieval evaluate RUN [--split test] [--json]
    retrieval index AUDIO_DIR --model RUN --out INDEX        index your own music (cached, resumable)
    retrieval search "dreamy" [-k 10] [--index INDEX] [--json]
    retrieval similar TRACK_ID|FILE;  retrieval tag FILE
    retrieval evaluate moods --data DIR --targets T.npy | --model RUN      mood classification (Korzeniowski)
    retrieval evaluate artist-factors --data CORPUS --out DIR  artist-group-factor transfer (Kim et al.)
    retrieval train-head --run RUN --task mood --out HEAD.pt  tagger on frozen features
    retrieval compare TABLE.yaml --out DIR                    train + evaluate several configs → table.md
    retrieval noisy-student --config C --teacher RUN --out DIR [--iterations N]   iterated noisy-student training
    retrieval robustness RUN [RUN ...] --out DIR              tagging under time stretch, pitch shift, DRC, noise
    retrieval explain FILE --model RUN [--out DIR]            per-tag attention heat maps (attention taggers)

``main(argv)`` returns the exit code, so tests call it directly. Bad input ends with a one-line error on stderr and
exit code 2; nothing is half-written.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from retrieval.errors import RetrievalError


def _data_demo(args: argparse.Namespace) -> int:
    from retrieval.data.demo import build_demo_corpus

    summary = build_demo_corpus(
        Path(args.out),
        n_tracks=args.tracks,
        seed=args.seed,
        seconds=args.seconds,
        workers=args.workers,
        progress=not args.quiet,
    )
    print(summary.format())
    return 0


def _data_summary(args: argparse.Namespace) -> int:
    from retrieval.data.corpus import load_corpus

    corpus = load_corpus(Path(args.root))
    print(corpus.summary())
    return 0


def _data_subset(args: argparse.Namespace) -> int:
    from retrieval.data.corpus import artist_mapping, load_corpus
    from retrieval.data.splits import build_splits, write_splits

    corpus = load_corpus(Path(args.root))
    splits = build_splits(
        corpus.track_tags,
        artist_mapping(corpus.tracks),
        top_n=args.top_n,
        min_score=args.min_score,
        min_per_split=args.min_per_split,
        seed=args.seed,
    )
    write_splits(splits, Path(args.out), categories=corpus.categories)
    sizes = ", ".join(f"{name} {len(splits.ids(name))}" for name in ("train", "valid", "test"))
    print(f"wrote {args.out}: {len(splits.tags)} tags; {sizes} tracks (artist-disjoint)")
    return 0


def _data_import_splits(args: argparse.Namespace) -> int:
    from retrieval.data.corpus import artist_mapping, load_corpus
    from retrieval.data.splits import read_published_splits, write_splits

    corpus = load_corpus(Path(args.root))
    splits = read_published_splits(
        Path(args.published), prefix=args.prefix, artist_of=artist_mapping(corpus.tracks)
    )
    write_splits(splits, Path(args.out), categories=corpus.categories)
    print(f"wrote {args.out}: {len(splits.tags)} tags from the published splits in {args.published}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from retrieval.config import load_config
    from retrieval.training.tasks import train_task

    config = load_config(args.config, args.set)
    state = train_task(config, args.out, resume=args.resume, progress=not args.quiet)
    metric = "PR-AUC" if config.task == "tagging" else "MAP"
    print(f"trained {state.epoch} epochs; best validation {metric} {state.best_map:.4f} at epoch {state.best_epoch}")
    print(f"run: {args.out}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    if args.run == "moods":
        return _evaluate_moods(args)
    if args.run == "artist-factors":
        return _evaluate_artist_factors(args)
    from retrieval.training.tasks import evaluate_task, format_summary

    summary = evaluate_task(args.run, split=args.split, progress=not args.quiet)
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k != "per_tag"}, indent=2))
    else:
        print(format_summary(summary))
        print(f"wrote {Path(args.run) / 'metrics.json'}")
    return 0


def _evaluate_moods(args: argparse.Namespace) -> int:
    """Korzeniowski et al.'s protocol: on the AllMusic layout (--data) or on a run's mood tags (--model)."""
    from retrieval.heads.moods import compare_run_moods, evaluate_moods_command, format_mood_table

    config = args.config or "configs/moods/tiny.yaml"
    if args.data:
        print(evaluate_moods_command(args.data, args.features or ["tp", "mcn_msd_big", "mcn_mtt"], args.targets,
                                     args.config, args.set, as_json=args.json))
    elif args.model:
        results = compare_run_moods(args.model, config=config)
        print(json.dumps(results, indent=2) if args.json else format_mood_table(results))
    else:
        raise RetrievalError("evaluate moods needs --data DIR (AllMusic layout) or --model RUN (a run's mood tags)")
    return 0


def _evaluate_artist_factors(args: argparse.Namespace) -> int:
    """Kim et al.'s artist-group-factor transfer comparison on a corpus (--data) → table."""
    from retrieval.heads.artist_groups.comparison import run_artist_factor_comparison

    if not args.data or not args.out:
        raise RetrievalError("evaluate artist-factors needs --data CORPUS and --out DIR")
    result = run_artist_factor_comparison(args.data, args.out, args.config, progress=not args.quiet)
    print(json.dumps({k: v for k, v in result.items() if k != "markdown"}, indent=2) if args.json
          else result["markdown"])
    return 0


def _train_head(args: argparse.Namespace) -> int:
    from retrieval.heads.tagger import train_head_command

    result = train_head_command(args.run, args.task, args.out, features=args.features, head=args.head)
    print(json.dumps(result, indent=2))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from retrieval.training.compare import run_table

    run_table(args.table, args.out, args.set, progress=not args.quiet)
    print((Path(args.out) / "table.md").read_text())
    print(f"wrote {Path(args.out) / 'table.md'}, table.json and category_map.png")
    return 0


def _noisy_student(args: argparse.Namespace) -> int:
    from retrieval.config import load_config
    from retrieval.training.tagging import noisy_student

    config = load_config(args.config, args.set)
    runs = noisy_student(config, args.teacher, args.out, iterations=args.iterations, progress=not args.quiet)
    print("students: " + ", ".join(str(r) for r in runs))
    return 0


def _robustness(args: argparse.Namespace) -> int:
    from retrieval.tagging.robustness import robustness_table

    robustness_table(args.runs, args.out, perturbations=args.perturbations, split=args.split,
                     max_tracks=args.max_tracks, progress=not args.quiet)
    print((Path(args.out) / "robustness.md").read_text())
    print(f"wrote {Path(args.out) / 'robustness.md'} and robustness.json")
    return 0


def _explain(args: argparse.Namespace) -> int:
    from retrieval.tagging.explain import explain

    out = args.out or str(Path(args.model) / "explain")
    result = explain(args.file, args.model, out, tags=args.tags, top_k=args.top_k)
    print("\n".join(result.lines()))
    return 0


def _demo(args: argparse.Namespace) -> int:
    """`make demo`: build the demo corpus, train the demo config, evaluate it (each step reuses finished work)."""
    import os
    import shutil

    from retrieval.config import load_config
    from retrieval.data.demo import build_demo_corpus
    from retrieval.evaluation import format_table
    from retrieval.indexing import index_corpus
    from retrieval.runs import config_changes, load_run, run_is_complete
    from retrieval.training.experiment import evaluate_run, train_run

    if args.home:
        os.environ["RETRIEVAL_HOME"] = str(args.home)
    from retrieval import paths

    progress = not args.quiet
    print(f"== demo corpus → {paths.demo_corpus_dir()}")
    summary = build_demo_corpus(paths.demo_corpus_dir(), n_tracks=args.tracks, progress=progress)
    print(summary.format())
    config = load_config(args.config, [f"data.root={paths.demo_corpus_dir()}", *args.set])
    run = paths.demo_run_dir()
    last = run / "checkpoints" / "last.ckpt"
    if last.exists() and config_changes(load_run(run, "last").config, config):
        print(f"== the demo config changed since {run} was trained: retraining from scratch")
        shutil.rmtree(run)
    if run_is_complete(run, config):
        print(f"== demo model: already trained in {run}")
    else:
        print(f"== training {args.config} → {run}")
        train_run(config, run, resume=(run / "checkpoints" / "last.ckpt").exists(), progress=progress)
    print("== evaluation on the test split (the paper's protocol)")
    print(format_table(evaluate_run(run, "test", progress=progress)))
    print(f"== indexing the demo catalogue → {paths.demo_index_path()}")
    print(index_corpus(run, paths.demo_index_path(), corpus_root=paths.demo_corpus_dir(), progress=progress).format())
    from retrieval.api import load

    print("== retrieval.search('dreamy')")
    print(load(paths.demo_index_path()).search("dreamy", k=10))
    return 0


def _index(args: argparse.Namespace) -> int:
    from retrieval.indexing import index_corpus, index_folder

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
        print(json.dumps({"file": args.file, "tags": [{"tag": t, "score": s} for t, s in tags]}, indent=2))
    else:
        for rank, (tag, score) in enumerate(tags, 1):
            print(f"{rank:>3}. {score:.3f}  {tag}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="retrieval", description=__doc__.split("\n")[0])
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="corpora: build the demo corpus, summarise a corpus")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    demo = data_commands.add_parser("demo", help="generate the built-in demo corpus in the MSD500 layout")
    demo.add_argument("--out", required=True, help="output folder")
    demo.add_argument("--tracks", type=int, default=2000, help="number of tracks (default 2000)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--seconds", type=float, default=15.0, help="length of each rendered preview")
    demo.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    demo.set_defaults(func=_data_demo)
    summary = data_commands.add_parser("summary", help="tracks, tags per category and listeners of a corpus")
    summary.add_argument("root")
    summary.set_defaults(func=_data_summary)

    subset = data_commands.add_parser("subset", help="the paper's MSD500/MSD100/MSD50 subset + artist split")
    subset.add_argument("root", help="corpus folder (track_tags.tsv, unique_tracks.txt, ...)")
    subset.add_argument("--out", required=True, help="split folder to write (train/valid/test.tsv, tags.tsv)")
    subset.add_argument("--top-n", type=int, default=None, help="keep the N most frequent tags (100, 50)")
    subset.add_argument("--min-score", type=float, default=50.0)
    subset.add_argument("--min-per-split", type=int, default=100, help="tracks every tag needs in each split")
    subset.add_argument("--seed", type=int, default=0)
    subset.set_defaults(func=_data_subset)
    imported = data_commands.add_parser(
        "import-splits", help="convert the authors' published *_ids.npy splits"
    )
    imported.add_argument("root", help="corpus folder")
    imported.add_argument(
        "published", help="folder with train_ids.npy, valid_ids.npy, test_ids.npy, tags.npy"
    )
    imported.add_argument("--prefix", default="", help='file-name prefix, e.g. "sub_"')
    imported.add_argument("--out", required=True)
    imported.set_defaults(func=_data_import_splits)

    train = commands.add_parser("train", help="train a model from a config")
    train.add_argument("--config", required=True)
    train.add_argument("--out", required=True, help="run folder")
    train.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key"
    )
    train.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    train.set_defaults(func=_train)

    evaluate = commands.add_parser(
        "evaluate", help="evaluate a run (the paper's protocol), or `moods` / `artist-factors` downstream tasks")
    evaluate.add_argument("run", help="a run folder, or `moods`, or `artist-factors`")
    evaluate.add_argument("--split", default="test", choices=["train", "valid", "test"])
    evaluate.add_argument("--json", action="store_true")
    evaluate.add_argument("--data", help="moods: the AllMusic layout; artist-factors: a corpus folder")
    evaluate.add_argument("--features", nargs="+", help="moods: tp | mcn_msd_big | mcn_mtt | FILE.npy ...")
    evaluate.add_argument("--targets", help="moods: the multi-hot targets .npy (not distributed with the data)")
    evaluate.add_argument("--model", help="moods: a trained run whose mood tags to compare features on")
    evaluate.add_argument("--config", help="moods: configs/moods/*.yaml; artist-factors: configs/artist_factors/*")
    evaluate.add_argument("--out", help="artist-factors: output folder")
    evaluate.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    evaluate.set_defaults(func=_evaluate)

    head = commands.add_parser("train-head", help="a tagger (linear probe / MLP) on a run's frozen features")
    head.add_argument("--run", required=True)
    head.add_argument("--task", required=True, help="the tag category to predict: mood, genre, ...")
    head.add_argument("--features", default="shared", choices=["shared", "audio", "listening"])
    head.add_argument("--head", default="linear", choices=["linear", "mlp"])
    head.add_argument("--out", required=True, help="file to save the tagger to")
    head.set_defaults(func=_train_head)
    demo_all = commands.add_parser("demo", help="build the demo corpus, train and evaluate the demo model")
    demo_all.add_argument("--home", help="library home (default $RETRIEVAL_HOME or ~/.cache/retrieval)")
    demo_all.add_argument("--config", default="configs/demo.yaml")
    demo_all.add_argument("--tracks", type=int, default=2000)
    demo_all.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key"
    )
    demo_all.set_defaults(func=_demo)

    index = commands.add_parser("index", help="index a folder of audio files (or a corpus) for search")
    index.add_argument("source", help="folder of audio files (or, with --corpus, a corpus folder)")
    index.add_argument("--model", required=True, help="trained run folder")
    index.add_argument("--out", required=True, help="index folder to write")
    index.add_argument("--backend", default="annoy", choices=["annoy", "exact"])
    index.add_argument("--corpus", action="store_true", help="SOURCE is a corpus (MSD500 layout), not a folder")
    index.add_argument("--cache-dir", default=None,
                       help="per-file embedding cache (default $RETRIEVAL_HOME/embeddings)")
    index.set_defaults(func=_index)

    default_index = "the demo index ($RETRIEVAL_HOME/demo/index)"
    search = commands.add_parser("search", help="tracks for a text query")
    search.add_argument("query")
    search.add_argument("-k", type=int, default=10)
    search.add_argument("--index", default=None, help=f"index or run folder (default: {default_index})")
    search.add_argument("--near", default=None, help="a track id to blend listening similarity toward")
    search.add_argument("--blend", type=float, default=0.0, help="weight of listening similarity (0..1)")
    search.add_argument("--json", action="store_true")
    search.set_defaults(func=_search)
    similar = commands.add_parser("similar", help="tracks like an indexed track id or an audio file")
    similar.add_argument("item", help="a track id of the index, or an audio file")
    similar.add_argument("-k", type=int, default=10)
    similar.add_argument("--index", default=None, help=f"index or run folder (default: {default_index})")
    similar.add_argument("--json", action="store_true")
    similar.set_defaults(func=_similar)
    tag = commands.add_parser("tag", help="zero-shot tags of an audio file (nearest vocabulary tags)")
    tag.add_argument("file")
    tag.add_argument("-k", type=int, default=10)
    tag.add_argument("--index", default=None, help=f"index or run folder (default: {default_index})")
    tag.add_argument("--head", default=None, help="a tagger from `retrieval train-head --features shared`")
    tag.add_argument("--json", action="store_true")
    tag.set_defaults(func=_tag)

    compare = commands.add_parser(
        "compare", help="train + evaluate every row of a table file; write table.md"
    )
    compare.add_argument("table", help="a table file, e.g. configs/demo/table.yaml")
    compare.add_argument("--out", required=True, help="folder for the runs and the table")
    compare.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override for every row"
    )
    compare.set_defaults(func=_compare)

    student = commands.add_parser("noisy-student", help="iterated noisy-student training of a tagger")
    student.add_argument("--config", required=True, help="the student's tagging config (task: tagging)")
    student.add_argument("--teacher", required=True, help="a trained tagging run (the first teacher)")
    student.add_argument("--out", required=True, help="folder for OUT/student_1, OUT/student_2, ...")
    student.add_argument("--iterations", type=int, default=1)
    student.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    student.set_defaults(func=_noisy_student)

    robust = commands.add_parser("robustness", help="tagging ROC-AUC / PR-AUC under perturbed audio (SMC 2020)")
    robust.add_argument("runs", nargs="+", help="trained tagging runs")
    robust.add_argument("--out", required=True, help="folder for robustness.md and robustness.json")
    robust.add_argument("--perturbations", nargs="+", default=None,
                        help="names (time_stretch pitch_shift compression white_noise), optionally name=s1,s2")
    robust.add_argument("--split", default="test")
    robust.add_argument("--max-tracks", type=int, default=None, help="only the first N tracks of the split")
    robust.set_defaults(func=_robustness)

    why = commands.add_parser("explain", help="per-tag attention over time as heat maps (CNNSA, MTT, SpecTNT)")
    why.add_argument("file", help="an audio file")
    why.add_argument("--model", required=True, help="a trained tagging run with an attention backbone")
    why.add_argument("--out", default=None, help="folder for the PNGs (default MODEL/explain)")
    why.add_argument("--tags", nargs="+", default=None, help="tags to explain (default: the most probable)")
    why.add_argument("--top-k", type=int, default=3)
    why.set_defaults(func=_explain)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``retrieval`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (RetrievalError, FileNotFoundError, FileExistsError, KeyError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; completed files are kept (rerun to resume)", file=sys.stderr)
        return 130
