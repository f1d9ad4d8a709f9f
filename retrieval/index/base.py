"""The vector index interface, typed search results, the catalogue of track metadata and index folders.

Every index stores L2-normalised float32 vectors under string track ids and answers cosine top-k queries:

    score(q, x) = cos(q, x) = q·x / (‖q‖ ‖x‖),   results sorted by score, best first.

:class:`VectorIndex` holds what all backends share (id bookkeeping, input checks, the folder format, the
model fingerprint check); a backend implements five small hooks (``_add``, ``_build``, ``_search``,
``_write_files``, ``_read_files``). :mod:`retrieval.index.exact` is the brute-force reference;
:mod:`retrieval.index.annoy_index` is the approximate one, and its recall is measured against the reference.

An index folder holds::

    meta.json          {"format_version", "backend", "dim", "n", "model_fingerprint", "params", "catalogue"}
    ids.npy            (n,) unicode track ids; row i of the vectors belongs to ids[i]
    <backend files>    vectors.npy (exact) or index.ann (annoy)
    catalogue.tsv      optional: track_id, title, artist, tags ("|"-separated), audio_path

A folder is written into a temporary sibling and renamed into place only when complete, so an interrupted
save leaves the previous index untouched. It records the fingerprint of the model that made the vectors;
loading with ``expected_fingerprint`` refuses an index made by another model (its vectors live in another
space).

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

import csv
import json
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import pandas as pd

from retrieval.errors import ConfigError, DataError

__all__ = [
    "CATALOGUE_COLUMNS",
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

FORMAT_VERSION = 1
META_FILE = "meta.json"
IDS_FILE = "ids.npy"
CATALOGUE_FILE = "catalogue.tsv"
# The command a user runs to rebuild an index; quoted in errors about stale indexes.
REBUILD_COMMAND = "retrieval index AUDIO_DIR --model RUN --out INDEX"

CATALOGUE_COLUMNS: tuple[str, ...] = ("track_id", "title", "artist", "tags", "audio_path")
TAG_SEPARATOR = "|"
# Characters that would break a catalogue.tsv row (written without quoting, so it stays greppable).
_FORBIDDEN_IN_CELLS = ("\t", "\n", "\r")
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
        title, artist, tags, audio_path: catalogue metadata, when the index has a catalogue.
    """

    track_id: str
    score: float
    title: str | None = None
    artist: str | None = None
    tags: tuple[str, ...] = ()
    audio_path: str | None = None

    def __str__(self) -> str:
        """E.g. ``0.873  Miles Davis – So What  [jazz, cool jazz]  (TRK0001)``."""
        name = " – ".join(part for part in (self.artist, self.title) if part) or self.track_id
        text = f"{self.score:.3f}  {name}"
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
    return vectors / norms


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
            KeyError: an id is not in the index (named).
        """
        self._require_built()
        if getattr(self, "_row_of", None) is None or len(self._row_of) != len(self._ids):
            self._row_of = {track_id: row for row, track_id in enumerate(self._ids.tolist())}
        missing = [track_id for track_id in ids if track_id not in self._row_of]
        if missing:
            raise KeyError(f"track ids not in this index: {missing[:_SHOW]}")
        return self._vectors(np.array([self._row_of[track_id] for track_id in ids], dtype=np.int64))

    def search_hits(self, queries: np.ndarray, k: int) -> list[list[Hit]]:
        """Like :meth:`search`, returning one list of :class:`Hit` per query with the catalogue's metadata."""
        ids, scores = self.search(queries, k)
        return attach_metadata(ids, scores, self.catalogue)

    def save(self, folder: str | Path, catalogue: pd.DataFrame | None = None) -> Path:
        """Write the index to ``folder`` atomically (replacing an older index there only once complete).

        Args:
            folder: destination folder; if it exists it must hold an index (or be empty).
            catalogue: metadata for the indexed tracks (see :func:`make_catalogue`); defaults to
                ``self.catalogue``. Every indexed id must have a row. It becomes ``self.catalogue``.

        Returns:
            The folder.

        Raises:
            RuntimeError: the index is not built.
            ValueError: the catalogue misses indexed ids.
            DataError: ``folder`` exists and is a non-empty folder without an index (it is left alone).
        """
        self._require_built()
        catalogue = self.catalogue if catalogue is None else make_catalogue_from_frame(catalogue)
        if catalogue is not None:
            missing = ~np.isin(self._ids, catalogue.index.to_numpy(dtype=str))
            if missing.any():
                raise ValueError(
                    f"the catalogue has no row for {int(missing.sum())} indexed ids, "
                    f"e.g. {self._ids[missing][:_SHOW].tolist()}; add them to the catalogue"
                )
        meta = {
            "format_version": FORMAT_VERSION,
            "backend": self.backend,
            "dim": self.dim,
            "n": len(self._ids),
            "model_fingerprint": self.fingerprint,
            "params": self.params(),
            "catalogue": CATALOGUE_FILE if catalogue is not None else None,
        }
        with _replace_folder(Path(folder)) as tmp:
            np.save(tmp / IDS_FILE, self._ids, allow_pickle=False)
            if catalogue is not None:
                write_catalogue(catalogue, tmp / CATALOGUE_FILE)
            self._write_files(tmp)
            # meta.json last: a folder with meta.json is a complete index.
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
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
        folder = Path(folder)
        meta = read_meta(folder)
        if meta["backend"] != cls.backend:
            raise DataError(
                folder / META_FILE,
                f"this is a {meta['backend']!r} index, not {cls.backend!r}; open it with "
                "retrieval.index.load_index(folder)",
                key="backend",
            )
        check_fingerprint(folder, meta["model_fingerprint"], expected_fingerprint)
        try:
            index = cls(dim=meta["dim"], fingerprint=meta["model_fingerprint"], **meta["params"])
        except (TypeError, ValueError) as error:
            raise DataError(folder / META_FILE, f"bad index parameters ({error}); rebuild the index with "
                            f"`{REBUILD_COMMAND}`", key="params") from error
        ids = _load_npy(folder / IDS_FILE)
        if ids.dtype.kind != "U" or ids.shape != (meta["n"],):
            raise DataError(folder / IDS_FILE, f"expected {meta['n']} string ids, found {ids.dtype} "
                            f"{ids.shape}; rebuild the index with `{REBUILD_COMMAND}`")
        index._read_files(folder, meta["n"])
        index._ids, index._built = ids, True
        if meta["catalogue"] is not None:
            index.catalogue = read_catalogue(folder / meta["catalogue"])
        return index

    def _require_built(self) -> None:
        if not self._built:
            raise RuntimeError(f"{type(self).__name__} is not built: call build() after add()")


