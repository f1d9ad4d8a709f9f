"""Search latency, throughput, recall and size of the exact and annoy indexes on a generated catalogue.

    python benchmarks/search_latency.py --n 1000000 --dim 256            # the 1M-track figure
    python benchmarks/search_latency.py --n 100000 --search-k 5000 20000  # a quick sweep while developing

The catalogue is a seeded two-level Gaussian mixture (:class:`ClusteredMixture`), generated and added in
chunks so that only the indexes hold the full matrix (1M × 256 float32 = 1 GiB each). Queries are fresh draws
from the same mixture. For each index it reports build time (add + build), size on disk, p50/p99 latency of
single queries (one ``search`` call each, as an interactive user would), batched queries/s (one ``search``
call with every query: a BLAS matmul for exact, one thread per core for annoy) and recall@10 against the
exact index:

    recall@10 = mean over queries of |annoy top-10 ∩ exact top-10| / 10.

``--text-encoders`` is the hook for query *encoding* latency (text → vector), measured by
``retrieval.encoders.text`` once it exists; without it the row is skipped with a message.

Prints a markdown table (and the peak resident memory of the process).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.index import AnnoyIndex, ExactIndex, VectorIndex
from retrieval.index.annoy_index import DEFAULT_N_TREES, DEFAULT_SEARCH_K

K = 10
CHUNK_ROWS = 50_000
PERCENTILES = (50, 99)
# Building blocks of the tag-like text queries whose encoding is timed ("sad piano", ...).
QUERY_WORDS = ("sad", "upbeat", "piano", "deep house", "jazz", "female vocal", "90s", "rainy day", "guitar")


@dataclass(frozen=True)
class ClusteredMixture:
    """A stand-in for learned track embeddings: genres → styles → tracks, with a power-law spectrum.

    genre centres g_j ~ N(0, I_d); style centres s_c = g_genre(c) + style_spread · N(0, I_d);
    track x = s_c + track_spread · R (√λ ⊙ z), z ~ N(0, I_d), λ_i ∝ i^(−alpha) (mean 1), R a random rotation.

    Styles are drawn with Zipf weights (a few big styles, a long tail). The power-law spectrum gives the
    within-style spread a low effective dimension ((Σλ)² / Σλ² ≈ 23 for d = 256, alpha = 1), as measured on
    trained embeddings, instead of an isotropic blob in which nearest neighbours are meaningless.

    Attributes:
        style_centres: (n_styles, d) float32.
        style_weights: (n_styles,) probabilities.
        basis: (d, d) float32 = R · diag(track_spread · √λ); a track is s_c + basis @ z.
    """

    style_centres: np.ndarray
    style_weights: np.ndarray
    basis: np.ndarray

    @classmethod
    def random(
        cls,
        dim: int,
        rng: np.random.Generator,
        n_genres: int = 20,
        n_styles: int = 1000,
        style_spread: float = 0.5,
        track_spread: float = 0.5,
        alpha: float = 1.0,
        zipf: float = 1.0,
    ) -> ClusteredMixture:
        """Draw a mixture (all sizes in the formula of the class docstring)."""
        genres = rng.standard_normal((n_genres, dim))
        genre_of_style = rng.integers(n_genres, size=n_styles)
        styles = genres[genre_of_style] + style_spread * rng.standard_normal((n_styles, dim))
        weights = 1.0 / np.arange(1, n_styles + 1) ** zipf
        spectrum = 1.0 / np.arange(1, dim + 1) ** alpha
        spectrum /= spectrum.mean()
        rotation, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
        return cls(
            style_centres=styles.astype(np.float32),
            style_weights=rng.permutation(weights / weights.sum()),
            basis=(rotation * (track_spread * np.sqrt(spectrum))).astype(np.float32),
        )

    def sample(self, n: int, rng: np.random.Generator, chunk_rows: int = CHUNK_ROWS) -> Iterator[np.ndarray]:
        """Yield n tracks as (≤ chunk_rows, d) float32 chunks."""
        dim = self.basis.shape[0]
        for start in range(0, n, chunk_rows):
            rows = min(chunk_rows, n - start)
            styles = rng.choice(len(self.style_weights), size=rows, p=self.style_weights)
            noise = rng.standard_normal((rows, dim), dtype=np.float32)
            yield self.style_centres[styles] + noise @ self.basis.T


def track_ids(start: int, stop: int) -> np.ndarray:
    """Ids ``T0000000`` … for rows start..stop-1."""
    return np.char.add("T", np.char.zfill(np.arange(start, stop).astype(str), 7))


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean over queries of |found_i ∩ truth_i| / k; found and truth are (q, k) id arrays."""
    hits = (found[:, :, None] == truth[:, None, :]).any(axis=2)
    return float(hits.mean())


