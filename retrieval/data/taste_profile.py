"""The Echo Nest Taste Profile (``train_triplets.txt``) as a sparse users × songs play-count matrix.

Format: tab-separated, no header, one ``user, song_id, play_count`` triplet per line; the real file has
48.4M lines, ~1.02M users and ~384.5k songs (~3 GB). It is streamed in chunks and never held as Python
objects: each chunk's user and song strings are encoded to integer codes (a dictionary of the distinct
strings grows across chunks), rows are kept as int32/int32/float32 arrays (12 bytes per triplet), and a
COO → CSR conversion at the end builds the matrix. ``benchmarks/taste_profile_read.py`` measures the
speed and peak memory.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

from retrieval.data.tsv import first_bad, iter_tsv, raise_first
from retrieval.errors import DataError
from retrieval.fileio import atomic_path

COLUMNS: tuple[str, ...] = ("user", "song_id", "play_count")
DEFAULT_CHUNK_ROWS = 500_000
"""Lines parsed per chunk. The parser's transient memory grows with it (~75 bytes per chunk line);
measured on 10M lines, 500k-line chunks read as fast as 2M-line ones with ~50 MB lower peak."""


@dataclass(eq=False)
class PlayMatrix:
    """Play counts of users (rows) for songs (columns).

    Attributes:
        matrix: ``scipy.sparse.csr_matrix`` of shape ``(len(users), len(items))``, float32 play counts.
        users: user ids (object array of str), row order.
        items: song ids (object array of str), column order.
    """

    matrix: sparse.csr_matrix
    users: np.ndarray
    items: np.ndarray
    _item_lookup: pd.Index | None = field(default=None, init=False, repr=False)
    _user_lookup: pd.Index | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.users = np.asarray(self.users, dtype=object)
        self.items = np.asarray(self.items, dtype=object)
        if self.matrix.shape != (len(self.users), len(self.items)):
            raise ValueError(
                f"matrix shape {self.matrix.shape} does not match "
                f"{len(self.users)} users × {len(self.items)} items"
            )

    def item_index(self, ids: Sequence[str]) -> np.ndarray:
        """Column of each song id, -1 where the song is absent. Shape ``(len(ids),)``, int64."""
        if self._item_lookup is None:
            self._item_lookup = pd.Index(self.items, dtype=object)
        return self._item_lookup.get_indexer(list(ids)).astype(np.int64)

    def user_index(self, ids: Sequence[str]) -> np.ndarray:
        """Row of each user id, -1 where the user is absent. Shape ``(len(ids),)``, int64."""
        if self._user_lookup is None:
            self._user_lookup = pd.Index(self.users, dtype=object)
        return self._user_lookup.get_indexer(list(ids)).astype(np.int64)


class _Vocabulary:
    """Strings → consecutive integer codes in order of first appearance, grown chunk by chunk.

    Only the distinct strings of a chunk are looked up (a Python dict), so the cost is per distinct
    string, not per row.
    """

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}

    def encode(self, uniques: Sequence[str]) -> np.ndarray:
        """Codes of ``uniques`` (adding unseen strings at the end). Shape ``(len(uniques),)``, int64."""
        codes = self.codes
        return np.fromiter((codes.setdefault(u, len(codes)) for u in uniques), np.int64, count=len(uniques))

    def strings(self) -> np.ndarray:
        """All strings in code order (object array)."""
        out = np.empty(len(self.codes), dtype=object)
        out[:] = list(self.codes)
        return out


#: The largest play count kept (the matrix is float32; sums of ~10⁸ such counts must stay finite).
_MAX_PLAY_COUNT = 1e30


def _play_counts(path: Path, chunk: pd.DataFrame) -> np.ndarray:
    """Validate a chunk and return its play counts as float32, shape ``(len(chunk),)``.

    The play-count column is parsed as a categorical, so only its few distinct strings are converted
    to numbers.
    """
    counts = chunk["play_count"]
    distinct = pd.Series(counts.cat.categories.astype(str))
    categories = pd.to_numeric(distinct, errors="coerce").to_numpy(np.float64)
    codes = counts.cat.codes.to_numpy()
    values = np.where(codes >= 0, categories[np.maximum(codes, 0)], np.nan)
    raise_first(
        path,
        chunk.index,
        [
            ((chunk["user"] == "").to_numpy(), "empty user (expected 3 tab-separated fields)"),
            ((chunk["song_id"] == "").to_numpy(), "empty song_id (expected 3 tab-separated fields)"),
            (
                ~np.isfinite(values),
                lambda i: (
                    f"play count {str(counts.iloc[i])!r} is missing or not a number "
                    "(expected 3 tab-separated fields: user, song_id, play_count)"
                ),
            ),
            (values < 0, lambda i: f"negative play count {values[i]:g}"),
            # float32 holds counts up to 3.4e38; a larger one would be stored as inf and break every sum
            (values > _MAX_PLAY_COUNT, lambda i: f"play count {values[i]:g} is too large (at most "
             f"{_MAX_PLAY_COUNT:g}); fix the line"),
        ],
    )
    return values.astype(np.float32)


def read_taste_profile(
    path: str | Path,
    *,
    items: Sequence[str] | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: bool = False,
) -> PlayMatrix:
    """Stream ``train_triplets.txt`` into a users × songs CSR matrix of play counts.

    ``M[u, s] = Σ play_count`` over every line ``(u, s, play_count)``: duplicate (user, song) lines are
    **summed**; zero counts leave no stored entry. Users are rows in order of first appearance in the
    file (only users with at least one kept line); songs are columns in ``items`` order, or in order of
    first appearance when ``items`` is None. The result does not depend on ``chunk_rows``.

    Memory: per chunk the parser holds ``chunk_rows`` lines of strings; across chunks only the distinct
    user/song strings (dicts) and 12 bytes per kept triplet are kept; the final COO (12 bytes) → CSR
    (8 bytes) conversion peaks at ~32 bytes per triplet. Measured: 10M lines → 415–491 MB peak, i.e.
    ≤ 2.4 GB extrapolated to the real 48M lines (``benchmarks/taste_profile_read.py``).

    Args:
        path: the triplets file (tab-separated ``user, song_id, play_count``, no header).
        items: restrict to these song ids (a catalogue); lines for other songs are skipped (but still
            validated). Must be unique. Songs without plays get empty columns.
        chunk_rows: lines parsed at a time.
        progress: show a tqdm progress bar (lines read).

    Returns:
        :class:`PlayMatrix`.

    Raises:
        DataError: naming the file and the 1-based line of the first line with a wrong field count, an
            empty id, or a missing / non-numeric / negative / non-finite play count; an empty file.

    Example:
        >>> plays = read_taste_profile("train_triplets.txt", items=catalogue_song_ids)  # doctest: +SKIP
        >>> plays.matrix.shape  # doctest: +SKIP
        (1019318, 250000)
    """
    path = Path(path)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be ≥ 1, got {chunk_rows}")
    users = _Vocabulary()
    songs = _Vocabulary()
    catalogue: pd.Index | None = None
    if items is not None:
        catalogue = pd.Index(list(items), dtype=object)
        if not catalogue.is_unique:
            raise ValueError(f"items must be unique; {catalogue[catalogue.duplicated()][0]!r} appears twice")
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    data: list[np.ndarray] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(desc=path.name, unit=" lines", unit_scale=True)
    lines_read = 0
    try:
        # user/song_id as object: with "category" pandas would turn all-digit ids into integers.
        for chunk in iter_tsv(path, COLUMNS, chunk_rows=chunk_rows, dtype={"play_count": "category"}):
            lines_read += len(chunk)
            counts = _play_counts(path, chunk)
            song_codes, song_uniques = pd.factorize(chunk["song_id"])
            if catalogue is None:
                col = songs.encode(song_uniques)[song_codes]
            else:
                col = catalogue.get_indexer(song_uniques)[song_codes]
            keep = col >= 0
            if not keep.all():
                col, counts = col[keep], counts[keep]
            user_codes, user_uniques = pd.factorize(chunk["user"].to_numpy()[keep])
            rows.append(users.encode(user_uniques)[user_codes].astype(np.int32))
            cols.append(col.astype(np.int32))
            data.append(counts)
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    if lines_read == 0:
        raise DataError(path, "file is empty; expected tab-separated user, song_id, play_count lines")
    item_ids = np.asarray(catalogue, dtype=object) if catalogue is not None else songs.strings()
    user_ids = users.strings()
    del users, songs  # the dicts: ~100 bytes per distinct id, not needed any more
    # Concatenate one array at a time and drop its chunks, so peak memory stays ~16 bytes per triplet.
    row = _concatenate(rows, np.int32)
    col = _concatenate(cols, np.int32)
    values = _concatenate(data, np.float32)
    coo = sparse.coo_matrix((values, (row, col)), shape=(len(user_ids), len(item_ids)))
    del row, col, values
    matrix = coo.tocsr()  # sums duplicate (user, song) entries
    del coo
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    return PlayMatrix(matrix=matrix, users=user_ids, items=item_ids)


def _concatenate(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    """Concatenate and empty ``parts`` (in place, to free the chunks)."""
    out = np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)
    parts.clear()
    return out.astype(dtype, copy=False)


def write_taste_profile(
    users: Sequence[str] | np.ndarray,
    songs: Sequence[str] | np.ndarray,
    counts: Sequence[float] | np.ndarray,
    path: str | Path,
) -> None:
    """Write triplets in the exact ``train_triplets.txt`` format (tab-separated, no header). Atomic.

    Args:
        users: user id of each line, shape ``(n,)``.
        songs: song id of each line, shape ``(n,)``.
        counts: play count of each line, shape ``(n,)``, finite and ≥ 0; written as integers when all
            are integral.
        path: destination.

    Raises:
        ValueError: unequal lengths, an empty id or one containing a tab/newline, a bad count.
    """
    users = np.asarray(users, dtype=object)
    songs = np.asarray(songs, dtype=object)
    values = np.asarray(counts, dtype=np.float64)
    if not (len(users) == len(songs) == len(values)):
        lengths = f"{len(users)}, {len(songs)}, {len(values)}"
        raise ValueError(f"users, songs and counts differ in length: {lengths}")
    bad = first_bad(~np.isfinite(values) | (values < 0))
    if bad is not None:
        raise ValueError(f"play count {values[bad]!r} at position {bad} is not a finite number ≥ 0")
    frame = pd.DataFrame({"user": users, "song_id": songs})
    for column in ("user", "song_id"):
        text = frame[column].astype(str)
        bad = first_bad((text == "").to_numpy() | text.str.contains("[\t\n\r]", regex=True).to_numpy())
        if bad is not None:
            raise ValueError(f"{column} {text.iloc[bad]!r} at position {bad} is empty or has a tab/newline")
    integral = np.all(values == np.round(values))
    frame["play_count"] = values.astype(np.int64) if integral else values
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, sep="\t", header=False, index=False, lineterminator="\n", quoting=csv.QUOTE_NONE)
