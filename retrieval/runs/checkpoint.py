"""Checkpoints: everything needed to rebuild, evaluate or resume a model, loadable with ``weights_only=True``.

A checkpoint is a plain dict of tensors and JSON-like values (no pickled classes):

    {"format": 1, "versions": {...}, "config": Config.to_dict(), "model_args": {...}, "model": state_dict,
     "vocabulary": {"tags": [...], "categories": [...], "vectors": Tensor}, "fingerprint": str,
     "train_state": {...} | absent}

``train_state`` (only in ``last.ckpt``) holds the optimizer state, the epoch, the best validation MAP, the history
and every random state (the sampling generator and torch's global RNG, which dropout uses), so ``--resume``
continues an interrupted run to the same final weights as an uninterrupted one.
Writes are atomic (temporary file + rename): an interrupted save never corrupts the previous checkpoint.
"""

from __future__ import annotations

import errno
import hashlib
import os
import pickle
import platform
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from retrieval.errors import DataError, FileSystemError, MissingFileError, os_error
from retrieval.fileio import atomic_path

FORMAT_VERSION = 1
# Below this much free space, a failed checkpoint write is reported as a full disk.
_FREE_ENOUGH = 64 << 20
# What torch's weights_only refusal names: "unsupported GLOBAL posix.system".
_UNSUPPORTED_GLOBAL = re.compile(r"unsupported GLOBAL (\S+)", re.IGNORECASE)


def library_versions() -> dict[str, str]:
    """Versions of the libraries a checkpoint depends on."""
    import torchaudio

    import retrieval

    return {
        "retrieval": str(retrieval.__version__),
        "torch": str(torch.__version__),  # a TorchVersion object would not load with weights_only
        "torchaudio": str(torchaudio.__version__),
        "python": platform.python_version(),
    }


def state_fingerprint(state_dict: dict[str, torch.Tensor], extra: str = "") -> str:
    """A stable hash of model weights (+ ``extra`` text such as the vocabulary): identifies the model that made a
    set of vectors, so an index refuses vectors from another model."""
    digest = hashlib.sha256(extra.encode())
    for name in sorted(state_dict):
        digest.update(name.encode())
        digest.update(state_dict[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def save_checkpoint(path: str | os.PathLike[str], payload: dict[str, Any]) -> None:
    """Write ``payload`` (see module docstring) atomically, adding the format and library versions."""
    payload = {"format": FORMAT_VERSION, "versions": library_versions(), **payload}
    with atomic_path(path) as tmp:
        try:
            torch.save(payload, tmp)
        except RuntimeError as error:  # torch's zip writer reports a failed write (a full disk) as RuntimeError
            number = errno.ENOSPC if shutil.disk_usage(Path(tmp).parent).free < _FREE_ENOUGH else errno.EIO
            raise FileSystemError(path, OSError(number, os.strerror(number)),
                                  reason=f"{os.strerror(number)} while writing the checkpoint "
                                  f"({str(error).splitlines()[0][:120]})") from error


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``).

    Raises:
        MissingFileError: the file is missing. DataError: not a checkpoint, or of an unknown format version.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(
            path, "checkpoint not found; train one with `retrieval train --config CONFIG --out RUN`"
        )
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except PermissionError as error:
        raise os_error(error, path) from error
    except pickle.UnpicklingError as error:
        # torch's message advises weights_only=False, i.e. running the file's code: never repeat that advice.
        found = _UNSUPPORTED_GLOBAL.search(str(error))
        what = f" ({found.group(1)})" if found else ""
        raise DataError(path, f"refused: it holds pickled Python objects{what} that a safe load does not run; it "
                        "was not written by this library — train the run again, or restore the file from a copy "
                        "you trust") from error
    except Exception as error:  # torch raises several types for corrupt or foreign files
        reason = str(error).splitlines()[0][:160]
        raise DataError(path, f"not a readable checkpoint ({type(error).__name__}: {reason}); the file is corrupt "
                        "or truncated: restore it or train the run again") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        raise DataError(
            path, f"unknown checkpoint format {payload.get('format') if isinstance(payload, dict) else '?'}"
        )
    return payload
