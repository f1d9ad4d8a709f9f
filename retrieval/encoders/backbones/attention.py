"""Attention taggers as audio towers: CNNSA, Music Tagging Transformer and SpecTNT (REFERENCE §3–§6).

All three subclass :class:`retrieval.encoders.backbones.base.Backbone`, so each owns its mel front end and a
checkpoint rebuilds it from ``describe()``. They share one shape of computation::

    mel (B, n_mels, frames) ─input BN─▶ residual conv blocks (pools per block) ─▶ (B, C, F', T')
        ─tokens─▶ Transformer over time (with a [CLS] token) ─▶ [CLS] ─Linear─▶ (B, output_dim)

- :class:`CNNSA` (Won, Chun, Serra 2019; SMC 2020 code): 7 residual blocks reduce frequency to 1, post-norm
  (BERT-style) encoder, 2 layers, 8 heads, width 512. 16 kHz, 96 mels, 15 s.
- :class:`MusicTaggingTransformer` (Won, Choi, Nieto 2021): 3 residual blocks of 128 channels, pools
  (2,2),(2,2),(2,1), frequency flattened, pre-norm encoder, 4 layers, 8 heads, width 256 (teacher) or 64
  (student). 22,050 Hz, 128 mels, 10 s.
- :class:`SpecTNT` (Lu et al. 2021): per block, a spectral Transformer over each frame's frequency tokens
  summarised by a frequency class token (FCT), FCTs projected and added to the temporal embeddings, then a
  temporal Transformer; 3 blocks, d = 96. 22,050 Hz, 128 mels, 4.54 s.

The base class's 1×1-conv head is replaced by a Linear on the [CLS] output, so outputs may be negative.
Learned positions are sized for ``input_frames``; other lengths linearly interpolate the table (as ViT does),
so any input of at least one frame works.

Example:
    >>> settings = MusicTaggingTransformer.paper_settings()
    >>> net = MusicTaggingTransformer(settings.mel, output_dim=16, channels=(8, 8, 8), width=32,
    ...                               layers=1, input_frames=settings.frames).eval()
    >>> net.forward_mel(torch.zeros(2, 128, 100)).shape
    torch.Size([2, 16])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from retrieval.audio import MelConfig
from retrieval.encoders.backbones.base import Backbone, InputSettings, input_settings
from retrieval.encoders.backbones.short_chunk import ResidualBlock
from retrieval.errors import ConfigError

__all__ = ["CNNSA", "MusicTaggingTransformer", "SpecTNT"]

#: MLP hidden size as a multiple of the model width (BERT and ViT use 4).
MLP_RATIO = 4
#: Std of the normal init of [CLS] tokens and position tables (BERT's initializer range).
EMBEDDING_INIT_STD = 0.02

Pool = tuple[int, int]


def _reduced(size: int, factors: Sequence[int]) -> int:
    """Size after ceil-mode pooling by each factor in turn (a size that reaches 1 stays 1)."""
    for factor in factors:
        size = math.ceil(size / factor)
    return size


def _positions(table: torch.Tensor, length: int) -> torch.Tensor:
    """A learned (1, L, D) position table resized to (1, length, D) by linear interpolation when L ≠ length."""
    if table.shape[1] == length:
        return table
    return F.interpolate(table.transpose(1, 2), size=length, mode="linear", align_corners=True).transpose(1, 2)


class _EncoderLayer(nn.Module):
    """One Transformer layer that also returns its attention weights.

    pre-norm:  x ← x + Drop(MHA(LN(x)));  x ← x + Drop(MLP(LN(x)))        (ViT, Music Tagging Transformer)
    post-norm: x ← LN(x + Drop(MHA(x)));  x ← LN(x + Drop(MLP(x)))        (BERT, CNNSA)
    MLP = Linear(D, 4D) → GELU → Dropout → Linear(4D, D).

    ``need_weights=False`` returns no weights (``None``), drops no attention weights (dropout still applies to the
    attention output and in the MLP) and so lets PyTorch use its fused attention kernel, which never materialises
    the (B, heads, L, L) weights: SpecTNT's spectral layers run over B·T' sequences, where materialised weights and
    their dropout masks made a training step ~4× slower on a CPU.
    """

    def __init__(self, width: int, heads: int, dropout: float, pre_norm: bool, need_weights: bool = True):
        super().__init__()
        self.pre_norm = pre_norm
        self.need_weights = need_weights
        self.attention = nn.MultiheadAttention(width, heads, dropout=dropout if need_weights else 0.0,
                                               batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(width, MLP_RATIO * width), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(MLP_RATIO * width, width))
        self.norm1 = nn.LayerNorm(width)
        self.norm2 = nn.LayerNorm(width)
        self.dropout = nn.Dropout(dropout)

    def _attend(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        out, weights = self.attention(x, x, x, need_weights=self.need_weights, average_attn_weights=False)
        return self.dropout(out), weights

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, L, D) → ((B, L, D), attention (B, heads, L, L) with rows summing to 1, or None)."""
        if self.pre_norm:
            out, weights = self._attend(self.norm1(x))
            x = x + out
            return x + self.dropout(self.mlp(self.norm2(x))), weights
        out, weights = self._attend(x)
        x = self.norm1(x + out)
        return self.norm2(x + self.dropout(self.mlp(x))), weights


