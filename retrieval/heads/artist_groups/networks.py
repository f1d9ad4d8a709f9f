"""Patch classifiers: a narrow Short-chunk CNN trunk with one linear head per task.

One class covers every network of the comparison (:mod:`retrieval.heads.artist_groups.comparison`)::

    mel patch (B, n_mels, frames) ─trunk─▶ features (B, feature_dim) ─heads[task]─▶ logits (B, n_classes[task])

- a factor network (single-task): ``heads = {"audio": K}``;
- the multi-task-learning network: one trunk, ``heads = {"audio": K, "tags": K, "listening": K}``;
- the direct genre network: ``heads = {"genre": n_genres}``.

The trunk is a :class:`retrieval.encoders.backbones.short_chunk.ShortChunkCNN` (its 1×1-conv head gives the penultimate
``feature_dim`` features, globally max-pooled), so patches of any length ≥ 1 frame work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from retrieval.audio import MelConfig
from retrieval.encoders.backbones import build_audio_encoder
from retrieval.encoders.backbones.base import Backbone
from retrieval.errors import ConfigError

__all__ = ["DEFAULT_BACKBONE", "PatchClassifier", "build_patch_classifier"]

DEFAULT_BACKBONE = "short_chunk_cnn"


class PatchClassifier(nn.Module):
    """A shared trunk and one linear head per task.

    Args:
        trunk: a mel backbone; its ``output_dim`` is the feature size.
        n_classes: task name → number of classes.

    Shapes:
        ``features``: (B, n_mels, frames) → (B, trunk.output_dim).
        ``forward``: (B, n_mels, frames) → {task: (B, n_classes[task]) logits}.
    """

    def __init__(self, trunk: Backbone, n_classes: Mapping[str, int]):
        super().__init__()
        if not n_classes or min(n_classes.values()) < 2:
            raise ConfigError(f"every task needs at least 2 classes, got {dict(n_classes)}")
        self.trunk = trunk
        self.n_classes = dict(n_classes)
        self.heads = nn.ModuleDict({task: nn.Linear(trunk.output_dim, k) for task, k in n_classes.items()})

    @property
    def feature_dim(self) -> int:
        """Size of the penultimate features."""
        return self.trunk.output_dim

    def features(self, mel: torch.Tensor) -> torch.Tensor:
        """Penultimate features of mel patches."""
        return self.trunk.forward_mel(mel)

    def forward(self, mel: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.features(mel)
        return {task: head(features) for task, head in self.heads.items()}


def build_patch_classifier(
    mel: MelConfig,
    n_classes: Mapping[str, int],
    channels: Sequence[int],
    feature_dim: int,
    patch_frames: int,
    seed: int,
    backbone: str = DEFAULT_BACKBONE,
) -> PatchClassifier:
    """A :class:`PatchClassifier` whose initial weights depend only on ``seed`` (global RNG state untouched).

    Args:
        mel: the mel settings the patches were made with.
        n_classes: task → classes.
        channels: trunk block widths (one 2×2 pooling per block).
        feature_dim: penultimate feature size.
        patch_frames: patch length in frames (recorded in the trunk).
        seed: weight-initialisation seed.
        backbone: a name of :data:`retrieval.encoders.backbones.AUDIO_BACKBONES`.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        trunk = build_audio_encoder(backbone, mel=mel, output_dim=feature_dim, channels=tuple(channels),
                                    input_frames=patch_frames)
        return PatchClassifier(trunk, n_classes)