def folder_bytes(folder: Path) -> int:
    """Total size of the files in a folder."""
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def time_queries(index: VectorIndex, queries: np.ndarray) -> dict[str, float]:
    """p50/p99 single-query latency (ms) and batched throughput (queries/s) of ``index.search``."""
    index.search(queries, K)  # warm-up: lazy imports, thread pools, page faults of a memory-mapped file
    latencies = []
    for query in queries:
        start = time.perf_counter()
        index.search(query, K)
        latencies.append(time.perf_counter() - start)
    start = time.perf_counter()
    index.search(queries, K)
    batch_seconds = time.perf_counter() - start
    ms = 1e3 * np.asarray(latencies)
    return {
        "p50_ms": float(np.percentile(ms, PERCENTILES[0])),
        "p99_ms": float(np.percentile(ms, PERCENTILES[1])),
        "qps": len(queries) / batch_seconds,
    }


def measure_text_encoders(names: list[str], n_texts: int) -> None:
    """Hook: single-query encoding latency (text → vector) of the text towers' input encoders.

    Builds each encoder with ``retrieval.encoders.text.build_text_encoder(name)`` and times ``encode([text])``
    on ``n_texts`` tag-like queries. Encoders that need arguments (word2vec: a vectors file or a corpus) are
    skipped with the reason; the lead may wire those here. The projection head to the shared space (a small
    MLP) is not included.
    """
    try:
        from retrieval.encoders.text import build_text_encoder
    except ImportError:
        print("\ntext encoders: skipped (retrieval.encoders.text.build_text_encoder is not available)")
        return
    words = QUERY_WORDS
    texts = [f"{words[i % len(words)]} {words[(3 * i + 1) % len(words)]}" for i in range(n_texts)]
    print("\n| text encoder | output dim | p50 ms | p99 ms |\n|---|---:|---:|---:|")
    for name in names:
        try:
            encoder = build_text_encoder(name)
        except Exception as error:  # report any failure to build and go on to the next encoder
            print(f"| {name} | skipped: {error} | | |")
            continue
        encoder.encode(texts[:1])  # warm-up: loads the model
        latencies = []
        for text in texts:
            start = time.perf_counter()
            encoder.encode([text])
            latencies.append(time.perf_counter() - start)
        ms = 1e3 * np.asarray(latencies)
        print(f"| {name} | {encoder.output_dim} | {np.percentile(ms, PERCENTILES[0]):.2f} | "
              f"{np.percentile(ms, PERCENTILES[1]):.2f} |")


