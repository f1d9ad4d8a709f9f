"""Search latency, recall, build time and size of every index backend, side by side on one generated catalogue.

    python benchmarks/search_latency.py --n 1000000 --dim 256           # the 1M-track table (every backend)
    python benchmarks/search_latency.py --n 3000000 --backends faiss-ivfpq  # IVF-PQ alone at a larger size
    python benchmarks/search_latency.py --n 100000 --ef 32 64           # a quick sweep while developing

The catalogue is a seeded two-level Gaussian mixture (:class:`ClusteredMixture`), generated and added in
chunks so that only the indexes hold the full matrix (1M × 256 float32 = 1 GiB each). Queries are fresh draws
from the same mixture. Each backend is built once with its library defaults (all cores), saved (size on disk)
and loaded back; then its search knob (annoy ``search_k``, hnswlib / faiss-hnsw ``ef_search``, faiss-ivfpq
``nprobe`` at each ``refine``) is raised until recall@10 ≥ 0.99, measuring at every step the p50/p99 latency of
single queries (one ``search`` call each on one thread, BLAS and OpenMP limited to one, as an interactive user
would) and recall@10 against the exact index:

    recall@10 = mean over queries of |approximate top-10 ∩ exact top-10| / 10.

A summary gives each backend's fastest setting at recall ≥ 0.95 and ≥ 0.99, and the exact index's latency on
prefixes of the catalogue (10k … n), which is the evidence for :func:`retrieval.index.registry.choose_backend`.

``--text-encoders`` also times query *encoding* (text → vector) with ``retrieval.encoders.text``.

Prints markdown tables (and the peak resident memory of the process).
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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.index import INDEX_BACKENDS, ExactIndex, VectorIndex, create_index, load_index

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
    """p50/p99 single-query latency (ms) of ``index.search`` on one thread (BLAS and OpenMP limited to one)."""
    index.search(queries[:5], K)  # warm-up: lazy imports, page faults of a memory-mapped file
    latencies = []
    with one_thread():
        for query in queries:
            start = time.perf_counter()
            index.search(query, K)
            latencies.append(time.perf_counter() - start)
    ms = 1e3 * np.asarray(latencies)
    return {"p50_ms": float(np.percentile(ms, PERCENTILES[0])), "p99_ms": float(np.percentile(ms, PERCENTILES[1]))}


@contextmanager
def one_thread() -> Iterator[None]:
    """Limit BLAS (numpy) and OpenMP (faiss) to one thread: one interactive query on one core."""
    from threadpoolctl import threadpool_limits

    faiss = _faiss_or_none()
    before = faiss.omp_get_max_threads() if faiss else None
    with threadpool_limits(1):
        if faiss:
            faiss.omp_set_num_threads(1)
        try:
            yield
        finally:
            if faiss:
                faiss.omp_set_num_threads(before)


def _faiss_or_none():
    try:
        import faiss
    except ImportError:
        return None
    return faiss


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


def run(args: argparse.Namespace) -> tuple[list[dict[str, object]], list[dict[str, float]]]:
    """Build every backend on one catalogue, sweep its recall knob, and return the sweep rows and the exact
    index's latency at growing catalogue sizes (prefixes of the same catalogue)."""
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
        rows.append({"backend": "exact", "setting": "brute force", "build_s": exact_build,
                     "size_mib": folder_bytes(workdir / "exact") / 2**20, "recall": 1.0,
                     **time_queries(exact, queries)})
        log(f"exact: {rows[-1]['p50_ms']:.1f} ms/query")
        scaling = exact_scaling(exact, queries, args.n)
        for backend in args.backends:
            if backend != "exact":
                rows += sweep_backend(backend, exact, queries, truth, workdir, args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return rows, scaling


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def exact_scaling(exact: ExactIndex, queries: np.ndarray, n: int) -> list[dict[str, float]]:
    """Exact single-query p50 on catalogue prefixes of 10k, 30k, 100k, ... rows (one thread)."""
    sizes = [size for size in (10_000, 30_000, 100_000, 300_000) if size < n] + [n]
    out = []
    for size in sizes:
        prefix = ExactIndex(exact.dim)
        prefix.add(exact.ids[:size], exact.vectors[:size])
        prefix.build()
        out.append({"n": size, **time_queries(prefix, queries[:50])})
    return out


def sweep_backend(backend: str, exact: ExactIndex, queries: np.ndarray, truth: np.ndarray, workdir: Path,
                  args: argparse.Namespace) -> list[dict[str, object]]:
    """Build ``backend`` with its default build parameters, then raise its search knob until recall@10 ≥ 0.99."""
    try:
        index = create_index(backend, exact.dim, **BUILD_PARAMS.get(backend, {}))
    except ImportError as error:
        log(f"{backend}: skipped ({error})")
        return []
    start = time.perf_counter()
    for begin in range(0, len(exact), CHUNK_ROWS):
        index.add(exact.ids[begin:begin + CHUNK_ROWS], exact.vectors[begin:begin + CHUNK_ROWS])
    index.build()
    build_s = time.perf_counter() - start
    index.save(workdir / backend)
    size_mib = folder_bytes(workdir / backend) / 2**20
    del index  # measure the saved index, as a server would load it
    index = load_index(workdir / backend)
    log(f"{backend}: built in {build_s:.0f} s, {size_mib:.0f} MiB")
    rows = []
    for group in SEARCH_SWEEPS[backend](args):
        for setting in group:  # increasing cost: stop once the highest target is reached
            for key, value in setting.items():
                setattr(index, key, value)
            found, _ = index.search(queries, K)
            recall = recall_at_k(found, truth)
            label = " ".join(f"{key}={value}" for key, value in setting.items())
            rows.append({"backend": backend, "setting": label, "build_s": build_s, "size_mib": size_mib,
                         "recall": recall, **time_queries(index, queries)})
            log(f"{backend} {label}: recall {recall:.3f}, p50 {rows[-1]['p50_ms']:.2f} ms")
            if recall >= TARGETS[-1]:
                break
    shutil.rmtree(workdir / backend, ignore_errors=True)
    return rows


def annoy_sweep(args: argparse.Namespace) -> list[list[dict[str, int]]]:
    return [[{"search_k": value} for value in sorted(args.search_k)]]


def ef_sweep(args: argparse.Namespace) -> list[list[dict[str, int]]]:
    return [[{"ef_search": value} for value in sorted(args.ef)]]


def ivfpq_sweep(args: argparse.Namespace) -> list[list[dict[str, int]]]:
    return [[{"refine": refine, "nprobe": nprobe} for nprobe in sorted(args.nprobe)] for refine in args.refine]


SEARCH_SWEEPS = {"annoy": annoy_sweep, "hnswlib": ef_sweep, "faiss-hnsw": ef_sweep, "faiss-ivfpq": ivfpq_sweep}
#: Build parameters: the backends' defaults except where the benchmark needs an explicit value.
BUILD_PARAMS: dict[str, dict[str, object]] = {}
TARGETS = (0.95, 0.99)


def cheapest(rows: list[dict[str, object]], backend: str, target: float) -> dict[str, object] | None:
    """The fastest (p50) setting of ``backend`` whose recall reaches ``target``."""
    reaching = [row for row in rows if row["backend"] == backend and float(row["recall"]) >= target]
    return min(reaching, key=lambda row: float(row["p50_ms"])) if reaching else None


def markdown(rows: list[dict[str, object]], scaling: list[dict[str, float]], args: argparse.Namespace) -> str:
    """The sweep, the per-target summary and the exact-search scaling, as markdown."""
    exact_p50 = float(rows[0]["p50_ms"])
    lines = [
        f"catalogue {args.n:,} × {args.dim} (clustered: alpha {args.alpha}, track spread "
        f"{args.track_spread}, seed {args.seed}); {args.queries} queries, k = {K}; latency: one query per "
        "search call on one thread",
        "",
        "| backend | setting | build s | size MiB | p50 ms | p99 ms | recall@10 | p50 speed-up vs exact |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['backend']} | {row['setting']} | {row['build_s']:.1f} | {row['size_mib']:.0f} | "
            f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['recall']:.3f} | "
            f"{exact_p50 / float(row['p50_ms']):.1f}× |"
        )
    backends = list(dict.fromkeys(str(row["backend"]) for row in rows))
    header = " | ".join(f"p50 / p99 ms at recall ≥ {target} (setting)" for target in TARGETS)
    lines += ["", f"| backend | build s | size MiB | {header} |", "|---|---:|---:|" + "---|" * len(TARGETS)]
    for backend in backends:
        cells = []
        for target in TARGETS:
            row = cheapest(rows, backend, target)
            cells.append("not reached" if row is None else
                         f"{row['p50_ms']:.2f} / {row['p99_ms']:.2f} ({row['setting']})")
        first = next(row for row in rows if row["backend"] == backend)
        lines.append(f"| {backend} | {first['build_s']:.1f} | {first['size_mib']:.0f} | {' | '.join(cells)} |")
    lines += ["", "exact search, one thread, catalogue prefixes: " + ", ".join(
        f"{row['n']:,}: {row['p50_ms']:.2f} ms" for row in scaling)]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="catalogue size")
    parser.add_argument("--dim", type=int, default=256, help="embedding dimension")
    parser.add_argument("--queries", type=int, default=200, help="queries for latency and recall")
    parser.add_argument("--backends", nargs="+", default=[name for name in INDEX_BACKENDS if name != "exact"],
                        choices=sorted(INDEX_BACKENDS), help="approximate backends to measure beside exact")
    parser.add_argument("--search-k", type=int, nargs="+", default=[5_000, 10_000, 20_000, 40_000, 80_000],
                        help="annoy search_k values (one build)")
    parser.add_argument("--ef", type=int, nargs="+", default=[16, 32, 64, 128, 256, 512],
                        help="hnswlib / faiss-hnsw ef_search values")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 32, 64, 128, 256],
                        help="faiss-ivfpq nprobe values")
    parser.add_argument("--refine", type=int, nargs="+", default=[10, 40],
                        help="faiss-ivfpq re-ranked candidates per result (each swept over --nprobe)")
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
        args.n, args.dim, args.queries = 2000, 32, 20
        args.search_k, args.ef, args.nprobe, args.refine = [500], [16, 64], [4, 16], [10]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    rows, scaling = run(args)
    print(markdown(rows, scaling, args))
    print(f"\npeak resident memory: {peak_rss_gib():.2f} GiB; {os.cpu_count()} CPUs; 1-minute load average "
          f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after; {time.perf_counter() - started:.0f} s in all "
          "(builds use every core; other processes slow them, and single queries less)")
    if args.text_encoders is not None:
        measure_text_encoders(args.text_encoders or ["sentence"], args.queries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
