"""File input and output the whole library shares: atomic writes (files and folders) and a safe ``.npy`` reader.

Atomic writes: write to a temporary file (or folder) in the destination's folder, flush and fsync it, then
``os.replace`` it onto the destination (atomic on POSIX). An exception inside the block removes the temporary
file and leaves any previous version of the destination untouched.

- :func:`atomic_path`, :func:`atomic_open`, :func:`write_text_atomic`: one file.
- :func:`atomic_folder`: a whole folder (an index), swapped in only once complete.
- :func:`folder_lock`: an exclusive ``fcntl`` lock on a destination, so two writers never race on one path.
- :func:`load_npy`: ``np.load`` that never unpickles and names the file in a :class:`DataError` (a git-lfs pointer
  left in place of the array is named as such).

An operating-system error while writing (disk full, permission denied, read-only folder) becomes a
:class:`~retrieval.errors.FileSystemError` naming the destination, the reason and the remedy.

Fault injection: ``RETRIEVAL_FAULT=<step>`` kills the process (SIGKILL, as a power cut would) at that step of a
write — :data:`FAULT_STEPS` lists them — so ``tests/reliability`` can check that nothing is lost or left behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np

from retrieval.errors import DataError, FileSystemError, RetrievalError, os_error

#: The environment variable naming the write step at which :func:`fault_point` kills the process.
FAULT_VARIABLE = "RETRIEVAL_FAULT"
#: The steps a write passes, in order: a file complete before its rename; a folder complete before it is swapped
#: in; a folder swapped in before the old one is deleted.
FAULT_STEPS = ("file-before-rename", "folder-before-exchange", "folder-after-exchange")
#: What temporary and replaced copies are called: ``.<name>.<random>.tmp[...]`` and ``.<name>.<random>.old``.
_TMP, _OLD = ".tmp", ".old"
# renameat2's flag for an atomic exchange of two paths (linux/fs.h) and "relative to the working directory".
_RENAME_EXCHANGE, _AT_FDCWD = 2, -100
# Locks this process holds: path → [file descriptor, depth], so a writer may re-enter its own lock.
_HELD: dict[str, list[int]] = {}
# Attempts at a lock whose file is deleted and re-created under us by other writers.
_LOCK_TRIES = 5


def fault_point(step: str) -> None:
    """Kill this process with SIGKILL when ``$RETRIEVAL_FAULT`` names ``step`` (see :data:`FAULT_STEPS`)."""
    if os.environ.get(FAULT_VARIABLE) == step:
        os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    Use for writers that want a file name (``np.save``, ``torch.save``, ``soundfile.write``, annoy).

    Example:
        >>> with atomic_path("out.npy") as tmp:  # doctest: +SKIP
        ...     np.save(tmp, array)
    """
    path = Path(path)
    make_folder(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TMP + path.suffix, dir=path.parent)
    except OSError as error:
        raise os_error(error, path.parent) from error
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
        fault_point("file-before-rename")
        os.replace(tmp_path, path)
    except OSError as error:
        if isinstance(error, RetrievalError) or error.filename not in (None, str(tmp_path)):
            raise  # already named, or about another file the block read
        raise os_error(error, path) from error
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


def make_folder(folder: str | Path, what: str = "folder") -> Path:
    """``mkdir -p folder``, or a :class:`~retrieval.errors.FileSystemError` naming it (a file in the way, no
    permission, a read-only file system); ``what`` names the folder's role in that message (e.g. "--cache-dir")."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError as error:  # mkdir says "exists" when a file, not a folder, is there
        raise FileSystemError(folder, reason=f"the {what} path is a file, not a folder",
                              remedy="remove or rename that file, or choose another path") from error
    except OSError as error:
        raise os_error(error, folder) from error
    return folder


@contextlib.contextmanager
def folder_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on destination ``path`` (a file or folder) for the block.

    The lock is ``fcntl.flock`` on the hidden sibling ``.<name>.lock``, deleted when the block ends (a locker
    that finds its file deleted or replaced under it tries again, so two writers never both hold one). The
    kernel releases the lock when the process dies, so a killed writer never blocks the next one. Re-entrant
    within one process.

    Raises:
        FileSystemError: another process holds the lock (it is writing ``path``), or the lock cannot be made.
    """
    path = Path(path).absolute()
    key = str(path)
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield
        finally:
            _HELD[key][1] -= 1
        return
    make_folder(path.parent)
    lock = path.parent / f".{path.name}.lock"
    fd = _acquire(lock, path)
    _HELD[key] = [fd, 1]
    try:
        yield
    finally:
        del _HELD[key]
        with contextlib.suppress(OSError):
            os.unlink(lock)  # while still holding it: a waiting locker then sees a replaced file and retries
        os.close(fd)  # releases the lock


def _acquire(lock: Path, path: Path) -> int:
    """Open and ``flock`` ``lock`` without waiting; the descriptor holding it."""
    import fcntl

    for _ in range(_LOCK_TRIES):
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise os_error(error, lock) from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EACCES):
                raise FileSystemError(path, reason="another process is writing it (its lock is held)",
                                      remedy="wait for that process to finish, or choose another path") from error
            raise os_error(error, lock) from error
        try:
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # the holder deleted this file as we locked it: lock the new one
    raise FileSystemError(path, reason="its lock keeps changing hands", remedy="run the command again")


