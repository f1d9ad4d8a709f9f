"""Exceptions the library raises for bad input.

Every error about a file names the file (and the line or key where there is one) and says what to do,
so a user can fix the input without reading the library's code. The ``retrieval`` command prints a
:class:`RetrievalError` as a one-line ``error:``; any other exception is a bug and keeps its traceback.

Each class also derives from the built-in exception it refines (``ValueError``, ``FileNotFoundError``,
``FileExistsError``), so code that catches those keeps working.
"""

from __future__ import annotations

from pathlib import Path


class RetrievalError(Exception):
    """Base class of every error this library raises on purpose (bad input, not a bug)."""


class DataError(RetrievalError, ValueError):
    """A data file is missing, malformed or inconsistent.

    Args:
        path: the offending file.
        message: what is wrong and what to do about it.
        line: 1-based line number within ``path``, when the problem is on one line.
        key: the column, field or config key at fault, when there is one.
    """

    def __init__(self, path: str | Path, message: str, line: int | None = None, key: str | None = None):
        self.path = Path(path)
        self.line = line
        self.key = key
        where = str(self.path) + (f":{line}" if line is not None else "")
        if key is not None:
            where += f" [{key}]"
        super().__init__(f"{where}: {message}")


class AudioError(DataError):
    """An audio file cannot be decoded (corrupt, empty, truncated or an unsupported format)."""


class ConfigError(RetrievalError, ValueError):
    """A configuration value or key is invalid; the message names the key and the allowed values."""


class MissingFileError(DataError, FileNotFoundError):
    """A file the library needs is not there (a checkpoint, a run, an index); the message says how to make it."""


class InputError(RetrievalError, ValueError):
    """Inputs that are each valid but do not fit together or leave nothing to work on: a run and a corpus with
    different tags, a corpus without the labels a task needs. The message says which and what to do."""


class RunExistsError(RetrievalError, FileExistsError):
    """The output folder already holds a run; resume it or choose another folder."""


class UnknownIdError(RetrievalError, KeyError):
    """Track ids that an index (or a corpus) does not hold; the message names some of them."""

    def __str__(self) -> str:  # KeyError's own __str__ would print the message in quotes
        return str(self.args[0]) if self.args else ""


class FileSystemError(RetrievalError, OSError):
    """The operating system refused a read or write (disk full, permission denied, a file where a folder should
    be, a read-only folder): the message names the path, the reason and what to do.

    Args:
        path: the file or folder concerned.
        error: the ``OSError`` raised (its ``errno`` picks the remedy), or None.
        reason: the reason when there is no ``OSError`` (or to replace its text).
        remedy: what to do, instead of the remedy :data:`REMEDIES` gives for the error number.
    """

    def __init__(self, path: str | Path, error: OSError | None = None, *, reason: str | None = None,
                 remedy: str | None = None):
        number = getattr(error, "errno", None)
        self.path = Path(path)
        reason = reason or (error.strerror if error is not None and error.strerror else str(error))
        remedy = remedy or REMEDIES.get(number, "check the path and the file system")
        super().__init__(f"{self.path}: {reason.lower()}; {remedy}")
        self.errno = number

    def __reduce__(self):  # raised in a worker process, it crosses back pickled
        return _restore_file_system_error, (str(self), str(self.path), self.errno)


def _restore_file_system_error(message: str, path: str, number: int | None) -> FileSystemError:
    error = FileSystemError.__new__(FileSystemError)
    OSError.__init__(error, message)
    error.path, error.errno = Path(path), number
    return error


def _remedies() -> dict[int, str]:
    import errno

    full = "free some space, or write somewhere else (another --out, --cache-dir or $RETRIEVAL_HOME)"
    return {
        errno.ENOSPC: full,
        errno.EDQUOT: full,
        errno.EACCES: "fix its permissions (chmod / chown) or choose another path",
        errno.EPERM: "fix its permissions (chmod / chown) or choose another path",
        errno.EROFS: "that file system is read-only: choose a writable path",
        errno.ENOTDIR: "a part of this path is a file, not a folder: remove or rename it, or choose another path",
        errno.EISDIR: "a folder stands where a file is expected: remove or rename it, or choose another path",
        errno.ENOENT: "check the path",
        errno.ENAMETOOLONG: "choose a shorter path",
        errno.EIO: "the disk or network share failed: check it, then run the command again",
        errno.EMFILE: "too many open files: raise the limit (ulimit -n) and run the command again",
    }


#: ``errno`` → what to do, quoted by :class:`FileSystemError`.
REMEDIES: dict[int, str] = _remedies()


def os_error(error: OSError, path: str | Path | None = None) -> FileSystemError:
    """An ``OSError`` as a :class:`FileSystemError` naming ``path`` (default: the path the error names)."""
    if isinstance(error, FileSystemError):
        return error
    where = path if path is not None else (error.filename if error.filename is not None else "?")
    return FileSystemError(where, error)
