"""Approximate cosine search with hnswlib: a hierarchical navigable small-world graph (Malkov & Yashunin 2018).

Every vector is a node linked to about ``m`` near neighbours per layer (``2 m`` on the bottom layer); a query
walks the graph greedily from the top layer down, keeping the ``ef`` best nodes seen so far on the bottom layer,
and returns the best k of them. Recall is set by ``ef_search`` (search cost grows about linearly with it) and
by the graph's quality (``m``, ``ef_construction``: bigger is better and slower to build). hnswlib's ``"ip"``
space on unit vectors gives d(q, x) = 1 − q·x, so the scores returned here are cosines, cos = 1 − d.

Measured with ``benchmarks/search_latency.py`` (1M × 256 clustered catalogue, one query thread, 2 shared cores
at a load average of ~12; ``benchmarks/RESULTS.md``): with m 16 and ef_construction 128, recall@10 is 0.933 at
ef_search 64 (0.46 ms p50), 0.964 at 128 (0.74 ms), 0.989 at 256 (1.39 ms) and 0.994 at 512; the default
ef_search is 256. ef_construction 128 rather than hnswlib's usual 200 keeps a 1M build within minutes on 2 cores
(at 100k, 200 reached 0.994 at ef_search 128 where 64 plateaued at 0.975).

Builds add items with every core; hnswlib's multi-threaded insertion order depends on thread timing, so two
builds of the same vectors give graphs (and near-tie results) that may differ slightly. The saved graph
(``index.hnsw``) holds the vectors too; loading reads it into memory (≈ n · (4 d + 8 m) bytes).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from retrieval.errors import DataError
from retrieval.index.base import VectorIndex, import_optional
from retrieval.index.folder import REBUILD_COMMAND

__all__ = ["HnswIndex"]

GRAPH_FILE = "index.hnsw"
SPACE = "ip"
DEFAULT_M = 16
DEFAULT_EF_CONSTRUCTION = 128
DEFAULT_EF_SEARCH = 256
DEFAULT_SEED = 0


class HnswIndex(VectorIndex):
    """Approximate cosine top-k with an hnswlib graph.

    Args:
        dim: vector dimension d.
        fingerprint: fingerprint of the model that made the vectors.
        m: graph degree (links per node per layer; 2·m on the bottom layer).
        ef_construction: candidate list size while inserting (graph quality vs build time).
        ef_search: candidate list size while searching (recall vs latency); at least k is always used.
        seed: seed of the random layer assignment.
        n_jobs: threads for building and for batched queries; -1 uses every core. Not saved.

    Example:
        >>> import numpy as np
        >>> index = HnswIndex(dim=2)
        >>> index.add(["a", "b", "c"], np.array([[1.0, 0.0], [0.6, 0.8], [-1.0, 0.0]]))
        >>> index.build()
        >>> ids, scores = index.search(np.array([1.0, 0.0]), k=2)
        >>> ids, scores.round(2)
        (array([['a', 'b']], dtype='<U1'), array([[1. , 0.6]], dtype=float32))
    """

    backend = "hnswlib"

    def __init__(
        self,
        dim: int,
        fingerprint: str | None = None,
        m: int = DEFAULT_M,
        ef_construction: int = DEFAULT_EF_CONSTRUCTION,
        ef_search: int = DEFAULT_EF_SEARCH,
        seed: int = DEFAULT_SEED,
        n_jobs: int = -1,
    ):
        super().__init__(dim, fingerprint)
        if min(m, ef_construction, ef_search) < 1:
            raise ValueError(f"m, ef_construction and ef_search must be positive, got {m}, {ef_construction}, "
                             f"{ef_search}")
        if n_jobs == 0 or n_jobs < -1:
            raise ValueError(f"n_jobs must be -1 (all cores) or a positive count, got {n_jobs}")
        self._hnswlib = import_optional("hnswlib", f"the {self.backend!r} index backend")
        self.m, self.ef_construction, self.ef_search = int(m), int(ef_construction), int(ef_search)
        self.seed, self.n_jobs = int(seed), int(n_jobs)
        self._graph = None
        self._pending: list[np.ndarray] = []

    def params(self) -> dict[str, int]:
        """Saved parameters: m, ef_construction, ef_search, seed."""
        return {"m": self.m, "ef_construction": self.ef_construction, "ef_search": self.ef_search,
                "seed": self.seed}

    def _threads(self) -> int:
        return (os.cpu_count() or 1) if self.n_jobs == -1 else self.n_jobs

    def _add(self, unit_vectors: np.ndarray) -> None:
        self._pending.append(unit_vectors)

    def _build(self) -> None:
        first = 0 if self._graph is None else self._graph.get_current_count()
        total = first + sum(len(chunk) for chunk in self._pending)
        if self._graph is None:
            self._graph = self._hnswlib.Index(space=SPACE, dim=self.dim)
            self._graph.init_index(max_elements=total, M=self.m, ef_construction=self.ef_construction,
                                   random_seed=self.seed)
        elif total > self._graph.get_max_elements():
            self._graph.resize_index(total)  # an hnsw graph grows in place
        for chunk in self._pending:
            self._graph.add_items(chunk, np.arange(first, first + len(chunk)), num_threads=self._threads())
            first += len(chunk)
        self._pending = []

    def _search(self, unit_queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        self._graph.set_ef(max(self.ef_search, k))  # ef < k cannot return k results
        threads = 1 if len(unit_queries) == 1 else self._threads()
        try:
            rows, distances = self._graph.knn_query(unit_queries, k=k, num_threads=threads)
        except RuntimeError as error:  # cannot happen with ef ≥ k on a connected graph
            raise RuntimeError(f"hnswlib returned fewer than {k} results ({error}); rebuild the index with "
                               f"`{REBUILD_COMMAND}`") from error
        return rows.astype(np.int64), (1.0 - distances).astype(np.float32)

    def _vectors(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self._graph.get_items(rows.tolist(), return_type="numpy"), dtype=np.float32)

    def _write_files(self, folder: Path) -> None:
        self._graph.save_index(str(folder / GRAPH_FILE))

    def _read_files(self, folder: Path, n: int) -> None:
        path = folder / GRAPH_FILE
        if not path.is_file():
            raise DataError(path, f"missing hnswlib graph; rebuild the index with `{REBUILD_COMMAND}`")
        graph = self._hnswlib.Index(space=SPACE, dim=self.dim)
        try:
            graph.load_index(str(path), max_elements=n)
        except (RuntimeError, MemoryError) as error:
            raise DataError(path, f"cannot load ({error}); rebuild the index with `{REBUILD_COMMAND}`") from error
        if graph.get_current_count() != n or graph.dim != self.dim:
            raise DataError(path, f"holds {graph.get_current_count()} vectors of dimension {graph.dim} but "
                            f"meta.json says {n} of {self.dim}; rebuild the index with `{REBUILD_COMMAND}`")
        self._graph, self._pending = graph, []
