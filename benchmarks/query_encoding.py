"""Query latency: a whole warm ``Retriever.search`` (spelling, word tower, MLP, nearest tags, index lookup) and
its text-encoding part alone, for several retrievers side by side.

The retrievers are timed interleaved — each query goes to every retriever in turn, in a rotating order — so the
load of a shared machine falls on all of them alike and their ratio holds even when absolute times drift.
Every retriever is warmed up first (model loading, first-call allocations).

    PYTHONPATH=. .venv/bin/python benchmarks/query_encoding.py INDEX_A INDEX_B ...   # e.g. fused, word2vec, sentence
    PYTHONPATH=. .venv/bin/python benchmarks/query_encoding.py --smoke INDEX          # make test: 2 rounds
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

QUERIES = ["dreamy", "sad piano", "music for falling asleep", "irish folk", "energetic fiddle tune", "calm",
           "renaissance choir", "happy dance", "lullaby", "loud brass", "draemy", "songs from china",
           "something to study to", "a quiet night by the fire", "solemn choral music for a funeral", "cello"]


def time_retrievers(retrievers, rounds: int, k: int = 10) -> list[dict[str, list[float]]]:
    """Per retriever, the milliseconds of each ``embed_text`` and each ``search`` call (interleaved)."""
    for retriever in retrievers:
        for query in QUERIES[:3]:
            retriever.search(query, k=k)
    times = [{"embed": [], "search": []} for _ in retrievers]
    order = list(range(len(retrievers)))
    for _ in range(rounds):
        for query in QUERIES:
            order = order[1:] + order[:1]
            for i in order:
                started = time.perf_counter()
                retrievers[i].embed_text(query)
                middle = time.perf_counter()
                retrievers[i].search(query, k=k)
                ended = time.perf_counter()
                times[i]["embed"].append((middle - started) * 1000)
                times[i]["search"].append((ended - middle) * 1000)
    return times


def main(argv: list[str] | None = None) -> int:
    import retrieval

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("indexes", nargs="+", help="index folders (or run folders with RUN/index)")
    parser.add_argument("--rounds", type=int, default=10, help="passes over the queries (default 10)")
    parser.add_argument("--smoke", action="store_true", help="2 rounds, for make test")
    args = parser.parse_args(argv)
    retrievers = [retrieval.load(name) for name in args.indexes]
    times = time_retrievers(retrievers, 2 if args.smoke else args.rounds)
    print(f"{len(QUERIES)} queries × {2 if args.smoke else args.rounds} rounds, interleaved, after a warm-up")
    print("| retriever | word tower | tracks | index | embed p50 ms | search p50 ms | search p99 ms |")
    print("|---|---|---:|---|---:|---:|---:|")
    for name, retriever, measured in zip(args.indexes, retrievers, times, strict=True):
        path = Path(name).resolve()
        name = path.parent.name if path.name == "index" else path.name  # RUN/index → RUN
        embed = np.percentile(measured["embed"], 50)
        p50, p99 = np.percentile(measured["search"], [50, 99])
        print(f"| {name} | {retriever.run.config.model.text.kind} | {len(retriever.index)} | "
              f"{retriever.index.backend} | {embed:.2f} | {p50:.2f} | {p99:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
