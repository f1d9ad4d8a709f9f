"""Sample-level tagging CNNs on the raw waveform (REFERENCE §3): SampleCNN and SampleCNN + squeeze-excitation.

Both read 59,049 samples (3^10, ≈ 3.7 s at 16 kHz) through the identity front end of
:class:`retrieval.audio.WaveConfig` (features (B, 1, T): one "mel band", one frame per sample)::

    wave (B, T) → (B, 1, T) → stem: conv(k=3, stride 3) → BN → ReLU                      T/3
                → 9 × [conv(k=3) → BN → ReLU → max-pool 3  (→ SE gate: SampleCNN+SE)]   T/3^10 = 1
                → 1×1 conv to output_dim → BN → ReLU → max over time                    (B, output_dim)

- :class:`SampleCNN` (Lee et al., SMC 2017): channels 128, 128, 128, 256, 256, 256, 256, 256, 256, 512.
- :class:`SampleCNNSE` (Kim et al., ICASSP 2018): each block's output is rescaled channel-wise by a
  squeeze-excitation gate: mean over time → Linear (C → α·C) → ReLU → Linear (α·C → C) → sigmoid, α = 16
  (the paper's "amplifying ratio"). The paper's residual variant and multi-level aggregation are left out.

Example:
    >>> net = SampleCNN(channels=(4,) * 10, output_dim=8).eval()
    >>> net(torch.zeros(2, 59049)).shape
    torch.Size([2, 8])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from retrieval.audio import WaveConfig
from retrieval.encoders.backbones.base import IndexedBackbone, InputSettings, input_settings
from retrieval.errors import ConfigError

__all__ = ["SampleCNN", "SampleCNNSE"]

SAMPLE_RATE = 16000
PAPER_SAMPLES = 3**10  # 59,049
PAPER_CHANNELS = (128, 128, 128, 256, 256, 256, 256, 256, 256, 512)
DEMO_CHANNELS = (16, 16, 16, 32, 32, 32, 32, 32, 32, 64)
KERNEL = 3  # every conv and pool: the "sample-level" filter of 3 samples
SE_RATIO = 16


class _SampleBlock(nn.Sequential):
    """conv(k=3, same padding) → BN → ReLU → max-pool 3 (ceil mode) over (B, C, T)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(nn.Conv1d(in_channels, out_channels, KERNEL, padding=KERNEL // 2),
                         nn.BatchNorm1d(out_channels), nn.ReLU(), nn.MaxPool1d(KERNEL, ceil_mode=True))


class _SqueezeExcite(nn.Module):
    """x · σ(W₂ ReLU(W₁ mean_t x)): channel gates from the block's mean activation over time."""

    def __init__(self, channels: int, ratio: int):
        super().__init__()
        self.gate = nn.Sequential(nn.Linear(channels, channels * ratio), nn.ReLU(),
                                  nn.Linear(channels * ratio, channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x.mean(dim=2)).unsqueeze(2)


class SampleCNN(IndexedBackbone):
    """SampleCNN: a strided 3-sample stem and nine 3-sample conv blocks with max-pool 3 (see module docstring).

    Args:
        mel: a :class:`WaveConfig` (or its dict form); default 16 kHz.
        output_dim: output size.
        channels: widths of the stem and the nine blocks (10 entries in the paper; any count works, each
            block divides time by 3).
        input_frames: training crop in samples (default 59,049).
    """

    name = "sample_cnn"
    FRONT_END: ClassVar[type] = WaveConfig
    DEMO: ClassVar[dict[str, Any]] = {"channels": DEMO_CHANNELS}

    def __init__(self, mel: WaveConfig | Mapping[str, Any] | None = None, output_dim: int = 256,
                 channels: Sequence[int] = PAPER_CHANNELS, input_frames: int | None = None):
        super().__init__(mel, output_dim, channels, input_frames)
        self.input_bn = nn.Identity()  # a raw waveform is used as it is
        self.head = nn.Sequential(nn.Conv1d(self.channels[-1], self.output_dim, kernel_size=1),
                                  nn.BatchNorm1d(self.output_dim), nn.ReLU())

    @classmethod
    def paper_settings(cls) -> InputSettings:
        """16 kHz raw waveform, 59,049 samples."""
        return input_settings(WaveConfig(SAMPLE_RATE), frames=PAPER_SAMPLES)

    def make_indexed_block(self, index: int, in_channels: int, out_channels: int) -> nn.Module:
        if index == 0:  # the stem: strided, no pooling
            return nn.Sequential(nn.Conv1d(in_channels, out_channels, KERNEL, stride=KERNEL),
                                 nn.BatchNorm1d(out_channels), nn.ReLU())
        return _SampleBlock(in_channels, out_channels)

    def forward_features(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, 1, T) samples → (B, output_dim)."""
        if mel.shape[-1] < KERNEL:
            raise ValueError(f"{type(self).__name__} needs at least {KERNEL} samples, got {mel.shape[-1]}")
        return self.head(self.blocks(mel)).amax(dim=2)


class SampleCNNSE(SampleCNN):
    """SampleCNN with a squeeze-excitation gate after every block (Kim et al. 2018).

    Args:
        se_ratio: the gate's hidden width as a multiple of the block's channels (α = 16 in the paper).
        (others as :class:`SampleCNN`)
    """

    name = "sample_cnn_se"
    DEMO: ClassVar[dict[str, Any]] = {"channels": DEMO_CHANNELS, "se_ratio": 2}

    def __init__(self, mel: WaveConfig | Mapping[str, Any] | None = None, output_dim: int = 256,
                 channels: Sequence[int] = PAPER_CHANNELS, input_frames: int | None = None,
                 se_ratio: int = SE_RATIO):
        if se_ratio < 1:
            raise ConfigError(f"SampleCNNSE: se_ratio must be a positive integer, got {se_ratio}")
        self.se_ratio = int(se_ratio)  # read by make_block during super().__init__ (a plain int)
        super().__init__(mel, output_dim, channels, input_frames)

    def make_indexed_block(self, index: int, in_channels: int, out_channels: int) -> nn.Module:
        block = super().make_indexed_block(index, in_channels, out_channels)
        return block if index == 0 else nn.Sequential(block, _SqueezeExcite(out_channels, self.se_ratio))

    def config(self) -> dict[str, Any]:
        return {**super().config(), "se_ratio": self.se_ratio}
