"""Argument types and options that several commands share.

The types turn a bad value into argparse's usage error (exit code 2) before any work starts, so the library's
own argument checks are only reached by a bug.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

#: What ``add_parser`` returns a group of: the ``commands`` argument of every ``add_commands``.
Commands = argparse._SubParsersAction  # argparse has no public name for it


def _number(cast: Callable[[str], Any], check: Callable[[Any], bool], what: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not check(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


#: An integer ≥ 1.
positive_int = _number(int, lambda v: v >= 1, "an integer ≥ 1")
#: An integer ≥ 0.
count = _number(int, lambda v: v >= 0, "an integer ≥ 0")
#: A number > 0.
positive_float = _number(float, lambda v: v > 0, "a number > 0")
#: A number in [0, 1].
unit_float = _number(float, lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]")


def add_set_option(parser: argparse.ArgumentParser, help: str = "override a config key (repeatable)") -> None:
    """``--set KEY=VALUE`` (repeatable; values are YAML), collected into ``args.set``."""
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=help)


def add_device_options(parser: argparse.ArgumentParser, default: str | None = "cpu") -> None:
    """``--device`` (auto, cpu, cuda, cuda:N, mps) and ``--precision`` (fp32, bf16, fp16) of a command that runs a
    model (:mod:`retrieval.devices`); ``default`` None: the run's own ``train.device`` / ``train.precision``."""
    where = "the run's train.device" if default is None else default
    parser.add_argument("--device", default=default, help=f"auto, cpu, cuda, cuda:N or mps (default {where})")
    parser.add_argument("--precision", default=None if default is None else "fp32", choices=["fp32", "bf16", "fp16"],
                        help="network precision (autocast; default " + ("the run's" if default is None else "fp32")
                        + ")")


def add_json_option(parser: argparse.ArgumentParser) -> None:
    """``--json``: print machine-readable JSON instead of the table."""
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def print_json(value: Any) -> None:
    """Print ``value`` as indented JSON (how every ``--json`` prints)."""
    print(json.dumps(value, indent=2))
