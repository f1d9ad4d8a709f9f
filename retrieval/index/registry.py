"""The index backends by name, the default one, and the two calls that pick a backend by name.

``INDEX_BACKENDS`` maps the names used in configs, on the command line (``retrieval index --backend``) and in
``meta.json`` to their classes. hnswlib and faiss are the optional extra ``ann`` (``pip install
'retrieval[ann]'``; ``make install`` installs it); their classes import them only when an index is made.

:data:`DEFAULT_BACKEND` is ``"auto"``: every indexer resolves it with :func:`choose_backend` once it knows the
catalogue's size (exact below 10,000 tracks, else faiss-ivfpq; measured, see there).
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

from retrieval.errors import ConfigError, DataError
from retrieval.index.annoy_index import AnnoyIndex
from retrieval.index.base import VectorIndex
from retrieval.index.exact import ExactIndex
from retrieval.index.faiss_indexes import FaissHnswIndex, FaissIvfPqIndex
from retrieval.index.folder import META_FILE, read_meta
from retrieval.index.hnsw_index import HnswIndex

log = logging.getLogger(__name__)

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
EXACT_BELOW = 10_000
#: The approximate backend of larger catalogues (when faiss is installed; else :data:`FALLBACK_APPROXIMATE`).
APPROXIMATE_DEFAULT = "faiss-ivfpq"
#: The approximate default without the optional extra ``ann``: annoy is a core dependency.
FALLBACK_APPROXIMATE = "annoy"


def choose_backend(n: int) -> str:
    """The default backend for a catalogue of ``n`` tracks: exact below :data:`EXACT_BELOW`, else faiss-ivfpq
    (annoy, with a warning, when faiss is not installed).

    The evidence: ``benchmarks/search_latency.py --n 1000000`` (1M × 256 clustered catalogue, 200 single
    queries on one thread; one run, 2 cores shared at a load average of 7–14, so builds are pessimistic;
    ``benchmarks/RESULTS.md``), fastest p50 / p99 setting of each backend:

        backend        build s   MiB on disk   recall ≥ 0.95                 recall ≥ 0.99
        exact             27        1007        255 / 569 ms (recall 1)        255 / 569 ms
        annoy            238        1281        2.09 / 11.5 (search_k 10k)     21.3 / 46.9 (search_k 40k)
        hnswlib         1979        1149        0.74 / 17.0 (ef 128)           9.15 / 19.7 (ef 512; ef 256: 0.989, 1.39)
        faiss-hnsw      1081        1145        1.03 / 5.18 (ef 256)           not reached (0.986 at ef 512)
        faiss-ivfpq       48        1046        0.98 / 9.10 (refine 40, np 16) 2.02 / 10.0 (refine 40, nprobe 32)

    faiss-ivfpq is the fastest at recall ≥ 0.99, within 0.25 ms of hnswlib at ≥ 0.95, builds 20–40× faster than
    either graph, and keeps 40 bytes per track in RAM (the float32 vectors stay on disk, memory-mapped, for its
    exact re-ranking). Exact search reads the whole matrix per query: one thread, 10k tracks 1.31 ms, 30k 16.3
    ms, 100k 45.8 ms, 1M 375 ms; it is faster than faiss-ivfpq's 1M latency (2.02 ms at ≥ 0.99) up to ~11k tracks
    (linear between 10k and 30k), and below that it also needs no build and has recall 1. An approximate
    index's latency at 1M bounds it from above at every smaller n, so the rule favours exact where it is unsure.
    """
    if n < 1:
        raise ValueError(f"a catalogue needs at least one track, got n = {n}")
    if n < EXACT_BELOW:
        return "exact"
    if importlib.util.find_spec("faiss") is None:
        log.warning("faiss is not installed: indexing %d tracks with %s; pip install 'retrieval[ann]' for %s "
                    "(faster to build and search)", n, FALLBACK_APPROXIMATE, APPROXIMATE_DEFAULT)
        return FALLBACK_APPROXIMATE
    return APPROXIMATE_DEFAULT


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
