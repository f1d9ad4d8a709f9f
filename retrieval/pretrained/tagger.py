"""A published musicnn model as a ready tagger: audio file → its input patches → 50 tag probabilities and
penultimate features, as ``musicnn``'s own extractor computes them.

Front end (musicnn's ``extractor.batch_data``): decode, mono, 16 kHz; power mel spectrogram with a 512-point FFT
(Hann, centred, zero padding), hop 256, 96 Slaney mel bands (Slaney-normalised, as librosa's default); rounded to
float16 as musicnn stores it; x = log10(1 + 10000·mel); consecutive non-overlapping patches of 187 frames (3 s),
a last partial patch dropped (a clip shorter than 3 s is zero-padded to one patch). A file's tag probabilities
are the mean over its patches of sigmoid(logits) — musicnn's ``top_tags`` average of the taggram — and its
features the mean of the penultimate features.

Converted weights are cached under ``$RETRIEVAL_HOME/models/musicnn/`` (named by the checkpoint files' hash) and
loaded ``weights_only``; nothing is downloaded: the checkpoints come from the installed ``musicnn`` package.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from retrieval.audio import MelConfig, MelSpectrogram
from retrieval.errors import DataError
from retrieval.fileio import atomic_path
from retrieval.pretrained.musicnn import (
    CHECKPOINTS,
    HOP,
    N_FFT,
    N_MELS,
    PATCH_FRAMES,
    SAMPLE_RATE,
    convert_checkpoint,
    musicnn_package_dir,
    published_network,
)
from retrieval.pretrained.names import PRETRAINED

__all__ = ["PRETRAINED", "PretrainedTagger", "log_mel_patches"]

#: Patches per forward pass.
_BATCH = 16


#: musicnn's front end in the library's terms (see the module docstring).
MUSICNN_MEL = MelConfig(sample_rate=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS, log="musicnn",
                        mel_scale="slaney", norm="slaney", pad_mode="constant")


@functools.cache
def _mel() -> MelSpectrogram:
    return MelSpectrogram(MUSICNN_MEL)


def log_mel_patches(audio: np.ndarray) -> np.ndarray:
    """16 kHz mono audio (samples,) → (n_patches, 96, 187) float32 log-mel patches (see the module docstring)."""
    audio = np.asarray(audio, dtype=np.float32)
    if len(audio) <= N_FFT // 2:  # shorter than one FFT: zero-pad to it (the patch is padded anyway)
        audio = np.pad(audio, (0, N_FFT // 2 + 1 - len(audio)))
    with torch.no_grad():
        log_mel = _mel()(torch.from_numpy(audio)).numpy()  # (96, frames)
    frames = log_mel.shape[1]
    if frames < PATCH_FRAMES:
        log_mel = np.pad(log_mel, ((0, 0), (0, PATCH_FRAMES - frames)))
        frames = PATCH_FRAMES
    n = frames // PATCH_FRAMES
    return np.ascontiguousarray(log_mel[:, :n * PATCH_FRAMES].reshape(N_MELS, n, PATCH_FRAMES).transpose(1, 0, 2))


class PretrainedTagger:
    """One of :data:`PRETRAINED` ("musicnn-mtt", "musicnn-msd", "vgg-mtt", "vgg-msd").

    Attributes:
        name: the retriever name; checkpoint: the musicnn package's folder name.
        labels: the model's 50 tags, in output order.
        model: the PyTorch network (eval mode) returning (logits, penultimate features).
        fingerprint: hash of the checkpoint files (an index built with this model records it).

    Example:
        >>> tagger = PretrainedTagger("musicnn-mtt")  # doctest: +SKIP
        >>> probabilities, features = tagger.embed_files(["song.mp3"])  # doctest: +SKIP
    """

    def __init__(self, name: str):
        if name not in PRETRAINED:
            raise KeyError(f"unknown pretrained model {name!r}; choose one of {sorted(PRETRAINED)}")
        from retrieval.paths import home

        self.name = name
        self.checkpoint = PRETRAINED[name]
        self.labels = list(CHECKPOINTS[self.checkpoint][1])
        self.fingerprint = _checkpoint_digest(musicnn_package_dir() / self.checkpoint)
        self.model = _cached_conversion(self.checkpoint, home() / "models" / "musicnn" /
                                        f"{self.checkpoint}-{self.fingerprint}.pt")

    @property
    def feature_dim(self) -> int:
        return self.model.penultimate_dim

    def file_patches(self, path: str | Path) -> np.ndarray:
        """An audio file → its (n, 96, 187) log-mel patches (raises AudioError on a bad file)."""
        from retrieval.audio import load_audio

        return log_mel_patches(load_audio(path, SAMPLE_RATE))

    def summarise(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A file's patches → (50,) mean tag probabilities and (feature_dim,) mean penultimate features."""
        probabilities, features = self.embed_patches(patches)
        return probabilities.mean(axis=0), features.mean(axis=0)

    @torch.no_grad()
    def embed_patches(self, patches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, 96, 187) patches → per-patch probabilities (n, 50) and penultimate features (n, feature_dim)."""
        probabilities, features = [], []
        for start in range(0, len(patches), _BATCH):
            logits, penultimate = self.model(torch.from_numpy(patches[start:start + _BATCH]))
            probabilities.append(torch.sigmoid(logits).numpy())
            features.append(penultimate.numpy())
        return np.concatenate(probabilities), np.concatenate(features)

    def embed_file(self, path: str | Path) -> tuple[np.ndarray, np.ndarray]:
        """One audio file → (50,) mean tag probabilities and (feature_dim,) mean penultimate features.

        Raises:
            AudioError: the file cannot be decoded (named).
        """
        return self.summarise(self.file_patches(path))

    def embed_files(self, paths: Sequence[str | Path]) -> tuple[np.ndarray, np.ndarray]:
        """Audio files → (n, 50) tag probabilities and (n, feature_dim) features (see :meth:`embed_file`)."""
        pairs = [self.embed_file(path) for path in paths]
        if not pairs:
            return np.zeros((0, len(self.labels)), np.float32), np.zeros((0, self.feature_dim), np.float32)
        return np.stack([p for p, _ in pairs]), np.stack([f for _, f in pairs])


def _cached_conversion(checkpoint: str, cached: Path) -> torch.nn.Module:
    """The converted network of ``checkpoint`` in eval mode: from ``cached`` (read ``weights_only``) when it
    holds a readable state dict, else converted from the checkpoint and written there atomically."""
    model = published_network(checkpoint)
    if cached.is_file():
        try:
            model.load_state_dict(torch.load(cached, map_location="cpu", weights_only=True))
            return model.eval()
        except Exception:  # a damaged or foreign cache file: convert again  # noqa: BLE001
            pass
    model = convert_checkpoint(checkpoint)
    cached.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cached) as tmp:
        torch.save(model.state_dict(), tmp)
    return model


@functools.cache
def _checkpoint_digest(folder: Path) -> str:
    """SHA-256 (16 hex) of a checkpoint folder's .index and .data files."""
    digest = hashlib.sha256()
    files = sorted(p for p in folder.iterdir() if p.name == ".index" or p.name.startswith(".data-"))
    if not files:
        raise DataError(folder, "no checkpoint files (.index, .data-*) here; reinstall musicnn (--no-deps)")
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