class _Encoder(nn.Module):
    """A stack of :class:`_EncoderLayer`; pre-norm stacks end with a LayerNorm."""

    def __init__(self, width: int, layers: int, heads: int, dropout: float, pre_norm: bool):
        super().__init__()
        if width % heads:
            raise ConfigError(f"Transformer width {width} must be divisible by heads {heads}")
        self.layers = nn.ModuleList(_EncoderLayer(width, heads, dropout, pre_norm) for _ in range(layers))
        self.final_norm: nn.Module = nn.LayerNorm(width) if pre_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L, D) → ((B, L, D), attention (B, layers, heads, L, L))."""
        maps = []
        for layer in self.layers:
            x, weights = layer(x)
            maps.append(weights)
        return self.final_norm(x), torch.stack(maps, dim=1)


class _ConvTransformerBackbone(Backbone):
    """Residual conv blocks with per-block pools, then tokens; subclasses add the Transformer part."""

    def __init__(self, mel: MelConfig | Mapping[str, Any] | None, output_dim: int, channels: Sequence[int],
                 pools: Sequence[Sequence[int]], input_frames: int | None):
        pools = tuple((int(p[0]), int(p[1])) for p in pools)
        if len(pools) != len(tuple(channels)) or min(min(p) for p in pools) < 1:
            raise ConfigError(f"{type(self).__name__}: give one positive (freq, time) pool per block; got "
                              f"{len(tuple(channels))} channels and pools {pools}")
        # make_block (called by Backbone.__init__, block by block) reads these plain attributes.
        self.pools = pools
        self._blocks_made = 0
        super().__init__(mel, output_dim, channels, input_frames)
        self.reduced_mels = _reduced(self.mel.n_mels, [p[0] for p in pools])
        self.reduced_frames = _reduced(self.input_frames, [p[1] for p in pools])

    def make_block(self, in_channels: int, out_channels: int) -> nn.Module:
        block = ResidualBlock(in_channels, out_channels, self.pools[self._blocks_made])
        self._blocks_made += 1
        return block

    def conv_features(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, frames) → (B, channels[-1], F', T') with F' = ``reduced_mels``."""
        return self.blocks(self.input_bn(mel.unsqueeze(1)))

    def config(self) -> dict[str, Any]:
        return {**super().config(), "pools": [list(p) for p in self.pools]}


