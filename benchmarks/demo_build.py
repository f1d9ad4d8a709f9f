"""Wall time of a demo-corpus build (``retrieval data demo``) from scratch, and of the cached re-run.

    python benchmarks/demo_build.py                      # the default build: 2000 tracks of 15 s
    python benchmarks/demo_build.py --tracks 200         # a quick check while developing
    python benchmarks/demo_build.py --out /tmp/demo      # keep the corpus (default: a temporary folder)

Builds into an empty folder (parsing, rendering, tagging, listeners, splits, writing), then calls the
builder again with the same arguments to time the cache hit. Prints tracks/s and total seconds of the
build, the cached call's seconds, and the corpus summary. Note the CPU count and whether the machine
was shared: rendering is CPU-bound and scales with the workers.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from retrieval.data.demo import build_demo_corpus
from retrieval.data.demo.layout import DEFAULT_N_TRACKS, DEFAULT_SECONDS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=DEFAULT_N_TRACKS, help="tracks to render")
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="excerpt length per track")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    parser.add_argument("--out", type=Path, default=None, help="corpus folder to keep (must not exist)")
    parser.add_argument("--smoke", action="store_true", help="8 tracks of 2 s (make test)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.tracks, args.seconds = 8, 2.0

    temporary = args.out is None
    out = Path(tempfile.mkdtemp(prefix="demo_build_")) / "corpus" if temporary else args.out
    if out.exists():
        parser.error(f"{out} exists; the benchmark times a build from scratch")
    try:
        started = time.perf_counter()
        summary = build_demo_corpus(out, args.tracks, args.seed, seconds=args.seconds, workers=args.workers)
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        again = build_demo_corpus(
            out, args.tracks, args.seed, seconds=args.seconds, workers=args.workers, progress=False
        )
        cached_seconds = time.perf_counter() - started
    finally:
        if temporary:
            shutil.rmtree(out.parent, ignore_errors=True)
    print(summary.format())
    print()
    header = "| tracks | seconds/track | workers | CPUs | build s | tracks/s | cached re-run s |"
    print(header)
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {summary.n_tracks} | {args.seconds:g} | {args.workers or os.cpu_count()} | {os.cpu_count()} "
        f"| {seconds:.1f} | {summary.n_tracks / seconds:.2f} | {cached_seconds:.2f} (cached={again.cached}) |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
