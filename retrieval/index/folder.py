"""The index folder format: what :meth:`VectorIndex.save` writes and :meth:`VectorIndex.load` reads.

An index folder holds::

    meta.json          {"format_version", "backend", "dim", "n", "model_fingerprint", "params", "catalogue"}
    ids.npy            (n,) unicode track ids; row i of the vectors belongs to ids[i]
    <backend files>    vectors.npy (exact) or index.ann (annoy)
    catalogue.tsv      optional: track_id, title, artist, tags ("|"-separated), audio_path
    model.json         optional: the model that made the vectors (written by ``retrieval index``)

A folder is written into a temporary sibling and renamed into place only when complete
(:func:`retrieval.fileio.atomic_folder`), so an interrupted save leaves the previous index untouched; ``meta.json``
is written last, so a folder with one is a complete index. A second writer on the same folder is refused (a lock),
and copies left by an interrupted write are swept at the next one. It records the fingerprint of the model that made the
vectors; loading with ``expected_fingerprint`` refuses an index made by another model (its vectors live in another
space).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd

from retrieval.errors import DataError
from retrieval.fileio import atomic_folder, load_npy
from retrieval.index.catalogue import read_catalogue, write_catalogue

if TYPE_CHECKING:  # base.py imports this module
    from retrieval.index.base import VectorIndex

__all__ = ["REBUILD_COMMAND", "check_fingerprint", "check_replaceable", "read_index", "read_meta", "write_index"]

FORMAT_VERSION = 1
META_FILE = "meta.json"
IDS_FILE = "ids.npy"
CATALOGUE_FILE = "catalogue.tsv"
#: The file naming the model that made the vectors (``{"run": ...}`` or ``{"pretrained": NAME}``).
MODEL_FILE = "model.json"
# The command a user runs to rebuild an index; quoted in errors about stale indexes.
REBUILD_COMMAND = "retrieval index AUDIO_DIR --model RUN --out INDEX"
#: Appended to errors about a broken index file.
REBUILD_ADVICE = f"; rebuild the index with `{REBUILD_COMMAND}`"
# How many offending ids an error message lists.
_SHOW = 5

IndexT = TypeVar("IndexT", bound="VectorIndex")


def write_index(index: VectorIndex, folder: Path, catalogue: pd.DataFrame | None,
                extra: dict[str, bytes] | None = None) -> None:
    """Write a built index (and its catalogue) to ``folder`` atomically; see :meth:`VectorIndex.save`.

    Args:
        index: a built index.
        folder: the destination.
        catalogue: metadata of the indexed tracks, in the form
            :func:`~retrieval.index.catalogue.make_catalogue_from_frame` gives; or None.
        extra: more files (name → bytes, e.g. ``model.json``) written into the same folder before ``meta.json``.

    Raises:
        ValueError: the catalogue misses indexed ids.
        DataError: ``folder`` exists and is a non-empty folder without an index (it is left alone).
    """
    ids = index.ids
    if catalogue is not None:
        missing = ~np.isin(ids, catalogue.index.to_numpy(dtype=str))
        if missing.any():
            raise ValueError(
                f"the catalogue has no row for {int(missing.sum())} indexed ids, "
                f"e.g. {ids[missing][:_SHOW].tolist()}; add them to the catalogue"
            )
    meta = {
        "format_version": FORMAT_VERSION,
        "backend": index.backend,
        "dim": index.dim,
        "n": len(ids),
        "model_fingerprint": index.fingerprint,
        "params": index.params(),
        "catalogue": CATALOGUE_FILE if catalogue is not None else None,
    }
    check_replaceable(folder)
    with atomic_folder(folder) as tmp:
        np.save(tmp / IDS_FILE, ids, allow_pickle=False)
        if catalogue is not None:
            write_catalogue(catalogue, tmp / CATALOGUE_FILE)
        index._write_files(tmp)
        for name, content in (extra or {}).items():
            (tmp / name).write_bytes(content)
        # meta.json last: a folder with meta.json is a complete index.
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def read_index(cls: type[IndexT], folder: Path, expected_fingerprint: str | None = None) -> IndexT:
    """Load a ``cls`` index saved by :func:`write_index`; see :meth:`VectorIndex.load`.

    Raises:
        DataError: missing or malformed files, another backend, or a fingerprint mismatch.
    """
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
    ids = load_npy(folder / IDS_FILE, advice=REBUILD_ADVICE)
    if ids.dtype.kind != "U" or ids.shape != (meta["n"],):
        raise DataError(folder / IDS_FILE, f"expected {meta['n']} string ids, found {ids.dtype} "
                        f"{ids.shape}; rebuild the index with `{REBUILD_COMMAND}`")
    index._read_files(folder, meta["n"])
    catalogue = None
    if meta["catalogue"] is not None:
        path = folder / meta["catalogue"]
        catalogue = read_catalogue(path)
        missing = ~np.isin(ids, catalogue.index.to_numpy(dtype=str))
        if missing.any():
            raise DataError(path, f"has no row for {int(missing.sum())} of the {meta['n']} indexed tracks, e.g. "
                            f"{ids[missing][:_SHOW].tolist()} (a row was deleted){REBUILD_ADVICE}")
    index._restore(ids, catalogue)
    return index


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


def check_replaceable(folder: Path) -> None:
    """Refuse to replace anything but an index folder or an empty folder (a user's music, say).

    Raises:
        DataError: ``folder`` exists and is neither.
    """
    is_index = (folder / META_FILE).is_file()
    is_empty_dir = folder.is_dir() and not any(folder.iterdir())
    if folder.exists() and not (is_index or is_empty_dir):
        raise DataError(folder, f"exists and is not an index folder (no {META_FILE}); refusing to replace "
                        "it. Choose another path or remove it yourself")
