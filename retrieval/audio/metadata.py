"""What a file says about itself: title, artist, album, genre and year from its tags (ID3, Vorbis comments, MP4
atoms, APE, ASF), read with mutagen.

Example:
    >>> read_file_tags("song.mp3")                                # doctest: +SKIP
    FileTags(title='So What', artist='Miles Davis', album='Kind of Blue', genre='Jazz', year='1959')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FileTags", "read_file_tags"]

# mutagen's "easy" keys: the same names for ID3 (EasyID3), MP4 (EasyMP4), Vorbis comments, APE and ASF.
_KEYS = {"title": "title", "artist": "artist", "album": "album", "genre": "genre", "year": "date"}
_YEAR = re.compile(r"\b(\d{4})\b")


@dataclass(frozen=True)
class FileTags:
    """The tags a catalogue shows; None where the file has none."""

    title: str | None = None
    artist: str | None = None
    album: str | None = None
    genre: str | None = None
    year: str | None = None


def read_file_tags(path: str | Path) -> FileTags:
    """The title / artist / album / genre / year tags of an audio file (the first value of each; the year is the
    first four-digit number of its date tag, "2004-05-01" → "2004").

    A file without tags, or in a format mutagen does not know, gives an empty :class:`FileTags`; so does a file
    whose tags are unreadable (its audio may still decode: the indexer reports what it cannot decode).

    Raises:
        ImportError: mutagen is not installed (``pip install 'retrieval[formats]'``).
    """
    import mutagen

    try:
        tagged = mutagen.File(str(path), easy=True)
    except (mutagen.MutagenError, OSError, ValueError):
        return FileTags()
    tags = getattr(tagged, "tags", None)
    if not tags:
        return FileTags()
    values = {}
    for field, key in _KEYS.items():
        try:
            found = tags.get(key)
        except (KeyError, ValueError):  # EasyID3 raises for keys its registry lacks in some files
            found = None
        text = str(found[0] if isinstance(found, list) and found else found or "").strip()
        # a tab or newline would break the catalogue's rows (catalogue.tsv is unquoted)
        values[field] = " ".join(text.split()) or None
    if values["year"] is not None:
        year = _YEAR.search(values["year"])
        values["year"] = year.group(1) if year else None
    return FileTags(**values)
