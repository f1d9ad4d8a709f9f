"""Approximate cosine search with faiss: an HNSW graph over the float32 vectors, and IVF-PQ for catalogues whose
float32 vectors do not fit in RAM.

:class:`FaissHnswIndex` (``faiss-hnsw``) is faiss's ``IndexHNSWFlat`` with the inner-product metric: on unit
vectors the scores are cosines. Same algorithm as :mod:`retrieval.index.hnsw_index` (hnswlib), another
implementation; ``ef_search`` sets recall.

:class:`FaissIvfPqIndex` (``faiss-ivfpq``) keeps only compressed codes in memory:

- a coarse k-means quantizer with ``nlist`` centroids splits the catalogue into cells (inverted lists);
- each vector's residual to its centroid is product-quantized: split into ``m`` sub-vectors of d / m dims,
  each replaced by the nearest of 2^nbits sub-centroids, i.e. m · nbits / 8 bytes per track (32 bytes for
  d = 256 by default, 32× smaller than float32);
- a query scans the ``nprobe`` nearest cells with PQ distances, keeps the best ``refine · k`` candidates and
  re-ranks them by their exact cosine, read from the float32 vectors memory-mapped from ``vectors.npy``
  (only those rows are read, so the vectors stay on disk). Scores are therefore exact cosines, and recall is set
  by ``nprobe`` (cells scanned) and ``refine`` (candidates re-ranked).

In memory after loading: the codes and ids (≈ n · (m · nbits / 8 + 8) bytes) and the centroids; the float32
vectors only as far as the page cache holds them. Building needs the float32 vectors in memory once.

Both need the optional ``faiss-cpu`` package (``pip install 'retrieval[ann]'``). faiss searches and builds with
OpenMP on every core (``OMP_NUM_THREADS`` limits it); one query runs on one thread. Measured figures are in
``benchmarks/RESULTS.md`` and in :mod:`retrieval.index.registry`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.errors import DataError
from retrieval.fileio import load_npy
from retrieval.index.base import VectorIndex, import_optional
from retrieval.index.folder import REBUILD_ADVICE, REBUILD_COMMAND

__all__ = ["FaissHnswIndex", "FaissIvfPqIndex"]

FAISS_FILE = "index.faiss"
VECTORS_FILE = "vectors.npy"
DEFAULT_HNSW_M = 16
DEFAULT_EF_CONSTRUCTION = 128
DEFAULT_EF_SEARCH = 256
# Measured at 1M × 256 (benchmarks/search_latency.py): refine 40, nprobe 32 → recall@10 0.992 at 2.02 ms p50;
# refine 10 saturates at 0.941 whatever nprobe (the true neighbours are not among PQ's best 100).
DEFAULT_NPROBE = 32
DEFAULT_REFINE = 40
DEFAULT_NBITS = 8
DEFAULT_SEED = 0
# Rows handed to faiss per add() call (bounds the transient copy).
_ADD_CHUNK_ROWS = 100_000
# k-means wants ≥ 39 training points per cell centroid (faiss warns below). Training is sized for 2 busy cores:
# the m sub-quantizer k-means dominate it (m = 32 of 256 centroids in 8,192 points, 10 iterations: ~30 s at a
# load average of 10, ~2 min with faiss's defaults), and the exact re-ranking makes finer centroids moot.
_MIN_POINTS_PER_CENTROID = 39
_TRAIN_POINTS_PER_CENTROID = 64
_PQ_TRAIN_POINTS_PER_CENTROID = 32
_PQ_ITERATIONS = 10


class _FaissIndex(VectorIndex):
    """What both faiss backends share: the faiss module, chunked adds, the ``index.faiss`` file."""

    def __init__(self, dim: int, fingerprint: str | None):
        super().__init__(dim, fingerprint)
        self._faiss = import_optional("faiss", f"the {self.backend!r} index backend")
        self._index = None

    def _add_to(self, index: Any, unit_vectors: np.ndarray) -> None:
        for start in range(0, len(unit_vectors), _ADD_CHUNK_ROWS):
            index.add(np.ascontiguousarray(unit_vectors[start:start + _ADD_CHUNK_ROWS]))

    def _write_files(self, folder: Path) -> None:
        self._faiss.write_index(self._index, str(folder / FAISS_FILE))

    def _read_faiss(self, folder: Path, n: int) -> Any:
        path = folder / FAISS_FILE
        if not path.is_file():
            raise DataError(path, f"missing faiss index file; rebuild the index with `{REBUILD_COMMAND}`")
        try:
            index = self._faiss.read_index(str(path))
        except RuntimeError as error:
            message = f"cannot load ({str(error).splitlines()[0]}){REBUILD_ADVICE}"
            raise DataError(path, message) from error
        if index.ntotal != n or index.d != self.dim:
            raise DataError(path, f"holds {index.ntotal} vectors of dimension {index.d} but meta.json says {n} "
                            f"of {self.dim}{REBUILD_ADVICE}")
        return index


class FaissHnswIndex(_FaissIndex):
    """Approximate cosine top-k with faiss's HNSW graph over the float32 vectors (``IndexHNSWFlat``).

    Args:
        dim: vector dimension d.
        fingerprint: fingerprint of the model that made the vectors.
        m: graph degree (links per node per layer; 2·m on the bottom layer).
        ef_construction: candidate list size while inserting.
        ef_search: candidate list size while searching (recall vs latency); at least k is always used.

    Example:
        >>> import numpy as np
        >>> index = FaissHnswIndex(dim=2)
        >>> index.add(["a", "b", "c"], np.array([[1.0, 0.0], [0.6, 0.8], [-1.0, 0.0]]))
        >>> index.build()
        >>> ids, scores = index.search(np.array([1.0, 0.0]), k=2)
        >>> ids, scores.round(2)
        (array([['a', 'b']], dtype='<U1'), array([[1. , 0.6]], dtype=float32))
    """

    backend = "faiss-hnsw"

    def __init__(self, dim: int, fingerprint: str | None = None, m: int = DEFAULT_HNSW_M,
                 ef_construction: int = DEFAULT_EF_CONSTRUCTION, ef_search: int = DEFAULT_EF_SEARCH):
        if min(m, ef_construction, ef_search) < 1:
            raise ValueError(f"m, ef_construction and ef_search must be positive, got {m}, {ef_construction}, "
                             f"{ef_search}")
        super().__init__(dim, fingerprint)
        self.m, self.ef_construction, self.ef_search = int(m), int(ef_construction), int(ef_search)
        self._pending: list[np.ndarray] = []

    def params(self) -> dict[str, int]:
        """Saved parameters: m, ef_construction, ef_search."""
        return {"m": self.m, "ef_construction": self.ef_construction, "ef_search": self.ef_search}

    def _add(self, unit_vectors: np.ndarray) -> None:
        self._pending.append(unit_vectors)

    def _build(self) -> None:
        if self._index is None:
            self._index = self._faiss.IndexHNSWFlat(self.dim, self.m, self._faiss.METRIC_INNER_PRODUCT)
            self._index.hnsw.efConstruction = self.ef_construction
        for chunk in self._pending:  # an HNSW graph grows in place
            self._add_to(self._index, chunk)
        self._pending = []

    def _search(self, unit_queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        parameters = self._faiss.SearchParametersHNSW(efSearch=max(self.ef_search, k))
        scores, rows = self._index.search(np.ascontiguousarray(unit_queries), k, params=parameters)
        if (rows < 0).any():  # cannot happen with efSearch ≥ k on a connected graph
            raise RuntimeError(f"faiss HNSW returned fewer than {k} results{REBUILD_ADVICE}")
        return rows.astype(np.int64), scores.astype(np.float32)

    def _vectors(self, rows: np.ndarray) -> np.ndarray:
        return self._index.reconstruct_batch(rows.astype(np.int64)).astype(np.float32)

    def _read_files(self, folder: Path, n: int) -> None:
        self._index, self._pending = self._read_faiss(folder, n), []


class FaissIvfPqIndex(_FaissIndex):
    """Approximate cosine top-k from product-quantized codes, re-ranked exactly (see the module docstring).

    Args:
        dim: vector dimension d.
        fingerprint: fingerprint of the model that made the vectors.
        nlist: coarse cells; None picks ``√n`` rounded to a power of two (at most n / 39) at build time.
        m: sub-quantizers (bytes per track at 8 bits); must divide d. None picks the largest divisor of d that
            is ≤ d / 8 (32 for d = 256).
        nbits: bits per sub-quantizer code; lowered at build time to log2(n) for catalogues under 2^nbits.
        nprobe: cells scanned per query (recall vs latency).
        refine: candidates re-ranked exactly per result (``refine · k`` per query).
        seed: seed of both k-means trainings.

    The values picked at build time are what :meth:`params` reports and ``meta.json`` records.

    Example:
        >>> import numpy as np
        >>> index = FaissIvfPqIndex(dim=2)
        >>> index.add(["a", "b", "c"], np.array([[1.0, 0.0], [0.6, 0.8], [-1.0, 0.0]]))
        >>> index.build()
        >>> ids, scores = index.search(np.array([1.0, 0.0]), k=2)
        >>> ids, scores.round(2)
        (array([['a', 'b']], dtype='<U1'), array([[1. , 0.6]], dtype=float32))
    """

    backend = "faiss-ivfpq"

    def __init__(self, dim: int, fingerprint: str | None = None, nlist: int | None = None, m: int | None = None,
                 nbits: int = DEFAULT_NBITS, nprobe: int = DEFAULT_NPROBE, refine: int = DEFAULT_REFINE,
                 seed: int = DEFAULT_SEED):
        if m is not None and (m < 1 or dim % m):
            raise ValueError(f"m must be a positive divisor of dim {dim}, got {m}")
        if (nlist is not None and nlist < 1) or not 1 <= nbits <= 16 or nprobe < 1 or refine < 1:
            raise ValueError(f"need nlist ≥ 1, 1 ≤ nbits ≤ 16, nprobe ≥ 1, refine ≥ 1; got {nlist}, {nbits}, "
                             f"{nprobe}, {refine}")
        super().__init__(dim, fingerprint)
        self.nlist, self.nbits, self.nprobe, self.refine, self.seed = nlist, int(nbits), nprobe, refine, seed
        self._requested = (nlist, int(nbits))  # what build() resolves against the catalogue's size
        self.m = m if m is not None else max(d for d in range(1, max(1, dim // 8) + 1) if dim % d == 0)
        self._chunks: list[np.ndarray] = []
        self._matrix = np.empty((0, dim), dtype=np.float32)

    def params(self) -> dict[str, Any]:
        """Saved parameters: nlist, m, nbits, nprobe, refine, seed."""
        return {"nlist": self.nlist, "m": self.m, "nbits": self.nbits, "nprobe": self.nprobe,
                "refine": self.refine, "seed": self.seed}

    def _add(self, unit_vectors: np.ndarray) -> None:
        self._chunks.append(unit_vectors)

    def _build(self) -> None:
        parts = [self._matrix, *self._chunks] if len(self._matrix) else self._chunks
        self._matrix = parts[0] if len(parts) == 1 else np.concatenate(parts)
        self._chunks = []
        n = len(self._matrix)
        # Trained once on everything there is; codes of a grown index come from a fresh training.
        nlist, nbits = self._requested
        self.nlist = min(nlist or 2 ** round(math.log2(max(1.0, math.sqrt(n)))),
                         max(1, n // _MIN_POINTS_PER_CENTROID))
        self.nbits = min(nbits, max(1, int(math.log2(n))))  # k-means needs ≥ 2^nbits points
        faiss = self._faiss
        index = faiss.IndexIVFPQ(faiss.IndexFlatL2(self.dim), self.dim, self.nlist, self.m, self.nbits)
        index.cp.seed = index.pq.cp.seed = self.seed
        # Small catalogues train sub-centroids on fewer than faiss's advised 39 points each (it would print a
        # warning per training); codes are only a candidate filter here, the re-ranking is exact.
        index.pq.cp.min_points_per_centroid = 1
        index.pq.cp.niter = _PQ_ITERATIONS
        index.pq.cp.max_points_per_centroid = _PQ_TRAIN_POINTS_PER_CENTROID
        sample = max(self.nlist, 2 ** self.nbits) * _TRAIN_POINTS_PER_CENTROID
        stride = max(1, n // sample)  # a strided sample: deterministic, spread over the whole catalogue
        index.train(np.ascontiguousarray(self._matrix[::stride]))
        self._add_to(index, self._matrix)
        self._index = index

    def _search(self, unit_queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        faiss, n = self._faiss, len(self._matrix)
        candidates = min(n, self.refine * k)
        parameters = faiss.SearchParametersIVF(nprobe=min(self.nprobe, self.nlist))
        _, rows = self._index.search(np.ascontiguousarray(unit_queries), candidates, params=parameters)
        short = (rows >= 0).sum(axis=1) < k  # the probed cells held fewer than k tracks: probe them all
        if short.any():
            every = faiss.SearchParametersIVF(nprobe=self.nlist)
            _, rows[short] = self._index.search(np.ascontiguousarray(unit_queries[short]), candidates, params=every)
        valid = rows >= 0
        # Exact cosines of the candidates, read from the (memory-mapped) float32 vectors: (q, candidates).
        vectors = np.asarray(self._matrix)[np.where(valid, rows, 0)]
        scores = np.einsum("qd,qcd->qc", unit_queries, vectors)
        scores = np.where(valid, scores, -np.inf).astype(np.float32)
        best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(rows, best, axis=1).astype(np.int64), np.take_along_axis(scores, best, axis=1)

    def _vectors(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self._matrix[rows], dtype=np.float32)

    def _write_files(self, folder: Path) -> None:
        super()._write_files(folder)
        np.save(folder / VECTORS_FILE, np.ascontiguousarray(self._matrix, dtype=np.float32), allow_pickle=False)

    def _read_files(self, folder: Path, n: int) -> None:
        index = self._read_faiss(folder, n)
        matrix = load_npy(folder / VECTORS_FILE, mmap=True, advice=REBUILD_ADVICE)
        if matrix.dtype != np.float32 or matrix.shape != (n, self.dim):
            raise DataError(folder / VECTORS_FILE, f"expected float32 vectors of shape ({n}, {self.dim}), found "
                            f"{matrix.dtype} {matrix.shape}{REBUILD_ADVICE}")
        self._index, self._matrix, self._chunks = index, matrix, []