# ---------------------------------------------------------------------- registry access
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
    # The registry lives in the package (it names every backend module, which all import this one).
    from retrieval.index import INDEX_BACKENDS

    if name not in INDEX_BACKENDS:
        raise ConfigError(f"{key}: unknown index backend {name!r}; valid: {sorted(INDEX_BACKENDS)}")
    return INDEX_BACKENDS[name]


# ---------------------------------------------------------------------- folder format
def read_meta(folder: Path) -> dict[str, Any]:
    """Read and validate ``folder/meta.json``.

    Raises:
        DataError: missing, unparsable, another format version, or a missing key.
    """
    path = folder / META_FILE
    if not path.is_file():
        raise DataError(path, f"no index here (missing {META_FILE}); build one with `{REBUILD_COMMAND}`")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DataError(path, f"not valid JSON ({error.msg}); rebuild the index with `{REBUILD_COMMAND}`",
                        line=error.lineno) from error
    if not isinstance(meta, dict):
        raise DataError(path, f"expected a JSON object; rebuild the index with `{REBUILD_COMMAND}`")
    required = ("format_version", "backend", "dim", "n", "model_fingerprint", "params", "catalogue")
    for key in required:
        if key not in meta:
            raise DataError(path, f"missing key; rebuild the index with `{REBUILD_COMMAND}`", key=key)
    if meta["format_version"] != FORMAT_VERSION:
        raise DataError(
            path,
            f"index format version {meta['format_version']} but this library reads version {FORMAT_VERSION}; "
            f"rebuild the index with `{REBUILD_COMMAND}`",
            key="format_version",
        )
    return meta


def check_fingerprint(folder: Path, saved: str | None, expected: str | None) -> None:
    """Refuse an index whose vectors were made by another model than the one encoding the queries.

    Raises:
        DataError: ``expected`` is given and differs from ``saved``.
    """
    if expected is None or saved == expected:
        return
    raise DataError(
        folder / META_FILE,
        f"this index was built from model {saved!r} but the model in use is {expected!r}; its vectors are "
        f"in another space. Rebuild it with the current model: `{REBUILD_COMMAND}`",
        key="model_fingerprint",
    )


def _load_npy(path: Path, mmap: bool = False) -> np.ndarray:
    """``np.load`` without pickles, turning a missing or corrupt file into a DataError."""
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except (OSError, ValueError, EOFError) as error:
        raise DataError(path, f"cannot read ({error}); rebuild the index with `{REBUILD_COMMAND}`") from error


