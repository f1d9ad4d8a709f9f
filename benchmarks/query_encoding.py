"""Query encoding latency: text → word tower → shared-space vector, for trained runs (word2vec and sentence).

Times `Retriever.embed_text` on single queries (what a search request pays before the index lookup), after one
warm-up call, for each run given.

    PYTHONPATH=. .venv/bin/python benchmarks/query_encoding.py runs/demo_table/gated_hybrid_ours \\
        runs/demo_table/gated_hybrid_sentence_tower
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from retrieval.api import Retriever
from retrieval.runs import load_run

QUERIES = ["dreamy", "sad piano", "music for falling asleep", "irish folk", "energetic fiddle tune", "calm",
           "renaissance choir", "happy dance"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--repeats", type=int, default=25)
    args = parser.parse_args()
    print("| run | word tower | p50 ms | p99 ms |")
    print("|---|---|---:|---:|")
    for folder in args.runs:
        run = load_run(folder)
        retriever = Retriever(run, run.text_encoder(), index=None)
        retriever.embed_text(["warm up"] if run.config.model.text.kind == "sentence" else ["dreamy"])
        times = []
        for _ in range(args.repeats):
            for query in QUERIES:
                started = time.perf_counter()
                retriever.embed_text([query])
                times.append((time.perf_counter() - started) * 1000)
        p50, p99 = np.percentile(times, [50, 99])
        print(f"| {folder} | {run.config.model.text.kind} | {p50:.2f} | {p99:.2f} |")


if __name__ == "__main__":
    main()
