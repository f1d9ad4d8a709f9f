"""The ``retrieval`` command: a thin layer over the library's functions.

    retrieval demo [--home DIR] [--config demo]                 `make demo`: corpus → train → evaluate → search
    retrieval data demo --out DIR [--tracks N] [--seed S]       build the demo corpus (MSD500 layout)
    retrieval data summary DIR                                  what a corpus holds
    retrieval data subset DIR --top-n 100 --out SPLITS          the paper's subset builder (artist split)
    retrieval data import-splits DIR PUBLISHED --out SPLITS     the authors' published splits → TSV
    retrieval train --config NAME|FILE --out RUN [--set key=value ...] [--resume]   (retrieval or tagging)
    retrieval evaluate RUN [--split test] [--other-render [DIR]] [--json]
    retrieval evaluate moods --data DIR [--targets T.npy] | --model RUN   mood classification (Korzeniowski)
    retrieval evaluate artist-factors --data CORPUS --out DIR    artist-group-factor transfer (Kim et al.)
    retrieval index AUDIO_DIR --model RUN --out INDEX           index your own music (cached, resumable)
    retrieval search "dreamy" [-k 10] [--index INDEX] [--json]
    retrieval similar TRACK_ID|FILE;  retrieval tag FILE;  retrieval vocab RUN   (search/similar: --m3u/--csv FILE)
    retrieval serve [--index INDEX | --model RUN] [--host 127.0.0.1] [--port 8765]   the local web app
    retrieval train-head --run RUN --task mood --out HEAD.pt    tagger on frozen features
    retrieval compare TABLE --out DIR                           train + evaluate several configs → table.md
    retrieval noisy-student --config C --teacher RUN --out DIR [--iterations N]   iterated noisy-student training
    retrieval robustness RUN [RUN ...] --out DIR                tagging under time stretch, pitch shift, DRC, noise
    retrieval explain FILE --model RUN [--out DIR]              per-tag attention heat maps (attention taggers)

A config is a shipped name (``demo``, ``tagging/fcn``, ``moods/tiny``, ...) or a YAML file, from any folder.
``main(argv)`` returns the exit code, so tests call it directly. Bad input (a :class:`~retrieval.errors.
RetrievalError`, an operating-system error such as a full disk or a read-only folder, or a flag argparse refuses)
ends with a one-line error on stderr naming the path, the reason and the remedy, and exit code 2; nothing is
half-written; ``--debug`` shows the traceback instead. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from retrieval import __version__
from retrieval.cli import data, demo, heads, search, serve, train
from retrieval.errors import RetrievalError, os_error

__all__ = ["build_parser", "main"]

#: ``evaluate``'s own sub-commands; any other word after ``evaluate`` is a run folder (:func:`_route`).
EVALUATIONS = ("moods", "artist-factors")
#: The sub-command ``evaluate RUN`` is parsed as.
EVALUATE_RUN = "run"
HELP_FLAGS = ("-h", "--help")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command (each area adds its own: :mod:`retrieval.cli.data`, ``train``, ...)."""
    parser = argparse.ArgumentParser(prog="retrieval", description=__doc__.split("\n")[0])
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                        help="print the version and exit")
    commands = parser.add_subparsers(dest="command", required=True)
    demo.add_commands(commands)
    data.add_commands(commands)
    train.add_commands(commands)
    evaluate = commands.add_parser(
        "evaluate", help="evaluate a run (the paper's protocol), or the `moods` / `artist-factors` downstream tasks",
        description="retrieval evaluate RUN [--split] [--json] | evaluate moods ... | evaluate artist-factors ...")
    evaluations = evaluate.add_subparsers(dest="evaluation", required=True, metavar="{RUN,moods,artist-factors}")
    train.add_evaluations(evaluations)
    heads.add_evaluations(evaluations)
    search.add_commands(commands)
    heads.add_commands(commands)
    serve.add_commands(commands)
    return parser


def _route(argv: list[str]) -> list[str]:
    """``evaluate RUN ...`` → ``evaluate run RUN ...``; ``evaluate moods|artist-factors ...`` and help are kept."""
    command = next((i for i, token in enumerate(argv) if not token.startswith("-")), None)
    if command is None or argv[command] != "evaluate" or command + 1 >= len(argv):
        return argv
    word = argv[command + 1]
    if word in EVALUATIONS or word in HELP_FLAGS:
        return argv
    return [*argv[:command + 1], EVALUATE_RUN, *argv[command + 1:]]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``retrieval`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(_route(list(sys.argv[1:] if argv is None else argv)))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (RetrievalError, OSError) as error:
        if args.debug:
            raise
        # An OSError that escaped the library's own checks is still the environment's (disk full, permissions):
        # one line naming the path, the reason and the remedy.
        shown = error if isinstance(error, RetrievalError) else os_error(error)
        print(f"error: {shown}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; completed files are kept (rerun to resume)", file=sys.stderr)
        return 130