@contextmanager
def _replace_folder(folder: Path) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``folder``; when the block succeeds, it becomes ``folder``.

    The old folder is moved aside, the new one renamed into place, then the old one deleted: the only
    window without ``folder`` is between two renames (microseconds). If the block raises, the temporary
    folder is removed and ``folder`` is untouched.
    """
    is_index = (folder / META_FILE).is_file()
    is_empty_dir = folder.is_dir() and not any(folder.iterdir())
    if folder.exists() and not (is_index or is_empty_dir):
        raise DataError(folder, f"exists and is not an index folder (no {META_FILE}); refusing to replace "
                        "it. Choose another path or remove it yourself")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        yield tmp
        _fsync_tree(tmp)
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent))
            os.replace(folder, old)  # onto the empty placeholder made by mkdtemp
            try:
                os.replace(tmp, folder)
            except BaseException:
                os.replace(old, folder)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
        _fsync(folder.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _fsync_tree(folder: Path) -> None:
    """Flush every file in ``folder`` (and the folder entry list) to disk before it is renamed into place."""
    for path in folder.iterdir():
        _fsync(path)
    _fsync(folder)


def _fsync(path: Path) -> None:
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


# ---------------------------------------------------------------------- catalogue (per-track metadata)
def make_catalogue(
    track_ids: Sequence[str],
    titles: Sequence[str | None] | None = None,
    artists: Sequence[str | None] | None = None,
    tags: Sequence[Sequence[str]] | None = None,
    audio_paths: Sequence[str | Path | None] | None = None,
) -> pd.DataFrame:
    """The catalogue table that :func:`attach_metadata` and :meth:`VectorIndex.save` read.

    Args:
        track_ids: n distinct ids.
        titles, artists, audio_paths: n values each (None where unknown), or None for all unknown.
        tags: n sequences of tag names, or None for no tags.

    Returns:
        DataFrame indexed by ``track_id`` with columns title, artist (str | None), tags (tuple[str, ...])
        and audio_path (str | None).
    """
    unknown = [None] * len(track_ids)
    frame = pd.DataFrame({
        "track_id": list(track_ids),
        "title": unknown if titles is None else list(titles),
        "artist": unknown if artists is None else list(artists),
        "tags": [()] * len(track_ids) if tags is None else [tuple(row) for row in tags],
        "audio_path": unknown if audio_paths is None else [None if path is None else str(path)
                                                           for path in audio_paths],
    })
    return make_catalogue_from_frame(frame)


def make_catalogue_from_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Bring a user's table into the catalogue form of :func:`make_catalogue`.

    ``track_id`` may be the index or a column; missing metadata columns are filled with None / ();
    ``tags`` cells may be sequences or ``"|"``-joined strings; empty strings and NaN become None.

    Raises:
        ValueError: no track ids, or duplicate ones.
    """
    if "track_id" not in frame.columns and frame.index.name == "track_id":
        frame = frame.reset_index()
    if "track_id" not in frame.columns:
        raise ValueError(f"a catalogue needs a 'track_id' column or index; columns are {list(frame.columns)}")
    out = pd.DataFrame(index=pd.Index(frame["track_id"].astype(str).to_numpy(), name="track_id"))
    duplicated = out.index.duplicated()
    if duplicated.any():
        duplicates = out.index[duplicated][:_SHOW].tolist()
        raise ValueError(f"duplicate track ids in the catalogue, e.g. {duplicates}; keep one row per track")
    for column in ("title", "artist", "audio_path"):
        values = frame[column].to_numpy(dtype=object) if column in frame.columns else [None] * len(out)
        # dtype=object keeps None as None (pandas' string dtype would turn it into NaN).
        out[column] = pd.Series([_text_or_none(value) for value in values], index=out.index, dtype=object)
    values = frame["tags"].to_numpy(dtype=object) if "tags" in frame.columns else [()] * len(out)
    out["tags"] = pd.Series([_tag_tuple(value) for value in values], index=out.index, dtype=object)
    return out[list(CATALOGUE_COLUMNS[1:])]


