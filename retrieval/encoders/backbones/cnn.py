"""Tagging CNNs of the SMC 2020 benchmark (Won et al., REFERENCE §3) as :class:`Backbone` audio towers.

All four take 16 kHz audio, a 512-point FFT with hop 256 and dB-scaled mels, and map
(B, n_mels, frames) → (B, output_dim) in ``forward_features``:

=================  ======  =====  ==============================================================================
class              mels    input  network after the input BatchNorm
=================  ======  =====  ==============================================================================
:class:`FCN`       96      29 s   5 × (3×3 conv → BN → ReLU → max-pool (2,4),(2,4),(2,4),(3,5),(4,4)) → 1×1 head
:class:`Musicnn`   96      3 s    vertical (timbre) + horizontal (temporal) filters → 3 residual 1-D convs →
                                  max & mean over time → Linear → BN → ReLU
:class:`CRNN`      96      29 s   4 × (3×3 conv → BN → ReLU → max-pool (2,2),(3,3),(4,4),(4,4)) → 2-layer GRU →
                                  last step → Linear
:class:`HarmonicCNN` 128   5 s    harmonic stack of the log-mel (H channels) → 7 × (3×3 conv → BN → ReLU → 2×2
                                  max-pool) → 1×1 head
=================  ======  =====  ==============================================================================

Widths default to the papers' and are constructor arguments, so tests build tiny models. Every class has
:meth:`paper_settings` (the mel settings and crop length of REFERENCE §3) and takes ``mel`` either as a
:class:`MelConfig` or its dict form, so ``cls(**model.config())`` rebuilds the model.

Example:
    >>> net = FCN(channels=(4, 4, 4, 4, 4), output_dim=8).eval()
    >>> net.forward_mel(torch.zeros(2, 96, 100)).shape
    torch.Size([2, 8])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from retrieval.audio import MelConfig
from retrieval.encoders.backbones.base import IndexedBackbone, InputSettings, input_settings
from retrieval.errors import ConfigError

__all__ = ["CRNN", "FCN", "HarmonicCNN", "Musicnn", "smc2020_mel"]

#: SMC 2020 front end (REFERENCE §3): 16 kHz, n_fft 512 (32 ms), hop 256 (16 ms, 62.5 frames per second).
SMC_SAMPLE_RATE = 16000
SMC_N_FFT = 512
SMC_HOP = 256
KERNEL_SIZE = 3


def smc2020_mel(n_mels: int) -> MelConfig:
    """The SMC 2020 mel settings (16 kHz, n_fft 512, hop 256, dB) with ``n_mels`` bands."""
    return MelConfig(sample_rate=SMC_SAMPLE_RATE, n_fft=SMC_N_FFT, hop_length=SMC_HOP, n_mels=n_mels, log="db")


def _settings(n_mels: int, seconds: float) -> InputSettings:
    """InputSettings for an SMC 2020 model reading ``seconds`` of audio (29 s → 1,813 frames)."""
    return input_settings(smc2020_mel(n_mels), seconds)


def _pairs(pools: Sequence[Sequence[int]], n_blocks: int, owner: str) -> tuple[tuple[int, int], ...]:
    """Validate a per-block list of (frequency, time) pool sizes."""
    out = tuple((int(p[0]), int(p[1])) for p in pools)
    if len(out) != n_blocks or any(len(p) != 2 for p in pools) or min(min(p) for p in out) < 1:
        raise ConfigError(f"{owner}: pools must give one (frequency, time) pair of positive ints per block "
                          f"({n_blocks} blocks), got {pools!r}")
    return out


class _ConvPool(nn.Sequential):
    """3×3 conv → BN → ReLU → max-pool ``pool`` (ceil mode, so short inputs shrink to 1 rather than fail)."""

    def __init__(self, in_channels: int, out_channels: int, pool: tuple[int, int]):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, KERNEL_SIZE, padding=KERNEL_SIZE // 2),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.MaxPool2d(pool, ceil_mode=True),
        )


# ----------------------------------------------------------------------------------------------------- FCN
FCN_CHANNELS = (64, 128, 128, 128, 64)
FCN_POOLS = ((2, 4), (2, 4), (2, 4), (3, 5), (4, 4))
FCN_MELS = 96
FCN_SECONDS = 29.0


class FCN(IndexedBackbone):
    """Fully convolutional network (Choi, Fazekas, Sandler, ISMIR 2016; SMC 2020 settings).

    Five blocks of 3×3 conv → BN → ReLU → max-pool; the pools (2,4),(2,4),(2,4),(3,5),(4,4) take 96 mels ×
    1,813 frames (29 s) to 1 × 2. Then the shared head: 1×1 conv to ``output_dim`` → BN → ReLU → global max
    (the paper's dense sigmoid layer is the tagging head's job here).

    Args:
        mel: front end (default: :meth:`paper_settings`), a MelConfig or its dict form.
        output_dim: output size.
        channels: widths of the conv blocks (paper 64, 128, 128, 128, 64).
        pools: (frequency, time) max-pool of each block, one per entry of ``channels``.
        input_frames: training crop in frames (default 29 s = 1,813 frames).
    """

    name = "fcn"
    DEMO: ClassVar[dict[str, Any]] = {"channels": (16, 32, 32, 32, 16), "input_frames": 626}  # 10 s

    def __init__(self, mel: MelConfig | Mapping[str, Any] | None = None, output_dim: int = 256,
                 channels: Sequence[int] = FCN_CHANNELS, pools: Sequence[Sequence[int]] = FCN_POOLS,
                 input_frames: int | None = None):
        self.pools = _pairs(pools, len(channels), type(self).__name__)
        super().__init__(mel, output_dim, channels, input_frames)

    @classmethod
    def paper_settings(cls) -> InputSettings:
        """16 kHz, n_fft 512, hop 256, 96 mels; 29 s = 1,813 frames (463,872 samples)."""
        return _settings(FCN_MELS, FCN_SECONDS)

    def make_indexed_block(self, index: int, in_channels: int, out_channels: int) -> nn.Module:
        return _ConvPool(in_channels, out_channels, self.pools[index])

    def config(self) -> dict[str, Any]:
        return {**super().config(), "pools": [list(p) for p in self.pools]}


# ----------------------------------------------------------------------------------------------------- CRNN
CRNN_CHANNELS = (64, 128, 128, 128)
CRNN_POOLS = ((2, 2), (3, 3), (4, 4), (4, 4))
CRNN_GRU_HIDDEN = 32
CRNN_GRU_LAYERS = 2
CRNN_MELS = 96
CRNN_SECONDS = 29.0


class CRNN(IndexedBackbone):
    """Convolutional recurrent network (Choi, Fazekas, Sandler, Cho, ICASSP 2017; SMC 2020 settings).

    Four blocks of 3×3 conv → BN → ReLU → max-pool (2,2),(3,3),(4,4),(4,4) take 96 mels to 1 frequency bin;
    (any frequency left with other ``n_mels`` is max-pooled away) → a GRU (2 layers, 32 units) over time →
    its last step → Linear to ``output_dim`` (no activation: the output may be negative).

    Args:
        mel: front end (default: :meth:`paper_settings`), a MelConfig or its dict form.
        output_dim: output size.
        channels: widths of the conv blocks (paper 64, 128, 128, 128).
        pools: (frequency, time) max-pool of each block.
        gru_hidden: GRU units per layer.
        gru_layers: stacked GRU layers.
        input_frames: training crop in frames (default 29 s = 1,813 frames).
    """

    name = "crnn"
    DEMO: ClassVar[dict[str, Any]] = {"channels": (16, 32, 32, 32), "input_frames": 626}  # 10 s

    def __init__(self, mel: MelConfig | Mapping[str, Any] | None = None, output_dim: int = 256,
                 channels: Sequence[int] = CRNN_CHANNELS, pools: Sequence[Sequence[int]] = CRNN_POOLS,
                 gru_hidden: int = CRNN_GRU_HIDDEN, gru_layers: int = CRNN_GRU_LAYERS,
                 input_frames: int | None = None):
        self.pools = _pairs(pools, len(channels), type(self).__name__)
        if gru_hidden < 1 or gru_layers < 1:
            raise ConfigError(f"CRNN: gru_hidden and gru_layers must be positive, got {gru_hidden}, {gru_layers}")
        super().__init__(mel, output_dim, channels, input_frames)
        self.gru_hidden = int(gru_hidden)
        self.gru_layers = int(gru_layers)
        self.gru = nn.GRU(self.channels[-1], self.gru_hidden, num_layers=self.gru_layers, batch_first=True)
        self.head = nn.Linear(self.gru_hidden, self.output_dim)  # replaces the base 1×1-conv head

    @classmethod
    def paper_settings(cls) -> InputSettings:
        """16 kHz, n_fft 512, hop 256, 96 mels; 29 s = 1,813 frames."""
        return _settings(CRNN_MELS, CRNN_SECONDS)

    def make_indexed_block(self, index: int, in_channels: int, out_channels: int) -> nn.Module:
        return _ConvPool(in_channels, out_channels, self.pools[index])

    def forward_features(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.input_bn(mel.unsqueeze(1)))  # (B, C, F', T')
        x = x.amax(dim=2).transpose(1, 2)  # (B, T', C)
        sequence, _ = self.gru(x)  # (B, T', gru_hidden)
        return self.head(sequence[:, -1])  # (B, output_dim)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "pools": [list(p) for p in self.pools], "gru_hidden": self.gru_hidden,
                "gru_layers": self.gru_layers}


# -------------------------------------------------------------------------------------------------- Musicnn
MUSICNN_TIMBRAL_CHANNELS = 204
MUSICNN_TEMPORAL_CHANNELS = 51
MUSICNN_BACKEND = (512, 512, 512)
#: Vertical (timbral) filter heights as fractions of the mel bands, and their width in frames.
MUSICNN_TIMBRAL_HEIGHTS = (0.7, 0.4)
MUSICNN_TIMBRAL_WIDTH = 7
#: Horizontal (temporal) filter lengths in frames (≈ 2 s, 1 s, 0.5 s at 62.5 frames per second).
MUSICNN_TEMPORAL_LENGTHS = (129, 65, 33)
MUSICNN_BACKEND_KERNEL = 7
MUSICNN_MELS = 96
MUSICNN_SECONDS = 3.0


class _ConvBNReLU1d(nn.Sequential):
    """1-D conv (same padding for odd kernels) → BN → ReLU over (B, C, T)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int):
        super().__init__(nn.Conv1d(in_channels, out_channels, kernel, padding=kernel // 2),
                         nn.BatchNorm1d(out_channels), nn.ReLU())


class _MusicnnFrontEnd(nn.Module):
    """Musically motivated filters (Pons et al. 2018): (B, 1, F, T) → (B, 2·timbral + 3·temporal, T).

    - timbral: 2-D convs spanning ``h·F`` mel bands × 7 frames, BN, ReLU, then max over frequency;
    - temporal: mean over frequency, then 1-D convs 129/65/33 frames long, BN, ReLU.
    """

    def __init__(self, n_mels: int, timbral: int, temporal: int):
        super().__init__()
        self.timbral = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(1, timbral, (max(1, int(h * n_mels)), MUSICNN_TIMBRAL_WIDTH),
                          padding=(0, MUSICNN_TIMBRAL_WIDTH // 2)),
                nn.BatchNorm2d(timbral), nn.ReLU())
            for h in MUSICNN_TIMBRAL_HEIGHTS)
        self.temporal = nn.ModuleList(_ConvBNReLU1d(1, temporal, k) for k in MUSICNN_TEMPORAL_LENGTHS)
        self.out_channels = timbral * len(MUSICNN_TIMBRAL_HEIGHTS) + temporal * len(MUSICNN_TEMPORAL_LENGTHS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        timbre = [conv(x).amax(dim=2) for conv in self.timbral]  # each (B, timbral, T)
        envelope = x.mean(dim=2)  # (B, 1, T)
        rhythm = [conv(envelope) for conv in self.temporal]  # each (B, temporal, T)
        return torch.cat(timbre + rhythm, dim=1)


class Musicnn(IndexedBackbone):
    """Musicnn (Pons & Serra, ISMIR 2018; SMC 2020 settings): musically motivated front end + 1-D back end.

    ``forward_features``::

        mel → BN → front end (B, 2·204 + 3·51 = 561, T) → 1-D conv blocks (kernel 7; residual from the
        second on) → concat [front, block 1, …] → max and mean over time → Linear → BN → ReLU → (B, output_dim)

    Args:
        mel: front end (default: :meth:`paper_settings`), a MelConfig or its dict form.
        output_dim: output size (the paper's penultimate dense layer has 500 units).
        channels: widths of the 1-D back-end blocks (paper 512, 512, 512).
        timbral_channels: filters per vertical (timbral) filter shape (paper 204).
        temporal_channels: filters per horizontal (temporal) filter length (paper 51).
        input_frames: training crop in frames (default 3 s = 188 frames).
    """

    name = "musicnn"
    DEMO: ClassVar[dict[str, Any]] = {"channels": (64, 64, 64), "timbral_channels": 32, "temporal_channels": 8}

    def __init__(self, mel: MelConfig | Mapping[str, Any] | None = None, output_dim: int = 256,
                 channels: Sequence[int] = MUSICNN_BACKEND, timbral_channels: int = MUSICNN_TIMBRAL_CHANNELS,
                 temporal_channels: int = MUSICNN_TEMPORAL_CHANNELS, input_frames: int | None = None):
        if timbral_channels < 1 or temporal_channels < 1:
            raise ConfigError(f"Musicnn: timbral_channels and temporal_channels must be positive, got "
                              f"{timbral_channels}, {temporal_channels}")
        # make_indexed_block reads the front end's width (set before nn.Module.__init__: a plain int)
        self.front_channels = (int(timbral_channels) * len(MUSICNN_TIMBRAL_HEIGHTS)
                               + int(temporal_channels) * len(MUSICNN_TEMPORAL_LENGTHS))
        super().__init__(mel, output_dim, channels, input_frames)
        self.front = _MusicnnFrontEnd(self.mel.n_mels, int(timbral_channels), int(temporal_channels))
        self.timbral_channels = int(timbral_channels)
        self.temporal_channels = int(temporal_channels)
        pooled = 2 * (self.front.out_channels + sum(self.channels))  # max and mean of every stage
        self.head = nn.Sequential(nn.Linear(pooled, self.output_dim), nn.BatchNorm1d(self.output_dim), nn.ReLU())

    @classmethod
    def paper_settings(cls) -> InputSettings:
        """16 kHz, n_fft 512, hop 256, 96 mels; 3 s = 188 frames."""
        return _settings(MUSICNN_MELS, MUSICNN_SECONDS)

    def make_indexed_block(self, index: int, in_channels: int, out_channels: int) -> nn.Module:
        if index == 0:  # the base class counts one input channel; the back end reads the front end's output
            in_channels = self.front_channels
        return _ConvBNReLU1d(in_channels, out_channels, MUSICNN_BACKEND_KERNEL)

    def forward_features(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.front(self.input_bn(mel.unsqueeze(1)))  # (B, front, T)
        stages = [x]
        for index, block in enumerate(self.blocks):
            y = block(x)
            x = y + x if index > 0 and y.shape == x.shape else y  # residual where widths match
            stages.append(x)
        features = torch.cat(stages, dim=1)  # (B, front + Σ channels, T)
        pooled = torch.cat([features.amax(dim=2), features.mean(dim=2)], dim=1)
        return self.head(pooled)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "timbral_channels": self.timbral_channels,
                "temporal_channels": self.temporal_channels}


# ---------------------------------------------------------------------------------------------- Harmonic CNN
HCNN_CHANNELS = (128, 128, 256, 256, 256, 256, 512)
HCNN_HARMONICS = 6
HCNN_MELS = 128
HCNN_SECONDS = 5.0
#: HTK mel scale, the one :class:`MelSpectrogram` uses: m = 2595 · log10(1 + f / 700).
MEL_SCALE_FACTOR = 2595.0
MEL_BREAK_HZ = 700.0


def _hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    return MEL_SCALE_FACTOR * torch.log10(1.0 + hz / MEL_BREAK_HZ)


def _mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    return MEL_BREAK_HZ * (10.0 ** (mel / MEL_SCALE_FACTOR) - 1.0)


def harmonic_positions(mel: MelConfig, n_harmonics: int) -> torch.Tensor:
    """Fractional mel-band index of the h-th harmonic of every band's centre frequency.

    Band k's centre is ``f_k`` (mel-spaced between f_min and f_max as in torchaudio's filter bank); harmonic
    h ∈ 1..H lies at ``h · f_k``, i.e. at fractional band index
    ``(mel(h·f_k) − mel(f_min)) / (mel(f_max) − mel(f_min)) · (n_mels + 1) − 1``.

    Returns:
        (n_harmonics, n_mels) float64; row 0 is 0, 1, …, n_mels − 1; values above n_mels − 1 lie beyond f_max.
    """
    f_max = mel.f_max if mel.f_max is not None else mel.sample_rate / 2
    m_min, m_max = _hz_to_mel(torch.tensor(float(mel.f_min))), _hz_to_mel(torch.tensor(float(f_max)))
    edges = torch.linspace(float(m_min), float(m_max), mel.n_mels + 2, dtype=torch.float64)
    centres = _mel_to_hz(edges[1:-1])  # (n_mels,) Hz
    harmonics = torch.arange(1, n_harmonics + 1, dtype=torch.float64)[:, None]
    return (_hz_to_mel(harmonics * centres) - m_min) / (m_max - m_min) * (mel.n_mels + 1) - 1


class HarmonicStack(nn.Module):
    """Parameter-free harmonic channels of a log-mel: (B, 1, F, T) → (B, H, F, T).

    Channel h (1-based) at band k holds the spectrogram at the band of frequency ``h · f_k``, linearly
    interpolated between neighbouring bands; positions above f_max take the clip's minimum (the floor, i.e.
    silence). This approximates the Harmonic CNN's learnable harmonic filter bank (Won et al., ICASSP 2020),
    which applies triangular filters centred at h · f for h = 1..6 directly to the STFT: both give a 2-D conv
    the partials of a note aligned across channels at the fundamental's position. Unlike the original, the
    bandwidths are not learned and resolution is that of the mel bands (coarse in the highest harmonics).
    """

    def __init__(self, mel: MelConfig, n_harmonics: int):
        super().__init__()
        positions = harmonic_positions(mel, n_harmonics)
        valid = positions <= mel.n_mels - 1
        positions = positions.clamp(0, mel.n_mels - 1)
        lower = positions.floor().long().clamp(max=mel.n_mels - 2) if mel.n_mels > 1 else positions.long()
        upper = (lower + 1).clamp(max=mel.n_mels - 1)
        self.register_buffer("lower", lower.flatten(), persistent=False)
        self.register_buffer("upper", upper.flatten(), persistent=False)
        self.register_buffer("weight", (positions - lower).float().flatten(), persistent=False)
        self.register_buffer("valid", valid.flatten(), persistent=False)
        self.n_harmonics = n_harmonics

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, n_mels, frames = x.shape
        spec = x[:, 0]  # (B, F, T)
        weight = self.weight[:, None]  # (H·F, 1)
        stacked = spec[:, self.lower] * (1 - weight) + spec[:, self.upper] * weight  # (B, H·F, T)
        floor = spec.amin(dim=(1, 2), keepdim=True)  # (B, 1, 1)
        stacked = torch.where(self.valid[:, None], stacked, floor)
        return stacked.reshape(batch, self.n_harmonics, n_mels, frames)


class HarmonicCNN(IndexedBackbone):
    """Harmonic CNN (Won, Chun, Nieto, Serra, ICASSP 2020; SMC 2020 settings), front end approximated.

    ``forward_features``: mel → BN → :class:`HarmonicStack` (H = 6 channels) → 7 × (3×3 conv → BN → ReLU → 2×2
    max-pool) → 1×1 conv to ``output_dim`` → BN → ReLU → global max. 128 bands × 313 frames (5 s) pool to 1 × 3.
    The original back end is 10 conv/residual layers (128 → 256 → 512 channels); the 7 plain blocks here keep
    its widths and the Short-chunk CNN's shape. The learnable harmonic filter bank is replaced by the
    parameter-free :class:`HarmonicStack` of the log-mel (see there).

    Args:
        mel: front end (default: :meth:`paper_settings`), a MelConfig or its dict form.
        output_dim: output size.
        channels: widths of the conv blocks (first block reads ``n_harmonics`` channels).
        n_harmonics: harmonic channels (paper 6).
        input_frames: training crop in frames (default 5 s = 313 frames).
    """

    name = "harmonic_cnn"
    DEMO: ClassVar[dict[str, Any]] = {"channels": (16, 16, 32, 32, 32, 32, 64)}

    def __init__(self, mel: MelConfig | Mapping[str, Any] | None = None, output_dim: int = 256,
                 channels: Sequence[int] = HCNN_CHANNELS, n_harmonics: int = HCNN_HARMONICS,
                 input_frames: int | None = None):
        if n_harmonics < 1:
            raise ConfigError(f"HarmonicCNN: n_harmonics must be positive, got {n_harmonics}")
        self.n_harmonics = int(n_harmonics)
        super().__init__(mel, output_dim, channels, input_frames)
        self.harmonics = HarmonicStack(self.mel, self.n_harmonics)

    @classmethod
    def paper_settings(cls) -> InputSettings:
        """16 kHz, n_fft 512, hop 256, 128 mels; 5 s = 313 frames."""
        return _settings(HCNN_MELS, HCNN_SECONDS)

    def make_indexed_block(self, index: int, in_channels: int, out_channels: int) -> nn.Module:
        if index == 0:  # the base class counts one input channel; the stack has n_harmonics
            in_channels = self.n_harmonics
        return _ConvPool(in_channels, out_channels, (2, 2))

    def forward_features(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.harmonics(self.input_bn(mel.unsqueeze(1)))  # (B, H, F, T)
        x = self.head(self.blocks(x))  # (B, output_dim, F', T')
        return x.amax(dim=(2, 3))

    def config(self) -> dict[str, Any]:
        return {**super().config(), "n_harmonics": self.n_harmonics}
