"""Approximate cosine search with annoy (a forest of random-projection trees), tuned for recall@10 ≥ 0.95.

annoy's "angular" metric is the Euclidean distance between the normalised vectors,

    d(q, x) = ‖q/‖q‖ − x/‖x‖‖ = sqrt(2 − 2 cos(q, x)),   hence   cos(q, x) = 1 − d² / 2,

which is how the scores returned here are made cosine similarities.

A query descends all ``n_trees`` trees at once, best-first by margin, collecting the items of the leaves it
reaches until it holds ``search_k`` candidates; the candidates are then ranked by their exact distance.
Recall is therefore set by ``search_k`` (search cost ≈ search_k · d multiply-adds plus memory reads) and,
much less, by ``n_trees`` (more trees spread the candidates over more independent partitions, at the price
of index size and build time). annoy's own default, search_k = n_trees · k, gives recall@10 between 0.3 and
0.8 depending on the data: too low for music search.

The defaults were tuned with ``benchmarks/search_latency.py`` on generated catalogues: a two-level Gaussian
mixture whose within-style spread has a power-law spectrum λ_i ∝ i^(−alpha). alpha = 1 gives an effective
dimension (Σλ)² / Σλ² ≈ 23 of 256, like learned embeddings; alpha = 0.5 gives ≈ 150, a pessimistic case.
recall@10 against :class:`~retrieval.index.exact.ExactIndex`, 200 held-out queries, 2-core machine:

    catalogue                        n_trees   search_k: 5k     10k     20k     40k
    1M × 256, alpha 1                     20             0.924   0.964   0.985   0.998
    1M × 256, alpha 1                     50             0.944   0.976   0.993   0.999
    1M × 256, alpha 0.5 (pessimistic)     20             0.742   0.820   0.903   0.955
    1M × 256, alpha 0.5 (pessimistic)     50               –       –     0.893   0.950
    100k × 256, alpha 1                   10             0.980   0.995   1.000     –

search_k decides recall; more trees barely help at a fixed search_k (50 trees: 1.3× the index size and 2.5×
the build time for ≤ +0.01). At 1M × 256 the default search_k = 20k costs ~2.5 ms per query on one core,
~19× faster than exact search (which reads the whole 1 GiB matrix per query), and ~4.6 ms at 40k (~10×).
If your embeddings have a high effective dimension, measure recall with the benchmark and raise search_k
(40k restores ≥ 0.95 in the pessimistic case). When search_k ≥ n every item would be a candidate, so the
search skips the trees and is one exact matrix product over the items (faster, and no recall lost).

Builds are seeded (annoy's ``set_seed``) and use all cores (``n_jobs = -1``); with several threads the forest
depends on the thread count, so the same seed gives the same index on the same machine. The saved ``.ann``
file is memory-mapped on load.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from retrieval.errors import DataError
from retrieval.index.base import VectorIndex, import_optional
from retrieval.index.exact import top_k
from retrieval.index.folder import REBUILD_COMMAND

__all__ = ["AnnoyIndex", "angular_to_cosine"]

ANN_FILE = "index.ann"
METRIC = "angular"
DEFAULT_N_TREES = 20
DEFAULT_SEARCH_K = 20_000
DEFAULT_SEED = 0
# Rows converted to Python lists at a time when feeding annoy (bounds the memory of the conversion).
_ADD_CHUNK_ROWS = 10_000


def angular_to_cosine(distances: np.ndarray) -> np.ndarray:
    """Cosine similarity from annoy's angular distance: cos = 1 − d² / 2 (d in [0, 2])."""
    distances = np.asarray(distances, dtype=np.float32)
    return 1.0 - distances * distances / 2.0


