"""``retrieval data ...``: build the demo corpus, summarise a corpus, build or import splits."""

from __future__ import annotations

import argparse
from pathlib import Path

from retrieval.cli.args import Commands, count, positive_float, positive_int


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


def _data_other_render(args: argparse.Namespace) -> int:
    from retrieval import paths
    from retrieval.data.demo.other_render import build_other_render, format_summary

    demo = Path(args.demo) if args.demo else paths.demo_corpus_dir()
    out = Path(args.out) if args.out else demo.parent / paths.demo_other_render_dir().name
    summary = build_other_render(out, demo, n_tracks=args.tracks, seed=args.seed, workers=args.workers,
                                 progress=not args.quiet)
    print(format_summary(out, summary))
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
    from retrieval.data.corpus import import_published_splits, load_corpus
    from retrieval.data.splits import shared_artists, write_splits

    corpus = load_corpus(Path(args.root))
    splits, problems = import_published_splits(corpus, args.published, prefix=args.prefix,
                                               min_per_split=args.min_per_split)
    write_splits(splits, Path(args.out), categories=corpus.categories)
    ids = splits.all_ids()
    artists = {splits.artist_of[i] for i in ids if i in splits.artist_of}
    shared = shared_artists(splits)
    print(f"wrote {args.out}: {len(splits.tags)} tags from the published splits in {args.published}")
    print(f"artists: {sum(i in splits.artist_of for i in ids)} of {len(ids)} tracks have one ({len(artists)} "
          "artists); " + ("artist-disjoint: yes" if not shared else
                          f"artist-disjoint: NO, {len(shared)} artists in several splits, e.g. "
                          f"{next(iter(shared))!r} in {', '.join(next(iter(shared.values())))}"))
    print(f"checks (≥ {args.min_per_split} tracks per tag and split): " + ("; ".join(problems) or "all hold"))
    return 0


def _data_convert_id_map(args: argparse.Namespace) -> int:
    from retrieval.data.seven_digital import read_id_map, write_id_map

    mapping = read_id_map(args.pickle)
    write_id_map(mapping, args.out)
    print(f"wrote {args.out}: {len(mapping)} track → 7digital ids")
    return 0


def add_commands(commands: Commands) -> None:
    """Add ``data`` and its sub-commands."""
    data = commands.add_parser("data", help="corpora: build the demo corpus, summarise a corpus, build splits")
    data_commands = data.add_subparsers(dest="data_command", required=True)

    demo = data_commands.add_parser("demo", help="generate the built-in demo corpus in the MSD500 layout")
    demo.add_argument("--out", required=True, help="output folder")
    demo.add_argument("--tracks", type=positive_int, default=2000, help="number of tracks (default 2000)")
    demo.add_argument("--seed", type=int, default=0, help="seeds every random choice of the corpus (default 0)")
    demo.add_argument("--seconds", type=positive_float, default=15.0,
                      help="length of each rendered preview in seconds (default 15)")
    demo.add_argument("--workers", type=positive_int, default=None, help="processes (default: all cores)")
    demo.set_defaults(func=_data_demo)

    other = data_commands.add_parser(
        "other-render", help="render held-out demo compositions with another SoundFont, EQ, room and tempo "
        "(the generalisation set of `retrieval evaluate RUN --other-render`)")
    other.add_argument("--demo", help="the demo corpus (default $RETRIEVAL_HOME/demo/corpus)")
    other.add_argument("--out", help="output folder (default: other_render beside the demo corpus)")
    other.add_argument("--tracks", type=positive_int, default=500, help="tracks, one per held-out piece (default 500)")
    other.add_argument("--seed", type=int, default=0, help="seeds the pieces, ids and sounds drawn (default 0)")
    other.add_argument("--workers", type=positive_int, default=None, help="processes (default: all cores)")
    other.set_defaults(func=_data_other_render)

    summary = data_commands.add_parser("summary", help="tracks, tags per category and listeners of a corpus")
    summary.add_argument("root", help="corpus folder (MSD500 layout)")
    summary.set_defaults(func=_data_summary)

    subset = data_commands.add_parser("subset", help="the paper's MSD500/MSD100/MSD50 subset + artist split")
    subset.add_argument("root", help="corpus folder (track_tags.tsv, unique_tracks.txt, ...)")
    subset.add_argument("--out", required=True, help="split folder to write (train/valid/test.tsv, tags.tsv)")
    subset.add_argument("--top-n", type=positive_int, default=None,
                        help="keep the N most frequent tags (100, 50; default: every tag)")
    subset.add_argument("--min-score", type=float, default=50.0,
                        help="smallest track-tag score kept (default 50)")
    subset.add_argument("--min-per-split", type=count, default=100,
                        help="tracks every tag needs in each split (default 100)")
    subset.add_argument("--seed", type=int, default=0, help="seeds the artist split (default 0)")
    subset.set_defaults(func=_data_subset)

    imported = data_commands.add_parser("import-splits", help="convert the authors' published *_ids.npy splits")
    imported.add_argument("root", help="corpus folder")
    imported.add_argument("published", help="folder with train_ids.npy, valid_ids.npy, test_ids.npy, tags.npy")
    imported.add_argument("--prefix", default="", help='file-name prefix, e.g. "sub_"')
    imported.add_argument("--out", required=True, help="split folder to write (train/valid/test.tsv, tags.tsv)")
    imported.add_argument("--min-per-split", type=count, default=1,
                          help="tracks every tag needs in each split for the check (default 1)")
    imported.set_defaults(func=_data_import_splits)

    id_map = data_commands.add_parser(
        "convert-id-map", help="the pickled MSD track → 7digital id map (MSD_id_to_7D_id.pkl) → a TSV, read safely")
    id_map.add_argument("pickle", help="the .pkl map (only dicts of strings and integers are read)")
    id_map.add_argument("--out", required=True, help="the TSV to write, e.g. CORPUS/7digital_ids.tsv")
    id_map.set_defaults(func=_data_convert_id_map)
