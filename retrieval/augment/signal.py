"""The signal functions both uses share: time stretch, pitch shift, dynamic-range compression, white noise.

Every function takes ``(T,)`` or ``(B, T)`` float waveforms (mono, values roughly in [-1, 1]) and returns the same
rank; randomness comes only from a ``torch.Generator`` passed in.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import torch
import torchaudio.functional as AF
from torch import Tensor

PITCH_RATIO_MAX_DENOMINATOR = 200
"""Pitch ratios ``2^(s/12)`` are applied as the nearest fraction ``p/q`` with ``q <= 200`` (at most 4.3 cents
off over ±7 semitones), because ``torchaudio.functional.resample`` builds a kernel of ``~q × p`` taps: an exact
irrational ratio rounded to integer rates (what ``torchaudio.functional.pitch_shift`` does) gives coprime rates
near the sample rate and a kernel of ~10⁸ taps."""

STRETCH_WINDOW_S = 0.05
"""Phase-vocoder STFT window, seconds, rounded to a power-of-two FFT size: 1024 samples at 16 kHz and at
22,050 Hz (64 / 46 ms), long enough to resolve the partials of music; hop = window / 4."""

COMPRESSOR_ATTACK_S = 0.005
"""Attack time constant of the compressor's gain smoothing, seconds."""
COMPRESSOR_RELEASE_S = 0.1
"""Release time constant of the compressor's peak detector, seconds."""
COMPRESSOR_LOOKAHEAD_S = 3 * COMPRESSOR_ATTACK_S
"""The compressor's gain is applied this much earlier than computed (look-ahead), so the attack has settled
(95 %) when a loud onset arrives: without it, the first 5 ms of every onset pass uncompressed and the make-up
gain lifts them far over the compressed level (+10 dB peaks on a tone burst)."""



# ---- shapes and random draws ----


def as_batch(wave: Tensor, caller: str) -> tuple[Tensor, bool]:
    """``(B, T)`` view of a ``(T,)`` or ``(B, T)`` float waveform, and whether it was 1-D."""
    if wave.ndim not in (1, 2):
        raise ValueError(f"{caller}: wave must be (T,) or (B, T), got shape {tuple(wave.shape)}")
    if not wave.is_floating_point():
        raise TypeError(f"{caller}: wave must be a float tensor, got {wave.dtype}; convert with wave.float()")
    return (wave[None], True) if wave.ndim == 1 else (wave, False)


def rand(n: int, generator: torch.Generator, like: Tensor) -> Tensor:
    """``(n,)`` uniform [0, 1) draws from ``generator`` (on its own device), moved to ``like``'s device and dtype."""
    return torch.rand(n, generator=generator, device=generator.device).to(like.device, like.dtype)


def randn(shape: tuple[int, ...], generator: torch.Generator, like: Tensor) -> Tensor:
    """Standard normal draws from ``generator`` (on its own device), moved to ``like``'s device and dtype."""
    return torch.randn(shape, generator=generator, device=generator.device).to(like.device, like.dtype)


# ---- signal functions ----


def _stretch_fft_size(sample_rate: int) -> int:
    """FFT size of the phase vocoder: ``STRETCH_WINDOW_S`` seconds rounded to a power of two."""
    return 2 ** round(math.log2(STRETCH_WINDOW_S * sample_rate))


def _phase_vocoder(wave: Tensor, sample_rate: int, rate: float, length: int) -> Tensor:
    """Tempo change by ``rate`` (> 1 faster) of ``(B, T)`` without pitch change, cut or padded to ``length``."""
    n_fft = _stretch_fft_size(sample_rate)
    hop = n_fft // 4
    if wave.shape[-1] <= n_fft // 2:
        raise ValueError(
            f"time stretch / pitch shift need more than {n_fft // 2} samples at {sample_rate} Hz "
            f"(half the {n_fft}-sample phase-vocoder window), got {wave.shape[-1]}"
        )
    window = torch.hann_window(n_fft, device=wave.device, dtype=wave.dtype)
    spec = torch.stft(wave, n_fft, hop, window=window, return_complex=True)  # (B, n_fft/2 + 1, frames)
    phase_advance = torch.linspace(0, math.pi * hop, spec.shape[-2], device=wave.device, dtype=wave.dtype)[:, None]
    stretched = AF.phase_vocoder(spec, rate, phase_advance)  # (B, n_fft/2 + 1, ceil(frames / rate))
    return torch.istft(stretched, n_fft, hop, window=window, length=length)


