"""The MSD500 release and MSD metadata files: read, validate and write them exactly.

Formats (see ``data/msd500/README.md``):

- ``track_tags.tsv``: tab-separated, no header, one annotation per line:
  ``song_id, original_tag, cleaned_tag, category, score`` (Last.fm score, 0–100).
- ``selected_tags.tsv``: tab-separated ``tag, category``, optional header line ``tag<TAB>category``.
- ``unique_tracks.txt``: MSD metadata, ``track_id<SEP>song_id<SEP>artist_name<SEP>title`` where the
  separator is literally the five characters ``<SEP>``.

Every reader validates the whole file with vectorised checks and raises :class:`~retrieval.errors.DataError`
naming the file and the 1-based line of the *first* bad line. Every writer goes through
:mod:`retrieval.fileio`, so a failed write leaves no half-written file.

The strict TSV reader and the write checks are :mod:`retrieval.data.tsv` (shared with
:mod:`retrieval.data.taste_profile` and :mod:`retrieval.data.splits`). The four files' readers and writers stay in
this one module (~450 lines) so that each format's reader sits beside its writer and its constants.
"""

from __future__ import annotations

import csv
import io
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

from retrieval.data.tsv import (
    FORBIDDEN_IN_TSV,
    Check,
    check_no_separators,
    first_bad,
    raise_first,
    read_tsv,
    require_columns,
)
from retrieval.errors import DataError
from retrieval.fileio import atomic_path

CATEGORIES: tuple[str, ...] = ("genre", "mood", "instrument", "activity", "language", "location", "decade")
"""The seven canonical MSD500 tag categories."""

CATEGORY_ALIASES: dict[str, str] = {
    "genres": "genre",
    "style": "genre",
    "moods": "mood",
    "mood/character": "mood",
    "character": "mood",
    "instruments": "instrument",
    "instrumentation": "instrument",
    "activities": "activity",
    "theme": "activity",
    "languages": "language",
    "language/origin": "language",
    "locations": "location",
    "place": "location",
    "era": "decade",
    "decades": "decade",
    "year": "decade",
}
"""Other spellings of the categories (keys lower-case). Any ``"<canonical>/<anything>"`` is accepted too,
e.g. ``"activity/theme"`` → ``"activity"``."""

TRACK_TAGS_COLUMNS: tuple[str, ...] = ("song_id", "original_tag", "cleaned_tag", "category", "score")
SELECTED_TAGS_COLUMNS: tuple[str, ...] = ("tag", "category")
UNIQUE_TRACKS_COLUMNS: tuple[str, ...] = ("track_id", "song_id", "artist", "title")
UNIQUE_TRACKS_SEPARATOR = "<SEP>"
SCORE_RANGE: tuple[float, float] = (0.0, 100.0)
"""Last.fm tag scores lie in [0, 100]."""
DEFAULT_MIN_SCORE = 50.0
"""An annotation counts as a label when its score is at least this (the paper's threshold)."""



# --------------------------------------------------------------------------------------------------
# Categories
# --------------------------------------------------------------------------------------------------


def canonical_category(name: str) -> str | None:
    """Map a category spelling onto one of :data:`CATEGORIES`, or None when it is unknown.

    Case and surrounding spaces are ignored; :data:`CATEGORY_ALIASES` are applied; ``"x/y"`` falls back
    to ``"x"`` (the real file writes e.g. ``"mood/character"``).

    Example:
        >>> canonical_category("Language/Origin"), canonical_category("era"), canonical_category("tempo")
        ('language', 'decade', None)
    """
    key = str(name).strip().lower()
    key = CATEGORY_ALIASES.get(key, key)
    if key in CATEGORIES:
        return key
    if "/" in key:
        return canonical_category(key.split("/", 1)[0])
    return None


