"""File input and output the whole library shares: atomic writes (files and folders) and a safe ``.npy`` reader.

Atomic writes: write to a temporary file (or folder) in the destination's folder, flush and fsync it, then
``os.replace`` it onto the destination (atomic on POSIX). An exception inside the block removes the temporary
file and leaves any previous version of the destination untouched.

- :func:`atomic_path`, :func:`atomic_open`, :func:`write_text_atomic`: one file.
- :func:`atomic_folder`: a whole folder (an index), swapped in only once complete.
- :func:`load_npy`: ``np.load`` that never unpickles and names the file in a :class:`DataError`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np

from retrieval.errors import DataError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    Use for writers that want a file name (``np.save``, ``torch.save``, ``soundfile.write``, annoy).

    Example:
        >>> with atomic_path("out.npy") as tmp:  # doctest: +SKIP
        ...     np.save(tmp, array)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600 files; give the result the permissions an ordinary open() would (0666 & ~umask).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file for writing that replaces ``path`` only when the block succeeds."""
    if "b" in mode:
        encoding = None
    with atomic_path(path) as tmp, open(tmp, mode, encoding=encoding) as handle:
        yield handle


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_open(path) as handle:
        handle.write(text)


@contextlib.contextmanager
def atomic_folder(folder: str | Path) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``folder``; when the block succeeds, it becomes ``folder``.

    Every file in it is fsynced, then the old folder (if any) is moved aside, the new one renamed into place and
    the old one deleted: the only window without ``folder`` is between two renames (microseconds). If the block
    raises (even ``KeyboardInterrupt``), the temporary folder is removed and ``folder`` is untouched. The caller
    decides whether an existing ``folder`` may be replaced at all.

    Example:
        >>> with atomic_folder("index") as tmp:  # doctest: +SKIP
        ...     np.save(tmp / "ids.npy", ids)
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        yield tmp
        _fsync_tree(tmp)
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent))
            os.replace(folder, old)  # onto the empty placeholder made by mkdtemp
            try:
                os.replace(tmp, folder)
            except BaseException:
                os.replace(old, folder)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
        _fsync(folder.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _fsync_tree(folder: Path) -> None:
    """Flush every file in ``folder`` (and the folder entry list) to disk before it is renamed into place."""
    for path in folder.iterdir():
        _fsync(path)
    _fsync(folder)


def _fsync(path: Path) -> None:
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def load_npy(path: str | Path, *, mmap: bool = False, advice: str = "") -> np.ndarray:
    """Read a ``.npy`` array without ever unpickling (``allow_pickle=False``).

    Args:
        path: the file.
        mmap: memory-map it read-only (``mmap_mode="r"``) instead of reading it into memory.
        advice: what the user should do, appended to the error message (e.g. ``"; rebuild the index"``).

    Raises:
        DataError: the file is missing, not a ``.npy`` array, truncated, or holds pickled objects; the message
            names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, f"file not found{advice}")
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except (OSError, ValueError, EOFError) as error:
        raise DataError(path, f"not a readable .npy array; pickled objects are refused ({error}){advice}") from error
