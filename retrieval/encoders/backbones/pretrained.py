"""The published musicnn networks as audio towers: ``model.audio: {backbone: musicnn, pretrained: mtt, freeze: true}``.

The tower is the converted published network (:mod:`retrieval.pretrained.musicnn`) up to its penultimate layer
(200 features for musicnn, 256 for VGG), then a trainable Linear to ``output_dim``::

    wave ─MUSICNN_MEL─▶ (B, 96, 187) ─published network─▶ penultimate (B, 200 | 256) ─Linear─▶ (B, output_dim)

Its front end is musicnn's own (16 kHz, 512-point FFT, hop 256, 96 Slaney mels, log10(1 + 10000·mel)) and its
crop 187 frames (3 s); neither can be changed. ``freeze: true`` keeps the published weights and batch-norm
statistics fixed (only the Linear trains); ``false`` fine-tunes everything.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from retrieval.audio import FrontEndConfig, MelConfig, front_end
from retrieval.encoders.backbones.base import Backbone, InputSettings, input_settings
from retrieval.errors import ConfigError

__all__ = ["PretrainedMusicnnTower", "PretrainedVGGTower"]

#: Training sets of the published checkpoints.
PRETRAINED_SETS = ("mtt", "msd")
_PATCH_FRAMES = 187


def _musicnn_mel() -> MelConfig:
    from retrieval.pretrained.tagger import MUSICNN_MEL

    return MUSICNN_MEL


class PretrainedMusicnnTower(Backbone):
    """musicnn (MTT or MSD weights) → penultimate features → Linear(output_dim); see the module docstring.

    Args:
        pretrained: "mtt" or "msd".
        freeze: keep the published network fixed (train only the output Linear).
        output_dim: the tower's output size.
        mel, input_frames: must be musicnn's own (or None).
        channels: unused (the published network fixes its widths); accepted for the config plumbing.
    """

    name = "musicnn_pretrained"
    ARCHITECTURE: ClassVar[str] = "musicnn"

    def __init__(self, pretrained: str = "mtt", freeze: bool = True, output_dim: int = 256,
                 mel: FrontEndConfig | Mapping[str, Any] | None = None, channels: Any = None,
                 input_frames: int | None = None):
        nn.Module.__init__(self)
        if pretrained not in PRETRAINED_SETS:
            raise ConfigError(f"model.audio.pretrained must be one of {list(PRETRAINED_SETS)}, got {pretrained!r}")
        mel, input_frames = self.resolve_input(mel, input_frames)
        if mel != _musicnn_mel() or input_frames != _PATCH_FRAMES:
            raise ConfigError(f"the pretrained {self.ARCHITECTURE} reads musicnn's own front end and 3-s crops "
                              f"({_PATCH_FRAMES} frames); leave model.mel and model.audio.input_frames unset")
        if output_dim < 1:
            raise ConfigError(f"{type(self).__name__}: output_dim must be positive, got {output_dim}")
        from retrieval.pretrained.tagger import PretrainedTagger

        self.pretrained, self.freeze = pretrained, bool(freeze)
        self.mel, self.input_frames, self.output_dim, self.channels = mel, int(input_frames), int(output_dim), ()
        self.frontend = front_end(mel)
        tagger = PretrainedTagger(f"{self.ARCHITECTURE}-{pretrained}")
        self.network, self.fingerprint = tagger.model, f"{tagger.name}-{tagger.fingerprint}"
        self.head = nn.Linear(self.network.penultimate_dim, self.output_dim)
        if self.freeze:
            self.network.requires_grad_(False)
            self.network.eval()

    @classmethod
    def paper_settings(cls) -> InputSettings:
        """musicnn's input: :data:`~retrieval.pretrained.tagger.MUSICNN_MEL`, 187 frames."""
        return input_settings(_musicnn_mel(), frames=_PATCH_FRAMES)

    @property
    def blocks(self) -> list[nn.Module]:
        """The published network's layers up to its penultimate features, and the head, in order (what
        :class:`Backbone` calls its blocks; the network's own tag layer is not on the tower's path)."""
        return [*(m for m in self.network.children() if m is not self.network.output), self.head]

    def train(self, mode: bool = True) -> PretrainedMusicnnTower:
        super().train(mode)
        if self.freeze:  # the published batch-norm statistics stay as published
            self.network.eval()
        return self

    def forward_mel(self, mel: torch.Tensor) -> torch.Tensor:
        """Embed (B, 96, frames) mels; a frozen tower also reads its network's own cached output, (B, D, 1)
        penultimate features (:class:`retrieval.data.frozen.FrozenFeatures`), straight into its head."""
        if self.freeze and mel.dim() == 3 and tuple(mel.shape[1:]) == (self.network.penultimate_dim, 1):
            return self.head(mel[..., 0])
        return super().forward_mel(mel)

    def forward_features(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, 96, frames) → (B, output_dim). musicnn pools over any length; VGG, whose dense layer fixes its
        input at 187 frames, reads consecutive 187-frame patches (the last zero-padded) and averages them, as
        musicnn averages a file's patches."""
        if self.ARCHITECTURE == "vgg" and mel.shape[-1] != _PATCH_FRAMES:
            n = -(-mel.shape[-1] // _PATCH_FRAMES)
            padded = torch.nn.functional.pad(mel, (0, n * _PATCH_FRAMES - mel.shape[-1]))
            patches = padded.unflatten(-1, (n, _PATCH_FRAMES)).transpose(1, 2).flatten(0, 1)  # (B·n, 96, 187)
            _, penultimate = self.network(patches)
            return self.head(penultimate.unflatten(0, (mel.shape[0], n)).mean(dim=1))
        _, penultimate = self.network(mel)
        return self.head(penultimate)

    def config(self) -> dict[str, Any]:
        return {"pretrained": self.pretrained, "freeze": self.freeze, "output_dim": self.output_dim,
                "mel": dataclasses.asdict(self.mel), "input_frames": self.input_frames}


class PretrainedVGGTower(PretrainedMusicnnTower):
    """musicnn's VGG baseline (MTT or MSD weights) → flattened pool5 (256) → Linear(output_dim)."""

    name = "vgg_pretrained"
    ARCHITECTURE: ClassVar[str] = "vgg"
