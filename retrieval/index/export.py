"""Search results out: an M3U playlist any player opens, or a CSV table (``retrieval search ... --m3u/--csv``).

Example:
    >>> write_m3u(retriever.search("dreamy"), "dreamy.m3u")    # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

from retrieval.fileio import write_text_atomic
from retrieval.index.base import Hit
from retrieval.index.catalogue import TAG_SEPARATOR

__all__ = ["CSV_COLUMNS", "write_csv", "write_m3u"]

#: The columns of :func:`write_csv`, in order (tags joined with "|", as in catalogue.tsv).
CSV_COLUMNS = ("rank", "track_id", "score", "title", "artist", "album", "genre", "year", "tags", "audio_path")


def write_m3u(hits: Sequence[Hit], path: str | os.PathLike) -> int:
    """Write the hits that have an audio file as an extended M3U playlist (UTF-8, absolute paths, best first),
    atomically.

    Returns:
        How many entries were written (hits without an audio file are left out: a playlist lists files).
    """
    lines = ["#EXTM3U"]
    for hit in hits:
        if hit.audio_path is None:
            continue
        name = " - ".join(part for part in (hit.artist, hit.title) if part) or hit.track_id
        lines += [f"#EXTINF:-1,{' '.join(name.split())}", str(Path(hit.audio_path).resolve())]
    write_text_atomic(path, "\n".join(lines) + "\n")
    return (len(lines) - 1) // 2


def write_csv(hits: Sequence[Hit], path: str | os.PathLike) -> int:
    """Write the hits as a CSV table with :data:`CSV_COLUMNS`, atomically; returns the number of rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for rank, hit in enumerate(hits, 1):
        writer.writerow([rank, hit.track_id, f"{hit.score:.6f}", hit.title or "", hit.artist or "", hit.album or "",
                         hit.genre or "", hit.year or "", TAG_SEPARATOR.join(hit.tags), hit.audio_path or ""])
    write_text_atomic(path, buffer.getvalue())
    return len(hits)
