"""The base class of every audio backbone, and the input settings each one records.

Every backbone owns its preprocessing (its first layer, ``frontend``, is :func:`retrieval.audio.front_end` of its
settings: a :class:`~retrieval.audio.MelSpectrogram`, or the identity on the waveform for sample-level models), so
a checkpoint that stores ``name`` + :meth:`Backbone.config` rebuilds a model that features audio exactly as in
training::

    wave (B, T) ─frontend─▶ features (B, n_mels, frames) ─forward_features─▶ (B, output_dim)

:class:`Backbone` ``forward_features``: unsqueeze → BatchNorm2d(1) → blocks (each halves frequency and time)
→ 1×1 conv to output_dim → BatchNorm2d → ReLU → max over frequency and time. Subclasses replace the blocks
(:meth:`Backbone.make_block`; :class:`IndexedBackbone` when a block depends on its position), the head or all of
``forward_features``. Every subclass is registered by ``name`` in :data:`retrieval.encoders.backbones.AUDIO_BACKBONES`.

Each backbone records its input: :meth:`Backbone.paper_settings` (front end and crop of its paper, the defaults
when ``mel`` / ``input_frames`` are not given) and ``DEMO`` (the CPU-sized variant).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

import torch
from torch import nn

from retrieval.audio import FrontEndConfig, MelConfig, WaveConfig, front_end
from retrieval.errors import ConfigError

__all__ = ["PAPER_CHANNELS", "Backbone", "IndexedBackbone", "InputSettings", "input_settings"]

#: Channels of the seven blocks in the paper's Short-chunk CNN (and the SMC 2020 Short-chunk ResNet).
PAPER_CHANNELS: tuple[int, ...] = (128, 128, 256, 256, 256, 256, 512)
#: Training crop of the paper: 173 frames ≈ 4 s at 22,050 Hz with hop 512.
PAPER_INPUT_FRAMES = 173


class InputSettings(NamedTuple):
    """A model's published input: its front end and training crop length.

    Attributes:
        mel: the front-end settings (a :class:`MelConfig`, or :class:`WaveConfig` for sample-level models).
        input_samples: crop length in samples at ``mel.sample_rate`` (the fewest giving ``input_frames``).
        input_frames: crop length in feature frames (samples for a :class:`WaveConfig`).
    """

    mel: FrontEndConfig
    input_samples: int
    input_frames: int


def input_settings(mel: FrontEndConfig, seconds: float | None = None, frames: int | None = None) -> InputSettings:
    """InputSettings for a crop of ``seconds`` of audio, or of exactly ``frames`` frames."""
    if frames is None:
        frames = mel.frames(round(seconds * mel.sample_rate))
    return InputSettings(mel, mel.samples_for_frames(frames), frames)



class Backbone(nn.Module):
    """Base class: front end, input BatchNorm, a stack of blocks, a 1×1-conv head and global max pooling.

    Args:
        mel: the front-end settings (sample rate, FFT, hop, mel bands, log scale).
        output_dim: size of the output vector (the channels of the 1×1 head conv).
        channels: output channels of each block; its length is the number of blocks.
        input_frames: the training crop length in mel frames (recorded for crops; any length is accepted).

    Attributes:
        frontend: ``front_end(mel)``, mapping (B, T) waves to (B, n_mels, frames) features (log-mels, or the
            waveform as one row for a :class:`WaveConfig`).
        output_dim: as given.
        input_frames: as given; ``input_samples`` is the matching crop length in samples.
    """

    name: ClassVar[str] = ""
    #: The front-end settings type this backbone reads (its ``mel`` argument may be given as their dict form).
    FRONT_END: ClassVar[type] = MelConfig
    #: Constructor arguments of the CPU-sized variant that ``model.audio.size: demo`` selects (narrow widths,
    #: a short crop); the paper's sizes are the constructor defaults.
    DEMO: ClassVar[dict[str, Any]] = {}

    def __init__(self, mel: FrontEndConfig | Mapping[str, Any] | None = None, output_dim: int = 256,
                 channels: Sequence[int] = PAPER_CHANNELS, input_frames: int | None = None):
        super().__init__()
        mel, input_frames = self.resolve_input(mel, input_frames)
        channels = tuple(int(c) for c in channels)
        if not channels or min(channels) < 1 or output_dim < 1 or input_frames < 1:
            raise ConfigError(f"{type(self).__name__}: channels must be a non-empty list of positive "
                              f"ints and output_dim, input_frames positive; got channels={channels}, "
                              f"output_dim={output_dim}, input_frames={input_frames}")
        self.mel = mel
        self.output_dim = int(output_dim)
        self.channels = channels
        self.input_frames = int(input_frames)
        self.frontend = front_end(mel)
        self.input_bn = nn.BatchNorm2d(1)
        in_widths = (1, *channels[:-1])  # the mel is one input channel
        self.blocks = nn.Sequential(
            *(self.make_block(c_in, c_out) for c_in, c_out in zip(in_widths, channels, strict=True))
        )
        self.head = nn.Sequential(
            nn.Conv2d(channels[-1], output_dim, kernel_size=1),
            nn.BatchNorm2d(output_dim),
            nn.ReLU(),
        )

    @classmethod
    def paper_settings(cls) -> InputSettings:
        """The published input: Won et al. 2021 (22,050 Hz, n_fft 1024, hop 512, 128 mels, 173 frames ≈ 4 s)."""
        return input_settings(MelConfig(), frames=PAPER_INPUT_FRAMES)

    @classmethod
    def resolve_input(cls, mel: FrontEndConfig | Mapping[str, Any] | None,
                      input_frames: int | None) -> tuple[FrontEndConfig, int]:
        """(front end, crop frames) of a model built with these arguments: ``None`` takes the paper's value."""
        paper = cls.paper_settings()
        return cls.as_front_end(mel, paper.mel), paper.input_frames if input_frames is None else input_frames

    @classmethod
    def as_front_end(cls, mel: FrontEndConfig | Mapping[str, Any] | None, default: FrontEndConfig) -> FrontEndConfig:
        """Accept front-end settings, their dict form (as :meth:`config` stores them) or None (``default``).

        Raises:
            ConfigError: settings of the wrong kind (mel settings for a raw-waveform model or the reverse) or
                unknown keys.
        """
        if mel is None:
            return default
        if isinstance(mel, Mapping):
            known = [f.name for f in dataclasses.fields(cls.FRONT_END)]
            unknown = sorted(set(mel) - set(known))
            if unknown:
                raise ConfigError(f"{cls.__name__}: front-end settings {unknown} are unknown; allowed: {known}")
            return cls.FRONT_END(**mel)
        if not isinstance(mel, cls.FRONT_END):
            kind = "raw waveform (WaveConfig)" if cls.FRONT_END is WaveConfig else "log-mel (MelConfig)"
            raise ConfigError(f"{cls.__name__} reads a {kind} input, got {type(mel).__name__}; leave model.mel "
                              "unset (null) to use the backbone's own input settings")
        return mel

    def make_block(self, in_channels: int, out_channels: int) -> nn.Module:
        """One block mapping (B, in_channels, F, T) → (B, out_channels, ⌈F/2⌉, ⌈T/2⌉)."""
        raise NotImplementedError

    @property
    def input_samples(self) -> int:
        """Samples of a training crop at ``mel.sample_rate`` (``input_frames`` frames; 88,064 for 173)."""
        return self.mel.samples_for_frames(self.input_frames)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Embed waveforms.

        Args:
            wave: (B, T) float32 mono samples at ``mel.sample_rate``, T > n_fft // 2.

        Returns:
            (B, output_dim), non-negative (the head ends in ReLU).
        """
        if wave.dim() != 2:
            raise ValueError(f"{type(self).__name__} expects waves of shape (batch, samples), got "
                             f"{tuple(wave.shape)}; use forward_mel for precomputed mels")
        return self.forward_features(self.frontend(wave))

    def forward_mel(self, mel: torch.Tensor) -> torch.Tensor:
        """Embed precomputed log-mels (B, n_mels, frames) made with the same :class:`MelConfig`."""
        if mel.dim() != 3 or mel.shape[1] != self.mel.n_mels:
            raise ValueError(f"{type(self).__name__} expects mels of shape (batch, {self.mel.n_mels}, "
                             f"frames), got {tuple(mel.shape)}")
        return self.forward_features(mel)

    def forward_features(self, mel: torch.Tensor) -> torch.Tensor:
        """The network after the front end: (B, n_mels, frames) → (B, output_dim)."""
        x = self.input_bn(mel.unsqueeze(1))  # (B, 1, n_mels, frames)
        x = self.blocks(x)  # (B, channels[-1], F', T')
        x = self.head(x)  # (B, output_dim, F', T')
        return x.amax(dim=(2, 3))  # global max over whatever frequency and time are left

    def config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-able (``mel`` as a dict).

        ``retrieval.encoders.backbones.build_audio_encoder(self.name, **self.config())`` rebuilds the model.
        """
        return {"mel": dataclasses.asdict(self.mel), "output_dim": self.output_dim,
                "channels": list(self.channels), "input_frames": self.input_frames}

    def describe(self) -> dict[str, Any]:
        """``{"name": registry name, "config": constructor arguments}``: what a checkpoint stores.

        ``build_audio_encoder(d["name"], **d["config"])`` rebuilds the same architecture.
        """
        return {"name": self.name, "config": self.config()}


class IndexedBackbone(Backbone):
    """A :class:`Backbone` whose blocks depend on their position (own pool size, own input width).

    :class:`Backbone` calls ``make_block(in, out)`` once per block, in order; this class counts the calls and
    forwards to :meth:`make_indexed_block`. Subclasses set whatever that method reads (``pools``, ...) as plain
    attributes *before* ``super().__init__`` (allowed for non-tensor attributes of an ``nn.Module``).
    """

    def make_block(self, in_channels: int, out_channels: int) -> nn.Module:
        index = getattr(self, "_blocks_made", 0)
        self._blocks_made = index + 1
        return self.make_indexed_block(index, in_channels, out_channels)

    def make_indexed_block(self, index: int, in_channels: int, out_channels: int) -> nn.Module:
        """Block ``index`` (0-based), mapping ``in_channels`` to ``out_channels``."""
        raise NotImplementedError
