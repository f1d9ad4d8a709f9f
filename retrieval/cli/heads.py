"""Downstream heads: ``evaluate moods``, ``evaluate artist-factors`` and ``train-head``."""

from __future__ import annotations

import argparse

from retrieval.cli.args import Commands, add_json_option, add_set_option, print_json

#: The mood config ``evaluate moods --model`` uses without ``--config`` (CPU-sized).
RUN_MOODS_CONFIG = "moods/tiny"


def _evaluate_moods(args: argparse.Namespace) -> int:
    """Korzeniowski et al.'s protocol: on the AllMusic layout (--data) or on a run's mood tags (--model)."""
    from retrieval.heads.moods import (
        FEATURE_SETS,
        compare_mood_features,
        compare_run_moods,
        format_mood_table,
        load_mood_config,
    )

    if args.data:
        config = load_mood_config(args.config, args.set)  # None: the paper's listening setting
        results = compare_mood_features(args.data, args.features or list(FEATURE_SETS), args.targets, config)
    else:
        results = compare_run_moods(args.model, config=load_mood_config(args.config or RUN_MOODS_CONFIG, args.set))
    if args.json:
        print_json(results)
    else:
        print(format_mood_table(results))
    return 0


def _evaluate_artist_factors(args: argparse.Namespace) -> int:
    """Kim et al.'s artist-group-factor transfer comparison on a corpus (--data) → table."""
    from retrieval.heads.artist_groups import load_artist_factor_config, run_artist_factor_comparison

    config = load_artist_factor_config(args.config, args.set)
    result = run_artist_factor_comparison(args.data, args.out, config, progress=not args.quiet)
    if args.json:
        print_json({k: v for k, v in result.items() if k != "markdown"})
    else:
        print(result["markdown"])
    return 0


def _train_head(args: argparse.Namespace) -> int:
    from retrieval.heads.probe import train_head

    print_json(train_head(args.run, args.task, args.out, features=args.features, head=args.head))
    return 0


def add_commands(commands: Commands) -> None:
    """Add ``train-head``."""
    head = commands.add_parser("train-head", help="a tagger (linear probe / MLP) on a run's frozen features")
    head.add_argument("--run", required=True, help="a trained run folder")
    head.add_argument("--task", required=True, help="the tag category to predict: mood, genre, ...")
    head.add_argument("--features", default="shared", choices=["shared", "audio", "listening"],
                      help="which frozen features: the shared space, the audio backbone's, or listening factors")
    head.add_argument("--head", default="linear", choices=["linear", "mlp"],
                      help="linear probe or MLP (default linear)")
    head.add_argument("--out", required=True, help="file to save the tagger to")
    head.set_defaults(func=_train_head)


def add_evaluations(evaluations: Commands) -> None:
    """Add ``evaluate moods`` and ``evaluate artist-factors``."""
    moods = evaluations.add_parser(
        "moods", help="mood classification with Korzeniowski et al.'s protocol (AllMusic layout or a run's moods)")
    source = moods.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="the AllMusic mood layout's folder (holding data/)")
    source.add_argument("--model", help="a trained run: compare its listening, audio and shared features on its "
                        "mood tags")
    moods.add_argument("--features", nargs="+",
                       help="with --data: tp | mcn_msd_big | mcn_mtt | NAME | FILE.npy ... (default: the three "
                       "released sets)")
    moods.add_argument("--targets", help="with --data: the multi-hot targets .npy (not distributed with the data; "
                       "default DATA/data/mood_target.npy)")
    moods.add_argument("--config", help="a mood config name or file, e.g. moods/listening, moods/audio (default: "
                       f"the paper's listening setting with --data, {RUN_MOODS_CONFIG} with --model)")
    add_set_option(moods, help="override a mood config key, e.g. epochs=3 (repeatable)")
    add_json_option(moods)
    moods.set_defaults(func=_evaluate_moods)

    factors = evaluations.add_parser(
        "artist-factors", help="artist-group-factor transfer to genre classification (Kim et al.)")
    factors.add_argument("--data", required=True, help="a corpus folder in the MSD500 layout (e.g. the demo corpus)")
    factors.add_argument("--out", required=True, help="folder for artist_factors.md and artist_factors.json")
    factors.add_argument("--config", help="an artist-factor config name or file, e.g. artist_factors/demo "
                         "(default: the built-in settings)")
    add_set_option(factors, help="override an artist-factor config key, e.g. epochs=2 (repeatable)")
    add_json_option(factors)
    factors.set_defaults(func=_evaluate_artist_factors)
