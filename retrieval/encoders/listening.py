"""Listening factors: the cultural tower's input vectors, from implicit-feedback play counts.

Weighted ALS (Hu, Koren, Volinsky 2008, "Collaborative Filtering for Implicit Feedback Datasets") factorises
the user × item play-count matrix R into user factors X (n_users, f) and item factors Y (n_items, f) by
minimising

    Σ_{u,i} c_ui (p_ui − x_u·y_i)² + λ (Σ_u ‖x_u‖² + Σ_i ‖y_i‖²),

with preference p_ui = 1 if r_ui > 0 else 0 and confidence c_ui = 1 for unplayed pairs and, for played ones,

    "linear": c_ui = 1 + α·r_ui                 (the paper's first choice; α = 40)
    "log":    c_ui = 1 + α·log(1 + r_ui / ε)    (damps heavy repeat listeners)

The item factors y_i (200-d in the paper) are what the cultural tower reads.

The solver is ``implicit``'s conjugate-gradient ALS. ``implicit`` reads the values of the matrix it is given
as the full confidence c_ui (it adds c_ui − 1 on top of the unplayed baseline of 1), so this module builds
c_ui itself and passes ``alpha=1`` to ``implicit``: the formula above is exactly what is optimised.

Items that nobody played get no information from the data (their ALS solution is just the regularised zero):
:class:`ItemFactors` marks them with ``has_data = False`` and stores zeros for them, and callers exclude them
from the cultural model's candidates and report them.

Example:
    >>> import scipy.sparse as sp
    >>> plays = sp.random(50, 30, density=0.2, format="csr", random_state=0) * 10
    >>> factors = fit_item_factors(plays, factors=8, items=[f"S{i}" for i in range(30)], num_threads=1)
    >>> vectors, mask = factors.lookup(["S3", "unknown"])
    >>> vectors.shape, mask.tolist()
    ((2, 8), [True, False])
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from retrieval.errors import ConfigError, DataError
from retrieval.fileio import atomic_open

if TYPE_CHECKING:  # imported where used: a search loads ItemFactors and never fits anything
    import scipy.sparse

__all__ = ["Confidence", "ItemFactors", "confidence_matrix", "fit_item_factors"]

Confidence = Literal["linear", "log"]
CONFIDENCE_SCHEMES: tuple[str, ...] = ("linear", "log")
# The keys of the saved .npz file.
_NPZ_KEYS = ("vectors", "items", "has_data", "meta")


@dataclass
class ItemFactors:
    """One vector per item, with the item ids and which items had any plays.

    Attributes:
        vectors: (n_items, factors) float32; all zeros where ``has_data`` is False.
        items: (n_items,) str item ids (MSD song ids), unique.
        has_data: (n_items,) bool; False for items with no plays (their vectors are meaningless).
        meta: JSON-able description of how the factors were made (fit arguments, matrix shape), stored with
            them so a cache can be checked against the inputs that produced it.
    """

    vectors: np.ndarray
    items: np.ndarray
    has_data: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.vectors = np.ascontiguousarray(self.vectors, dtype=np.float32)
        self.items = np.asarray(self.items).astype(str)
        self.has_data = np.asarray(self.has_data, dtype=bool)
        n_items = self.items.shape[0]
        if self.vectors.ndim != 2 or self.vectors.shape[0] != n_items or self.has_data.shape != (n_items,):
            raise ValueError(
                f"ItemFactors: vectors {self.vectors.shape}, items {self.items.shape} and has_data "
                f"{self.has_data.shape} must describe the same number of items"
            )
        if len(np.unique(self.items)) != n_items:
            raise ValueError("ItemFactors: item ids must be unique")
        self._positions = None  # built on first look-up

    @property
    def factors(self) -> int:
        """The vector size f."""
        return self.vectors.shape[1]

    def __len__(self) -> int:
        return self.items.shape[0]

    def index_of(self, ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """Row of each id in ``vectors``, −1 for ids not in ``items``. Returns (n,) int64."""
        import pandas as pd  # a hash index: vectorised look-ups of many ids

        if self._positions is None:
            self._positions = pd.Index(self.items)
        return self._positions.get_indexer(np.asarray(ids, dtype=str)).astype(np.int64)

    def lookup(self, ids: Sequence[str] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vectors for ``ids`` and a mask of the ids that have meaningful ones.

        Args:
            ids: n item ids, in any order; unknown ids are allowed.

        Returns:
            ``(vectors, mask)``: (n, factors) float32 and (n,) bool. ``mask[j]`` is True when ``ids[j]`` is a
            known item with plays; elsewhere the vector is all zeros. Callers drop or report the masked-out
            ids.
        """
        rows = self.index_of(ids)
        known = rows >= 0
        mask = known.copy()
        mask[known] = self.has_data[rows[known]]
        vectors = np.zeros((len(rows), self.factors), dtype=np.float32)
        vectors[mask] = self.vectors[rows[mask]]
        return vectors, mask

    def save(self, path: str | Path) -> None:
        """Write an ``.npz`` file atomically (no pickles: ``load`` uses ``allow_pickle=False``)."""
        with atomic_open(path, "wb") as handle:
            np.savez(handle, vectors=self.vectors, items=self.items, has_data=self.has_data,
                     meta=np.array(json.dumps(self.meta, sort_keys=True)))

    @classmethod
    def load(cls, path: str | Path) -> ItemFactors:
        """Read a file written by :meth:`save`.

        Raises:
            DataError: the file is missing, not an ``.npz`` written by :meth:`save`, or inconsistent.
        """
        path = Path(path)
        if not path.is_file():
            raise DataError(path, "no such item-factors file; compute it with fit_item_factors(...)"
                            ".save(path)")
        try:
            with np.load(path, allow_pickle=False) as archive:
                arrays = {key: archive[key] for key in _NPZ_KEYS if key in archive.files}
        except (OSError, ValueError, zipfile.BadZipFile) as error:
            message = f"cannot read item factors ({error}); delete the file and recompute it"
            raise DataError(path, message) from error
        missing = [key for key in _NPZ_KEYS if key not in arrays]
        if missing:
            raise DataError(path, f"not an item-factors file: missing arrays {missing}; recompute it",
                            key=missing[0])
        try:
            meta = json.loads(str(arrays["meta"]))
            return cls(arrays["vectors"], arrays["items"], arrays["has_data"], meta=meta)
        except ValueError as error:
            raise DataError(path, f"inconsistent item-factors file: {error}; recompute it") from error


