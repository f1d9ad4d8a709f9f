"""Exact (brute-force) cosine search: the reference every approximate index is measured against.

The index is one L2-normalised float32 matrix X (n, d). For a block of unit queries Q (b, d),

    S = Q Xᵀ   (b, n) cosine similarities,   top-k per row of S,

with the query block size b chosen so that S stays under ``max_block_bytes`` (b = 64 for n = 1M at 256 MiB).
Top-k uses a partial selection (``torch.topk``, O(n) per row), never a full sort of the n scores. On (64, 1M)
scores it measured ~8x faster than ``np.argpartition`` on a 2-core machine, which matters: with argpartition,
selection rather than the matmul dominated batched search. Cost per query: n·d multiply-adds plus reading
the whole matrix (4·n·d bytes) from memory.

A saved index memory-maps ``vectors.npy`` on load, so opening a large index is instant and the OS page cache
is shared between processes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from retrieval.errors import DataError
from retrieval.index.base import REBUILD_COMMAND, VectorIndex, _load_npy

__all__ = ["ExactIndex"]

VECTORS_FILE = "vectors.npy"
# Bytes of one score block S (b, n) float32 per batch of queries; bounds search memory independently of n.
DEFAULT_MAX_BLOCK_BYTES = 256 * 2**20
_FLOAT32_BYTES = 4


class ExactIndex(VectorIndex):
    """Brute-force cosine top-k over an in-memory (or memory-mapped) matrix.

    Args:
        dim: vector dimension d.
        fingerprint: fingerprint of the model that made the vectors.
        max_block_bytes: memory budget of one block of scores; queries are processed
            ``max(1, max_block_bytes // (4 n))`` at a time. Not saved: it is a property of the machine.

    Example:
        >>> import numpy as np
        >>> index = ExactIndex(dim=2)
        >>> index.add(["a", "b", "c"], np.array([[1.0, 0.0], [0.6, 0.8], [-1.0, 0.0]]))
        >>> index.build()
        >>> ids, scores = index.search(np.array([[1.0, 0.0]]), k=2)
        >>> ids, scores.round(2)
        (array([['a', 'b']], dtype='<U1'), array([[1. , 0.6]], dtype=float32))
    """

    backend = "exact"

    def __init__(
        self, dim: int, fingerprint: str | None = None, max_block_bytes: int = DEFAULT_MAX_BLOCK_BYTES
    ):
        super().__init__(dim, fingerprint)
        if max_block_bytes < 1:
            raise ValueError(f"max_block_bytes must be positive, got {max_block_bytes}")
        self.max_block_bytes = int(max_block_bytes)
        self._chunks: list[np.ndarray] = []
        self._matrix = np.empty((0, dim), dtype=np.float32)

    @property
    def vectors(self) -> np.ndarray:
        """(n, d) float32 L2-normalised matrix of the built index; row i belongs to ``ids[i]``."""
        self._require_built()
        return self._matrix

    def _add(self, unit_vectors: np.ndarray) -> None:
        self._chunks.append(unit_vectors)

    def _build(self) -> None:
        if self._chunks:
            parts = [self._matrix, *self._chunks] if len(self._matrix) else self._chunks
            self._matrix = parts[0] if len(parts) == 1 else np.concatenate(parts)  # one copy; chunks released
            self._chunks = []

    def _search(self, unit_queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        import torch  # only for its top-k selection; imported here so `import retrieval.index` stays light

        n = len(self._matrix)
        matrix = np.asarray(self._matrix)  # a plain view when the matrix is memory-mapped
        block = max(1, self.max_block_bytes // (_FLOAT32_BYTES * n))
        rows = np.empty((len(unit_queries), k), dtype=np.int64)
        scores = np.empty((len(unit_queries), k), dtype=np.float32)
        for start in range(0, len(unit_queries), block):
            similarities = unit_queries[start:start + block] @ matrix.T  # (b, n) cosines
            top = torch.topk(torch.from_numpy(similarities), k, dim=1, largest=True, sorted=True)
            scores[start:start + block] = top.values.numpy()
            rows[start:start + block] = top.indices.numpy()
        return rows, scores

    def _write_files(self, folder: Path) -> None:
        matrix = np.ascontiguousarray(self._matrix, dtype=np.float32)
        np.save(folder / VECTORS_FILE, matrix, allow_pickle=False)

    def _read_files(self, folder: Path, n: int) -> None:
        matrix = _load_npy(folder / VECTORS_FILE, mmap=True)
        if matrix.dtype != np.float32 or matrix.shape != (n, self.dim):
            raise DataError(
                folder / VECTORS_FILE,
                f"expected float32 vectors of shape ({n}, {self.dim}), found {matrix.dtype} {matrix.shape}; "
                f"rebuild the index with `{REBUILD_COMMAND}`",
            )
        self._matrix = matrix