def canonical_category_column(
    frame: pd.DataFrame, column: str, *, allow_empty: bool = False
) -> tuple[np.ndarray, Check]:
    """:func:`canonical_category` over a parsed file's column, computed once per distinct value.

    With ``allow_empty`` an empty category stays ``""`` (unknown category); otherwise it is an error.

    Returns:
        ``(categories, check)``: the canonical category of every row (object array, ``""`` where
        unknown) and a :data:`Check` flagging unknown ones, for :func:`raise_first` (so the file's first
        bad line is reported whatever the kind of problem).
    """
    codes, uniques = pd.factorize(frame[column])
    mapped = np.array([canonical_category(value) or "" for value in uniques], dtype=object)
    empty = np.array([value.strip() == "" for value in uniques], dtype=bool)
    unknown = (mapped == "") & ~(empty & allow_empty)
    values = frame[column]

    def message(position: int) -> str:
        return (
            f"unknown {column} {values.iloc[position]!r}; allowed: {', '.join(CATEGORIES)} "
            f"(or aliases {', '.join(sorted(CATEGORY_ALIASES))})"
        )

    if not len(codes):
        return np.zeros(0, dtype=object), (np.zeros(0, dtype=bool), message)
    return mapped[codes], (unknown[codes], message)


# --------------------------------------------------------------------------------------------------
# track_tags.tsv
# --------------------------------------------------------------------------------------------------


def read_track_tags(path: str | Path) -> pd.DataFrame:
    """Read MSD500 ``track_tags.tsv``: one Last.fm annotation per line.

    Format: tab-separated, no header (a header line ``song_id<TAB>original_tag<TAB>...`` is tolerated),
    5 fields: ``song_id, original_tag, cleaned_tag, category, score``. Categories are mapped onto
    :data:`CATEGORIES` (see :func:`canonical_category`). Blank lines are skipped.

    Args:
        path: the file.

    Returns:
        DataFrame with columns ``song_id, original_tag, cleaned_tag, category`` (str) and ``score``
        (float64, in [0, 100]), one row per annotation, in file order, default RangeIndex.

    Raises:
        DataError: naming the file and the 1-based line of the first malformed line: wrong field count,
            empty song_id / cleaned_tag, non-numeric or out-of-range score, unknown category.

    Example:
        >>> tags = read_track_tags("msd500/track_tags.tsv")  # doctest: +SKIP
        >>> tags[tags.score >= 50].groupby("cleaned_tag").song_id.nunique()  # doctest: +SKIP
    """
    path = Path(path)
    frame = read_tsv(path, TRACK_TAGS_COLUMNS, header="optional")
    score = pd.to_numeric(frame["score"], errors="coerce").to_numpy(np.float64)
    category, unknown_category = canonical_category_column(frame, "category")
    low, high = SCORE_RANGE
    raise_first(
        path,
        frame.index,
        [
            ((frame["song_id"] == "").to_numpy(), "empty song_id (expected 5 tab-separated fields)"),
            ((frame["cleaned_tag"] == "").to_numpy(), "empty cleaned_tag (expected 5 tab-separated fields)"),
            (
                np.isnan(score),
                lambda i: f"score {frame['score'].iloc[i]!r} is not a number (expected 5 fields)",
            ),
            (
                (score < low) | (score > high),
                lambda i: f"score {score[i]:g} outside the Last.fm range [{low:g}, {high:g}]",
            ),
            unknown_category,
        ],
    )
    out = pd.DataFrame(
        {
            "song_id": frame["song_id"].to_numpy(),
            "original_tag": frame["original_tag"].to_numpy(),
            "cleaned_tag": frame["cleaned_tag"].to_numpy(),
            "category": category,
            "score": score,
        }
    )
    # copy(): own, writable arrays (the parser's arrays can be read-only views under copy-on-write)
    return out.astype({column: str for column in TRACK_TAGS_COLUMNS[:-1]}).copy()


