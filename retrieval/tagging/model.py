"""A multi-label tagger: any registered audio backbone → Dropout → Linear to one logit per tag.

    wave (B, T) ─backbone.frontend─▶ features ─backbone─▶ (B, output_dim) ─Dropout─Linear─▶ logits (B, n_tags)

Whole tracks are tagged as in the SMC 2020 protocol: ``n_crops`` equally spaced crops, one sigmoid per crop and
tag, averaged (:meth:`TaggingModel.predict_crops`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from retrieval.encoders.backbones import build_audio_encoder
from retrieval.encoders.backbones.base import Backbone

__all__ = ["TaggingModel", "build_tagging_model"]


class TaggingModel(nn.Module):
    """Backbone + linear tag head (trained with binary cross-entropy on the logits).

    Args:
        backbone: any :class:`Backbone` (``retrieval.encoders.backbones.AUDIO_BACKBONES``).
        n_tags: number of tags (outputs).
        dropout: dropout before the linear head.
    """

    def __init__(self, backbone: Backbone, n_tags: int, dropout: float = 0.5):
        super().__init__()
        self.backbone = backbone
        self.n_tags = int(n_tags)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(backbone.output_dim, self.n_tags)

    @property
    def mel(self):
        """The backbone's front-end settings (what its input features are)."""
        return self.backbone.mel

    @property
    def input_frames(self) -> int:
        return self.backbone.input_frames

    def forward_features(self, features: torch.Tensor) -> torch.Tensor:
        """Front-end features (B, n_mels, frames) → logits (B, n_tags)."""
        return self.classifier(self.dropout(self.backbone.forward_mel(features)))

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Waveforms (B, T) at ``mel.sample_rate`` → logits (B, n_tags)."""
        return self.forward_features(self.backbone.frontend(wave))

    @torch.no_grad()
    def predict_crops(self, crops: torch.Tensor) -> torch.Tensor:
        """Whole-track probabilities: crops (B, n_crops, n_mels, frames) → mean over crops of σ(logits), (B, n_tags)."""
        batch, n_crops = crops.shape[:2]
        probabilities = torch.sigmoid(self.forward_features(crops.flatten(0, 1)))
        return probabilities.view(batch, n_crops, -1).mean(dim=1)


def build_tagging_model(args: dict[str, Any]) -> TaggingModel:
    """Rebuild from ``{"audio": {"name", "args"}, "n_tags", "dropout"}`` (what a tagging checkpoint stores)."""
    backbone = build_audio_encoder(args["audio"]["name"], **args["audio"]["args"])
    return TaggingModel(backbone, args["n_tags"], args["dropout"])
