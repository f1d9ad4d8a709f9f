"""Speed and peak memory of ``read_taste_profile`` on a synthetic Taste-Profile-shaped file.

The file has the real file's shape scaled down: N lines, ≈ N/48 users (40-hex-char ids, lines grouped by
user as in the real file, long-tailed activity), ≈ N/125 songs (MSD-style ids, Zipf-like popularity),
long-tailed play counts (Zipf, mostly 1). It is written with ``write_taste_profile`` into a temporary
folder, then read in a *fresh child process* so that the memory figure is not polluted by generation.

Peak memory method: the child reads ``VmRSS`` (resident set size) from /proc/self/status after importing
everything, just before reading, and ``VmHWM`` (the kernel's high-water mark of the resident set of this
process image) after reading; the difference is the peak memory the read added (parser buffers,
id dictionaries, triplet arrays, COO → CSR, the result). ``getrusage``'s ``ru_maxrss`` is NOT used: it
survives fork + exec, so a child started by a big parent reports the parent's size.

Extrapolation: the naive figure is bytes-per-line × 48M, as if everything grew with the file; it
overstates, because the parser's per-chunk buffers are a fixed cost. The benchmark therefore also reads
the first half of the file and fits ``peak = fixed + marginal × lines`` through the two points (users
and songs scale with lines here, in the real file's ratios), then evaluates it at 48M lines.

Usage:
    python benchmarks/taste_profile_read.py                # 1,000,000 lines
    python benchmarks/taste_profile_read.py --rows 10000000
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REAL_ROWS = 48_373_586
"""Lines in the real train_triplets.txt."""
LINES_PER_USER = 48
LINES_PER_SONG = 125
SONG_POPULARITY_EXPONENT = 0.9
"""p(song of rank r) ∝ r^-0.9: a long tail, a few very popular songs."""
PLAY_COUNT_ZIPF = 2.0
MAX_PLAY_COUNT = 10_000
USER_ACTIVITY_SIGMA = 1.0
"""Lines per user ~ lognormal(σ = 1): most users have few lines, some have hundreds."""


def generate(rows: int, path: Path, seed: int = 0) -> None:
    """Write a synthetic ``train_triplets.txt`` of ``rows`` lines to ``path``."""
    from retrieval.data.taste_profile import write_taste_profile

    rng = np.random.default_rng(seed)
    n_users = max(1, rows // LINES_PER_USER)
    n_songs = max(1, rows // LINES_PER_SONG)
    user_ids = np.array([rng.bytes(20).hex() for _ in range(n_users)], dtype=object)
    alphabet = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))
    song_chars = alphabet[rng.integers(0, len(alphabet), size=(n_songs, 16))]
    song_ids = np.array(["SO" + "".join(chars) for chars in song_chars], dtype=object)

    activity = rng.lognormal(0.0, USER_ACTIVITY_SIGMA, n_users)
    per_user = np.maximum(1, np.round(activity / activity.sum() * rows)).astype(np.int64)
    users = np.repeat(np.arange(n_users), per_user)[:rows]  # grouped by user, like the real file
    users = np.concatenate([users, rng.integers(0, n_users, rows - len(users))])  # top up to exactly N
    popularity = 1.0 / np.arange(1, n_songs + 1) ** SONG_POPULARITY_EXPONENT
    songs = rng.choice(n_songs, size=len(users), p=popularity / popularity.sum())
    counts = np.minimum(rng.zipf(PLAY_COUNT_ZIPF, size=len(users)), MAX_PLAY_COUNT)
    write_taste_profile(user_ids[users], song_ids[songs], counts, path)


def _status_bytes(field: str) -> int:
    """A memory field of /proc/self/status (Linux), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024  # reported in kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure(path: Path) -> dict[str, float]:
    """Read ``path`` once (in this process) and return timing and memory figures."""
    from retrieval.data.taste_profile import read_taste_profile

    before = _status_bytes("VmRSS")
    start = time.perf_counter()
    plays = read_taste_profile(path)
    wall = time.perf_counter() - start
    peak = _status_bytes("VmHWM")
    matrix = plays.matrix
    return {
        "wall_s": wall,
        "peak_delta_bytes": peak - before,
        "result_bytes": matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes,
        "users": len(plays.users),
        "songs": len(plays.items),
        "nnz": matrix.nnz,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="lines to generate (default 1,000,000)")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # child mode
    parser.add_argument("--smoke", action="store_true", help="10,000 rows (make test)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.rows = 10_000
    if args.measure is not None:
        print(json.dumps(measure(args.measure)))
        return 0

    half_rows = args.rows // 2
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "train_triplets.txt"
        half = Path(folder) / "half.txt"
        start = time.perf_counter()
        generate(args.rows, path)
        with open(path, "rb") as source, open(half, "wb") as target:
            target.writelines(itertools.islice(source, half_rows))
        file_bytes = path.stat().st_size
        elapsed = time.perf_counter() - start
        print(f"generated {args.rows:,} lines ({file_bytes / 1e6:.0f} MB) in {elapsed:.1f} s")
        full_figures = _measure_in_child(path)
        half_figures = _measure_in_child(half)

    wall, peak = full_figures["wall_s"], full_figures["peak_delta_bytes"]
    per_line = peak / args.rows
    marginal = (peak - half_figures["peak_delta_bytes"]) / (args.rows - half_rows)
    fixed = peak - marginal * args.rows
    print(f"read: {wall:.2f} s wall, {args.rows / wall:,.0f} lines/s")
    print(
        f"matrix: {full_figures['users']:,} users × {full_figures['songs']:,} songs, "
        f"{full_figures['nnz']:,} non-zeros, {full_figures['result_bytes'] / 1e6:.0f} MB"
    )
    print(f"peak memory added by the read: {peak / 1e6:.0f} MB = {per_line:.1f} bytes/line")
    print(
        f"first {half_rows:,} lines: {half_figures['peak_delta_bytes'] / 1e6:.0f} MB → "
        f"marginal {marginal:.1f} bytes/line, fixed {fixed / 1e6:.0f} MB"
    )
    real_gb = file_bytes / args.rows * REAL_ROWS / 1e9
    print(
        f"extrapolated to the real file ({REAL_ROWS:,} lines, ~{real_gb:.1f} GB): "
        f"peak ≈ {per_line * REAL_ROWS / 1e9:.2f} GB naive (bytes/line × lines), "
        f"≈ {(fixed + marginal * REAL_ROWS) / 1e9:.2f} GB fitted (fixed + marginal × lines); "
        f"read ≈ {REAL_ROWS / args.rows * wall:.0f} s"
    )
    return 0


def _measure_in_child(path: Path) -> dict[str, float]:
    """Run :func:`measure` in a fresh interpreter so generation does not pollute its memory figures."""
    child = subprocess.run(
        [sys.executable, __file__, "--measure", str(path)], capture_output=True, text=True, check=True
    )
    return json.loads(child.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    sys.exit(main())