def write_track_tags(df: pd.DataFrame, path: str | Path) -> None:
    """Write annotations in the exact ``track_tags.tsv`` format (no header, columns in canonical order).

    Integral scores are written without a decimal point (``100``, as in the real file). Atomic.

    Raises:
        ValueError: what :func:`read_track_tags` would reject: a missing column, a tab or newline inside
            a field, an empty song_id / cleaned_tag, a score outside [0, 100], an unknown category.
    """
    what = "track_tags.tsv"
    require_columns(df, TRACK_TAGS_COLUMNS, what)
    check_no_separators(df, TRACK_TAGS_COLUMNS[:-1], FORBIDDEN_IN_TSV, what)
    out = df.loc[:, list(TRACK_TAGS_COLUMNS)].copy()
    score = out["score"].to_numpy(np.float64)
    low, high = SCORE_RANGE
    checks = {
        "empty song_id": (out["song_id"].astype(str) == "").to_numpy(),
        "empty cleaned_tag": (out["cleaned_tag"].astype(str) == "").to_numpy(),
        f"score outside [{low:g}, {high:g}]": ~((score >= low) & (score <= high)),
        "unknown category": canonical_category_column(out.astype({"category": str}), "category")[1][0],
    }
    for problem, bad in checks.items():
        position = first_bad(bad)
        if position is not None:
            raise ValueError(
                f"cannot write {what}: {problem} in row {position}: {out.iloc[position].to_dict()}"
            )
    if np.all(score == np.round(score)):
        out["score"] = score.astype(np.int64)
    with atomic_path(path) as tmp:
        out.to_csv(tmp, sep="\t", header=False, index=False, lineterminator="\n", quoting=csv.QUOTE_NONE)


# --------------------------------------------------------------------------------------------------
# selected_tags.tsv
# --------------------------------------------------------------------------------------------------


def read_selected_tags(path: str | Path) -> pd.DataFrame:
    """Read ``selected_tags.tsv``: ``tag, category`` per line, optional header ``tag<TAB>category``.

    Returns:
        DataFrame with columns ``tag, category`` (category canonical, see :func:`canonical_category`),
        in file order.

    Raises:
        DataError: wrong field count, empty tag, unknown category, or a tag listed twice (the second
            line is named).
    """
    return read_tag_table(Path(path), SELECTED_TAGS_COLUMNS, header="optional")


def read_tag_table(
    path: Path, columns: Sequence[str], *, header: str, allow_empty_category: bool = False
) -> pd.DataFrame:
    """Read a ``tag, category`` table (``selected_tags.tsv``, a split folder's ``tags.tsv``); columns after the
    first two (a tag count, a comment, as other releases add) are ignored.

    Returns:
        DataFrame ``tag, category`` in file order, categories canonical (``""`` kept when allowed).

    Raises:
        DataError: too few fields, no tag at all, an empty tag, an unknown category or a tag listed twice (line
            named).
    """
    frame = read_tsv(path, columns, header=header, extra_columns=True)
    if frame.empty:
        raise DataError(path, f"holds no tags; expected one {chr(9).join(columns)!r} line per tag")
    category, unknown_category = canonical_category_column(frame, "category", allow_empty=allow_empty_category)
    raise_first(
        path,
        frame.index,
        [
            ((frame["tag"] == "").to_numpy(), "empty tag"),
            (frame["tag"].duplicated().to_numpy(), "tag listed twice"),
            unknown_category,
        ],
    )
    return pd.DataFrame({"tag": frame["tag"].to_numpy(), "category": category}).astype(str).copy()


def write_selected_tags(df: pd.DataFrame, path: str | Path) -> None:
    """Write ``selected_tags.tsv`` with its header line ``tag<TAB>category``. Atomic.

    Raises:
        ValueError: a missing column, a tab/newline inside a field, or a duplicate tag.
    """
    require_columns(df, SELECTED_TAGS_COLUMNS, "selected_tags.tsv")
    check_no_separators(df, SELECTED_TAGS_COLUMNS, FORBIDDEN_IN_TSV, "selected_tags.tsv")
    duplicated = df["tag"][df["tag"].duplicated()]
    if len(duplicated):
        raise ValueError(f"cannot write selected_tags.tsv: tag {duplicated.iloc[0]!r} appears twice")
    with atomic_path(path) as tmp:
        df.loc[:, list(SELECTED_TAGS_COLUMNS)].to_csv(
            tmp, sep="\t", header=True, index=False, lineterminator="\n", quoting=csv.QUOTE_NONE
        )


