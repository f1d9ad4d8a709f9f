"""Find each track's audio (or precomputed mel) file under a folder, flat or MSD-sharded.

Three layouts, mixed freely::

    root/TRABRMJ128E0780E42.mp3             flat
    root/A/B/R/TRABRMJ128E0780E42.mp3       sharded: folders are id[2], id[3], id[4] (MSD's own layout)
    root/8/9/8947470.clip.mp3               the 7digital preview dump, named by 7digital id (``.clip`` ignored;
                                            see :mod:`retrieval.data.seven_digital` for the id map)

Files may be named by the catalogue id (an MSD song id, ``SO...``) or by another id of the same track (its
MSD track ids, ``TR...``, from ``unique_tracks.txt``), given as ``aliases``. The folder is scanned once with
``os.scandir`` into an ``id → path`` dict, so looking up 10⁵ ids costs 10⁵ dict lookups, not 10⁵ ``stat``
calls per extension and layout.

Example::

    locator = AudioLocator("corpus/audio", aliases={"SOMZWCG12A8C13C480": ["TRAAAAW128F429D538"]})
    result = locator.locate(song_ids)      # result.found: {song_id: Path}, result.missing: [song_id, ...]
    if result.missing:
        print(f"{len(result.missing)} tracks have no audio under {locator.root}")
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from retrieval.errors import MissingFileError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
"""Audio file suffixes looked for by default (the formats ``retrieval.audio`` decodes)."""

SHARD_POSITIONS = (2, 3, 4)
"""Characters of the id (0-based) naming the three shard folders: TRABRMJ… → A/B/R/, as in the MSD itself
(whose TRAAABD128F429CF47.h5 lies in data/A/A/A/)."""

CLIP_SUFFIX = ".clip"
"""What the 7digital previews carry before their suffix (``8947470.clip.mp3``); the id is the part before it."""

MAX_DEPTH = len(SHARD_POSITIONS)
"""Folder levels below ``root`` that are scanned: the flat files and the three shard levels."""


def sharded_path(root: str | Path, track_id: str, ext: str) -> Path:
    """Where the sharded layout stores ``track_id``: ``root/id[2]/id[3]/id[4]/<id><ext>``.

    Args:
        root: the audio (or mel) folder.
        track_id: an MSD id such as ``TRAAABD128F429CF47`` (at least 5 characters).
        ext: the suffix, with or without its dot (``".mp3"`` or ``"mp3"``).

    Example:
        >>> sharded_path("audio", "TRABRMJ128E0780E42", ".mp3").as_posix()
        'audio/A/B/R/TRABRMJ128E0780E42.mp3'
    """
    if len(track_id) <= max(SHARD_POSITIONS) or any(sep in track_id for sep in ("/", "\\")):
        raise ValueError(
            f"cannot shard id {track_id!r}: need at least {max(SHARD_POSITIONS) + 1} characters and no path "
            "separators"
        )
    suffix = ext if ext.startswith(".") else f".{ext}"
    return Path(root).joinpath(*(track_id[i] for i in SHARD_POSITIONS), f"{track_id}{suffix}")


@dataclass
class LocateResult:
    """Files found for a list of ids, and the ids without one (in input order, never dropped silently).

    Attributes:
        found: requested id → its file.
        missing: requested ids with no file under the root, neither by their own name nor by an alias.
    """

    found: dict[str, Path] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


class AudioLocator:
    """An index of the files under ``root`` by id (file name without suffix), built once at construction.

    Looks at ``root`` and up to three folder levels below it (the sharded layout; any folder names are
    accepted, so a file filed under the wrong shard is still found). Hidden files (``.name``, e.g. the
    temporary files of an interrupted atomic write) are skipped. When one id has several files (two formats,
    or both layouts), the extension listed first in ``extensions`` wins, then the shallower, then the
    alphabetically first path; the others are listed in ``duplicates``.

    Args:
        root: the audio folder (``DIR/audio``) or the mel folder (``DIR/mel`` with ``extensions=(".npy",)``).
        extensions: file suffixes to index, case-insensitive, in order of preference.
        aliases: catalogue id → other ids its file may be named by (song id → its track ids). The catalogue
            id's own file is preferred; then the aliases in order.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
    """

    def __init__(
        self,
        root: str | Path,
        extensions: Sequence[str] = AUDIO_EXTENSIONS,
        aliases: Mapping[str, Sequence[str]] | None = None,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise MissingFileError(self.root, "no such folder; point the locator at the audio (or mel) folder")
        self.extensions = tuple(
            ext.lower() if ext.startswith(".") else f".{ext.lower()}" for ext in extensions
        )
        if not self.extensions:
            raise ValueError("extensions must name at least one file suffix, e.g. ('.mp3',)")
        self.aliases: Mapping[str, Sequence[str]] = aliases or {}
        self._paths, self.duplicates = self._scan()

    def _scan(self) -> tuple[dict[str, Path], dict[str, list[Path]]]:
        """Walk ``root`` (depth ≤ MAX_DEPTH) once; return id → preferred path and id → the other paths."""
        rank = {ext: i for i, ext in enumerate(self.extensions)}
        candidates: dict[str, list[tuple[int, int, str]]] = {}
        pending = [(str(self.root), 0)]
        while pending:
            folder, depth = pending.pop()
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    if entry.is_dir():
                        if depth < MAX_DEPTH:
                            pending.append((entry.path, depth + 1))
                        continue
                    stem, ext = os.path.splitext(entry.name)
                    ext = ext.lower()
                    stem = stem.removesuffix(CLIP_SUFFIX)
                    if ext in rank and entry.is_file():
                        candidates.setdefault(stem, []).append((rank[ext], depth, entry.path))
        paths: dict[str, Path] = {}
        duplicates: dict[str, list[Path]] = {}
        for track_id, options in candidates.items():
            options.sort()
            paths[track_id] = Path(options[0][2])
            if len(options) > 1:
                duplicates[track_id] = [Path(option[2]) for option in options[1:]]
        return paths, duplicates

    def find(self, track_id: str) -> Path | None:
        """The file of ``track_id`` (by its own name, else by its aliases in order), or ``None``."""
        path = self._paths.get(track_id)
        if path is not None:
            return path
        for alias in self.aliases.get(track_id, ()):
            path = self._paths.get(alias)
            if path is not None:
                return path
        return None

    def locate(self, track_ids: Iterable[str]) -> LocateResult:
        """Files for many ids; ids without a file are listed in ``missing`` (input order, no duplicates)."""
        result = LocateResult()
        missing: set[str] = set()
        for track_id in track_ids:
            if track_id in result.found or track_id in missing:
                continue
            path = self.find(track_id)
            if path is not None:
                result.found[track_id] = path
            else:
                missing.add(track_id)
                result.missing.append(track_id)
        return result

    def __contains__(self, track_id: object) -> bool:
        return isinstance(track_id, str) and self.find(track_id) is not None

    def __len__(self) -> int:
        """Number of distinct file ids indexed under ``root`` (aliases not counted)."""
        return len(self._paths)

    def __repr__(self) -> str:
        return f"AudioLocator(root={str(self.root)!r}, files={len(self)}, extensions={self.extensions})"
