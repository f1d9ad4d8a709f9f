"""Cold start of one CLI search: ``retrieval search QUERY --index INDEX`` in a fresh process, wall and CPU seconds,
and the heaviest imports of that process (``python -X importtime``).

    PYTHONPATH=. .venv/bin/python benchmarks/cold_start.py INDEX                      # this checkout, 5 runs
    PYTHONPATH=. .venv/bin/python benchmarks/cold_start.py INDEX --baseline OLD_TREE  # interleaved with another

With ``--baseline`` the two source trees (each put first on ``PYTHONPATH``) alternate run by run, so both see the
same machine load. CPU seconds (user + sys of the child) move less with the load than wall seconds. Imports that
a search should not need (training, TensorFlow-free converters, other engines) are listed if present.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

#: Modules a text search needs none of; any that a search imports is reported.
NOT_NEEDED = ("pytorch_metric_learning", "scipy.stats", "gensim", "transformers", "sklearn", "implicit", "ray",
              "faiss", "hnswlib", "matplotlib")
QUERY = "sad piano"


def one_search(tree: Path, index: Path, importtime: bool = False) -> tuple[float, float, str]:
    """(wall s, CPU s, stderr) of one ``retrieval search`` in a fresh interpreter with ``tree`` first on the path."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "retrieval", "search", QUERY,
               "--index", str(index), "-k", "5"]
    before = os.times()
    started = time.perf_counter()
    # cwd = the tree: `python -m` puts the working folder before PYTHONPATH on sys.path
    done = subprocess.run(command, env=env, cwd=tree, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    after = os.times()
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system), \
        done.stderr


def heaviest_imports(stderr: str, top: int = 8) -> list[tuple[str, float]]:
    """Top-level modules by cumulative import time (s) from ``-X importtime`` output."""
    rows = []
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\s*)(\S+)", line)
        if match and len(match.group(2)) <= 1:
            rows.append((match.group(3), int(match.group(1)) / 1e6))
    return sorted(rows, key=lambda row: -row[1])[:top]


def imported(stderr: str) -> set[str]:
    return {match.group(1) for match in re.finditer(r"\| +(\S+)$", stderr, re.MULTILINE)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("index", type=Path, help="an index folder (`retrieval index ...`)")
    parser.add_argument("--runs", type=int, default=5, help="searches per tree (default 5)")
    parser.add_argument("--baseline", type=Path, default=None, help="another source tree to interleave with")
    parser.add_argument("--smoke", action="store_true", help="one run (make test)")
    args = parser.parse_args(argv)
    runs = 1 if args.smoke else args.runs
    trees = {"this tree": Path(__file__).resolve().parents[1]}
    if args.baseline:
        trees["baseline"] = args.baseline.resolve()
    load = os.getloadavg()[0]
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
    for tree in trees.values():
        one_search(tree, args.index)  # warm the page cache and any once-per-machine export
    for _ in range(runs):
        for name, tree in trees.items():
            wall, cpu, _ = one_search(tree, args.index)
            times[name].append((wall, cpu))
    print(f"cold start of `retrieval search {QUERY!r} --index {args.index}`: {runs} run(s) per tree, interleaved; "
          f"{os.cpu_count()} CPUs, 1-minute load average {load:.1f} before, {os.getloadavg()[0]:.1f} after\n")
    print("| tree | median wall s | median CPU s | heaviest imports (cumulative s) | imports a search needs none of |")
    print("|---|---:|---:|---|---|")
    for name, tree in trees.items():
        _, _, stderr = one_search(tree, args.index, importtime=True)
        wall, cpu = np.median(np.asarray(times[name]), axis=0)
        heavy = ", ".join(f"{module} {seconds:.2f}" for module, seconds in heaviest_imports(stderr))
        extra = ", ".join(sorted(set(NOT_NEEDED) & imported(stderr))) or "none"
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {heavy} | {extra} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