# --------------------------------------------------------------------------------------------------
# unique_tracks.txt
# --------------------------------------------------------------------------------------------------


_FIELD_MARK = "\x1f"
"""ASCII unit separator: stands in for ``<SEP>`` so that pandas' C parser can split the lines."""


def _split_unique_tracks_fast(text: str) -> pd.DataFrame | None:
    """Split with the pandas C parser (~3× faster on the 1M-line file); None when the file needs
    :func:`_split_unique_tracks_exact`: the text already holds the stand-in character, or some line does
    not have exactly three separators (a missing field, or ``<SEP>`` inside a title).

    Returns:
        Columns ``track_id, song_id, artist, title``, index = 1-based line numbers, blank lines dropped.
    """
    if _FIELD_MARK in text:
        return None
    text = text.replace("\r\n", "\n")
    n_fields = len(UNIQUE_TRACKS_COLUMNS)
    try:
        with warnings.catch_warnings():
            # a first line with too many fields is a warning (and silent truncation) otherwise
            warnings.simplefilter("error", pd.errors.ParserWarning)
            parts = pd.read_csv(
                io.StringIO(text.replace(UNIQUE_TRACKS_SEPARATOR, _FIELD_MARK)),
                sep=_FIELD_MARK,
                lineterminator="\n",  # only \n ends a line; a stray \r stays inside its title
                header=None,
                names=list(UNIQUE_TRACKS_COLUMNS),
                index_col=False,
                dtype=object,
                quoting=csv.QUOTE_NONE,
                na_filter=False,
                skip_blank_lines=False,
                engine="c",
            )
    except (pd.errors.ParserError, pd.errors.ParserWarning):
        return None
    parts.index = np.arange(1, len(parts) + 1, dtype=np.int64)
    blank = (parts == "").all(axis=1).to_numpy()
    # Missing trailing fields also read as "": only trust the split if every non-blank line had
    # exactly n_fields - 1 separators.
    if text.count(UNIQUE_TRACKS_SEPARATOR) != (n_fields - 1) * int((~blank).sum()):
        return None
    return parts[~blank]


def _split_unique_tracks_exact(text: str) -> pd.DataFrame:
    """Split every line at its first three ``<SEP>``; a line with fewer has NaN in the missing fields.

    Returns:
        Columns ``track_id, song_id, artist, title``, index = 1-based line numbers, blank lines dropped.
    """
    # split("\n") rather than splitlines(): titles may contain \x0b, \x1c, \u2028 ... which
    # splitlines() would treat as line breaks.
    lines = pd.Series(text.split("\n"), dtype=object).str.removesuffix("\r")
    lines.index = np.arange(1, len(lines) + 1, dtype=np.int64)
    lines = lines[lines != ""]
    if lines.empty:
        return pd.DataFrame({column: pd.Series(dtype=object) for column in UNIQUE_TRACKS_COLUMNS})
    parts = lines.str.split(UNIQUE_TRACKS_SEPARATOR, n=len(UNIQUE_TRACKS_COLUMNS) - 1, expand=True)
    parts = parts.reindex(columns=range(len(UNIQUE_TRACKS_COLUMNS)))
    parts.columns = list(UNIQUE_TRACKS_COLUMNS)
    return parts