class _ClsTransformerBackbone(_ConvTransformerBackbone):
    """Conv blocks → flatten (channel, freq) per frame → Linear to width → [CLS] + positions → encoder."""

    def __init__(self, mel: MelConfig | Mapping[str, Any] | None, output_dim: int, channels: Sequence[int],
                 pools: Sequence[Sequence[int]], input_frames: int | None, width: int, layers: int, heads: int,
                 dropout: float, pre_norm: bool):
        super().__init__(mel, output_dim, channels, pools, input_frames)
        if min(width, layers, heads) < 1 or not 0.0 <= dropout < 1.0:
            raise ConfigError(f"{type(self).__name__}: width, layers, heads must be positive and dropout in "
                              f"[0, 1); got {width}, {layers}, {heads}, {dropout}")
        self.width, self.layers, self.heads, self.dropout = int(width), int(layers), int(heads), float(dropout)
        self.to_tokens = nn.Linear(self.channels[-1] * self.reduced_mels, width)
        self.cls_token = nn.Parameter(torch.randn(1, 1, width) * EMBEDDING_INIT_STD)
        self.positions = nn.Parameter(torch.randn(1, self.reduced_frames + 1, width) * EMBEDDING_INIT_STD)
        self.embedding_dropout = nn.Dropout(dropout)
        self.encoder = _Encoder(width, layers, heads, dropout, pre_norm)
        self.head = nn.Linear(width, output_dim)  # replaces the base class's 1×1-conv head

    def _encode(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv_features(mel)  # (B, C, F', T')
        x = x.flatten(1, 2).transpose(1, 2)  # (B, T', C·F')
        x = self.to_tokens(x)  # (B, T', width)
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1)  # (B, T'+1, width)
        x = self.embedding_dropout(x + _positions(self.positions, x.shape[1]))
        return self.encoder(x)

    def forward_features(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, frames) → (B, output_dim) from the [CLS] token's final state."""
        return self.head(self._encode(mel)[0][:, 0])

    def attention_maps(self, mel: torch.Tensor) -> torch.Tensor:
        """Attention weights of every layer for precomputed mels (B, n_mels, frames).

        Returns:
            (B, layers, heads, T'+1, T'+1) with token 0 = [CLS] and token t ≥ 1 = conv frame t−1 (each covers
            ``frames / T'`` mel frames). ``maps[:, :, :, 0, 1:]`` is the [CLS] attention over time for heat
            maps; rows sum to 1.
        """
        return self._encode(mel)[1]

    def config(self) -> dict[str, Any]:
        return {**super().config(), "width": self.width, "layers": self.layers, "heads": self.heads,
                "dropout": self.dropout}


class CNNSA(_ClsTransformerBackbone):
    """Self-attention tagger (Won, Chun, Serra 2019; REFERENCE §3, §6): conv front end + BERT-style encoder.

    Front end as in the public SMC 2020 code: 7 residual blocks (default channels 128, 128, 256 × 5) whose
    pools (2,2) × 3 then (2,1) × 4 take 96 mels to 1 and divide time by 8; each remaining frame is a token.
    Encoder: post-norm, 2 layers, 8 heads, width 512, MLP 4 × width with GELU. Paper input: 15 s at 16 kHz.
    """

    name = "cnnsa"
    DEMO: ClassVar[dict[str, Any]] = {"channels": (16, 16, 32, 32, 32, 32, 32), "width": 64, "heads": 4,
                                     "input_frames": 626}  # 10 s

    def __init__(self, mel: MelConfig | Mapping[str, Any] | None = None, output_dim: int = 256,
                 channels: Sequence[int] = (128, 128, 256, 256, 256, 256, 256),
                 pools: Sequence[Sequence[int]] = ((2, 2),) * 3 + ((2, 1),) * 4, input_frames: int | None = None,
                 width: int = 512, layers: int = 2, heads: int = 8, dropout: float = 0.1):
        super().__init__(mel, output_dim, channels, pools, input_frames, width, layers, heads, dropout,
                         pre_norm=False)

    @classmethod
    def paper_settings(cls) -> InputSettings:
        """16 kHz, n_fft 512, hop 256, 96 mels, 15 s (240,000 samples, 938 frames)."""
        return input_settings(MelConfig(sample_rate=16000, n_fft=512, hop_length=256, n_mels=96), 15.0)