def time_stretch(wave: Tensor, sample_rate: int, rate: float) -> Tensor:
    """Change the tempo by ``rate`` without changing the pitch (phase vocoder).

    STFT (Hann window of ``STRETCH_WINDOW_S`` rounded to a power of two, hop a quarter of it) →
    ``torchaudio.functional.phase_vocoder`` → inverse STFT.

    Args:
        wave: ``(T,)`` or ``(B, T)`` float waveform; needs more than half a window of samples.
        sample_rate: Hz (sets the window length).
        rate: speed factor, > 0: 1.2 plays 20 % faster (shorter), 0.8 slower (longer).

    Returns:
        Same rank as ``wave``, ``round(T / rate)`` samples. ``rate == 1`` returns a copy.

    Example:
        >>> time_stretch(torch.zeros(16000), 16000, 0.8).shape
        torch.Size([20000])
    """
    if not rate > 0:
        raise ValueError(f"time_stretch: rate must be > 0, got {rate}")
    x, squeeze = as_batch(wave, "time_stretch")
    out = x.clone() if rate == 1 else _phase_vocoder(x, sample_rate, rate, round(x.shape[-1] / rate))
    return out[0] if squeeze else out


def pitch_ratio(semitones: float) -> Fraction:
    """The frequency ratio ``pitch_shift`` applies for ``semitones``: ``2^(semitones / 12)`` as ``p / q``.

    The nearest fraction with ``q <= PITCH_RATIO_MAX_DENOMINATOR`` (within 4.3 cents over ±7 semitones).

    Example:
        >>> pitch_ratio(12)
        Fraction(2, 1)
    """
    return Fraction(2.0 ** (semitones / 12)).limit_denominator(PITCH_RATIO_MAX_DENOMINATOR)


def pitch_shift(wave: Tensor, sample_rate: int, semitones: float) -> Tensor:
    """Shift the pitch by ``semitones`` keeping tempo and length (phase vocoder + resampling).

    With the ratio ``r = p / q = pitch_ratio(semitones)``: time-stretch to ``round(T r)`` samples (phase
    vocoder at rate ``1 / r``), then resample by ``q / p`` with ``torchaudio.functional.resample`` (windowed
    sinc, anti-aliased) back to ``T`` samples, so every frequency is multiplied by ``r`` and the duration
    is unchanged. The last few samples are cut or zero-padded to exactly ``T``.

    Args:
        wave: ``(T,)`` or ``(B, T)`` float waveform.
        sample_rate: Hz.
        semitones: shift, positive up; fractional values are allowed.

    Returns:
        Same shape as ``wave``. ``semitones == 0`` returns a copy.
    """
    x, squeeze = as_batch(wave, "pitch_shift")
    ratio = pitch_ratio(semitones)
    if ratio == 1:
        out = x.clone()
    else:
        total = x.shape[-1]
        stretched = _phase_vocoder(x, sample_rate, 1 / float(ratio), round(total * ratio))
        out = AF.resample(stretched, ratio.numerator, ratio.denominator)[..., :total]
        out = torch.nn.functional.pad(out, (0, total - out.shape[-1]))
    return out[0] if squeeze else out