def peak_rss_gib() -> float:
    """Peak resident memory of this process (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def run(args: argparse.Namespace) -> list[dict[str, object]]:
    """Build both indexes, measure them, and return one table row per index setting."""
    rng = np.random.default_rng(args.seed)
    catalogue_rng, query_rng = rng.spawn(2)
    mixture = ClusteredMixture.random(args.dim, rng, track_spread=args.track_spread, alpha=args.alpha)
    queries = np.concatenate(list(mixture.sample(args.queries, query_rng)))
    workdir = Path(tempfile.mkdtemp(prefix="search_latency_", dir=args.workdir))
    rows: list[dict[str, object]] = []
    try:
        exact = ExactIndex(args.dim)
        exact_build, offset = 0.0, 0
        for chunk in mixture.sample(args.n, catalogue_rng):
            start = time.perf_counter()  # time adding, not generating
            exact.add(track_ids(offset, offset + len(chunk)), chunk)
            exact_build += time.perf_counter() - start
            offset += len(chunk)
        start = time.perf_counter()
        exact.build()
        exact_build += time.perf_counter() - start
        truth, _ = exact.search(queries, K)
        exact.save(workdir / "exact")
        rows.append({"index": "exact", "build_s": exact_build, "size_mib": folder_bytes(workdir / "exact")
                     / 2**20, "recall": 1.0, **time_queries(exact, queries)})
        print(f"exact done ({rows[-1]['p50_ms']:.1f} ms/query)", file=sys.stderr)

        annoy_index = AnnoyIndex(args.dim, n_trees=args.n_trees, seed=args.seed)
        start = time.perf_counter()
        for begin in range(0, len(exact), CHUNK_ROWS):
            annoy_index.add(exact.ids[begin:begin + CHUNK_ROWS], exact.vectors[begin:begin + CHUNK_ROWS])
        annoy_index.build()
        annoy_build = time.perf_counter() - start
        del exact  # the annoy forest is measured alone from here on
        annoy_index.save(workdir / "annoy")
        annoy_size = folder_bytes(workdir / "annoy") / 2**20
        for search_k in args.search_k:
            annoy_index.search_k = search_k
            found, _ = annoy_index.search(queries, K)
            is_default = (args.n_trees, search_k) == (DEFAULT_N_TREES, DEFAULT_SEARCH_K)
            label = f"annoy n_trees={args.n_trees} search_k={search_k}{' (default)' if is_default else ''}"
            rows.append({"index": label, "build_s": annoy_build,
                         "size_mib": annoy_size, "recall": recall_at_k(found, truth),
                         **time_queries(annoy_index, queries)})
            print(f"annoy search_k={search_k} done (recall {rows[-1]['recall']:.3f})", file=sys.stderr)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return rows


def markdown(rows: list[dict[str, object]], args: argparse.Namespace) -> str:
    """The results as a markdown table, with speed-ups relative to the exact index."""
    exact_p50 = float(rows[0]["p50_ms"])
    lines = [
        f"catalogue {args.n:,} × {args.dim} (clustered: alpha {args.alpha}, track spread "
        f"{args.track_spread}, seed {args.seed}); {args.queries} queries, k = {K}",
        "",
        "| index | build s | size MiB | p50 ms | p99 ms | batched q/s | recall@10 | p50 speed-up vs exact |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        speed_up = exact_p50 / float(row["p50_ms"])
        lines.append(
            f"| {row['index']} | {row['build_s']:.1f} | {row['size_mib']:.0f} | {row['p50_ms']:.2f} | "
            f"{row['p99_ms']:.2f} | {row['qps']:.0f} | {row['recall']:.3f} | {speed_up:.1f}× |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="catalogue size")
    parser.add_argument("--dim", type=int, default=256, help="embedding dimension")
    parser.add_argument("--queries", type=int, default=200, help="queries for latency and recall")
    parser.add_argument("--n-trees", type=int, default=DEFAULT_N_TREES, help="annoy trees")
    parser.add_argument("--search-k", type=int, nargs="+",
                        default=[DEFAULT_SEARCH_K // 2, DEFAULT_SEARCH_K, 2 * DEFAULT_SEARCH_K],
                        help="annoy search_k values to measure (one build)")
    parser.add_argument("--alpha", type=float, default=1.0,
                        help="power-law exponent of the within-style spectrum (smaller: harder)")
    parser.add_argument("--track-spread", type=float, default=0.5,
                        help="within-style spread (larger: harder)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="where indexes are saved to measure size")
    parser.add_argument("--text-encoders", nargs="*", default=None, metavar="NAME",
                        help="also time query encoding with these text encoders (default: sentence)")
    parser.add_argument("--smoke", action="store_true", help="a 2,000 × 32 catalogue, 20 queries (make test)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.n, args.dim, args.queries, args.search_k = 2000, 32, 20, [500]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = os.getloadavg()[0]
    rows = run(args)
    print(markdown(rows, args))
    print(f"\npeak resident memory: {peak_rss_gib():.2f} GiB; {os.cpu_count()} CPUs; 1-minute load average "
          f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after (other processes slow exact search most: "
          "it uses every core, annoy's single queries use one)")
    if args.text_encoders is not None:
        measure_text_encoders(args.text_encoders or ["sentence"], args.queries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