class MusicTaggingTransformer(_ClsTransformerBackbone):
    """Music Tagging Transformer (Won, Choi, Nieto 2021; REFERENCE §4).

    3 residual blocks of 128 channels with pools (2,2),(2,2),(2,1) (128 mels → 16), (channel, freq) flattened
    per frame → Linear to ``width``; [CLS] + learned positions; pre-norm encoder, 4 layers, 8 heads, MLP
    4 × width, GELU, dropout 0.1. ``width`` 256 is the teacher, 64 the compact student.
    """

    name = "music_tagging_transformer"
    DEMO: ClassVar[dict[str, Any]] = {"channels": (32, 32, 32), "width": 64, "layers": 2, "heads": 4,
                                     "input_frames": 216}  # 5 s

    def __init__(self, mel: MelConfig | Mapping[str, Any] | None = None, output_dim: int = 256,
                 channels: Sequence[int] = (128, 128, 128),
                 pools: Sequence[Sequence[int]] = ((2, 2), (2, 2), (2, 1)), input_frames: int | None = None,
                 width: int = 256, layers: int = 4, heads: int = 8, dropout: float = 0.1):
        super().__init__(mel, output_dim, channels, pools, input_frames, width, layers, heads, dropout,
                         pre_norm=True)

    @classmethod
    def paper_settings(cls) -> InputSettings:
        """22,050 Hz, n_fft 1024, hop 512 (assumed; the paper gives n_fft only), 128 mels, 10 s (431 frames)."""
        return input_settings(MelConfig(sample_rate=22050, n_fft=1024, hop_length=512, n_mels=128), 10.0)


