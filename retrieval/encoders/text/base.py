"""The interface every text encoder implements, and the description file a saved encoder folder starts with."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from retrieval.errors import DataError

__all__ = ["META_FILE", "TextEncoder", "read_meta"]

#: The description of a saved text encoder (its ``kind``, fingerprint and settings); written last by ``save``.
META_FILE = "encoder.json"


@runtime_checkable
class TextEncoder(Protocol):
    """The interface every word tower input implements.

    Attributes:
        kind: the registry name (``"word2vec"`` or ``"sentence"``).
        output_dim: size of the vectors ``encode`` returns.
    """

    kind: str
    output_dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), output_dim) float32, unit L2 norm."""
        ...

    def matched_terms(self, text: str) -> list[str]:
        """The vocabulary tokens or phrases ``text`` resolved to."""
        ...

    def fingerprint(self) -> str:
        """A stable hash of the vectors / model identity; equal fingerprints give equal encodings."""
        ...

    def save(self, folder: str | Path) -> None:
        """Write what :meth:`load` needs into ``folder``."""
        ...

    @classmethod
    def load(cls, folder: str | Path) -> TextEncoder:
        """Rebuild an encoder saved by :meth:`save`."""
        ...


def read_meta(path: Path, kind: str | None) -> dict[str, Any]:
    """The JSON description a saved encoder folder starts with; check its ``kind`` when given."""
    from retrieval.encoders.text.registry import TEXT_ENCODERS  # the registry imports every encoder, which import this

    if not path.is_file():
        raise DataError(path, "no saved text encoder here (missing encoder.json); save one with "
                        "encoder.save(folder)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(path, f"unreadable encoder description ({error}); save the encoder again") from error
    if not isinstance(meta, dict) or meta.get("kind") not in TEXT_ENCODERS:
        raise DataError(path, f"'kind' must be one of {sorted(TEXT_ENCODERS)}", key="kind")
    if kind is not None and meta["kind"] != kind:
        raise DataError(path, f"this folder holds a {meta['kind']!r} encoder, not {kind!r}; use "
                        "load_text_encoder(folder)", key="kind")
    return meta
