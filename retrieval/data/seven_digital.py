"""MSD audio as researchers hold it: the 7digital preview dump and its track → 7digital id map.

The 30 s previews of the Million Song Dataset were fetched from 7digital and are named by **7digital** id,
sharded by its first two digits::

    audio/8/9/8947470.clip.mp3       7digital id 8947470

A map from MSD track id to 7digital id goes with the dump, most often as a pickled dict
(``MSD_id_to_7D_id.pkl``, keys ``TR…``, values 7digital ids as int or str). This module reads that map as

- a TSV ``track_id<TAB>7digital_id`` (header optional) — :data:`ID_MAP_TSV` in the corpus folder; or
- the pickle itself, through :class:`RestrictedUnpickler`, which builds nothing but dicts, lists, tuples,
  strings and numbers (a pickle naming any class or function — the way a pickle runs code — is refused), and
  only a dict of str/int → str/int is accepted. ``retrieval data convert-id-map MAP.pkl --out DIR/7digital_ids.tsv``
  converts it once, so the pickle need not be kept.

:meth:`retrieval.data.corpus.Corpus.audio_locator` reads the map when the corpus has one, and finds a song's
preview by its song id, its track ids or their 7digital ids (the ``.clip`` before the suffix is ignored).
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import pandas as pd

from retrieval.data.tsv import raise_first, read_tsv
from retrieval.errors import DataError
from retrieval.fileio import atomic_open

__all__ = ["ID_MAP_PICKLE", "ID_MAP_TSV", "RestrictedUnpickler", "find_id_map", "read_id_map", "write_id_map"]

#: The converted map, in the corpus folder.
ID_MAP_TSV = "7digital_ids.tsv"
#: The pickled map as it is usually shared.
ID_MAP_PICKLE = "MSD_id_to_7D_id.pkl"
ID_MAP_COLUMNS = ("track_id", "7digital_id")


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds only built-in containers, strings and numbers: any global (a class, a function
    — how a pickle runs code) is refused. Python 2 strings are read as latin-1 text."""

    def __init__(self, file: io.BufferedIOBase):
        super().__init__(file, encoding="latin1")

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"refused to load {module}.{name}: only dicts of strings and numbers are read")


def _read_pickled_map(path: Path) -> dict[str, str]:
    try:
        with open(path, "rb") as handle:
            value = RestrictedUnpickler(handle).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as error:
        raise DataError(path, f"not a pickled track → 7digital id dict ({error}); convert it elsewhere to a "
                        f"{ID_MAP_TSV} (track_id<TAB>7digital_id)") from error
    if not isinstance(value, dict):
        raise DataError(path, f"holds a {type(value).__name__}, not a dict of track id → 7digital id")
    bad = next(((k, v) for k, v in value.items()
                if not isinstance(k, str | int) or not isinstance(v, str | int) or isinstance(v, bool)), None)
    if bad is not None:
        raise DataError(path, f"entry {bad[0]!r}: {bad[1]!r} is not a string or integer pair; expected track id → "
                        "7digital id")
    return {str(k): str(v) for k, v in value.items()}


def read_id_map(path: str | Path) -> dict[str, str]:
    """MSD track id → 7digital id (as text) from a ``.pkl`` (restricted, see the module docstring) or a TSV.

    Raises:
        DataError: missing file, a pickle that is not a dict of strings/ints (or names any class), a TSV line
            with an empty field or a track listed twice (file and line named).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found; expected the track → 7digital id map (see data/msd500/README.md)")
    if path.suffix.lower() in (".pkl", ".pickle", ".cp"):
        return _read_pickled_map(path)
    frame = read_tsv(path, ID_MAP_COLUMNS, header="optional")
    empty = (frame["track_id"] == "") | (frame["7digital_id"] == "")
    raise_first(path, frame.index, [
        (empty.to_numpy(), "empty field (expected track_id<TAB>7digital_id)"),
        (frame["track_id"].duplicated().to_numpy(), "track listed twice"),
    ])
    return dict(zip(frame["track_id"], frame["7digital_id"], strict=True))


def write_id_map(mapping: dict[str, str], path: str | Path) -> None:
    """Write ``mapping`` as the TSV :func:`read_id_map` reads (header ``track_id<TAB>7digital_id``), atomically."""
    frame = pd.DataFrame({"track_id": list(mapping), "7digital_id": [str(v) for v in mapping.values()]})
    with atomic_open(path) as handle:
        frame.to_csv(handle, sep="\t", index=False, lineterminator="\n")


def find_id_map(root: str | Path) -> Path | None:
    """The corpus' track → 7digital id map (:data:`ID_MAP_TSV`, else :data:`ID_MAP_PICKLE`), or None."""
    for name in (ID_MAP_TSV, ID_MAP_PICKLE):
        for folder in (Path(root), Path(root) / "audio"):
            if (folder / name).is_file():
                return folder / name
    return None