def confidence_matrix(plays: scipy.sparse.spmatrix | scipy.sparse.sparray, *, alpha: float = 40.0,
                      scheme: Confidence = "linear", epsilon: float = 1.0) -> scipy.sparse.csr_matrix:
    """Hu et al.'s confidence c_ui for the played pairs, as a float32 CSR matrix of the same shape.

    ``linear``: c = 1 + α·r; ``log``: c = 1 + α·log(1 + r/ε). Unplayed pairs stay implicit (c = 1 in the
    model). Duplicate entries are summed first; explicit zeros are dropped.

    Raises:
        ValueError: negative or non-finite play counts, or an unknown scheme.
    """
    if scheme not in CONFIDENCE_SCHEMES:
        raise ConfigError(f"confidence scheme must be one of {CONFIDENCE_SCHEMES}, got {scheme!r}")
    if alpha <= 0 or epsilon <= 0:
        raise ConfigError(f"alpha and epsilon must be positive, got alpha={alpha}, epsilon={epsilon}")
    import scipy.sparse

    counts = scipy.sparse.csr_matrix(plays, dtype=np.float32, copy=True)
    counts.sum_duplicates()
    counts.eliminate_zeros()
    if counts.nnz and (not np.isfinite(counts.data).all() or counts.data.min() < 0):
        raise ValueError("play counts must be finite and non-negative")
    boost = counts.data if scheme == "linear" else np.log1p(counts.data / epsilon)
    counts.data = (1.0 + alpha * boost).astype(np.float32)
    return counts


