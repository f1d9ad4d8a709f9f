"""The Free Music Archive (FMA) layout: ``tracks.csv`` metadata and ``fma_<subset>/XXX/XXXXXX.mp3`` audio.

Kim et al. (WWW 2018, REFERENCE §7) train artist-group factor networks on FMA and a head for its 16 top-level
genres. What this module reads::

    ROOT/fma_metadata/tracks.csv     (or ROOT/tracks.csv) one row per track
    ROOT/fma_metadata/genres.csv     (optional) the genre hierarchy: genre_id, #tracks, parent, title, top_level
    ROOT/fma_small/000/000002.mp3    audio: track id zero-padded to 6 digits, folder = its first 3 digits

``tracks.csv`` comes in two formats, both accepted:

- **the released one** (``fma_metadata.zip``): a two-row column header of ``(group, field)`` pairs, usually
  followed by a third line ``track_id,,,...`` naming the index column. The columns used are
  ``('artist', 'id')``, ``('track', 'genre_top')``, ``('set', 'split')`` and ``('set', 'subset')``; the
  others (bios, comments, with quoted newlines) are skipped.
- **a flat one**: a single header line with columns ``track_id, artist_id, genre_top, split`` and optionally
  ``subset``.

``split`` is one of ``training, validation, test``; ``subset`` one of ``small, medium, large``, nested (a
"small" track is also in "medium" and "large": the column holds the smallest subset that contains it).
``genre_top`` is empty for tracks without a single top-level genre (most of "large").

Example:
    >>> fma = load_fma("/data/fma", subset="small")  # doctest: +SKIP
    >>> fma.tracks.head()  # index track_id; artist_id, genre_top, split, subset  # doctest: +SKIP
    >>> fma.audio.missing  # track ids without an mp3, reported, never silently dropped  # doctest: +SKIP
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from retrieval.errors import DataError

__all__ = [
    "FMA_SPLITS",
    "FMA_SUBSETS",
    "FmaAudio",
    "FmaDataset",
    "fma_audio_path",
    "load_fma",
    "locate_fma_audio",
    "read_fma_genres",
    "read_fma_tracks",
]

FMA_SPLITS: tuple[str, ...] = ("training", "validation", "test")
#: The nested subsets, smallest first (each contains the previous ones).
FMA_SUBSETS: tuple[str, ...] = ("small", "medium", "large")
TRACKS_FILE = "tracks.csv"
GENRES_FILE = "genres.csv"
#: ``genres.csv``'s header, as released; ``parent`` 0 marks a top-level genre.
GENRES_COLUMNS: tuple[str, ...] = ("genre_id", "#tracks", "parent", "title", "top_level")
METADATA_DIR = "fma_metadata"
AUDIO_EXTENSION = ".mp3"
ID_DIGITS = 6
SHARD_DIGITS = 3
INDEX_NAME = "track_id"

#: Output column → its ``(group, field)`` pair in the released two-row header.
RELEASED_COLUMNS: dict[str, tuple[str, str]] = {
    "artist_id": ("artist", "id"),
    "genre_top": ("track", "genre_top"),
    "split": ("set", "split"),
    "subset": ("set", "subset"),
}
REQUIRED_FLAT = ("track_id", "artist_id", "genre_top", "split")
OPTIONAL_FLAT = ("subset",)


def _header_rows(path: Path, n: int) -> list[list[str]]:
    """The first ``n`` CSV records of ``path`` (fewer if the file is shorter)."""
    rows: list[list[str]] = []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            rows.append(row)
            if len(rows) == n:
                break
    return rows


def _record_line(path: Path, record: int) -> int:
    """1-based line where CSV record ``record`` (0-based, header records included) starts.

    Records may span lines (quoted newlines in the released file's bios), so the line is counted by a CSV
    reader; only called to report an error.
    """
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        start = 1
        for index, _ in enumerate(reader):
            if index == record:
                return start
            start = reader.line_num + 1
    return start


def _read_released(path: Path, header: list[list[str]]) -> tuple[pd.DataFrame, int]:
    """Read the released two-row-header format; returns (frame with string columns, header record count)."""
    pairs = list(zip(header[0], header[1], strict=False))
    positions: dict[str, int] = {}
    for name, pair in RELEASED_COLUMNS.items():
        if pair in pairs:
            positions[name] = pairs.index(pair)
        elif name != "subset":
            raise DataError(
                path,
                f"no column {pair} in the two-row header; this is not fma_metadata's tracks.csv (or use a flat "
                f"file with columns {', '.join(REQUIRED_FLAT)})",
                line=2,
                key=".".join(pair),
            )
    # A third line "track_id,,,..." names the index column (pandas writes it); skip it when present.
    third = header[2] if len(header) > 2 else []
    n_header = 3 if third and third[0].strip() == INDEX_NAME and not any(c.strip() for c in third[1:]) else 2
    names = ["track_id", *positions]
    frame = pd.read_csv(
        path,
        header=None,
        skiprows=n_header,
        usecols=[0, *positions.values()],
        dtype=str,
        keep_default_na=False,
        encoding="utf-8",
    )
    # usecols returns columns in file order: rename by position.
    order = sorted(zip([0, *positions.values()], names, strict=True))
    frame.columns = [name for _, name in order]
    return frame[names], n_header


def _read_flat(path: Path, header: list[str]) -> pd.DataFrame:
    columns = [c.strip() for c in header]
    missing = [c for c in REQUIRED_FLAT if c not in columns]
    if missing:
        raise DataError(
            path,
            f"missing column(s) {missing}; a flat tracks.csv needs {', '.join(REQUIRED_FLAT)} (+ optional subset), "
            "or use fma_metadata's two-row-header tracks.csv",
            line=1,
            key=missing[0],
        )
    wanted = [*REQUIRED_FLAT, *(c for c in OPTIONAL_FLAT if c in columns)]
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8", skipinitialspace=True)
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame[wanted]


def _bad_rows(path: Path, frame: pd.DataFrame, n_header: int, bad: np.ndarray, key: str, message: str) -> None:
    """Raise a DataError naming the first bad row's line when ``bad`` (bool per row) has any True."""
    if not bad.any():
        return
    first = int(np.flatnonzero(bad)[0])
    value = frame[key].iloc[first]
    raise DataError(
        path,
        f"{int(bad.sum())} row(s) have {message}, first {value!r}; fix or delete those rows",
        line=_record_line(path, n_header + first),
        key=key,
    )


def _integer_column(path: Path, frame: pd.DataFrame, n_header: int, key: str) -> np.ndarray:
    text = frame[key].str.strip()
    valid = text.str.fullmatch(r"\d+").to_numpy(dtype=bool)
    _bad_rows(path, frame, n_header, ~valid, key, f"a {key} that is not a non-negative integer")
    return text.astype(np.int64).to_numpy()


def read_fma_tracks(path: str | Path, subset: str | None = None, require_genre: bool = False) -> pd.DataFrame:
    """Read an FMA ``tracks.csv`` (released two-row-header format or flat).

    Args:
        path: the ``tracks.csv`` file.
        subset: keep only tracks of this subset (``small`` ⊂ ``medium`` ⊂ ``large``); None keeps all.
        require_genre: drop tracks whose ``genre_top`` is empty (needed for genre classification).

    Returns:
        DataFrame indexed by ``track_id`` (int64, unique) with columns ``artist_id`` (int64), ``genre_top``
        (str, ``""`` when the track has none), ``split`` (one of :data:`FMA_SPLITS`) and ``subset`` (one of
        :data:`FMA_SUBSETS`, or ``""`` when the file has no subset column).

    Raises:
        DataError: a missing file or column (named), or a row with a bad track id, artist id, split or
            subset, or a repeated track id: the message names the file, line and column.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found; it is fma_metadata/tracks.csv from https://github.com/mdeff/fma")
    header = _header_rows(path, 3)
    if not header:
        raise DataError(path, "the file is empty; expected FMA's tracks.csv", line=1)
    if header[0] and header[0][0].strip() == INDEX_NAME:
        frame, n_header = _read_flat(path, header[0]), 1
    else:
        if len(header) < 2:
            raise DataError(path, "expected a two-row header (group, field) as in fma_metadata", line=2)
        frame, n_header = _read_released(path, header)
    if "subset" not in frame.columns:
        frame["subset"] = ""

    track_id = _integer_column(path, frame, n_header, "track_id")
    artist_id = _integer_column(path, frame, n_header, "artist_id")
    repeated = pd.Series(track_id).duplicated().to_numpy()
    _bad_rows(path, frame, n_header, repeated, "track_id", "a track_id seen on an earlier row")
    split = frame["split"].str.strip()
    _bad_rows(path, frame, n_header, ~split.isin(FMA_SPLITS).to_numpy(), "split",
              f"a split that is not one of {', '.join(FMA_SPLITS)}")
    subset_values = frame["subset"].str.strip()
    has_subsets = bool((subset_values != "").any())
    if has_subsets:
        _bad_rows(path, frame, n_header, ~subset_values.isin(FMA_SUBSETS).to_numpy(), "subset",
                  f"a subset that is not one of {', '.join(FMA_SUBSETS)}")

    table = pd.DataFrame(
        {
            "artist_id": artist_id,
            "genre_top": frame["genre_top"].str.strip().to_numpy(),
            "split": split.to_numpy(),
            "subset": subset_values.to_numpy(),
        },
        index=pd.Index(track_id, name=INDEX_NAME),
    )
    if subset is not None:
        if subset not in FMA_SUBSETS:
            raise DataError(path, f"unknown subset {subset!r}; choose one of {', '.join(FMA_SUBSETS)}", key="subset")
        if not has_subsets:
            raise DataError(path, "the file has no subset column, so it cannot be filtered by subset", key="subset")
        allowed = FMA_SUBSETS[: FMA_SUBSETS.index(subset) + 1]
        table = table[table["subset"].isin(allowed)]
    if require_genre:
        table = table[table["genre_top"] != ""]
    return table


def fma_audio_path(audio_dir: str | Path, track_id: int) -> Path:
    """Where FMA keeps a track's audio: ``audio_dir/XXX/XXXXXX.mp3`` (6-digit id, folder = first 3 digits).

    Example:
        >>> fma_audio_path("fma_small", 2).as_posix()
        'fma_small/000/000002.mp3'
    """
    name = f"{int(track_id):0{ID_DIGITS}d}"
    return Path(audio_dir) / name[:SHARD_DIGITS] / f"{name}{AUDIO_EXTENSION}"


@dataclass
class FmaAudio:
    """Audio files found for a set of track ids.

    Attributes:
        found: track id → its mp3 path, in the order asked.
        missing: track ids without a file, in the order asked.
    """

    found: dict[int, Path] = field(default_factory=dict)
    missing: tuple[int, ...] = ()


def locate_fma_audio(audio_dir: str | Path, track_ids: Iterable[int]) -> FmaAudio:
    """Find ``audio_dir/XXX/XXXXXX.mp3`` for each track id; ids without a file are listed in ``missing``.

    Raises:
        DataError: ``audio_dir`` is not a folder.
    """
    audio_dir = Path(audio_dir)
    if not audio_dir.is_dir():
        raise DataError(audio_dir, "audio folder not found; unzip fma_<subset>.zip here (folders 000/ … 155/)")
    result = FmaAudio()
    missing = []
    for track_id in track_ids:
        path = fma_audio_path(audio_dir, track_id)
        if path.is_file():
            result.found[int(track_id)] = path
        else:
            missing.append(int(track_id))
    result.missing = tuple(missing)
    return result


@dataclass
class FmaDataset:
    """An FMA folder: its tracks table and where their audio is.

    Attributes:
        root: the FMA folder.
        tracks: :func:`read_fma_tracks`' table (filtered to the subset and, if asked, to tracks with a genre).
        audio_dir: ``root/fma_<subset>``.
        audio: the located files; ``audio.missing`` lists tracks of ``tracks`` without an mp3.
    """

    root: Path
    tracks: pd.DataFrame
    audio_dir: Path
    audio: FmaAudio
    #: :func:`read_fma_genres` of ``genres.csv`` beside ``tracks.csv``, or None when there is none.
    genres: pd.DataFrame | None = None

    def summary(self) -> str:
        """Readable counts: tracks per split, artists, genres, missing audio."""
        sizes = self.tracks["split"].value_counts().reindex(FMA_SPLITS, fill_value=0)
        genres = self.tracks.loc[self.tracks["genre_top"] != "", "genre_top"].nunique()
        return (
            f"FMA {self.root}: {len(self.tracks)} tracks ({', '.join(f'{k} {v}' for k, v in sizes.items())}), "
            f"{self.tracks['artist_id'].nunique()} artists, {genres} top genres, "
            f"{len(self.audio.missing)} without audio in {self.audio_dir}"
        )


def load_fma(root: str | Path, subset: str = "small", require_genre: bool = True) -> FmaDataset:
    """Load an FMA folder: ``tracks.csv`` (in ``root/fma_metadata/`` or ``root/``) and ``root/fma_<subset>/``.

    Tracks without audio stay in ``tracks`` and are listed in ``audio.missing`` (so a caller reports them).

    ``genres.csv`` beside ``tracks.csv`` is read into ``genres`` (:func:`read_fma_genres`) when present.

    Raises:
        DataError: no ``tracks.csv``, a malformed one (file, line, column), no audio folder, or no audio file
            at all for the subset's tracks; a malformed ``genres.csv``.
    """
    root = Path(root)
    candidates = [root / METADATA_DIR / TRACKS_FILE, root / TRACKS_FILE]
    tracks_path = next((p for p in candidates if p.is_file()), None)
    if tracks_path is None:
        raise DataError(candidates[0], f"file not found (nor {candidates[1]}); unzip fma_metadata.zip into {root}")
    tracks = read_fma_tracks(tracks_path, subset=subset, require_genre=require_genre)
    audio_dir = root / f"fma_{subset}"
    audio = locate_fma_audio(audio_dir, tracks.index)
    if len(tracks) and not audio.found:
        raise DataError(
            audio_dir,
            f"none of the {len(tracks)} tracks has an mp3 here (e.g. {fma_audio_path(audio_dir, tracks.index[0])})",
        )
    genres_path = tracks_path.parent / GENRES_FILE
    genres = read_fma_genres(genres_path) if genres_path.is_file() else None
    return FmaDataset(root=root, tracks=tracks, audio_dir=audio_dir, audio=audio, genres=genres)


def read_fma_genres(path: str | Path) -> pd.DataFrame:
    """Read FMA's ``genres.csv``: the 163-genre hierarchy (``genre_id, #tracks, parent, title, top_level``).

    Returns:
        DataFrame indexed by ``genre_id`` (int) with ``n_tracks`` (int), ``parent`` (int, 0 for a top-level
        genre), ``title`` (str), ``top_level`` (int: the root of its branch) and ``path`` (the titles from the
        top-level genre down to this one, e.g. ``("Rock", "Punk")``).

    Raises:
        DataError: missing file or column, a non-integer id, a duplicate id, a parent that is not a genre, a
            cycle, or a ``top_level`` that is not the root of the genre's branch (file, line and column named).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, f"file not found; unzip fma_metadata.zip (it holds {GENRES_FILE})")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DataError(path, f"cannot parse as CSV ({str(error).splitlines()[0]})") from error
    missing = [c for c in GENRES_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(path, f"missing column; expected the header {','.join(GENRES_COLUMNS)}", line=1,
                        key=missing[0])
    numbers = {}
    for column in ("genre_id", "#tracks", "parent", "top_level"):
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() | (values != values.round())
        if bad.any():
            row = int(np.argmax(bad.to_numpy()))
            raise DataError(path, f"{frame[column].iloc[row]!r} is not an integer", line=row + 2, key=column)
        numbers[column] = values.astype(np.int64).to_numpy()
    ids = pd.Index(numbers["genre_id"], name="genre_id")
    checks = [
        (ids.duplicated(), "genre_id", "genre listed twice"),
        (~np.isin(numbers["parent"], [0, *ids]), "parent", "parent is not a genre id of this file (0 = top level)"),
    ]
    for bad, column, message in checks:
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(path, message, line=row + 2, key=column)
    parent = dict(zip(ids, numbers["parent"], strict=True))
    title = dict(zip(ids, frame["title"], strict=True))
    paths, roots = [], []
    for row, genre in enumerate(ids):
        branch = [genre]
        while parent[branch[-1]] != 0:
            if len(branch) > len(ids):
                raise DataError(path, f"genre {genre} is its own ancestor (a cycle of parents)", line=row + 2,
                                key="parent")
            branch.append(parent[branch[-1]])
        paths.append(tuple(title[g] for g in reversed(branch)))
        roots.append(branch[-1])
    wrong = numbers["top_level"] != np.asarray(roots)
    if wrong.any():
        row = int(np.argmax(wrong))
        raise DataError(path, f"top_level {numbers['top_level'][row]} but the branch's root is {roots[row]}",
                        line=row + 2, key="top_level")
    return pd.DataFrame({"n_tracks": numbers["#tracks"], "parent": numbers["parent"],
                         "title": frame["title"].to_numpy(), "top_level": numbers["top_level"], "path": paths},
                        index=ids)
