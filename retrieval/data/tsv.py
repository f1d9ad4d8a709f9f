"""Strict tab-separated reading, shared by the MSD500, Taste Profile and split readers, and the checks writers run.

Readers validate the whole file and raise :class:`~retrieval.errors.DataError` naming the file and the 1-based line
of the *first* bad line (:func:`raise_first`); a field count that differs from the expected columns is reported with
its line, never silently padded or cut.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from retrieval.errors import DataError

HeaderMode = Literal["none", "optional", "required"]

#: Characters no written TSV field may contain (they would split or end the line).
FORBIDDEN_IN_TSV = "\t\n\r"
_PARSER_ERROR = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def _first_content_line(path: Path) -> tuple[int, str] | None:
    """Return (1-based line number, text) of the first non-blank line, or None for an empty file."""
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as handle:
        for number, line in enumerate(handle, start=1):
            text = line.rstrip("\r\n")
            if text.strip():
                return number, text
    return None


def iter_tsv(
    path: str | Path,
    columns: Sequence[str],
    *,
    header: HeaderMode = "none",
    chunk_rows: int | None = None,
    dtype: Mapping[str, object] | None = None,
    extra_columns: bool = False,
) -> Iterator[pd.DataFrame]:
    """Stream a tab-separated file whose every line must have exactly ``len(columns)`` fields.

    The pandas C parser does the work; quoting is off (quotes are ordinary characters) and no value is
    turned into NaN, so a missing trailing field reads as ``""``. Fully blank lines are skipped.
    Each chunk's index is the 1-based line number of its rows in the file, so callers can name the
    line of any value they reject.

    Args:
        path: the file.
        columns: expected column names, in file order.
        header: ``"none"`` (no header line), ``"optional"`` (the first non-blank line is skipped when its
            fields equal ``columns``, case-insensitively) or ``"required"`` (it must equal ``columns``).
        chunk_rows: rows per chunk; None reads everything as one chunk.
        dtype: per-column dtype overrides (default ``object`` holding ``str``), e.g.
            ``{"play_count": "category"}`` to parse a low-cardinality column without one Python string
            per row.
        extra_columns: tolerate fields after ``columns`` (as many as the first line has; they are dropped).

    Yields:
        DataFrames with ``columns``, index = line numbers (int64).

    Raises:
        DataError: missing file, missing/wrong header, or a line with more fields than ``columns``
            (the first such line is named).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    columns = list(columns)
    header_text = "\t".join(columns)
    first = _first_content_line(path)
    if first is None:
        if header == "required":
            raise DataError(path, f"file is empty; expected the header line {header_text!r}")
        return
    first_line, first_text = first
    first_fields = first_text.split("\t")
    extra = [f"_extra{i}" for i in range(len(first_fields) - len(columns))] if extra_columns else []
    if extra:
        first_fields = first_fields[: len(columns)]
    if len(first_fields) != len(columns):
        raise DataError(
            path,
            f"expected {len(columns)} tab-separated fields ({', '.join(columns)}), found {len(first_fields)}",
            line=first_line,
        )
    is_header = [field.strip().lower() for field in first_fields] == [c.lower() for c in columns]
    if header == "required" and not is_header:
        raise DataError(
            path, f"expected the header line {header_text!r}, found {first_text!r}", line=first_line
        )
    skip = first_line if (is_header and header != "none") else 0
    types: dict[str, object] = {column: object for column in columns + extra}
    types.update(dtype or {})
    try:
        # Without chunk_rows read_csv parses the whole file here; with it, while iterating below.
        reader = pd.read_csv(
            path,
            sep="\t",
            header=None,
            names=columns + extra,
            usecols=columns if extra else None,
            index_col=False,
            dtype=types,
            quoting=csv.QUOTE_NONE,
            na_filter=False,
            skip_blank_lines=False,  # keeps one row per physical line, so row position → line number
            skiprows=skip,
            encoding="utf-8",
            encoding_errors="replace",
            engine="c",
            chunksize=chunk_rows,
        )
        chunks = [reader] if chunk_rows is None else reader
        for chunk in chunks:
            chunk.index = chunk.index.to_numpy(np.int64) + skip + 1
            blank = np.ones(len(chunk), dtype=bool)
            for column in columns:
                values = chunk[column]
                if isinstance(values.dtype, pd.CategoricalDtype):
                    blank &= values.isna().to_numpy() | (values.astype(object) == "").to_numpy()
                else:
                    blank &= (values == "").to_numpy()
            yield chunk[~blank] if blank.any() else chunk
    except pd.errors.ParserError as error:
        match = _PARSER_ERROR.search(str(error))
        if match is None:
            raise DataError(path, f"cannot parse as tab-separated {', '.join(columns)}: {error}") from error
        raise DataError(
            path,
            f"expected {len(columns)} tab-separated fields ({', '.join(columns)}), found {match.group(3)}",
            line=int(match.group(2)),
        ) from error


def read_tsv(path: str | Path, columns: Sequence[str], *, header: HeaderMode = "none",
             extra_columns: bool = False) -> pd.DataFrame:
    """Read a whole strict tab-separated file at once (see :func:`iter_tsv`); index = line numbers."""
    chunks = list(iter_tsv(path, columns, header=header, extra_columns=extra_columns))
    if not chunks:
        empty = {column: pd.Series(dtype=object) for column in columns}
        return pd.DataFrame(empty, index=pd.Index([], dtype=np.int64))
    return chunks[0]


Check = tuple[np.ndarray, "str | Callable[[int], str]"]
"""A boolean mask over rows and the error message (or a function of the bad row's position giving it)."""


def raise_first(path: str | Path, lines: pd.Index, checks: Sequence[Check]) -> None:
    """Raise a DataError for the earliest row that fails any check; do nothing when all pass.

    Vectorised validation: each check is a boolean mask over all rows, so the whole file is checked
    without a Python loop over rows, yet the message names the first bad line of the file.

    Args:
        path: the file, for the message.
        lines: line number of every row (the index from :func:`iter_tsv`).
        checks: ``(bad, message)`` pairs, ``bad`` a boolean mask over the rows; ``message`` is a string
            or a function of the bad row's position (to quote the offending value).
    """
    best: tuple[int, str | Callable[[int], str]] | None = None
    for bad, message in checks:
        position = first_bad(bad)
        if position is not None and (best is None or position < best[0]):
            best = (position, message)
    if best is not None:
        position, message = best
        text = message(position) if callable(message) else message
        raise DataError(path, text, line=int(lines[position]))


def first_bad(bad: np.ndarray) -> int | None:
    """Position of the first True in a boolean mask, or None."""
    positions = np.flatnonzero(bad)
    return int(positions[0]) if len(positions) else None


def check_no_separators(
    df: pd.DataFrame, columns: Sequence[str], forbidden: Sequence[str], what: str
) -> None:
    """Raise ValueError when a field to be written contains a separator (it would corrupt the file)."""
    pattern = "|".join(re.escape(token) for token in forbidden)
    for column in columns:
        values = df[column].astype(str)
        bad = values.str.contains(pattern, regex=True).to_numpy()
        position = first_bad(bad)
        if position is not None:
            raise ValueError(
                f"cannot write {what}: row {position} column {column!r} = {values.iloc[position]!r} contains "
                f"one of {list(forbidden)!r}; clean the value first"
            )


def require_columns(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [column for column in columns if column not in df.columns]
    if missing:
        raise ValueError(f"cannot write {what}: missing columns {missing}; expected {list(columns)}")