class AnnoyIndex(VectorIndex):
    """Approximate cosine top-k with annoy.

    Args:
        dim: vector dimension d.
        fingerprint: fingerprint of the model that made the vectors.
        n_trees: trees in the forest (more: better recall per candidate, bigger index, slower build).
        search_k: candidates ranked exactly per query (more: better recall, slower queries). At least
            n_trees · k is always used, which guarantees k results.
        seed: seed of the random projections.
        n_jobs: threads for building and for batched queries; -1 uses every core. Not saved.

    Example:
        >>> import numpy as np
        >>> index = AnnoyIndex(dim=2, n_trees=2)
        >>> index.add(["a", "b", "c"], np.array([[1.0, 0.0], [0.6, 0.8], [-1.0, 0.0]]))
        >>> index.build()
        >>> ids, scores = index.search(np.array([1.0, 0.0]), k=2)
        >>> ids, scores.round(2)
        (array([['a', 'b']], dtype='<U1'), array([[1. , 0.6]], dtype=float32))
    """

    backend = "annoy"

    def __init__(
        self,
        dim: int,
        fingerprint: str | None = None,
        n_trees: int = DEFAULT_N_TREES,
        search_k: int = DEFAULT_SEARCH_K,
        seed: int = DEFAULT_SEED,
        n_jobs: int = -1,
    ):
        super().__init__(dim, fingerprint)
        if n_trees < 1 or search_k < 1:
            raise ValueError(f"n_trees and search_k must be positive, got {n_trees} and {search_k}")
        if n_jobs == 0 or n_jobs < -1:
            raise ValueError(f"n_jobs must be -1 (all cores) or a positive count, got {n_jobs}")
        self.n_trees = int(n_trees)
        self.search_k = int(search_k)
        self.seed = int(seed)
        self.n_jobs = int(n_jobs)
        self._module = import_optional("annoy", "the 'annoy' index backend", extra="")
        self._annoy = self._module.AnnoyIndex(dim, METRIC)
        self._annoy.set_seed(self.seed)
        self._frozen = False  # annoy cannot add items once its trees are built

    def params(self) -> dict[str, int]:
        """Saved parameters: n_trees, search_k, seed."""
        return {"n_trees": self.n_trees, "search_k": self.search_k, "seed": self.seed}

    def _add(self, unit_vectors: np.ndarray) -> None:
        if self._frozen:
            raise RuntimeError("an annoy index cannot grow after build(); build a new one with all vectors")
        first = self._annoy.get_n_items()
        # annoy has no bulk insert: one call per item, fed from Python lists (much faster than numpy rows).
        for start in range(0, len(unit_vectors), _ADD_CHUNK_ROWS):
            for offset, row in enumerate(unit_vectors[start:start + _ADD_CHUNK_ROWS].tolist()):
                self._annoy.add_item(first + start + offset, row)

    def _build(self) -> None:
        self._annoy.build(self.n_trees, n_jobs=self.n_jobs)
        self._frozen = True

    def _search(self, unit_queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        search_k = max(self.search_k, k * self.n_trees)
        if search_k >= len(self._ids):
            # Every item would be a candidate: one matrix product over the items is exact and faster than the
            # trees (2,000 items, search_k 20k: 0.05 ms instead of ~1 ms per query; benchmarks/RESULTS.md).
            scores = unit_queries.astype(np.float32) @ self._dense().T
            return top_k(scores, k)

        def one(query: list[float]) -> tuple[list[int], list[float]]:
            return self._annoy.get_nns_by_vector(query, k, search_k=search_k, include_distances=True)

        queries = unit_queries.tolist()
        threads = (os.cpu_count() or 1) if self.n_jobs == -1 else self.n_jobs
        if len(queries) > 1 and threads > 1:
            with ThreadPoolExecutor(max_workers=threads) as pool:  # annoy releases the GIL while searching
                results = list(pool.map(one, queries))
        else:
            results = [one(query) for query in queries]
        if any(len(items) != k for items, _ in results):
            # Cannot happen: ≥ n_trees·k candidates always contain ≥ k distinct items when k ≤ n.
            raise RuntimeError(f"annoy returned fewer than {k} results; the index file may be damaged")
        rows = np.array([items for items, _ in results], dtype=np.int64).reshape(len(queries), k)
        distances = np.array([dists for _, dists in results], dtype=np.float32).reshape(len(queries), k)
        return rows, angular_to_cosine(distances)

    def _vectors(self, rows: np.ndarray) -> np.ndarray:
        return np.array([self._annoy.get_item_vector(int(row)) for row in rows], dtype=np.float32)

    def _dense(self) -> np.ndarray:
        """All items as one (n, d) float32 matrix, read from annoy once (only used while n ≤ search_k)."""
        if getattr(self, "_dense_vectors", None) is None or len(self._dense_vectors) != len(self._ids):
            self._dense_vectors = self._vectors(np.arange(len(self._ids)))
        return self._dense_vectors

    def _write_files(self, folder: Path) -> None:
        # annoy writes the file, then memory-maps it in place of its in-memory copy.
        self._annoy.save(str(folder / ANN_FILE))

    def _read_files(self, folder: Path, n: int) -> None:
        path = folder / ANN_FILE
        if not path.is_file():
            raise DataError(path, f"missing annoy file; rebuild the index with `{REBUILD_COMMAND}`")
        index = self._module.AnnoyIndex(self.dim, METRIC)
        try:
            index.load(str(path))
        except OSError as error:
            message = f"cannot load ({error}); rebuild the index with `{REBUILD_COMMAND}`"
            raise DataError(path, message) from error
        # Only the item count is checked: after load, annoy infers its roots from the file, and for small
        # indexes get_n_trees() then reports more trees than were built (e.g. 39 for 20 with 6 items).
        if index.get_n_items() != n:
            raise DataError(
                path,
                f"holds {index.get_n_items()} items but meta.json says {n}; rebuild the index with "
                f"`{REBUILD_COMMAND}`",
            )
        self._annoy, self._frozen = index, True
