"""The catalogue: per-track metadata (title, artist, tags, audio path) that search results carry.

A catalogue is a DataFrame indexed by ``track_id`` with the columns of :data:`CATALOGUE_COLUMNS` (after the id).
An index folder stores it as ``catalogue.tsv``: tab-separated, unquoted (so it stays greppable), tags joined with
``"|"``, unknown values as empty cells::

    track_id   title   artist   tags             audio_path          album         genre  year
    TRK0001    So What Miles Davis jazz|cool jazz  /music/so_what.mp3  Kind of Blue  Jazz   1959

``album``, ``genre`` and ``year`` come from the files' own tags (:mod:`retrieval.audio.metadata`); a catalogue
written before they existed reads with them empty.

An ``audio_path`` is absolute, or relative to the catalogue's folder (the index folder).

Example:
    >>> catalogue = make_catalogue(["t1"], titles=["So What"], tags=[("jazz", "cool jazz")])
    >>> catalogue.loc["t1", "tags"]
    ('jazz', 'cool jazz')
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from retrieval.errors import DataError

__all__ = [
    "CATALOGUE_COLUMNS",
    "make_catalogue",
    "make_catalogue_from_frame",
    "read_catalogue",
    "tag_tuple",
    "text_or_none",
    "write_catalogue",
]

CATALOGUE_COLUMNS: tuple[str, ...] = ("track_id", "title", "artist", "tags", "audio_path", "album", "genre", "year")
#: Columns a catalogue file may lack (older indexes): read as unknown.
OPTIONAL_COLUMNS: tuple[str, ...] = ("album", "genre", "year")
# The text columns (every column but the id and the tags).
_TEXT_COLUMNS = ("title", "artist", "audio_path", *OPTIONAL_COLUMNS)
TAG_SEPARATOR = "|"
# Characters that would break a catalogue.tsv row (written without quoting, so it stays greppable).
_FORBIDDEN_IN_CELLS = ("\t", "\n", "\r")
# How many offending ids an error message lists.
_SHOW = 5


def make_catalogue(
    track_ids: Sequence[str],
    titles: Sequence[str | None] | None = None,
    artists: Sequence[str | None] | None = None,
    tags: Sequence[Sequence[str]] | None = None,
    audio_paths: Sequence[str | Path | None] | None = None,
    albums: Sequence[str | None] | None = None,
    genres: Sequence[str | None] | None = None,
    years: Sequence[str | None] | None = None,
) -> pd.DataFrame:
    """The catalogue table that :func:`attach_metadata` and :meth:`VectorIndex.save` read.

    Args:
        track_ids: n distinct ids.
        titles, artists, audio_paths, albums, genres, years: n values each (None where unknown), or None for
            all unknown.
        tags: n sequences of tag names, or None for no tags.

    Returns:
        DataFrame indexed by ``track_id`` with columns title, artist (str | None), tags (tuple[str, ...]),
        audio_path, album, genre and year (str | None).
    """
    unknown = [None] * len(track_ids)
    frame = pd.DataFrame({
        "track_id": list(track_ids),
        "title": unknown if titles is None else list(titles),
        "artist": unknown if artists is None else list(artists),
        "tags": [()] * len(track_ids) if tags is None else [tuple(row) for row in tags],
        "audio_path": unknown if audio_paths is None else [None if path is None else str(path)
                                                           for path in audio_paths],
        "album": unknown if albums is None else list(albums),
        "genre": unknown if genres is None else list(genres),
        "year": unknown if years is None else [None if year is None else str(year) for year in years],
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
    for column in _TEXT_COLUMNS:
        values = frame[column].to_numpy(dtype=object) if column in frame.columns else [None] * len(out)
        # dtype=object keeps None as None (pandas' string dtype would turn it into NaN).
        out[column] = pd.Series([text_or_none(value) for value in values], index=out.index, dtype=object)
    values = frame["tags"].to_numpy(dtype=object) if "tags" in frame.columns else [()] * len(out)
    out["tags"] = pd.Series([tag_tuple(value) for value in values], index=out.index, dtype=object)
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
        **{column: catalogue[column].fillna("") for column in OPTIONAL_COLUMNS},
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
    from retrieval.index.folder import REBUILD_COMMAND  # folder.py imports this module: import when used

    path = Path(path)
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE)
    except (OSError, pd.errors.ParserError) as error:
        raise DataError(path, f"cannot read the catalogue ({error}); rebuild the index with "
                        f"`{REBUILD_COMMAND}`") from error
    for column in CATALOGUE_COLUMNS:
        if column not in table.columns and column not in OPTIONAL_COLUMNS:
            raise DataError(path, f"missing column; expected the columns {list(CATALOGUE_COLUMNS)}",
                            line=1, key=column)
    duplicated = table["track_id"].duplicated().to_numpy()
    if duplicated.any():
        row = int(np.argmax(duplicated))
        track_id = table["track_id"].iloc[row]
        # Line = row + 2: one for the header, one because lines count from 1.
        raise DataError(path, f"track id {track_id!r} appears twice; keep one row per track", line=row + 2,
                        key="track_id")
    # A relative audio path is relative to the index folder, so an index moved with its music still finds it.
    relative = (table["audio_path"] != "") & ~table["audio_path"].map(os.path.isabs)
    table.loc[relative, "audio_path"] = [os.path.join(path.parent, value)
                                         for value in table.loc[relative, "audio_path"]]
    return make_catalogue_from_frame(table)


def _is_missing(value: object) -> bool:
    """None, NaN, pd.NA or an empty string (but not a sequence of tags)."""
    if isinstance(value, str):
        return value == ""
    if value is None or isinstance(value, tuple | list):  # (np.ndim would build an array from a tag tuple)
        return value is None
    return np.ndim(value) == 0 and bool(pd.isna(value))


def text_or_none(value: object) -> str | None:
    """A catalogue cell as text, or None when it is missing (None, NaN, pd.NA, "")."""
    return None if _is_missing(value) else str(value)


def tag_tuple(value: object) -> tuple[str, ...]:
    """A catalogue ``tags`` cell (a sequence or a ``"|"``-joined string) as a tuple; () when missing."""
    if _is_missing(value):
        return ()
    if isinstance(value, str):
        return tuple(value.split(TAG_SEPARATOR))
    return tuple(str(tag) for tag in value)  # type: ignore[union-attr]

