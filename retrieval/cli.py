"""The ``retrieval`` command: a thin layer over the library's functions.

    retrieval demo [--home DIR]                               `make demo`: corpus → train → evaluate → search
    retrieval data demo --out DIR [--tracks N] [--seed S]     build the demo corpus (MSD500 layout)
    retrieval data summary DIR                                what a corpus holds
    retrieval data subset DIR --top-n 100 --out SPLITS        the paper's subset builder (artist split)
    retrieval data import-splits DIR PUBLISHED --out SPLITS   the authors' published splits → TSV
    retrieval train --config configs/X.yaml --out RUN [--set key=value ...] [--resume]
    retrieval evaluate RUN [--split test] [--json]
    retrieval compare TABLE.yaml --out DIR                    train + evaluate several configs → table.md

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
    from retrieval.training.experiment import train_run

    config = load_config(args.config, args.set)
    state = train_run(config, args.out, resume=args.resume, progress=not args.quiet)
    print(
        f"trained {state.epoch} epochs; best validation MAP {state.best_map:.4f} at epoch {state.best_epoch}"
    )
    print(f"run: {args.out}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from retrieval.evaluation import format_table
    from retrieval.training.experiment import evaluate_run

    summary = evaluate_run(args.run, split=args.split, progress=not args.quiet)
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k != "per_tag"}, indent=2))
    else:
        print(format_table(summary))
        print(f"wrote {Path(args.run) / 'metrics.json'} and {Path(args.run) / 'category_map.png'}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from retrieval.training.compare import run_table

    run_table(args.table, args.out, args.set, progress=not args.quiet)
    print((Path(args.out) / "table.md").read_text())
    print(f"wrote {Path(args.out) / 'table.md'}, table.json and category_map.png")
    return 0


def _demo(args: argparse.Namespace) -> int:
    """`make demo`: build the demo corpus, train the demo config, evaluate it (each step reuses finished work)."""
    import os

    from retrieval.config import load_config
    from retrieval.data.demo import build_demo_corpus
    from retrieval.evaluation import format_table
    from retrieval.training.experiment import evaluate_run, run_is_complete, train_run

    if args.home:
        os.environ["RETRIEVAL_HOME"] = str(args.home)
    from retrieval import paths

    progress = not args.quiet
    print(f"== demo corpus → {paths.demo_corpus_dir()}")
    summary = build_demo_corpus(paths.demo_corpus_dir(), n_tracks=args.tracks, progress=progress)
    print(summary.format())
    config = load_config(args.config, [f"data.root={paths.demo_corpus_dir()}", *args.set])
    run = paths.demo_run_dir()
    if run_is_complete(run, config):
        print(f"== demo model: already trained in {run}")
    else:
        print(f"== training {args.config} → {run}")
        train_run(config, run, resume=(run / "checkpoints" / "last.ckpt").exists(), progress=progress)
    print("== evaluation on the test split (the paper's protocol)")
    print(format_table(evaluate_run(run, "test", progress=progress)))
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

    evaluate = commands.add_parser("evaluate", help="the paper's evaluation of a trained run")
    evaluate.add_argument("run")
    evaluate.add_argument("--split", default="test", choices=["train", "valid", "test"])
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(func=_evaluate)
    demo_all = commands.add_parser("demo", help="build the demo corpus, train and evaluate the demo model")
    demo_all.add_argument("--home", help="library home (default $RETRIEVAL_HOME or ~/.cache/retrieval)")
    demo_all.add_argument("--config", default="configs/demo.yaml")
    demo_all.add_argument("--tracks", type=int, default=2000)
    demo_all.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key"
    )
    demo_all.set_defaults(func=_demo)

    compare = commands.add_parser(
        "compare", help="train + evaluate every row of a table file; write table.md"
    )
    compare.add_argument("table", help="a table file, e.g. configs/demo/table.yaml")
    compare.add_argument("--out", required=True, help="folder for the runs and the table")
    compare.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override for every row"
    )
    compare.set_defaults(func=_compare)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``retrieval`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (RetrievalError, FileNotFoundError, FileExistsError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; completed files are kept (rerun to resume)", file=sys.stderr)
        return 130
