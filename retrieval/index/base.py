"""The vector index interface and its typed search results.

Every index stores L2-normalised float32 vectors under string track ids and answers cosine top-k queries:

    score(q, x) = cos(q, x) = q·x / (‖q‖ ‖x‖),   results sorted by score, best first.

:class:`VectorIndex` holds what all backends share (id bookkeeping, input checks, saving and loading through
:mod:`retrieval.index.folder`); a backend implements six small hooks (``_add``, ``_build``, ``_search``,
``_vectors``, ``_write_files``, ``_read_files``). :mod:`retrieval.index.exact` is the brute-force reference;
:mod:`retrieval.index.annoy_index` is the approximate one, and its recall is measured against the reference.
:func:`attach_metadata` turns search arrays into :class:`Hit` lists with the catalogue's metadata
(:mod:`retrieval.index.catalogue`).

Example:
    >>> import numpy as np
    >>> from retrieval.index import ExactIndex
    >>> index = ExactIndex(dim=3, fingerprint="model-a")
    >>> index.add(["t1", "t2"], np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    >>> index.build()
    >>> ids, scores = index.search(np.array([1.0, 0.1, 0.0]), k=1)
    >>> ids, scores.round(3)
    (array([['t1']], dtype='<U2'), array([[0.995]], dtype=float32))
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import pandas as pd

from retrieval.errors import UnknownIdError
from retrieval.index import folder as folder_format
from retrieval.index.catalogue import make_catalogue_from_frame, tag_tuple, text_or_none
from retrieval.vectors import unit_rows

__all__ = ["Hit", "VectorIndex", "attach_metadata", "import_optional", "l2_normalise"]

# Norms below this are treated as zero: such a vector has no direction, hence no cosine.
_MIN_NORM = 1e-12
# How many offending ids an error message lists.
_SHOW = 5

IndexT = TypeVar("IndexT", bound="VectorIndex")


@dataclass(frozen=True)
class Hit:
    """One search result.

    Attributes:
        track_id: the catalogue id of the track.
        score: cosine similarity to the query in [-1, 1]; higher is better.
        title, artist, tags, audio_path, album, genre, year: catalogue metadata, when the index has a catalogue.
    """

    track_id: str
    score: float
    title: str | None = None
    artist: str | None = None
    tags: tuple[str, ...] = ()
    audio_path: str | None = None
    album: str | None = None
    genre: str | None = None
    year: str | None = None

    def __str__(self) -> str:
        """E.g. ``0.873  Miles Davis – So What · Kind of Blue (1959) · Jazz  [jazz, cool jazz]  (TRK0001)``."""
        name = " – ".join(part for part in (self.artist, self.title) if part) or self.track_id
        text = f"{self.score:.3f}  {name}"
        album = " ".join(part for part in (self.album, f"({self.year})" if self.year else None) if part)
        for part in (album, self.genre):
            if part:
                text += f" · {part}"
        if self.tags:
            text += f"  [{', '.join(self.tags)}]"
        if name != self.track_id:
            text += f"  ({self.track_id})"
        return text


def l2_normalise(vectors: np.ndarray, what: str = "vectors") -> np.ndarray:
    """Rows scaled to unit L2 norm, as float32: x / ‖x‖.

    Args:
        vectors: (n, d) real array.
        what: how error messages name the rows ("vectors", "queries").

    Returns:
        (n, d) float32 array (a new array).

    Raises:
        ValueError: a row holds NaN/inf or is all zeros (it has no direction); the message gives its row.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    finite = np.isfinite(vectors).all(axis=1)
    if not finite.all():
        rows = np.flatnonzero(~finite)[:_SHOW].tolist()
        raise ValueError(f"{what} rows {rows} contain NaN or inf; fix the encoder output before indexing")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if (norms < _MIN_NORM).any():
        rows = np.flatnonzero(norms[:, 0] < _MIN_NORM)[:_SHOW].tolist()
        raise ValueError(f"{what} rows {rows} are all zeros: a zero vector has no cosine similarity")
    return unit_rows(vectors, _MIN_NORM)  # every norm is at least _MIN_NORM here: exactly vectors / norms


