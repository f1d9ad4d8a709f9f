"""The index backends by name, the default one, and the two calls that pick a backend by name.

``INDEX_BACKENDS`` maps the names used in configs, on the command line (``retrieval index --backend``) and in
``meta.json`` to their classes; :data:`DEFAULT_BACKEND` is what every indexer uses unless told otherwise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retrieval.errors import ConfigError, DataError
from retrieval.index.annoy_index import AnnoyIndex
from retrieval.index.base import VectorIndex
from retrieval.index.exact import ExactIndex
from retrieval.index.folder import META_FILE, read_meta

__all__ = ["DEFAULT_BACKEND", "INDEX_BACKENDS", "create_index", "load_index"]

INDEX_BACKENDS: dict[str, type[VectorIndex]] = {"exact": ExactIndex, "annoy": AnnoyIndex}
#: The backend of ``retrieval index`` and of :func:`retrieval.index.build.index_corpus` / ``index_folder``.
DEFAULT_BACKEND = "annoy"


def create_index(backend: str, dim: int, fingerprint: str | None = None, **params: Any) -> VectorIndex:
    """A new, empty index of the named backend.

    Args:
        backend: a key of :data:`retrieval.index.INDEX_BACKENDS` ("exact", "annoy").
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
