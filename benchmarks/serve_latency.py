"""A warm query of `retrieval serve` against the same query through the command line (a cold process each time).

    PYTHONPATH=. .venv/bin/python benchmarks/serve_latency.py                 # the `make demo` index
    PYTHONPATH=. .venv/bin/python benchmarks/serve_latency.py INDEX --rounds 10
    PYTHONPATH=. .venv/bin/python benchmarks/serve_latency.py --smoke INDEX   # 2 rounds (make test)

The app (:func:`retrieval.web.create_app`) is started once on 127.0.0.1 with the retriever loaded, and one
warm-up query is sent. Then, interleaved, each round sends ``--warm`` text queries over HTTP and runs
``retrieval search QUERY --index INDEX --json`` once in a fresh process, so both see the same machine load. Per
query it records

- **server-side**: the app's own time for the search (``elapsed_ms`` / ``Server-Timing``: text encoding, the
  nearest tags, the index search, the hits' metadata), the figure the ≤ 20 ms target is about;
- **HTTP round trip**: what a client on the same machine waits (request, handler, JSON, response);
- **CLI**: the wall time of the whole ``retrieval search`` process (interpreter, imports, model load, query).

Prints a markdown table of p50 / p95 / max per measure.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.request
from urllib.parse import quote

import numpy as np

QUERIES = ("dreamy", "sad piano", "music for falling asleep", "irish fiddle", "church organ", "happy dance",
           "medieval", "calm guitar", "something to study to", "energetic brass", "lullaby", "baroque harpsichord",
           "rainy afternoon", "choir", "folk song from scotland", "draemy", "slow strings", "bagpipes")
PERCENTILES = (50, 95)


def _get(url: str) -> tuple[dict, float]:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        body = json.loads(response.read())
    return body, (time.perf_counter() - start) * 1e3


def _cli_ms(index: str, query: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "retrieval", "search", query, "--index", index, "--json"], check=True,
                   capture_output=True, timeout=600)
    return (time.perf_counter() - start) * 1e3


def _row(name: str, values: list[float]) -> str:
    cells = " | ".join(f"{np.percentile(values, p):.1f}" for p in PERCENTILES)
    return f"| {name} | {len(values)} | {cells} | {max(values):.1f} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("index", nargs="?", default=None, help="index folder (default: the demo index)")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds (default 10)")
    parser.add_argument("--warm", type=int, default=20, help="warm HTTP queries per round (default 20)")
    parser.add_argument("--smoke", action="store_true", help="2 rounds of 5 warm queries (make test)")
    args = parser.parse_args(argv)
    rounds, warm = (2, 5) if args.smoke else (args.rounds, args.warm)

    import retrieval
    from retrieval import paths
    from retrieval.web import create_app, running

    index = args.index or str(paths.demo_index_path())
    start = time.perf_counter()
    retriever = retrieval.load(index)
    load_s = time.perf_counter() - start
    server, round_trip, cli = [], [], []
    with running(create_app(retriever)) as url:
        first, first_ms = _get(f"{url}/api/search?q=warm+up")
        for r in range(rounds):
            for i in range(warm):
                query = QUERIES[(r * warm + i) % len(QUERIES)]
                body, elapsed = _get(f"{url}/api/search?q={quote(query)}&k=10")
                server.append(body["elapsed_ms"])
                round_trip.append(elapsed)
            cli.append(_cli_ms(index, QUERIES[r % len(QUERIES)]))
    print(f"index {index}: {len(retriever.index):,} tracks; retriever loaded in {load_s:.1f} s; first query "
          f"{first['elapsed_ms']:.1f} ms server-side ({first_ms:.1f} ms round trip)")
    print(f"| measure (k = 10) | n | {' | '.join(f'p{p} ms' for p in PERCENTILES)} | max ms |")
    print("|---|---:|" + "---:|" * (len(PERCENTILES) + 1))
    print(_row("warm server: search, server-side", server))
    print(_row("warm server: HTTP round trip", round_trip))
    print(_row("CLI `retrieval search` (cold process)", cli))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