def import_optional(module: str, what: str, extra: str = "ann") -> Any:
    """Import the library behind an optional part of the package, or say which extra installs it.

    Args:
        module: the module to import ("faiss", "hnswlib", "ray.data").
        what: the part that needs it, for the message ("the 'faiss-hnsw' index backend").
        extra: the optional dependency group of ``pyproject.toml`` that installs it ("": a core dependency,
            imported late only so that the paths which never use it run without it).

    Raises:
        ImportError: the module is not installed; the message names ``pip install 'retrieval[EXTRA]'``.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        package = f"'retrieval[{extra}]'" if extra else module.split(".")[0]
        raise ImportError(f"{what} needs {module}: pip install {package} (or `make install`)") from error


class VectorIndex(ABC):
    """Cosine top-k search over string-keyed vectors; the interface every backend implements.

    Life cycle: ``add`` (any number of times) → ``build`` → ``search`` / ``save``; or ``load`` → ``search``.

    Args:
        dim: vector dimension d.
        fingerprint: fingerprint of the model whose embeddings are indexed; saved, and checked on load.

    Attributes:
        backend: the backend's name in :data:`retrieval.index.INDEX_BACKENDS` and in ``meta.json``.
        fingerprint: fingerprint of the model that made the vectors (None when unknown).
        catalogue: per-track metadata (see :func:`make_catalogue`) used by :meth:`search_hits`, or None.
    """

    backend: ClassVar[str]

    def __init__(self, dim: int, fingerprint: str | None = None):
        if int(dim) < 1:
            raise ValueError(f"dim must be a positive integer, got {dim}")
        self._dim = int(dim)
        self.fingerprint = fingerprint
        self.catalogue: pd.DataFrame | None = None
        self._id_chunks: list[np.ndarray] = []
        self._ids = np.empty(0, dtype=str)
        self._built = False

    # ------------------------------------------------------------------ hooks a backend implements
    @abstractmethod
    def _add(self, unit_vectors: np.ndarray) -> None:
        """Append (m, d) L2-normalised float32 rows (their ids are kept by the base class)."""

    @abstractmethod
    def _build(self) -> None:
        """Make the added rows searchable."""

    @abstractmethod
    def _search(self, unit_queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (rows (q, k) int64, scores (q, k) float32) for (q, d) unit queries, 1 ≤ k ≤ len(self)."""

    @abstractmethod
    def _vectors(self, rows: np.ndarray) -> np.ndarray:
        """The stored unit vectors of ``rows`` → (len(rows), d) float32."""

    @abstractmethod
    def _write_files(self, folder: Path) -> None:
        """Write the backend's files into ``folder`` (a fresh temporary folder)."""

    @abstractmethod
    def _read_files(self, folder: Path, n: int) -> None:
        """Read the backend's files of an index with ``n`` vectors from ``folder``; raise DataError if bad."""

    def params(self) -> dict[str, Any]:
        """Constructor arguments (not dim, fingerprint): ``meta.json`` records them, ``load`` passes them."""
        return {}

    # ------------------------------------------------------------------ shared behaviour
    @property
    def dim(self) -> int:
        """Vector dimension d."""
        return self._dim

    @property
    def ids(self) -> np.ndarray:
        """(n,) unicode array of the built index's track ids; row i of the index is ``ids[i]``."""
        self._require_built()
        return self._ids

    def __len__(self) -> int:
        """Number of vectors added so far (built or not)."""
        return len(self._ids) + sum(len(chunk) for chunk in self._id_chunks)

    def __repr__(self) -> str:
        params = ", ".join(f"{key}={value!r}" for key, value in self.params().items())
        return f"{type(self).__name__}(dim={self.dim}, n={len(self)}{', ' if params else ''}{params})"

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Add vectors under track ids (they are L2-normalised here).

        Args:
            ids: m distinct, non-empty track ids.
            vectors: (m, d) real array; no zero rows, no NaN/inf.

        Raises:
            ValueError: wrong shape or dimension, ids/rows count mismatch, empty ids, bad rows.
        """
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"vectors must have shape (m, {self.dim}) for this index, got {vectors.shape}")
        ids_array = np.asarray(ids, dtype=str).reshape(-1)
        if len(ids_array) != len(vectors):
            raise ValueError(f"got {len(ids_array)} ids for {len(vectors)} vectors; pass one id per row")
        if (ids_array == "").any():
            rows = np.flatnonzero(ids_array == "")[:_SHOW].tolist()
            raise ValueError(f"ids at rows {rows} are empty strings; every vector needs a track id")
        self._add(l2_normalise(vectors))
        self._id_chunks.append(ids_array)
        self._built = False

    def build(self) -> None:
        """Make everything added so far searchable.

        Raises:
            ValueError: nothing was added, or a track id was added twice.
        """
        ids = np.concatenate([self._ids, *self._id_chunks]) if self._id_chunks else self._ids
        if len(ids) == 0:
            raise ValueError("the index is empty: add(ids, vectors) before build()")
        unique, counts = np.unique(ids, return_counts=True)
        if len(unique) != len(ids):
            duplicates = unique[counts > 1][:_SHOW].tolist()
            raise ValueError(f"duplicate track ids, e.g. {duplicates}; each track id must be added once")
        self._build()
        self._ids, self._id_chunks, self._built = ids, [], True

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest vectors of each query by cosine similarity.

        Args:
            queries: (q, d) or (d,) real array (a 1-D query is treated as q = 1); normalised here.
            k: results per query; values above ``len(self)`` return all ``len(self)`` vectors.

        Returns:
            ids: (q, min(k, n)) unicode track ids, best first.
            scores: (q, min(k, n)) float32 cosine similarities, non-increasing along each row.

        Raises:
            ValueError: wrong dimension, k < 1, a zero or non-finite query.
            RuntimeError: the index is not built.
        """
        self._require_built()
        queries = np.asarray(queries)
        if queries.ndim == 1:
            queries = queries[None, :]
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(
                f"queries must have shape (q, {self.dim}) or ({self.dim},) for this index, got "
                f"{queries.shape}; was the index built with another model?"
            )
        if int(k) < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        rows, scores = self._search(l2_normalise(queries, "queries"), min(int(k), len(self._ids)))
        return self._ids[rows], scores

    def vectors_of(self, ids: Sequence[str]) -> np.ndarray:
        """The stored (unit) vectors of indexed track ids → (len(ids), d) float32.

        Raises:
            UnknownIdError: an id is not in the index (named; a KeyError).
        """
        self._require_built()
        if getattr(self, "_row_of", None) is None or len(self._row_of) != len(self._ids):
            self._row_of = {track_id: row for row, track_id in enumerate(self._ids.tolist())}
        missing = [track_id for track_id in ids if track_id not in self._row_of]
        if missing:
            raise UnknownIdError(f"track ids not in this index: {missing[:_SHOW]}")
        return self._vectors(np.array([self._row_of[track_id] for track_id in ids], dtype=np.int64))

    def search_hits(self, queries: np.ndarray, k: int) -> list[list[Hit]]:
        """Like :meth:`search`, returning one list of :class:`Hit` per query with the catalogue's metadata."""
        ids, scores = self.search(queries, k)
        if self.catalogue is None:
            return attach_metadata(ids, scores, None)
        if getattr(self, "_hit_table", None) is None or self._hit_table.catalogue is not self.catalogue:
            self._hit_table = HitTable(self.catalogue)
        return attach_metadata(ids, scores, self._hit_table)

    def neighbours(self, track_id: str, k: int) -> list[Hit]:
        """The ``k`` indexed tracks nearest to the indexed track ``track_id``, itself excluded, with metadata.

        Raises:
            UnknownIdError: ``track_id`` is not in the index.
        """
        hits = self.search_hits(self.vectors_of([track_id]), k + 1)[0]
        return [hit for hit in hits if hit.track_id != track_id][:k]

    def save(self, folder: str | Path, catalogue: pd.DataFrame | None = None,
             extra: dict[str, bytes] | None = None) -> Path:
        """Write the index to ``folder`` atomically (replacing an older index there only once complete).

        The folder format is :mod:`retrieval.index.folder`'s.

        Args:
            folder: destination folder; if it exists it must hold an index (or be empty).
            catalogue: metadata for the indexed tracks (see :func:`make_catalogue`); defaults to
                ``self.catalogue``. Every indexed id must have a row. It becomes ``self.catalogue``.
            extra: more files of the folder (name → bytes, e.g. ``model.json``), written inside the same atomic
                swap, so the folder never holds vectors without them.

        Returns:
            The folder.

        Raises:
            RuntimeError: the index is not built.
            ValueError: the catalogue misses indexed ids.
            DataError: ``folder`` exists and is a non-empty folder without an index (it is left alone).
        """
        self._require_built()
        catalogue = self.catalogue if catalogue is None else make_catalogue_from_frame(catalogue)
        folder_format.write_index(self, Path(folder), catalogue, extra)
        self.catalogue = catalogue
        return Path(folder)

    @classmethod
    def load(cls: type[IndexT], folder: str | Path, expected_fingerprint: str | None = None) -> IndexT:
        """Load an index saved by :meth:`save`.

        Args:
            folder: the index folder.
            expected_fingerprint: fingerprint of the model that will encode queries; an index made by
                another model is refused. None skips the check.

        Raises:
            DataError: missing or malformed files, another backend, or a fingerprint mismatch (the message
                names both fingerprints and the command that rebuilds the index).
        """
        return folder_format.read_index(cls, Path(folder), expected_fingerprint)

    def _restore(self, ids: np.ndarray, catalogue: pd.DataFrame | None) -> None:
        """Mark a loaded index built with its saved ids and catalogue (its backend files are already read)."""
        self._ids, self._built, self.catalogue = ids, True, catalogue

    def _require_built(self) -> None:
        if not self._built:
            raise RuntimeError(f"{type(self).__name__} is not built: call build() after add()")


