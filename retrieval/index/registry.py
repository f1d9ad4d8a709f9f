"""The index backends by name, the default one, and the two calls that pick a backend by name.

``INDEX_BACKENDS`` maps the names used in configs, on the command line (``retrieval index --backend``) and in
``meta.json`` to their classes. hnswlib and faiss are the optional extra ``ann`` (``pip install
'retrieval[ann]'``; ``make install`` installs it); their classes import them only when an index is made.

:data:`DEFAULT_BACKEND` is ``"auto"``: every indexer resolves it with :func:`choose_backend` once it knows the
catalogue's size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retrieval.errors import ConfigError, DataError
from retrieval.index.annoy_index import AnnoyIndex
from retrieval.index.base import VectorIndex
from retrieval.index.exact import ExactIndex
from retrieval.index.faiss_indexes import FaissHnswIndex, FaissIvfPqIndex
from retrieval.index.folder import META_FILE, read_meta
from retrieval.index.hnsw_index import HnswIndex

__all__ = ["AUTO", "DEFAULT_BACKEND", "INDEX_BACKENDS", "choose_backend", "create_index", "load_index",
           "resolve_backend"]

INDEX_BACKENDS: dict[str, type[VectorIndex]] = {
    "exact": ExactIndex,
    "annoy": AnnoyIndex,
    "hnswlib": HnswIndex,
    "faiss-hnsw": FaissHnswIndex,
    "faiss-ivfpq": FaissIvfPqIndex,
}
AUTO = "auto"
#: The backend of ``retrieval index`` and of :func:`retrieval.index.build.index_corpus` / ``index_folder``.
DEFAULT_BACKEND = AUTO
#: Catalogues smaller than this are searched exactly by default (see :func:`choose_backend`).
EXACT_BELOW = 50_000
#: The approximate backend of larger catalogues.
APPROXIMATE_DEFAULT = "hnswlib"


def choose_backend(n: int) -> str:
    """The default backend for a catalogue of ``n`` tracks: exact below :data:`EXACT_BELOW`, else hnswlib.

    The evidence (``benchmarks/search_latency.py``, one query thread, d = 256; ``benchmarks/RESULTS.md``):
    FIGURES. Exact search costs one pass over the n · d matrix per query, so its latency grows linearly with n,
    while a graph search grows about as log n; the graph's latency at 1M bounds it from above at every smaller n,
    so the crossover is where exact's latency reaches the graph's at 1M. Below it, exact is at least as fast,
    needs no build and has recall 1.
    """
    if n < 1:
        raise ValueError(f"a catalogue needs at least one track, got n = {n}")
    return "exact" if n < EXACT_BELOW else APPROXIMATE_DEFAULT


def resolve_backend(backend: str, n: int) -> str:
    """``backend``, or for ``"auto"`` the measured default for ``n`` tracks (:func:`choose_backend`)."""
    return choose_backend(n) if backend == AUTO else backend


def create_index(backend: str, dim: int, fingerprint: str | None = None, **params: Any) -> VectorIndex:
    """A new, empty index of the named backend.

    Args:
        backend: a key of :data:`retrieval.index.INDEX_BACKENDS` ("exact", "annoy", "hnswlib", ...); for
            ``"auto"``, resolve it first with :func:`choose_backend`.
        dim: vector dimension.
        fingerprint: fingerprint of the model whose embeddings go in.
        **params: backend parameters (e.g. ``n_trees`` and ``search_k`` for annoy).

    Raises:
        ConfigError: unknown backend; the message lists the valid ones.
    """
    return _backend_class(backend, "backend")(dim=dim, fingerprint=fingerprint, **params)


def load_index(folder: str | Path, expected_fingerprint: str | None = None) -> VectorIndex:
    """Load an index folder of any backend (read from its ``meta.json``); see :meth:`VectorIndex.load`."""
    backend = read_meta(Path(folder))["backend"]
    try:
        backend_class = _backend_class(backend, "backend")
    except ConfigError as error:
        raise DataError(Path(folder) / META_FILE, str(error), key="backend") from error
    return backend_class.load(folder, expected_fingerprint=expected_fingerprint)


def _backend_class(name: str, key: str) -> type[VectorIndex]:
    if name not in INDEX_BACKENDS:
        raise ConfigError(f"{key}: unknown index backend {name!r}; valid: {sorted(INDEX_BACKENDS)}")
    return INDEX_BACKENDS[name]
