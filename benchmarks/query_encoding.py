"""Query latency: a whole warm ``Retriever.search`` (spelling, word tower, MLP, nearest tags, index lookup) and
its text-encoding part alone, for several retrievers side by side.

Each retriever lives in its own worker process (so one library's idle thread pool cannot slow another's), and the
retrievers are timed interleaved: each round of queries goes to every worker in turn, in a rotating order, one
worker busy at a time (a round per turn, not a query: a library's threads spin a while after their last work, which
would bill one worker's spin to the next). The load of a shared machine falls on all of them alike, so their ratio
holds when absolute times drift. Every retriever is warmed up first (model loading, first-call allocations).
``--peer`` adds, for every sentence or fused retriever, the same retriever with MiniLM on sentence-transformers
(what a user would run without this library's ONNX Runtime path); ``--fp32`` adds it with the float32 ONNX model
(where int8 is the default), which shows what the int8 weights give.

    PYTHONPATH=. .venv/bin/python benchmarks/query_encoding.py INDEX_A INDEX_B ... [--peer] [--fp32]
    PYTHONPATH=. .venv/bin/python benchmarks/query_encoding.py --smoke INDEX          # make test: 2 rounds
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from pathlib import Path

import numpy as np

QUERIES = ["dreamy", "sad piano", "music for falling asleep", "irish folk", "energetic fiddle tune", "calm",
           "renaissance choir", "happy dance", "lullaby", "loud brass", "draemy", "songs from china",
           "something to study to", "a quiet night by the fire", "solemn choral music for a funeral", "cello"]


# MiniLM variants a worker can swap in: label suffix → SentenceEncoder arguments
_VARIANTS = {"sentence-transformers": {"runtime": "torch"}, "ONNX fp32": {"precision": "fp32"}}


def _worker(connection, index: str, variant: str | None) -> None:
    """Load one retriever (with a MiniLM ``variant`` of _VARIANTS, if given), then answer (query, k) with
    (embed ms, search ms) until told None."""
    import retrieval

    retriever = retrieval.load(index)
    kind = retriever.run.config.model.text.kind
    if variant:
        from retrieval.encoders.text import SentenceEncoder

        if kind == "sentence":
            retriever.text_encoder = SentenceEncoder(**_VARIANTS[variant])
        else:
            retriever.text_encoder.sentence = SentenceEncoder(**_VARIANTS[variant])
    for query in QUERIES[:3]:
        retriever.search(query)
    connection.send((kind, len(retriever.index), retriever.index.backend))
    while (request := connection.recv()) is not None:
        query, k = request
        started = time.perf_counter()
        retriever.embed_text(query)
        middle = time.perf_counter()
        retriever.search(query, k=k)
        connection.send(((middle - started) * 1000, (time.perf_counter() - middle) * 1000))


def _label(index: str, variant: str | None) -> str:
    path = Path(index).resolve()
    name = path.parent.parent.name if path.name == "index" else path.name  # HOME/demo/index → HOME
    return f"{name} [{variant}]" if variant else name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("indexes", nargs="+", help="index folders (or run folders with RUN/index)")
    parser.add_argument("--rounds", type=int, default=10, help="passes over the queries (default 10)")
    parser.add_argument("--peer", action="store_true",
                        help="add each sentence/fused retriever again with MiniLM on sentence-transformers")
    parser.add_argument("--fp32", action="store_true",
                        help="add each sentence/fused retriever again with the float32 ONNX model")
    parser.add_argument("--smoke", action="store_true", help="2 rounds, for make test")
    args = parser.parse_args(argv)
    rounds = 2 if args.smoke else args.rounds
    context = multiprocessing.get_context("spawn")
    workers = []

    def start(index: str, variant: str | None) -> None:
        mine, theirs = context.Pipe()
        process = context.Process(target=_worker, args=(theirs, index, variant), daemon=True)
        process.start()
        workers.append((_label(index, variant), mine, process, mine.recv()))

    try:
        for index in args.indexes:
            start(index, None)
        variants = [name for name, wanted in zip(_VARIANTS, (args.peer, args.fp32), strict=True) if wanted]
        for variant in variants:
            for index, (_, _, _, (kind, _, _)) in zip(list(args.indexes), list(workers), strict=False):
                if kind in ("sentence", "fused"):
                    start(index, variant)
        times = [{"embed": [], "search": []} for _ in workers]
        order = list(range(len(workers)))
        for _ in range(rounds):  # a round of all queries per worker, workers in rotating order
            order = order[1:] + order[:1]
            for i in order:
                for query in QUERIES:
                    workers[i][1].send((query, 10))
                    embed, search = workers[i][1].recv()
                    times[i]["embed"].append(embed)
                    times[i]["search"].append(search)
    finally:
        for _, connection, process, _ in workers:
            connection.send(None)
            process.join(timeout=30)
    print(f"{len(QUERIES)} queries × {rounds} rounds, interleaved, one worker process per retriever, after a "
          "warm-up")
    print("| retriever | word tower | tracks | index | embed p50 ms | search p50 ms | search p99 ms |")
    print("|---|---|---:|---|---:|---:|---:|")
    for (label, _, _, (kind, n, backend)), measured in zip(workers, times, strict=True):
        embed = np.percentile(measured["embed"], 50)
        p50, p99 = np.percentile(measured["search"], [50, 99])
        print(f"| {label} | {kind} | {n} | {backend} | {embed:.2f} | {p50:.2f} | {p99:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
