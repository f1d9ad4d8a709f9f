"""Waveform augmentation for noisy-student training, and the perturbations of the robustness evaluation.

Two uses, one set of signal functions::

    training (REFERENCE §4):  crop (data layer) ──▶ Augment(sr, AugmentConfig())(wave, generator) ──▶ mel ──▶ student
        polarity ─▶ noise ─▶ gain ─▶ high/low-pass ─▶ delay ─▶ pitch shift ─▶ reverb ─▶ peak limit
        each example draws, independently, whether each transform applies and with which parameters.

    evaluation (REFERENCE §3): whole track ──▶ PERTURBATIONS[name].apply(wave, sr, strength, generator) ──▶ tagger
        time_stretch | pitch_shift | dynamic_range_compression | white_noise

Every function takes ``(T,)`` or ``(B, T)`` float waveforms (mono, values roughly in [-1, 1]) and returns the
same rank. All randomness comes from a ``torch.Generator`` passed in, never from the global RNG, so the same
generator state gives bit-identical output.

Example::

    augment = Augment(sample_rate=16000)
    noisy = augment(crops, torch.Generator().manual_seed(0))          # (16, 48000) -> (16, 48000)

    for name, perturbation in PERTURBATIONS.items():
        for strength in perturbation.strengths:
            wave_p = perturbation.apply(wave, 16000, strength, torch.Generator().manual_seed(0))
            print(perturbation.label(strength))                        # e.g. "time stretch ×0.8"
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from fractions import Fraction

import torch
import torchaudio.functional as AF
from torch import Tensor

from retrieval.errors import ConfigError

PITCH_RATIO_MAX_DENOMINATOR = 200
"""Pitch ratios ``2^(s/12)`` are applied as the nearest fraction ``p/q`` with ``q <= 200`` (at most 4.3 cents
off over ±7 semitones), because ``torchaudio.functional.resample`` builds a kernel of ``~q × p`` taps: an exact
irrational ratio rounded to integer rates (what ``torchaudio.functional.pitch_shift`` does) gives coprime rates
near the sample rate and a kernel of ~10⁸ taps."""

STRETCH_WINDOW_S = 0.05
"""Phase-vocoder STFT window, seconds, rounded to a power-of-two FFT size: 1024 samples at 16 kHz and at
22,050 Hz (64 / 46 ms), long enough to resolve the partials of music; hop = window / 4."""

BIQUAD_Q = 0.707
"""Q of the high- and low-pass biquads (Butterworth, torchaudio's default)."""

COMPRESSOR_ATTACK_S = 0.005
"""Attack time constant of the compressor's gain smoothing, seconds."""
COMPRESSOR_RELEASE_S = 0.1
"""Release time constant of the compressor's peak detector, seconds."""
COMPRESSOR_LOOKAHEAD_S = 3 * COMPRESSOR_ATTACK_S
"""The compressor's gain is applied this much earlier than computed (look-ahead), so the attack has settled
(95 %) when a loud onset arrives: without it, the first 5 ms of every onset pass uncompressed and the make-up
gain lifts them far over the compressed level (+10 dB peaks on a tone burst)."""

_LN_1000 = math.log(1000.0)  # an exponential envelope exp(-t ln(1000) / rt60) has fallen by 60 dB at rt60


# ----------------------------------------------------------------------------------------------------------
# Shapes and random draws
# ----------------------------------------------------------------------------------------------------------


def _as_batch(wave: Tensor, caller: str) -> tuple[Tensor, bool]:
    """``(B, T)`` view of a ``(T,)`` or ``(B, T)`` float waveform, and whether it was 1-D."""
    if wave.ndim not in (1, 2):
        raise ValueError(f"{caller}: wave must be (T,) or (B, T), got shape {tuple(wave.shape)}")
    if not wave.is_floating_point():
        raise TypeError(f"{caller}: wave must be a float tensor, got {wave.dtype}; convert with wave.float()")
    return (wave[None], True) if wave.ndim == 1 else (wave, False)


def _rand(n: int, generator: torch.Generator, like: Tensor) -> Tensor:
    """``(n,)`` uniform [0, 1) draws from ``generator`` (on its own device), moved to ``like``'s device and dtype."""
    return torch.rand(n, generator=generator, device=generator.device).to(like.device, like.dtype)


def _randn(shape: tuple[int, ...], generator: torch.Generator, like: Tensor) -> Tensor:
    """Standard normal draws from ``generator`` (on its own device), moved to ``like``'s device and dtype."""
    return torch.randn(shape, generator=generator, device=generator.device).to(like.device, like.dtype)


# ----------------------------------------------------------------------------------------------------------
# Signal functions (deterministic, or seeded through a generator)
# ----------------------------------------------------------------------------------------------------------


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
    x, squeeze = _as_batch(wave, "time_stretch")
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
    x, squeeze = _as_batch(wave, "pitch_shift")
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
    x, squeeze = _as_batch(wave, "dynamic_range_compression")
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
    x, squeeze = _as_batch(wave, "white_noise")
    snr = torch.as_tensor(snr_db, dtype=x.dtype, device=x.device).expand(x.shape[0])
    noise = _randn(tuple(x.shape), generator, x)
    out = AF.add_noise(x, noise, snr)
    return out[0] if squeeze else out


# ----------------------------------------------------------------------------------------------------------
# Training augmentation
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and parameter ranges of ``Augment``; every range ``(low, high)`` is drawn uniformly.

    Defaults follow the noisy-student recipe (minzwon/semi-supervised-music-tagging-transformer, built on
    torchaudio-augmentations): the same probabilities and, where the transform is the same, the same ranges.

    Attributes:
        p_polarity: probability of inverting the sign (0.8).
        p_noise: probability of adding white noise (0.3).
        snr_db: its SNR range, dB; the reference draws the noise std as 0.3–0.5 × the signal std, i.e.
            an SNR of 6.0–10.5 dB.
        p_gain: probability of a gain change (0.2).
        gain_db: its range, dB (-20 to -1).
        p_filter: probability of a filter (0.8): a high-pass or a low-pass biquad, one per example.
        highpass_share: of the filtered examples, the fraction that gets the high-pass (the rest the low-pass).
        highpass_hz: high-pass cutoff range, Hz (200–1,200).
        lowpass_hz: low-pass cutoff range, Hz (2,200–4,000).
        p_delay: probability of mixing in a delayed copy (0.5).
        delay_ms: the delay range, ms (200–450; the reference picks in 50-ms steps).
        delay_gain: level of the delayed copy; ``y = (x + g x(t - d)) / (1 + g)``.
        p_pitch: probability of a pitch shift (0.4).
        pitch_semitones: its range, semitones (±7, the reference's ±700 cents); tempo and length are kept.
        p_reverb: probability of reverb (0.3).
        reverb_rt60_s: the synthetic room's 60-dB decay time, seconds (this library's choice: the reference
            used sox's reverb, which torchaudio no longer ships).
        reverb_wet: wet/dry mix ``y = (1 - w) x + w (x * h)`` range.

    Example:
        >>> AugmentConfig(p_reverb=0.0).p_polarity
        0.8
    """

    p_polarity: float = 0.8
    p_noise: float = 0.3
    snr_db: tuple[float, float] = (6.0, 10.5)
    p_gain: float = 0.2
    gain_db: tuple[float, float] = (-20.0, -1.0)
    p_filter: float = 0.8
    highpass_share: float = 0.5
    highpass_hz: tuple[float, float] = (200.0, 1200.0)
    lowpass_hz: tuple[float, float] = (2200.0, 4000.0)
    p_delay: float = 0.5
    delay_ms: tuple[float, float] = (200.0, 450.0)
    delay_gain: float = 0.5
    p_pitch: float = 0.4
    pitch_semitones: tuple[float, float] = (-7.0, 7.0)
    p_reverb: float = 0.3
    reverb_rt60_s: tuple[float, float] = (0.2, 1.0)
    reverb_wet: tuple[float, float] = (0.1, 0.5)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.startswith("p_") or f.name == "highpass_share":
                if not 0.0 <= value <= 1.0:
                    raise ConfigError(f"AugmentConfig.{f.name} must be a probability in [0, 1], got {value!r}")
            elif isinstance(value, tuple):
                if len(value) != 2 or not all(math.isfinite(v) for v in value) or value[0] > value[1]:
                    raise ConfigError(
                        f"AugmentConfig.{f.name} must be a range (low, high) with low <= high, got {value!r}"
                    )
        positive = {"highpass_hz": self.highpass_hz, "lowpass_hz": self.lowpass_hz, "reverb_rt60_s": self.reverb_rt60_s}
        for key, (low, _) in positive.items():
            if not low > 0:
                raise ConfigError(f"AugmentConfig.{key} must be > 0, got {getattr(self, key)!r}")
        if self.delay_ms[0] < 0:
            raise ConfigError(f"AugmentConfig.delay_ms must be >= 0 ms, got {self.delay_ms!r}")
        if not (0.0 <= self.reverb_wet[0] and self.reverb_wet[1] <= 1.0):
            raise ConfigError(f"AugmentConfig.reverb_wet must lie in [0, 1], got {self.reverb_wet!r}")
        if not self.delay_gain >= 0:
            raise ConfigError(f"AugmentConfig.delay_gain must be >= 0, got {self.delay_gain!r}")


def _biquad_coefficients(cutoff: Tensor, highpass: Tensor, sample_rate: int) -> tuple[Tensor, Tensor]:
    """Per-example RBJ high- or low-pass biquads (the formulas of ``torchaudio.functional.highpass_biquad``
    and ``lowpass_biquad``, which take one cutoff for the whole batch).

    Args:
        cutoff: ``(n,)`` cutoffs, Hz.
        highpass: ``(n,)`` bool, True for a high-pass, False for a low-pass.
        sample_rate: Hz.

    Returns:
        ``(a, b)``, each ``(n, 3)``: denominator ``[a0, a1, a2]`` and numerator ``[b0, b1, b2]``.
    """
    w0 = 2 * math.pi * cutoff / sample_rate
    cos_w0 = torch.cos(w0)
    alpha = torch.sin(w0) / (2 * BIQUAD_Q)
    b0 = torch.where(highpass, (1 + cos_w0) / 2, (1 - cos_w0) / 2)
    b1 = torch.where(highpass, -1 - cos_w0, 1 - cos_w0)
    a = torch.stack([1 + alpha, -2 * cos_w0, 1 - alpha], dim=-1)
    b = torch.stack([b0, b1, b0], dim=-1)
    return a, b


class Augment:
    """Seeded, batched augmentation chain for training crops (noisy student, REFERENCE §4).

    In order: polarity inversion, white noise, gain, high- or low-pass, delay, pitch shift, reverb. Each
    example decides independently whether each transform applies (probabilities in ``AugmentConfig``) and
    draws its own parameters; each transform runs once, vectorised, on the examples that drew it (pitch
    shift loops over them, one phase vocoder each). Finally every changed example whose peak exceeds 1 is
    scaled down to peak 1; examples no transform touched are returned bit-identical.

    The transforms:
        - polarity: ``-x``.
        - noise: ``white_noise`` at an SNR drawn from ``snr_db``.
        - gain: ``x * 10^(g / 20)``, ``g`` from ``gain_db``.
        - filter: RBJ biquad (``BIQUAD_Q``) high-pass (cutoff from ``highpass_hz``) or low-pass (from
          ``lowpass_hz``), all filtered examples in one ``torchaudio.functional.lfilter`` call.
        - delay: ``(x + g x(t - d)) / (1 + g)``, ``d`` from ``delay_ms``, zeros shifted in.
        - pitch: ``pitch_shift`` (phase vocoder + resampling: pitch changes, tempo and length do not).
        - reverb: ``(1 - w) x + w (x * h)`` where ``h`` is Gaussian noise under an exponential envelope that
          falls 60 dB at ``rt60``, as long as the largest ``rt60`` drawn in the batch, scaled to unit energy;
          ``torchaudio.functional.fftconvolve``.

    Randomness comes only from the generator passed to ``__call__``; the same generator state gives the
    same output. Random cropping is the data layer's job (``retrieval.audio.random_crop``).

    Args:
        sample_rate: Hz of the waveforms (cutoffs must be below its Nyquist frequency).
        config: probabilities and ranges.

    Example:
        >>> augment = Augment(16000)
        >>> augment(torch.zeros(2, 16000), torch.Generator().manual_seed(0)).shape
        torch.Size([2, 16000])
    """

    def __init__(self, sample_rate: int, config: AugmentConfig | None = None):
        config = AugmentConfig() if config is None else config
        if not isinstance(sample_rate, int) or sample_rate <= 0:
            raise ValueError(f"Augment: sample_rate must be a positive integer (Hz), got {sample_rate!r}")
        nyquist = sample_rate / 2
        for key in ("highpass_hz", "lowpass_hz"):
            if getattr(config, key)[1] >= nyquist:
                raise ConfigError(
                    f"AugmentConfig.{key} = {getattr(config, key)!r} reaches the Nyquist frequency "
                    f"({nyquist:g} Hz at {sample_rate} Hz); lower its upper bound"
                )
        self.sample_rate = sample_rate
        self.config = config

    def __repr__(self) -> str:
        return f"Augment(sample_rate={self.sample_rate}, config={self.config})"

    def __call__(self, wave: Tensor, generator: torch.Generator) -> Tensor:
        """Augment a batch.

        Args:
            wave: ``(B, T)`` float waveforms (or ``(T,)``), values roughly in [-1, 1].
            generator: the seeded source of every random choice (a CPU generator works for any device).

        Returns:
            Same shape, dtype and device as ``wave``, finite, each changed example with peak <= 1.
        """
        x, squeeze = _as_batch(wave, "Augment")
        x = x.clone()
        c, sr = self.config, self.sample_rate
        batch = x.shape[0]
        touched = torch.zeros(batch, dtype=torch.bool, device=x.device)

        def draw(p: float) -> Tensor:
            """(B,) bool: which examples get the transform; marks them as touched."""
            chosen = _rand(batch, generator, x) < p
            touched.logical_or_(chosen)
            return chosen

        def uniform(low_high: tuple[float, float]) -> Tensor:
            """(B,) draws from U(low, high), one per example whether or not it is chosen."""
            low, high = low_high
            return low + (high - low) * _rand(batch, generator, x)

        chosen = draw(c.p_polarity)
        x[chosen] = -x[chosen]

        chosen, snr = draw(c.p_noise), uniform(c.snr_db)
        if chosen.any():
            x[chosen] = white_noise(x[chosen], snr[chosen], generator)

        chosen, gain_db = draw(c.p_gain), uniform(c.gain_db)
        x[chosen] = x[chosen] * torch.pow(10.0, gain_db[chosen] / 20)[:, None]

        chosen, highpass = draw(c.p_filter), _rand(batch, generator, x) < c.highpass_share
        cutoff = torch.where(highpass, uniform(c.highpass_hz), uniform(c.lowpass_hz))
        if chosen.any():
            a, b = _biquad_coefficients(cutoff[chosen], highpass[chosen], sr)
            x[chosen] = AF.lfilter(x[chosen], a, b, clamp=False)

        chosen, delay_ms = draw(c.p_delay), uniform(c.delay_ms)
        if chosen.any():
            x[chosen] = self._delay(x[chosen], (delay_ms[chosen] * sr / 1000).round().long())

        chosen, semitones = draw(c.p_pitch), uniform(c.pitch_semitones)
        for i in chosen.nonzero().flatten().tolist():  # one phase vocoder per example: each has its own ratio
            x[i] = pitch_shift(x[i], sr, float(semitones[i]))

        chosen, rt60, wet = draw(c.p_reverb), uniform(c.reverb_rt60_s), uniform(c.reverb_wet)
        if chosen.any():
            x[chosen] = self._reverb(x[chosen], rt60[chosen], wet[chosen], generator)

        peak = x.abs().amax(dim=-1)
        limit = touched & (peak > 1)
        x[limit] = x[limit] / peak[limit, None]
        return x[0] if squeeze else x

    def _delay(self, x: Tensor, delay: Tensor) -> Tensor:
        """``(x + g x(t - d)) / (1 + g)`` for ``(n, T)`` waves and ``(n,)`` integer delays ``d`` in samples."""
        g = self.config.delay_gain
        index = torch.arange(x.shape[-1], device=x.device) - delay[:, None]  # (n, T)
        delayed = x.gather(-1, index.clamp_min(0)) * (index >= 0)
        return (x + g * delayed) / (1 + g)

    def _reverb(self, x: Tensor, rt60: Tensor, wet: Tensor, generator: torch.Generator) -> Tensor:
        """Convolve ``(n, T)`` waves with synthetic ``(n,)``-``rt60`` impulse responses, mix ``(n,)`` ``wet``."""
        length = max(1, math.ceil(float(rt60.max()) * self.sample_rate))
        t = torch.arange(length, device=x.device, dtype=x.dtype) / self.sample_rate  # (L,) seconds
        envelope = torch.exp(-_LN_1000 * t / rt60[:, None])  # (n, L)
        ir = _randn((x.shape[0], length), generator, x) * envelope
        ir = ir / ir.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
        reverberated = AF.fftconvolve(x, ir)[..., : x.shape[-1]]
        return (1 - wet[:, None]) * x + wet[:, None] * reverberated


# ----------------------------------------------------------------------------------------------------------
# Robustness perturbations (SMC 2020)
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Perturbation:
    """One row group of the robustness table: a perturbation and the strengths it is evaluated at.

    Attributes:
        name: the registry key.
        strengths: values passed as ``strength``, in table order.
        label_format: ``str.format`` pattern of a column label, given the strength.
        fn: ``fn(wave, sample_rate, strength, generator) -> wave``.
    """

    name: str
    strengths: tuple[float, ...]
    label_format: str
    fn: Callable[[Tensor, int, float, torch.Generator], Tensor]

    def apply(self, wave: Tensor, sample_rate: int, strength: float, generator: torch.Generator) -> Tensor:
        """Perturb ``(T,)`` or ``(B, T)`` ``wave`` at ``strength``; ``generator`` seeds the random ones."""
        return self.fn(wave, sample_rate, strength, generator)

    def label(self, strength: float) -> str:
        """Human-readable column label, e.g. ``"time stretch ×0.8"``."""
        return self.label_format.format(strength)


PERTURBATIONS: dict[str, Perturbation] = {
    "time_stretch": Perturbation(
        "time_stretch", (0.8, 0.9, 1.1, 1.2), "time stretch ×{:g}", lambda w, sr, s, g: time_stretch(w, sr, s)
    ),
    "pitch_shift": Perturbation(
        "pitch_shift", (-2.0, -1.0, 1.0, 2.0), "pitch shift {:+g} st", lambda w, sr, s, g: pitch_shift(w, sr, s)
    ),
    "compression": Perturbation(
        "compression",
        (1.0, 2.0, 3.0),
        "compression {:g}",
        lambda w, sr, s, g: dynamic_range_compression(w, sr, s),
    ),
    "white_noise": Perturbation(
        "white_noise", (40.0, 20.0, 10.0), "white noise {:g} dB SNR", lambda w, sr, s, g: white_noise(w, s, g)
    ),
}
"""The robustness evaluation: perturbation name → strengths (after Won et al., SMC 2020)."""


def get_perturbation(name: str) -> Perturbation:
    """``PERTURBATIONS[name]``, with an error that lists the valid names."""
    try:
        return PERTURBATIONS[name]
    except KeyError:
        raise ConfigError(f"unknown perturbation {name!r}; choose one of: {', '.join(PERTURBATIONS)}") from None
