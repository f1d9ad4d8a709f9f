"""Vector indexes: store track embeddings, answer cosine top-k queries, save and load index folders, build them.

Modules:
    base          the :class:`VectorIndex` interface every backend implements, :class:`Hit` (a typed search
                  result) and :func:`attach_metadata`.
    exact         :class:`ExactIndex`, brute force: the reference for every approximate index.
    annoy_index   :class:`AnnoyIndex`, annoy's random-projection forest with recall-tuned defaults.
    hnsw_index    :class:`HnswIndex`, an hnswlib graph (optional extra ``ann``).
    faiss_indexes :class:`FaissHnswIndex` (faiss's HNSW) and :class:`FaissIvfPqIndex` (compressed codes in RAM,
                  float32 on disk for re-ranking) (optional extra ``ann``).
    registry      ``INDEX_BACKENDS`` (backend name → class, as in configs and ``meta.json``), ``DEFAULT_BACKEND``,
                  :func:`choose_backend` (the measured default rule), :func:`create_index`, :func:`load_index`.
    folder        the index folder format: atomic saves, ``meta.json``, the model fingerprint check.
    catalogue     per-track metadata (title, artist, tags, audio path) and its ``catalogue.tsv``.
    build         index a corpus or a folder of your own audio with a trained run (``retrieval index``).
    export        search results as an M3U playlist or a CSV table (``--m3u`` / ``--csv``).
"""

from retrieval.index.annoy_index import AnnoyIndex
from retrieval.index.base import Hit, VectorIndex, attach_metadata, l2_normalise
from retrieval.index.catalogue import CATALOGUE_COLUMNS, make_catalogue, read_catalogue, write_catalogue
from retrieval.index.exact import ExactIndex
from retrieval.index.faiss_indexes import FaissHnswIndex, FaissIvfPqIndex
from retrieval.index.hnsw_index import HnswIndex
from retrieval.index.registry import DEFAULT_BACKEND, INDEX_BACKENDS, choose_backend, create_index, load_index

__all__ = [
    "CATALOGUE_COLUMNS",
    "DEFAULT_BACKEND",
    "INDEX_BACKENDS",
    "AnnoyIndex",
    "ExactIndex",
    "FaissHnswIndex",
    "FaissIvfPqIndex",
    "HnswIndex",
    "Hit",
    "VectorIndex",
    "attach_metadata",
    "choose_backend",
    "create_index",
    "l2_normalise",
    "load_index",
    "make_catalogue",
    "read_catalogue",
    "write_catalogue",
]
