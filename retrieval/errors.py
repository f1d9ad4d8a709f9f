"""Exceptions the library raises for bad input.

Every error about a file names the file (and the line or key where there is one) and says what to do,
so a user can fix the input without reading the library's code.
"""

from __future__ import annotations

from pathlib import Path


class RetrievalError(Exception):
    """Base class of every error this library raises on purpose."""


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
