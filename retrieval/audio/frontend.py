"""The front end: what turns a waveform into a model's input features (a log-mel, or the samples themselves).

Every audio encoder's first layer is :func:`front_end` of its settings, and a checkpoint stores those settings,
so a model features audio at inference exactly as in training::

    wave (B, T) at config.sample_rate ──MelSpectrogram──▶ (B, n_mels, frames) log-mel      (MelConfig)
                                      ──WaveFrontEnd───▶ (B, 1, T) the samples            (WaveConfig)

Example:
    >>> config = MelConfig()                                  # 22,050 Hz, n_fft 1024, hop 512, 128 mels
    >>> MelSpectrogram(config)(torch.zeros(8, config.samples_for_frames(173))).shape
    torch.Size([8, 128, 173])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from retrieval.errors import ConfigError

_WINDOWS = {"hann": torch.hann_window, "hamming": torch.hamming_window}
_LOG_SCALES = ("db", "log1p", "musicnn")
_MEL_SCALES = ("htk", "slaney")
_NORMS = (None, "slaney")
_PAD_MODES = ("reflect", "constant")
# musicnn's compression: log10(1 + _MUSICNN_SCALE · P), P rounded to float16 first as musicnn stores it.
_MUSICNN_SCALE = 10000.0


@dataclass(frozen=True)
class MelConfig:
    """Settings of the log-mel front end; a checkpoint stores them so features never silently change.

    Attributes:
        sample_rate: Hz the audio is resampled to before the STFT.
        n_fft: FFT size and window length, in samples (1024 = 46 ms at 22,050 Hz).
        hop_length: samples between frames (512 = 23 ms at 22,050 Hz, ~43 frames per second).
        n_mels: mel bands.
        f_min: lowest mel filter edge, Hz.
        f_max: highest mel filter edge, Hz; ``None`` means ``sample_rate / 2``.
        window: STFT window, "hann" or "hamming".
        log: compression of the power mel ``P``: "db" gives ``10 * log10(max(P, 1e-10))``, "log1p" gives
            ``log(1 + P)``, "musicnn" gives ``log10(1 + 10000 · float16(P))`` (the published musicnn models'
            input; the log is taken in float32, see ``retrieval.pretrained.tagger``).
        top_db: with "db", floor every spectrogram at ``its own max - top_db`` dB; ``None`` disables it.
        mel_scale: "htk" (torchaudio's default) or "slaney" (librosa's default).
        norm: mel filter normalisation: None (torchaudio's default) or "slaney" (area-normalised, librosa's).
        pad_mode: how the centred STFT pads the ends: "reflect" (torchaudio's default) or "constant" (zeros,
            librosa ≥ 0.10).

    Example:
        >>> MelConfig().frames(22050 * 4)
        173
        >>> MelConfig().samples_for_frames(173)
        88064
    """

    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 512
    n_mels: int = 128
    f_min: float = 0.0
    f_max: float | None = None
    window: str = "hann"
    log: str = "db"
    top_db: float | None = None
    mel_scale: str = "htk"
    norm: str | None = None
    pad_mode: str = "reflect"

    def __post_init__(self) -> None:
        for key in ("sample_rate", "n_fft", "hop_length", "n_mels"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"MelConfig.{key} must be a positive integer, got {value!r}")
        nyquist = self.sample_rate / 2
        f_max = nyquist if self.f_max is None else self.f_max
        if not 0.0 < f_max <= nyquist:
            raise ConfigError(
                f"MelConfig.f_max must be in (0, sample_rate / 2 = {nyquist}] Hz, got {self.f_max}"
            )
        if not 0.0 <= self.f_min < f_max:
            raise ConfigError(f"MelConfig.f_min must be in [0, f_max = {f_max}) Hz, got {self.f_min}")
        if self.window not in _WINDOWS:
            raise ConfigError(f"MelConfig.window must be one of {sorted(_WINDOWS)}, got {self.window!r}")
        if self.log not in _LOG_SCALES:
            raise ConfigError(f"MelConfig.log must be one of {list(_LOG_SCALES)}, got {self.log!r}")
        for key, allowed in (("mel_scale", _MEL_SCALES), ("norm", _NORMS), ("pad_mode", _PAD_MODES)):
            if getattr(self, key) not in allowed:
                raise ConfigError(f"MelConfig.{key} must be one of {list(allowed)}, got {getattr(self, key)!r}")
        if self.top_db is not None:
            if self.log != "db":
                raise ConfigError(f"MelConfig.top_db applies only to log='db'; set top_db to None for "
                                  f"{self.log!r}")
            if not self.top_db > 0:
                raise ConfigError(f"MelConfig.top_db must be a positive (dB) or None, got {self.top_db}")

    def frames(self, n_samples: int) -> int:
        """Frames torchaudio's centred STFT returns for ``n_samples`` samples.

        ``frames = 1 + (n_samples + 2 * (n_fft // 2) - n_fft) // hop_length``, i.e.
        ``1 + n_samples // hop_length`` for an even ``n_fft``. Valid for ``n_samples > n_fft // 2``
        (shorter inputs cannot be reflect-padded).
        """
        return 1 + (n_samples + 2 * (self.n_fft // 2) - self.n_fft) // self.hop_length

    def samples_for_frames(self, n_frames: int) -> int:
        """The fewest samples whose centred STFT has exactly ``n_frames`` frames (the inverse of ``frames``).

        ``(n_frames - 1) * hop_length + n_fft - 2 * (n_fft // 2)``, raised to the reflect-padding minimum
        ``n_fft // 2 + 1`` when smaller; 173 frames → 88,064 samples ≈ 3.99 s at 22,050 Hz. Up to
        ``hop_length - 1`` more samples give the same number of frames.

        Raises:
            ValueError: no input length gives ``n_frames`` frames (e.g. 1 frame with the defaults: the
                shortest valid input, 513 samples, already gives 2).
        """
        shortest = self.n_fft // 2 + 1
        samples = max((n_frames - 1) * self.hop_length + self.n_fft - 2 * (self.n_fft // 2), shortest)
        if self.frames(samples) != n_frames:
            raise ValueError(
                f"no input gives {n_frames} frames; the shortest valid input ({shortest} samples) "
                f"gives {self.frames(shortest)}"
            )
        return samples


class MelSpectrogram(torch.nn.Module):
    """Waveform → log-compressed mel spectrogram; the first layer of every audio encoder.

    ``torchaudio.transforms.MelSpectrogram`` (centred STFT with reflect padding, power 2) followed by the
    log compression of ``config.log``. Each example is processed on its own — including ``top_db``, which
    takes the maximum of each spectrogram, not of the batch as ``torchaudio.transforms.AmplitudeToDB`` does
    for 3-D input — so the output for one track does not depend on what else is in the batch. It has no
    trainable parameters and no randomness; move it with ``.to(device)``.

    Args:
        config: the front-end settings.

    Shapes:
        ``forward``: wave ``(B, T)`` (or ``(..., T)``) float32 → ``(B, n_mels, config.frames(T))`` float32.

    Example:
        >>> mel = MelSpectrogram(MelConfig())
        >>> mel(torch.zeros(2, 88064)).shape
        torch.Size([2, 128, 173])
    """

    def __init__(self, config: MelConfig):
        super().__init__()
        self.config = config
        import torchaudio  # here, not at import: `retrieval.config` reads MelConfig, and a search needs no audio

        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=config.sample_rate,
            n_fft=config.n_fft,
            hop_length=config.hop_length,
            f_min=config.f_min,
            f_max=config.f_max,
            n_mels=config.n_mels,
            window_fn=_WINDOWS[config.window],
            power=2.0,
            center=True,
            pad_mode=config.pad_mode,
            mel_scale=config.mel_scale,
            norm=config.norm,
        )
        # top_db is applied per example in ``apply_top_db``, never here.
        self.to_db = torchaudio.transforms.AmplitudeToDB(stype="power", top_db=None)

    def log_mel(self, wave: torch.Tensor) -> torch.Tensor:
        """Log-compressed mel without the ``top_db`` floor (element-wise, so it can be computed in blocks).

        Args:
            wave: ``(..., T)`` float32 samples at ``config.sample_rate``, ``T > n_fft // 2``.

        Returns:
            ``(..., n_mels, frames)`` float32, also under a bf16 / fp16 autocast (features do not depend on the
            network's precision: the feature cache holds them).
        """
        with torch.autocast(wave.device.type, enabled=False):
            return self._log_mel(wave.float())

    def _log_mel(self, wave: torch.Tensor) -> torch.Tensor:
        min_samples = self.config.n_fft // 2 + 1
        if wave.shape[-1] < min_samples:
            raise ValueError(
                f"a mel spectrogram needs at least {min_samples} samples (n_fft // 2 + 1), got "
                f"{wave.shape[-1]}; pad short inputs first (see equally_spaced_crops / random_crop)"
            )
        power = self.mel(wave)
        if self.config.log == "db":
            return self.to_db(power)
        if self.config.log == "musicnn":
            return torch.log10(1.0 + _MUSICNN_SCALE * power.to(torch.float16).to(power.dtype))
        return torch.log1p(power)

    def apply_top_db(self, log_mel: torch.Tensor) -> torch.Tensor:
        """Floor each spectrogram at its own maximum minus ``config.top_db`` dB (identity if it is None).

        Args:
            log_mel: ``(..., n_mels, frames)`` in dB.
        """
        if self.config.top_db is None:
            return log_mel
        floor = log_mel.amax(dim=(-2, -1), keepdim=True) - self.config.top_db
        return torch.maximum(log_mel, floor)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """``(B, T)`` waveform → ``(B, n_mels, frames)`` log mel (see the class docstring)."""
        return self.apply_top_db(self.log_mel(wave))


@dataclass(frozen=True)
class WaveConfig:
    """The raw-waveform "front end" of sample-level models (SampleCNN): the features are the samples.

    It mirrors the parts of :class:`MelConfig` that crops and feature caches read, so a waveform is handled as
    a one-row spectrogram with one "frame" per sample: ``n_mels`` is 1 and ``frames(n) == n``.

    Attributes:
        sample_rate: Hz the audio is resampled to.
    """

    sample_rate: int = 16000
    n_mels: ClassVar[int] = 1  # feature rows

    def __post_init__(self) -> None:
        if not isinstance(self.sample_rate, int) or isinstance(self.sample_rate, bool) or self.sample_rate <= 0:
            raise ConfigError(f"WaveConfig.sample_rate must be a positive integer, got {self.sample_rate!r}")

    def frames(self, n_samples: int) -> int:
        """One feature column per sample."""
        return n_samples

    def samples_for_frames(self, n_frames: int) -> int:
        return n_frames


FrontEndConfig = MelConfig | WaveConfig
"""What turns a waveform into a model's input features: a log-mel, or the waveform itself."""


class WaveFrontEnd(torch.nn.Module):
    """The identity front end of :class:`WaveConfig`: ``(B, T)`` → ``(B, 1, T)``."""

    def __init__(self, config: WaveConfig):
        super().__init__()
        self.config = config

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return wave.unsqueeze(-2)


def front_end(config: FrontEndConfig) -> torch.nn.Module:
    """The module computing ``config``'s features from ``(B, T)`` waves → ``(B, n_mels, frames)``."""
    return WaveFrontEnd(config) if isinstance(config, WaveConfig) else MelSpectrogram(config)