def _decoupled_peak(reduction: Tensor, alpha: float) -> Tensor:
    """``y[n] = max(r[n], alpha * y[n - 1])`` (``y[-1] = 0``) along the last axis, without a Python loop.

    Unrolled, ``y[n] = max_{k <= n} alpha^(n - k) r[k]``; in logs this is a running maximum:
    ``ln y[n] = n ln(alpha) + cummax_k(ln r[k] - k ln(alpha))``. Computed in float64, where ``k ln(alpha)`` stays
    exact enough for hours of audio.

    Args:
        reduction: ``(B, T)`` non-negative values.
        alpha: decay per sample, in (0, 1).

    Returns:
        ``(B, T)`` float64.
    """
    r = reduction.double()
    k_log_alpha = torch.arange(r.shape[-1], device=r.device, dtype=torch.float64) * math.log(alpha)
    running = torch.cummax(torch.log(r) - k_log_alpha, dim=-1).values  # log(0) = -inf is a valid "nothing yet"
    return torch.exp(running + k_log_alpha)


def compressor_settings(strength: float) -> tuple[float, float]:
    """``(threshold_db, ratio)`` of ``dynamic_range_compression`` at ``strength``.

    ``threshold_db = 6 - 6 * strength`` dB relative to the example's own RMS level and
    ``ratio = 2 ** strength``: strength 0 is no compression (ratio 1), 1 is mild (0 dB, 2:1), 2 medium
    (-6 dB, 4:1), 3 heavy (-12 dB, 8:1). The threshold is relative so that a quiet and a loud master of the
    same track are compressed alike.

    Example:
        >>> compressor_settings(2)
        (-6.0, 4.0)
    """
    if not strength >= 0:
        raise ValueError(f"dynamic_range_compression: strength must be >= 0, got {strength}")
    return 6.0 - 6.0 * strength, 2.0**strength


def dynamic_range_compression(wave: Tensor, sample_rate: int, strength: float) -> Tensor:
    """Feed-forward compressor with make-up gain (after Giannoulis, Massberg & Reiss, JAES 2012).

    Per example, with ``threshold_db, ratio = compressor_settings(strength)`` (threshold relative to the
    example's RMS level):

    1. level ``L[n] = 20 log10 |x[n]|`` dB; static gain reduction ``r[n] = (1 - 1/ratio) max(L[n] - threshold, 0)``;
    2. decoupled peak detector: ``r1[n] = max(r[n], a_R r1[n-1])`` with release ``COMPRESSOR_RELEASE_S``,
       then one-pole smoothing ``r2[n] = a_A r2[n-1] + (1 - a_A) r1[n]`` with attack ``COMPRESSOR_ATTACK_S``
       (``a = exp(-1 / (tau * sample_rate))``), advanced by ``COMPRESSOR_LOOKAHEAD_S`` (look-ahead);
    3. ``y = x * 10^(-r2 / 20) * makeup`` with ``makeup = rms(x) / rms(x * 10^(-r2 / 20))``, so the RMS
       loudness is unchanged while the peaks are pulled down.

    Args:
        wave: ``(T,)`` or ``(B, T)`` float waveform.
        sample_rate: Hz (sets the attack and release in samples).
        strength: >= 0, see ``compressor_settings``; 0 returns a copy.

    Returns:
        Same shape and dtype as ``wave``. Silent examples stay silent.
    """
    threshold_db, ratio = compressor_settings(strength)
    x, squeeze = as_batch(wave, "dynamic_range_compression")
    if ratio == 1:
        return wave.clone()
    x64 = x.double()
    rms = x64.square().mean(dim=-1, keepdim=True).sqrt()  # (B, 1)
    tiny = torch.finfo(torch.float64).tiny
    level_db = 20 * torch.log10(x64.abs().clamp_min(tiny))
    threshold = 20 * torch.log10(rms.clamp_min(tiny)) + threshold_db
    reduction = (1 - 1 / ratio) * (level_db - threshold).clamp_min(0)  # dB, (B, T)
    held = _decoupled_peak(reduction, math.exp(-1 / (COMPRESSOR_RELEASE_S * sample_rate)))
    a_attack = math.exp(-1 / (COMPRESSOR_ATTACK_S * sample_rate))
    smoothed = AF.lfilter(
        held,
        torch.tensor([1.0, -a_attack], dtype=torch.float64, device=x.device),
        torch.tensor([1.0 - a_attack, 0.0], dtype=torch.float64, device=x.device),
        clamp=False,
    )
    lookahead = min(round(COMPRESSOR_LOOKAHEAD_S * sample_rate), x.shape[-1] - 1)
    smoothed = torch.cat([smoothed[..., lookahead:], smoothed[..., -1:].expand(-1, lookahead)], dim=-1)
    y = x64 * torch.pow(10.0, -smoothed / 20)
    y_rms = y.square().mean(dim=-1, keepdim=True).sqrt()
    y = y * torch.where(y_rms > 0, rms / y_rms.clamp_min(tiny), torch.ones_like(rms))
    out = y.to(x.dtype)
    return out[0] if squeeze else out


