"""Training augmentation for noisy-student training (REFERENCE §4): ``Augment(sr, AugmentConfig())(wave, generator)``.

    polarity ─▶ noise ─▶ gain ─▶ high/low-pass ─▶ delay ─▶ pitch shift ─▶ reverb ─▶ peak limit

Each example draws, independently, whether each transform applies and with which parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torchaudio.functional as AF
from torch import Tensor

from retrieval.augment.signal import as_batch, pitch_shift, rand, randn, rbj_biquad, white_noise
from retrieval.errors import ConfigError

BIQUAD_Q = 0.707
"""Q of the high- and low-pass biquads (Butterworth, torchaudio's default)."""

_LN_1000 = math.log(1000.0)  # an exponential envelope exp(-t ln(1000) / rt60) has fallen by 60 dB at rt60


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
        p_eq: probability of a random EQ (0: the noisy-student recipe has none): a low shelf at
            :data:`EQ_LOW_HZ` and a high shelf at :data:`EQ_HIGH_HZ`, each with its own gain from ``eq_db``.
        eq_db: the shelves' gain range, dB.

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
    p_eq: float = 0.0
    eq_db: tuple[float, float] = (-6.0, 6.0)

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


EQ_LOW_HZ = 250.0
EQ_HIGH_HZ = 4000.0


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

    In order: polarity inversion, white noise, gain, high- or low-pass, delay, pitch shift, reverb, EQ. Each
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
        - EQ (when ``p_eq > 0``): a low shelf then a high shelf, RBJ, slope 1, gains from ``eq_db``.

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
        x, squeeze = as_batch(wave, "Augment")
        x = x.clone()
        c, sr = self.config, self.sample_rate
        batch = x.shape[0]
        touched = torch.zeros(batch, dtype=torch.bool, device=x.device)

        def draw(p: float) -> Tensor:
            """(B,) bool: which examples get the transform; marks them as touched."""
            chosen = rand(batch, generator, x) < p
            touched.logical_or_(chosen)
            return chosen

        def uniform(low_high: tuple[float, float]) -> Tensor:
            """(B,) draws from U(low, high), one per example whether or not it is chosen."""
            low, high = low_high
            return low + (high - low) * rand(batch, generator, x)

        chosen = draw(c.p_polarity)
        x[chosen] = -x[chosen]

        chosen, snr = draw(c.p_noise), uniform(c.snr_db)
        if chosen.any():
            x[chosen] = white_noise(x[chosen], snr[chosen], generator)

        chosen, gain_db = draw(c.p_gain), uniform(c.gain_db)
        x[chosen] = x[chosen] * torch.pow(10.0, gain_db[chosen] / 20)[:, None]

        chosen, highpass = draw(c.p_filter), rand(batch, generator, x) < c.highpass_share
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

        if c.p_eq > 0:  # drawn only when enabled, so the noisy-student recipe's random stream is unchanged
            chosen, low_db, high_db = draw(c.p_eq), uniform(c.eq_db), uniform(c.eq_db)
            if chosen.any():
                for gain, frequency, low in ((low_db, EQ_LOW_HZ, True), (high_db, EQ_HIGH_HZ, False)):
                    b, a = rbj_biquad("lowshelf" if low else "highshelf", frequency, gain[chosen].numpy(), sr)
                    x[chosen] = AF.lfilter(x[chosen], torch.from_numpy(a).to(x), torch.from_numpy(b).to(x),
                                           clamp=False)

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
        ir = randn((x.shape[0], length), generator, x) * envelope
        ir = ir / ir.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)
        reverberated = AF.fftconvolve(x, ir)[..., : x.shape[-1]]
        return (1 - wet[:, None]) * x + wet[:, None] * reverberated


TIMBRE = AugmentConfig(
    p_polarity=0.5, p_noise=0.2, snr_db=(20.0, 40.0), p_gain=0.0, p_filter=0.3, highpass_hz=(60.0, 300.0),
    lowpass_hz=(3000.0, 7000.0), p_delay=0.1, p_pitch=0.0, p_reverb=0.5, reverb_rt60_s=(0.3, 3.0),
    reverb_wet=(0.1, 0.6), p_eq=0.7, eq_db=(-8.0, 8.0),
)
"""Augmentation that changes how a track *sounds* (EQ, filters, room, a little noise) but not what its tags are
measured from: no gain change (the demo's ``soft`` / ``loud`` tags are levels) and no pitch shift (``dark`` /
``bright`` are registers). The retrieval task's ``train.augment: timbre``."""

PRESETS: dict[str, AugmentConfig] = {"noisy_student": AugmentConfig(), "timbre": TIMBRE}
"""``train.augment`` names → configs."""
