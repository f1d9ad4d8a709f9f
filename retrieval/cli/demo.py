"""``retrieval demo``: what ``make demo`` runs (:func:`retrieval.demo.run_demo`)."""

from __future__ import annotations

import argparse

from retrieval.cli.args import Commands, add_set_option, positive_int
from retrieval.cli.train import CONFIG_HELP
from retrieval.demo import DEFAULT_DEMO_CONFIG, DEFAULT_DEMO_TRACKS


def _demo(args: argparse.Namespace) -> int:
    """Build the demo corpus, train the demo config, evaluate it (each step reuses finished work)."""
    from retrieval.demo import run_demo

    run_demo(args.home, args.config, tracks=args.tracks, overrides=args.set, progress=not args.quiet, report=print)
    return 0


def add_commands(commands: Commands) -> None:
    """Add ``demo``."""
    demo = commands.add_parser("demo", help="build the demo corpus, train and evaluate the demo model, search it")
    demo.add_argument("--home", help="library home (default $RETRIEVAL_HOME or ~/.cache/retrieval)")
    demo.add_argument("--config", default=DEFAULT_DEMO_CONFIG, help=f"{CONFIG_HELP} (default {DEFAULT_DEMO_CONFIG})")
    demo.add_argument("--tracks", type=positive_int, default=DEFAULT_DEMO_TRACKS,
                      help=f"tracks in the demo corpus (default {DEFAULT_DEMO_TRACKS})")
    add_set_option(demo)
    demo.set_defaults(func=_demo)
