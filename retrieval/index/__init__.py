"""Vector indexes: store track embeddings, answer cosine top-k queries, save and load index folders.

Modules:
    base          the :class:`VectorIndex` interface, :class:`Hit`, the catalogue of track metadata,
                  the index folder format (atomic saves, model fingerprint check).
    exact         :class:`ExactIndex`, brute force: the reference for every approximate index.
    annoy_index   :class:`AnnoyIndex`, annoy's random-projection forest with recall-tuned defaults.

``INDEX_BACKENDS`` maps the backend names used in configs and ``meta.json`` to their classes.
"""

from retrieval.index.annoy_index import AnnoyIndex
from retrieval.index.base import (
    CATALOGUE_COLUMNS,
    Hit,
    VectorIndex,
    attach_metadata,
    create_index,
    l2_normalise,
    load_index,
    make_catalogue,
    read_catalogue,
    write_catalogue,
)
from retrieval.index.exact import ExactIndex

INDEX_BACKENDS: dict[str, type[VectorIndex]] = {"exact": ExactIndex, "annoy": AnnoyIndex}

__all__ = [
    "CATALOGUE_COLUMNS",
    "INDEX_BACKENDS",
    "AnnoyIndex",
    "ExactIndex",
    "Hit",
    "VectorIndex",
    "attach_metadata",
    "create_index",
    "l2_normalise",
    "load_index",
    "make_catalogue",
    "read_catalogue",
    "write_catalogue",
]