def white_noise(wave: Tensor, snr_db: float | Tensor, generator: torch.Generator) -> Tensor:
    """Add Gaussian white noise at ``snr_db`` relative to each example's power.

    ``y = x + a n`` with ``n ~ N(0, 1)`` from ``generator`` and ``a`` chosen so that
    ``10 log10(sum x² / sum (a n)²) = snr_db`` exactly for each example (``torchaudio.functional.add_noise``).
    A silent example stays silent.

    Args:
        wave: ``(T,)`` or ``(B, T)`` float waveform.
        snr_db: one SNR in dB, or ``(B,)`` SNRs, one per example.
        generator: the seeded source of the noise.

    Returns:
        Same shape and dtype as ``wave``.
    """
    x, squeeze = as_batch(wave, "white_noise")
    snr = torch.as_tensor(snr_db, dtype=x.dtype, device=x.device).expand(x.shape[0])
    noise = randn(tuple(x.shape), generator, x)
    out = AF.add_noise(x, noise, snr)
    return out[0] if squeeze else out


def rbj_biquad(kind: str, frequency: float, gain_db, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Second-order EQ sections of the RBJ Audio EQ Cookbook: a peak (Q = 1) or a low / high shelf (slope S = 1).

    Args:
        kind: "peak", "lowshelf" or "highshelf".
        frequency: centre or corner frequency, Hz.
        gain_db: the gain, dB: a number or an array (one section per element).
        sample_rate: Hz.

    Returns:
        ``(b, a)``, each ``(*gain_db.shape, 3)`` float64, normalised so ``a[..., 0] == 1``.
    """
    a_ = 10.0 ** (np.asarray(gain_db, dtype=np.float64) / 40.0)
    w = 2.0 * np.pi * frequency / sample_rate
    cos = np.cos(w)
    if kind == "peak":
        alpha = np.sin(w) / 2.0  # sin(w) / 2Q with Q = 1
        b = [1 + alpha * a_, -2 * cos + 0 * a_, 1 - alpha * a_]
        a = [1 + alpha / a_, -2 * cos + 0 * a_, 1 - alpha / a_]
    elif kind in ("lowshelf", "highshelf"):
        alpha = np.sin(w) / np.sqrt(2.0)  # S = 1
        root = 2.0 * np.sqrt(a_) * alpha
        sign = 1.0 if kind == "lowshelf" else -1.0
        b = [a_ * ((a_ + 1) - sign * (a_ - 1) * cos + root),
             sign * 2 * a_ * ((a_ - 1) - sign * (a_ + 1) * cos),
             a_ * ((a_ + 1) - sign * (a_ - 1) * cos - root)]
        a = [(a_ + 1) + sign * (a_ - 1) * cos + root,
             -sign * 2 * ((a_ - 1) + sign * (a_ + 1) * cos),
             (a_ + 1) + sign * (a_ - 1) * cos - root]
    else:
        raise ValueError(f"rbj_biquad: kind must be peak, lowshelf or highshelf, got {kind!r}")
    b, a = np.stack(b, axis=-1), np.stack(a, axis=-1)
    return b / a[..., :1], a / a[..., :1]