def stale_copies(path: str | Path) -> list[Path]:
    """The temporary and replaced copies of ``path`` that an interrupted write left beside it."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    # tempfile's random part has no dots, so ".index.json.x1.tmp" (a copy of "index.json") is not one of "index"'s
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[A-Za-z0-9_]+({re.escape(_TMP)}.*|{re.escape(_OLD)})")
    return sorted(p for p in path.parent.iterdir() if pattern.fullmatch(p.name))


def sweep_stale_copies(path: str | Path) -> list[Path]:
    """Delete :func:`stale_copies` of ``path`` (call it holding :func:`folder_lock`, so none is in use);
    returns what was removed."""
    removed = stale_copies(path)
    for stale in removed:
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
    return removed


def sweep_old_temporaries(folder: str | Path, age_s: float = 3600.0) -> list[Path]:
    """Delete the hidden temporary files (``.<name>.<random>.tmp…``) in a folder that several processes share
    (an embedding cache) once they are ``age_s`` old: a live write takes milliseconds, so an hour-old one was
    killed. Returns what was removed."""
    import time

    pattern = re.compile(rf"\.[^/]+\.[A-Za-z0-9_]+{re.escape(_TMP)}.*")
    limit = time.time() - age_s
    removed = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if pattern.fullmatch(entry.name) and entry.is_file() and entry.stat().st_mtime < limit:
                Path(entry.path).unlink(missing_ok=True)
                removed.append(Path(entry.path))
    return removed


@functools.cache
def _renameat2():
    """libc's ``renameat2`` (Linux, glibc ≥ 2.28), or None where the OS has none."""
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return function


def exchange(a: str | Path, b: str | Path) -> bool:
    """Atomically swap two existing paths (``renameat2(RENAME_EXCHANGE)``); False where the OS or the file system
    cannot (nothing is changed then)."""
    function = _renameat2()
    if function is None:
        return False
    if function(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    number = ctypes.get_errno()
    if number in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise os_error(OSError(number, os.strerror(number)), b)


@contextlib.contextmanager
def atomic_folder(folder: str | Path) -> Iterator[Path]:
    """Yield an empty temporary sibling of ``folder``; when the block succeeds, it becomes ``folder``.

    Under :func:`folder_lock` (a second writer is refused, not raced), stale copies of earlier interrupted writes
    are swept first. Every file is fsynced, then the new folder is swapped in with one atomic exchange
    (``renameat2(RENAME_EXCHANGE)``), so at every moment ``folder`` is a complete old or new version; the old
    one, now at the temporary name, is deleted. Where the OS cannot exchange, ``folder`` is a symbolic link to a
    hidden sibling and the link is replaced atomically (a real folder already there is first moved aside: the
    only window without ``folder``, between two renames). If the block raises (even ``KeyboardInterrupt``), the
    temporary folder is removed and ``folder`` is untouched. The caller decides whether an existing ``folder``
    may be replaced at all.

    Example:
        >>> with atomic_folder("index") as tmp:  # doctest: +SKIP
        ...     np.save(tmp / "ids.npy", ids)
    """
    folder = Path(folder)
    with folder_lock(folder):
        sweep_stale_copies(folder)
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=_TMP, dir=folder.parent))
        except OSError as error:
            raise os_error(error, folder.parent) from error
        try:
            yield tmp
            _fsync_tree(tmp)
            fault_point("folder-before-exchange")
            _swap_in(tmp, folder)
            _fsync(folder.parent)
        except OSError as error:
            raise os_error(error, folder) from error
        finally:
            if tmp.exists() or tmp.is_symlink():
                shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(tmp: Path, folder: Path) -> None:
    """Make the complete folder ``tmp`` become ``folder``; whatever was at ``folder`` ends up deleted."""
    if not folder.exists() and not folder.is_symlink():
        os.replace(tmp, folder)
        return
    if not folder.is_symlink() and exchange(tmp, folder):
        fault_point("folder-after-exchange")
        shutil.rmtree(tmp, ignore_errors=True)  # the old version, now at the temporary name
        return
    # No exchange: keep the data in a hidden sibling and flip a symbolic link onto it.
    data = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".data", dir=folder.parent))
    os.replace(tmp, data)  # onto the empty placeholder
    link = folder.parent / f".{folder.name}.{data.name}{_TMP}"
    os.symlink(data.name, link)
    old_target = folder.parent / os.readlink(folder) if folder.is_symlink() else None
    if old_target is None:  # a real folder: move it aside (the one window without ``folder``)
        old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=_OLD, dir=folder.parent))
        os.replace(folder, old)
        old_target = old
    os.replace(link, folder)
    fault_point("folder-after-exchange")
    shutil.rmtree(old_target, ignore_errors=True)


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
    if is_lfs_pointer(path):
        raise DataError(path, "is a git-lfs pointer, not the array itself (the repository was cloned without its "
                        "large files): run `git lfs pull` in that repository")
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except (OSError, ValueError, EOFError) as error:
        raise DataError(path, f"not a readable .npy array; pickled objects are refused ({error}){advice}") from error


#: How a git-lfs pointer file starts (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md).
LFS_POINTER_START = b"version https://git-lfs.github.com/spec/"


def is_lfs_pointer(path: str | Path) -> bool:
    """True when ``path`` is a git-lfs pointer (a small text file) standing in for the real file."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(LFS_POINTER_START)) == LFS_POINTER_START
    except OSError:
        return False
