"""The Short-chunk models of the retrieval paper (REFERENCE §1, §3): the default audio towers.

- ``short_chunk_cnn`` (:class:`ShortChunkCNN`): 3×3 conv → BN → ReLU → 2×2 max-pool.
- ``short_chunk_resnet`` (:class:`ShortChunkResNet`): a residual pair of 3×3 convs, then 2×2 max-pool.

Both are the plain :class:`~retrieval.encoders.backbones.base.Backbone` with their own block. With the paper's
input (128 mels × 173 frames ≈ 4 s) seven blocks reduce frequency to 1 and time to 2. Pooling uses ``ceil_mode``
so any input of at least one frame works: a dimension that reaches 1 stays 1, and the final global max takes
whatever is left.

Example:
    >>> from retrieval.audio import MelConfig
    >>> model = ShortChunkCNN(mel=MelConfig(), channels=(8, 8, 16, 16, 16, 16, 32))
    >>> model.eval()(torch.zeros(2, model.input_samples)).shape
    torch.Size([2, 256])
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from retrieval.audio import MelConfig
from retrieval.encoders.backbones.base import Backbone

__all__ = ["DEMO_MEL", "ResidualBlock", "ShortChunkCNN", "ShortChunkResNet"]

KERNEL_SIZE = 3
POOL_SIZE = 2


def _pool(size: int | tuple[int, int] = POOL_SIZE) -> nn.MaxPool2d:
    """Max-pool (2×2 by default) that keeps a size-1 dimension at 1 (ceil mode) instead of failing on short inputs."""
    return nn.MaxPool2d(size, ceil_mode=True)


#: The demo's mel front end (64 bands at 22,050 Hz): cheap enough to train on a 2-core CPU in minutes.
DEMO_MEL = MelConfig(n_mels=64)


class _ConvBlock(nn.Sequential):
    """3×3 conv → BatchNorm → ReLU → 2×2 max-pool."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, KERNEL_SIZE, padding=KERNEL_SIZE // 2),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            _pool(),
        )


class ResidualBlock(nn.Module):
    """y = pool(ReLU(BN(conv(ReLU(BN(conv(x))))) + shortcut(x))).

    shortcut = identity, or 1×1 conv → BN where the channel count changes.
    """

    def __init__(self, in_channels: int, out_channels: int, pool: int | tuple[int, int] = POOL_SIZE):
        super().__init__()
        padding = KERNEL_SIZE // 2
        self.residual = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, KERNEL_SIZE, padding=padding),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, KERNEL_SIZE, padding=padding),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut: nn.Module = nn.Identity()
        if in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=1),
                                          nn.BatchNorm2d(out_channels))
        self.relu = nn.ReLU()
        self.pool = _pool(pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.relu(self.residual(x) + self.shortcut(x)))


class ShortChunkCNN(Backbone):
    """The paper's audio tower (Won et al. 2021, REFERENCE §1): blocks of 3×3 conv → BN → ReLU → 2×2 max-pool.

    Defaults: channels 128, 128, 256, 256, 256, 256, 512; output 256; 173-frame crops. A narrow variant such
    as ``channels=(32, 32, 64, 64, 64, 64, 128)`` trains on a laptop CPU in minutes.

    Example:
        >>> from retrieval.audio import MelConfig
        >>> net = ShortChunkCNN(MelConfig(), output_dim=64, channels=(8,) * 7).eval()
        >>> net.forward_mel(torch.zeros(3, 128, 50)).shape
        torch.Size([3, 64])
    """

    name = "short_chunk_cnn"
    DEMO: ClassVar[dict[str, Any]] = {"mel": DEMO_MEL, "channels": (16, 16, 32, 32, 32, 32, 64), "input_frames": 128}

    def make_block(self, in_channels: int, out_channels: int) -> nn.Module:
        return _ConvBlock(in_channels, out_channels)


class ShortChunkResNet(Backbone):
    """Short-chunk ResNet (Won et al., SMC 2020, REFERENCE §3): residual blocks of two 3×3 convs.

    Each block: conv → BN → ReLU → conv → BN, plus a shortcut (identity, or 1×1 conv → BN where the channel
    count changes), ReLU, then 2×2 max-pool. The SMC 2020 code downsamples with a stride-2 first conv and a
    strided 3×3 shortcut instead of pooling; max-pooling keeps this model's sizes identical to
    :class:`ShortChunkCNN` (same inputs, same head) so the two swap freely.
    """

    name = "short_chunk_resnet"
    DEMO: ClassVar[dict[str, Any]] = ShortChunkCNN.DEMO

    def make_block(self, in_channels: int, out_channels: int) -> nn.Module:
        return ResidualBlock(in_channels, out_channels)