def fit_item_factors(
    plays: scipy.sparse.spmatrix | scipy.sparse.sparray,
    *,
    items: Sequence[str] | np.ndarray | None = None,
    factors: int = 200,
    regularization: float = 0.01,
    iterations: int = 15,
    alpha: float = 40.0,
    confidence: Confidence = "linear",
    epsilon: float = 1.0,
    seed: int = 0,
    use_gpu: bool = False,
    num_threads: int = 0,
) -> ItemFactors:
    """Weighted ALS item factors from a users × items play-count matrix.

    Args:
        plays: (n_users, n_items) sparse play counts (CSR preferred; any scipy sparse format is converted).
        items: n_items item ids in column order; default ``"0" … "n_items-1"``.
        factors: f, the vector size (200 in the paper).
        regularization: λ in the objective (see the module docstring).
        iterations: ALS sweeps (each solves users, then items).
        alpha: α, confidence growth per play.
        confidence: ``"linear"`` (1 + α·r) or ``"log"`` (1 + α·log(1 + r/ε)).
        epsilon: ε of the ``log`` scheme.
        seed: seeds the random initial factors; with the same inputs and seed the result is identical (each
            user's and item's least-squares solve is independent of thread scheduling).
        use_gpu: fit with ``implicit``'s CUDA solver (needs an ``implicit`` built with CUDA).
        num_threads: ``implicit``'s OpenMP threads; 0 = all cores. BLAS is limited to 1 thread during the fit
            (nested BLAS threads inside OpenMP threads oversubscribe the CPU and slow ALS down many times).

    Returns:
        :class:`ItemFactors` with ``vectors`` (n_items, f) float32, zeros and ``has_data = False`` for
        unplayed items.

    Raises:
        ConfigError: bad hyper-parameters, or ``use_gpu`` without a CUDA build of ``implicit``.
        ValueError: ``plays`` is not a 2-D sparse matrix of finite non-negative counts, or ``items`` has the
            wrong length.
    """
    import scipy.sparse
    from implicit.als import AlternatingLeastSquares  # heavy import: only when fitting
    from threadpoolctl import threadpool_limits

    if not scipy.sparse.issparse(plays) or plays.ndim != 2:
        raise ValueError(f"plays must be a 2-D scipy sparse users × items matrix, got {type(plays).__name__}")
    n_users, n_items = plays.shape
    if items is None:
        items = np.arange(n_items).astype(str)
    if len(items) != n_items:
        raise ValueError(f"items has {len(items)} ids but plays has {n_items} item columns")
    if factors < 1 or iterations < 1 or regularization < 0:
        raise ConfigError(f"need factors ≥ 1, iterations ≥ 1, regularization ≥ 0; got {factors}, "
                          f"{iterations}, {regularization}")
    if use_gpu:
        import implicit.gpu

        if not implicit.gpu.HAS_CUDA:
            raise ConfigError("use_gpu=True but the installed implicit has no CUDA support; "
                              "use use_gpu=False")

    conf = confidence_matrix(plays, alpha=alpha, scheme=confidence, epsilon=epsilon)
    has_data = np.bincount(conf.indices, minlength=n_items) > 0
    with threadpool_limits(limits=1, user_api="blas"):
        # alpha=1: conf already holds the full confidence c_ui (see the module docstring).
        model = AlternatingLeastSquares(factors=factors, regularization=regularization, alpha=1.0,
                                        iterations=iterations, use_gpu=use_gpu, num_threads=num_threads,
                                        random_state=seed)
        model.fit(conf, show_progress=False)
    if use_gpu:
        model = model.to_cpu()
    vectors = np.array(model.item_factors, dtype=np.float32)
    vectors[~has_data] = 0.0  # implicit's CPU solver already returns 0 there; make it hold for any solver
    meta = {"method": "implicit-als", "n_users": int(n_users), "n_items": int(n_items), "nnz": int(conf.nnz),
            "factors": factors, "regularization": regularization, "iterations": iterations, "alpha": alpha,
            "confidence": confidence, "epsilon": epsilon, "seed": seed}
    return ItemFactors(vectors=vectors, items=np.asarray(items), has_data=has_data, meta=meta)