def attach_metadata(ids: np.ndarray, scores: np.ndarray,
                    catalogue: pd.DataFrame | HitTable | None) -> list[list[Hit]]:
    """Turn search arrays into lists of :class:`Hit` with the catalogue's metadata.

    Args:
        ids: (q, k) track ids, best first (as returned by :meth:`VectorIndex.search`).
        scores: (q, k) cosine similarities.
        catalogue: table from :func:`make_catalogue` / :func:`read_catalogue` (or its :class:`HitTable`, which
            a warm index keeps), or None for bare hits. Ids absent from it get no metadata.

    Returns:
        q lists of k hits, in the order of ``ids``.
    """
    ids, scores = np.asarray(ids), np.asarray(scores)
    if ids.shape != scores.shape or ids.ndim != 2:
        raise ValueError(f"ids and scores must both be (q, k); got {ids.shape} and {scores.shape}")
    flat_ids = ids.reshape(-1).astype(str).tolist()  # plain str / float, so hits print as Python values
    flat_scores = scores.reshape(-1).astype(float).tolist()
    if catalogue is None:
        hits = [Hit(track_id, score) for track_id, score in zip(flat_ids, flat_scores, strict=True)]
    else:
        table = catalogue if isinstance(catalogue, HitTable) else HitTable(catalogue)
        hits = table.hits(flat_ids, flat_scores)
    k = ids.shape[1]
    return [hits[row * k:(row + 1) * k] for row in range(ids.shape[0])]