def read_unique_tracks(path: str | Path) -> pd.DataFrame:
    """Read MSD ``unique_tracks.txt``: ``track_id<SEP>song_id<SEP>artist_name<SEP>title`` per line.

    The separator is the literal 5-character string ``<SEP>``; there is no header. Titles keep any
    character (tabs included; a title containing ``<SEP>`` is kept whole, since the line is split at
    the first three separators). Bytes that are not UTF-8 are replaced by U+FFFD. Blank lines are skipped.

    Returns:
        DataFrame with columns ``track_id, song_id, artist, title`` (str), in file order. A song id may
        appear on several lines (MSD has duplicate tracks of one song).

    Raises:
        DataError: naming the line of the first line with fewer than 4 fields or an empty id.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    text = path.read_text(encoding="utf-8", errors="replace")
    parts = _split_unique_tracks_fast(text)
    if parts is None:
        parts = _split_unique_tracks_exact(text)
    expected = "expected " + UNIQUE_TRACKS_SEPARATOR.join(("track_id", "song_id", "artist_name", "title"))
    raise_first(
        path,
        parts.index,
        [
            (parts["title"].isna().to_numpy(), f"fewer than 4 fields; {expected}"),
            ((parts["track_id"].str.strip() == "").to_numpy(), f"empty track_id; {expected}"),
            ((parts["song_id"].str.strip() == "").to_numpy(), f"empty song_id; {expected}"),
        ],
    )
    return parts.reset_index(drop=True).astype(str).copy()


def write_unique_tracks(df: pd.DataFrame, path: str | Path) -> None:
    """Write ``unique_tracks.txt`` in the MSD ``<SEP>`` format (no header). Atomic.

    Raises:
        ValueError: a missing column, a newline in any field, or ``<SEP>`` inside an id or artist name.
    """
    require_columns(df, UNIQUE_TRACKS_COLUMNS, "unique_tracks.txt")
    check_no_separators(df, UNIQUE_TRACKS_COLUMNS, ["\n", "\r"], "unique_tracks.txt")
    check_no_separators(df, UNIQUE_TRACKS_COLUMNS[:-1], [UNIQUE_TRACKS_SEPARATOR], "unique_tracks.txt")
    columns = [df[column].astype(str) for column in UNIQUE_TRACKS_COLUMNS]
    joined = columns[0]
    for column in columns[1:]:
        joined = joined + UNIQUE_TRACKS_SEPARATOR + column
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as handle:
        handle.write("".join(line + "\n" for line in joined.tolist()))


# --------------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------------


def _unique_index(values: Sequence[str], what: str) -> pd.Index:
    index = pd.Index(list(values), dtype=object)
    if not index.is_unique:
        raise ValueError(f"{what} must be unique; {index[index.duplicated()][0]!r} appears twice")
    return index


def label_matrix(
    track_tags: pd.DataFrame,
    song_ids: Sequence[str],
    tags: Sequence[str],
    min_score: float = DEFAULT_MIN_SCORE,
) -> sparse.csr_matrix:
    """Binary track × tag labels: ``L[i, j] = any(score(song_ids[i], tags[j]) >= min_score)``.

    Tags are matched against the ``cleaned_tag`` column exactly (case-sensitive). Annotations for songs
    or tags outside the given lists are ignored; repeated annotations count once.

    Args:
        track_tags: annotations as returned by :func:`read_track_tags`.
        song_ids: row order (unique).
        tags: column order (unique).
        min_score: an annotation is a label when its score ≥ this.

    Returns:
        ``scipy.sparse.csr_matrix`` of shape ``(len(song_ids), len(tags))``, dtype bool.

    Example:
        >>> L = label_matrix(tags_df, ["SOA", "SOB"], ["rock", "jazz"])  # doctest: +SKIP
        >>> L.toarray()  # doctest: +SKIP
        array([[ True, False], [False,  True]])
    """
    rows_index = _unique_index(song_ids, "song_ids")
    cols_index = _unique_index(tags, "tags")
    kept = track_tags.loc[track_tags["score"].to_numpy(np.float64) >= min_score]
    rows = rows_index.get_indexer(kept["song_id"])
    cols = cols_index.get_indexer(kept["cleaned_tag"])
    ok = (rows >= 0) & (cols >= 0)
    shape = (len(rows_index), len(cols_index))
    counts = sparse.coo_matrix(
        (np.ones(int(ok.sum()), dtype=np.int32), (rows[ok], cols[ok])), shape=shape
    ).tocsr()  # duplicates are summed here...
    labels = counts.astype(bool)  # ...and any positive count becomes True
    labels.eliminate_zeros()
    return labels