class _SpecTNTBlock(nn.Module):
    """Spectral Transformer per frame → FCT → Linear → added to temporal tokens → temporal Transformer."""

    def __init__(self, spectral_dim: int, spectral_heads: int, temporal_dim: int, temporal_heads: int,
                 dropout: float):
        super().__init__()
        self.spectral = _EncoderLayer(spectral_dim, spectral_heads, dropout, pre_norm=True, need_weights=False)
        self.fct_to_temporal = nn.Linear(spectral_dim, temporal_dim)
        self.temporal = _EncoderLayer(temporal_dim, temporal_heads, dropout, pre_norm=True)

    def forward(self, spectral: torch.Tensor, temporal: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """spectral (B·T', F'+1, d_s) with FCT at index 0; temporal (B, T'+1, d_t) with [CLS] at index 0.

        Returns the updated spectral and temporal tokens and the temporal attention (B, heads, T'+1, T'+1).
        """
        spectral, _ = self.spectral(spectral)
        fct = self.fct_to_temporal(spectral[:, 0]).view(len(temporal), -1, temporal.shape[-1])  # (B, T', d_t)
        temporal = torch.cat([temporal[:, :1], temporal[:, 1:] + fct], dim=1)
        temporal, weights = self.temporal(temporal)
        return spectral, temporal, weights


class SpecTNT(_ConvTransformerBackbone):
    """SpecTNT (Lu, Wang, Won, Choi, Song 2021; REFERENCE §5), tagging setting of the public re-implementation.

    A residual conv front end (default one block of 64 channels, pool (2,2)) gives (B, C, F', T'); each frame's
    F' frequency bins become tokens (Linear C → d_s, + frequency positions) behind a frequency class token
    (FCT). Temporal tokens start as [CLS] and, per frame, Linear(mean over frequency of the conv features), plus
    learned positions (d_t); the re-implementation starts frames at zero, which leaves every clip's [CLS] nearly
    the same at initialisation and training on a plateau until the FCTs grow (seen on small models). There is
    no final LayerNorm on the temporal tokens: with one, 1 of 4 seeds of a small model did not fit four clips in
    60 Adam steps (without: 4 of 4; tests/encoders/test_attention_backbones.py). Each of the ``blocks`` blocks runs a
    spectral Transformer layer per frame, adds Linear(FCT) to the frame's temporal token, then a temporal
    Transformer layer. Output: Linear on the temporal [CLS]. Defaults: 3 blocks, d_s = d_t = 96, 4 spectral
    and 8 temporal heads, dropout 0.15; 4.54 s at 22,050 Hz, 128 mels.
    """

    name = "spectnt"
    #: The demo pools (4, 4) (32 frequency tokens, ~11 frames per second): per-frame spectral attention over 64
    #: tokens made SpecTNT ~3× slower than every other backbone on a CPU.
    DEMO: ClassVar[dict[str, Any]] = {"channels": (32,), "pools": ((4, 4),), "blocks": 2, "spectral_dim": 32,
                                     "spectral_heads": 4,
                                     "temporal_dim": 32, "temporal_heads": 4}

    def __init__(self, mel: MelConfig | Mapping[str, Any] | None = None, output_dim: int = 256,
                 channels: Sequence[int] = (64,),
                 pools: Sequence[Sequence[int]] = ((2, 2),), input_frames: int | None = None, blocks: int = 3,
                 spectral_dim: int = 96, spectral_heads: int = 4, temporal_dim: int = 96,
                 temporal_heads: int = 8, dropout: float = 0.15):
        super().__init__(mel, output_dim, channels, pools, input_frames)
        if min(blocks, spectral_dim, spectral_heads, temporal_dim, temporal_heads) < 1 or not 0 <= dropout < 1:
            raise ConfigError(f"SpecTNT: blocks, dims and heads must be positive and dropout in [0, 1); got "
                              f"{blocks}, {spectral_dim}, {spectral_heads}, {temporal_dim}, {temporal_heads}, "
                              f"{dropout}")
        for dim, heads in ((spectral_dim, spectral_heads), (temporal_dim, temporal_heads)):
            if dim % heads:
                raise ConfigError(f"SpecTNT: width {dim} must be divisible by heads {heads}")
        self.n_blocks, self.dropout = int(blocks), float(dropout)
        self.spectral_dim, self.spectral_heads = int(spectral_dim), int(spectral_heads)
        self.temporal_dim, self.temporal_heads = int(temporal_dim), int(temporal_heads)
        self.to_spectral = nn.Linear(self.channels[-1], spectral_dim)
        self.to_temporal = nn.Linear(self.channels[-1], temporal_dim)
        self.fct = nn.Parameter(torch.randn(1, 1, spectral_dim) * EMBEDDING_INIT_STD)
        self.frequency_positions = nn.Parameter(
            torch.randn(1, self.reduced_mels + 1, spectral_dim) * EMBEDDING_INIT_STD)
        self.cls_token = nn.Parameter(torch.randn(1, 1, temporal_dim) * EMBEDDING_INIT_STD)
        self.time_positions = nn.Parameter(
            torch.randn(1, self.reduced_frames + 1, temporal_dim) * EMBEDDING_INIT_STD)
        self.tnt_blocks = nn.ModuleList(
            _SpecTNTBlock(spectral_dim, spectral_heads, temporal_dim, temporal_heads, dropout)
            for _ in range(blocks))
        self.head = nn.Linear(temporal_dim, output_dim)  # replaces the base class's 1×1-conv head

    def _encode(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv_features(mel)  # (B, C, F', T')
        batch, _, n_freq, n_time = x.shape
        spectral = self.to_spectral(x.permute(0, 3, 2, 1).reshape(batch * n_time, n_freq, -1))  # (B·T', F', d_s)
        spectral = torch.cat([self.fct.expand(len(spectral), -1, -1), spectral], dim=1) + self.frequency_positions
        frames = self.to_temporal(x.mean(dim=2).transpose(1, 2))  # (B, T', d_t): each frame's mean over frequency
        temporal = torch.cat([self.cls_token.expand(batch, -1, -1), frames], dim=1)
        temporal = temporal + _positions(self.time_positions, n_time + 1)  # (B, T'+1, d_t)
        maps = []
        for block in self.tnt_blocks:
            spectral, temporal, weights = block(spectral, temporal)
            maps.append(weights)
        return temporal, torch.stack(maps, dim=1)

    def forward_features(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, frames) → (B, output_dim) from the temporal [CLS] token."""
        return self.head(self._encode(mel)[0][:, 0])

    def attention_maps(self, mel: torch.Tensor) -> torch.Tensor:
        """Temporal attention of each block: (B, blocks, temporal_heads, T'+1, T'+1), token 0 = [CLS]."""
        return self._encode(mel)[1]

    @classmethod
    def paper_settings(cls) -> InputSettings:
        """22,050 Hz, n_fft 1024, hop 512 (assumed), 128 mels, 4.54 s (100,107 samples, 196 frames)."""
        return input_settings(MelConfig(sample_rate=22050, n_fft=1024, hop_length=512, n_mels=128), 4.54)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "blocks": self.n_blocks, "spectral_dim": self.spectral_dim,
                "spectral_heads": self.spectral_heads, "temporal_dim": self.temporal_dim,
                "temporal_heads": self.temporal_heads, "dropout": self.dropout}