def write_catalogue(catalogue: pd.DataFrame, path: str | Path) -> None:
    """Write a catalogue as a tab-separated file (tags joined with ``"|"``, None as an empty cell).

    Not atomic by itself: :meth:`VectorIndex.save` writes it inside a temporary folder.

    Raises:
        ValueError: a cell contains a tab or newline, or a tag contains ``"|"`` (the message names the track).
    """
    catalogue = make_catalogue_from_frame(catalogue)
    table = pd.DataFrame({
        "track_id": catalogue.index.to_numpy(dtype=str),
        "title": catalogue["title"].fillna(""),
        "artist": catalogue["artist"].fillna(""),
        "tags": [TAG_SEPARATOR.join(tags) for tags in catalogue["tags"]],
        "audio_path": catalogue["audio_path"].fillna(""),
    })
    for column in CATALOGUE_COLUMNS:
        cells = table[column].astype(str)
        bad = np.zeros(len(cells), dtype=bool)
        for char in _FORBIDDEN_IN_CELLS:
            bad |= cells.str.contains(char, regex=False).to_numpy()
        if bad.any():
            raise ValueError(f"catalogue column {column!r} has tabs or newlines for track "
                             f"{table['track_id'].iloc[int(np.argmax(bad))]!r}; remove them")
    bad_tags = [
        track_id
        for track_id, tags in zip(table["track_id"], catalogue["tags"], strict=True)
        if any(TAG_SEPARATOR in tag for tag in tags)
    ]
    if bad_tags:
        raise ValueError(f"tags of tracks {bad_tags[:_SHOW]} contain {TAG_SEPARATOR!r}, the catalogue's tag "
                         "separator; rename those tags")
    table.to_csv(path, sep="\t", index=False, quoting=csv.QUOTE_NONE, lineterminator="\n")


def read_catalogue(path: str | Path) -> pd.DataFrame:
    """Read a catalogue written by :func:`write_catalogue`.

    Raises:
        DataError: missing file or column, or a duplicate track id (with its line number).
    """
    path = Path(path)
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE)
    except (OSError, pd.errors.ParserError) as error:
        raise DataError(path, f"cannot read the catalogue ({error}); rebuild the index with "
                        f"`{REBUILD_COMMAND}`") from error
    for column in CATALOGUE_COLUMNS:
        if column not in table.columns:
            raise DataError(path, f"missing column; expected the columns {list(CATALOGUE_COLUMNS)}",
                            line=1, key=column)
    duplicated = table["track_id"].duplicated().to_numpy()
    if duplicated.any():
        row = int(np.argmax(duplicated))
        track_id = table["track_id"].iloc[row]
        # Line = row + 2: one for the header, one because lines count from 1.
        raise DataError(path, f"track id {track_id!r} appears twice; keep one row per track", line=row + 2,
                        key="track_id")
    return make_catalogue_from_frame(table)


def attach_metadata(ids: np.ndarray, scores: np.ndarray, catalogue: pd.DataFrame | None) -> list[list[Hit]]:
    """Turn search arrays into lists of :class:`Hit` with the catalogue's metadata.

    Args:
        ids: (q, k) track ids, best first (as returned by :meth:`VectorIndex.search`).
        scores: (q, k) cosine similarities.
        catalogue: table from :func:`make_catalogue` / :func:`read_catalogue`, or None for bare hits.
            Ids absent from it get no metadata.

    Returns:
        q lists of k hits, in the order of ``ids``.
    """
    ids, scores = np.asarray(ids), np.asarray(scores)
    if ids.shape != scores.shape or ids.ndim != 2:
        raise ValueError(f"ids and scores must both be (q, k); got {ids.shape} and {scores.shape}")
    flat_ids = ids.reshape(-1).astype(str)
    flat_scores = scores.reshape(-1).astype(float)
    if catalogue is None:
        hits = [Hit(track_id, score) for track_id, score in zip(flat_ids, flat_scores, strict=True)]
    else:
        # Look up only the q·k returned rows; the catalogue may have millions.
        table = catalogue if "track_id" not in catalogue.columns else catalogue.set_index("track_id")
        rows = table.reindex(flat_ids)

        def column(name: str) -> Sequence[object]:
            return rows[name].to_numpy(dtype=object) if name in rows.columns else [None] * len(flat_ids)

        columns = zip(flat_ids, flat_scores, column("title"), column("artist"), column("tags"),
                      column("audio_path"), strict=True)
        hits = [
            Hit(track_id, score, _text_or_none(title), _text_or_none(artist), _tag_tuple(tags),
                _text_or_none(audio_path))
            for track_id, score, title, artist, tags, audio_path in columns
        ]
    k = ids.shape[1]
    return [hits[row * k:(row + 1) * k] for row in range(ids.shape[0])]


def _is_missing(value: object) -> bool:
    """None, NaN, pd.NA or an empty string (but not a sequence of tags)."""
    if isinstance(value, str):
        return value == ""
    return value is None or (np.ndim(value) == 0 and bool(pd.isna(value)))


def _text_or_none(value: object) -> str | None:
    return None if _is_missing(value) else str(value)


def _tag_tuple(value: object) -> tuple[str, ...]:
    if _is_missing(value):
        return ()
    if isinstance(value, str):
        return tuple(value.split(TAG_SEPARATOR))
    return tuple(str(tag) for tag in value)  # type: ignore[union-attr]