class HitTable:
    """The catalogue columns a :class:`Hit` shows, as object arrays beside the catalogue's id index: made once
    per catalogue, so a search looks up only its q·k rows (the catalogue may have millions) instead of
    re-slicing the frame (which cost ~0.9 ms of a 10 ms warm search).

    Args:
        catalogue: table from :func:`make_catalogue` / :func:`read_catalogue` (track ids as index or column).
    """

    COLUMNS = ("title", "artist", "tags", "audio_path", "album", "genre", "year")

    def __init__(self, catalogue: pd.DataFrame):
        table = catalogue if "track_id" not in catalogue.columns else catalogue.set_index("track_id")
        self.catalogue = catalogue
        self._index = table.index
        self._columns = {name: table[name].to_numpy(dtype=object) if name in table.columns else None
                         for name in self.COLUMNS}

    def hits(self, track_ids: list[str], scores: list[float]) -> list[Hit]:
        """One :class:`Hit` per (id, score), with its catalogue row's metadata (none for an unknown id)."""
        rows = self._index.get_indexer(track_ids).tolist()

        def column(name: str) -> list[object]:
            values = self._columns[name]
            return [None] * len(rows) if values is None else [values[row] if row >= 0 else None for row in rows]

        columns = zip(track_ids, scores, *(column(name) for name in self.COLUMNS), strict=True)
        return [Hit(track_id, score, text_or_none(title), text_or_none(artist), tag_tuple(tags),
                    *(text_or_none(value) for value in texts))
                for track_id, score, title, artist, tags, *texts in columns]
