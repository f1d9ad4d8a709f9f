"""Training augmentation (noisy student) and robustness perturbations (SMC 2020), on tiny generated signals."""

from __future__ import annotations

import math

import pytest
import torch
import torchaudio.functional as AF

from retrieval.augment import (
    PERTURBATIONS,
    Augment,
    AugmentConfig,
    compressor_settings,
    dynamic_range_compression,
    get_perturbation,
    pitch_ratio,
    pitch_shift,
    time_stretch,
    white_noise,
)
from retrieval.augment.noisy_student import _biquad_coefficients
from retrieval.augment.signal import _decoupled_peak
from retrieval.errors import ConfigError

SR = 16000
NOTHING = dict(p_polarity=0.0, p_noise=0.0, p_gain=0.0, p_filter=0.0, p_delay=0.0, p_pitch=0.0, p_reverb=0.0)
"""AugmentConfig overrides that switch every transform off."""


def only(**overrides: object) -> AugmentConfig:
    """A config with every transform off except the ones set in ``overrides``."""
    return AugmentConfig(**{**NOTHING, **overrides})


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def sine(freq: float, seconds: float = 0.5, amplitude: float = 0.5) -> torch.Tensor:
    t = torch.arange(round(seconds * SR)) / SR
    return amplitude * torch.sin(2 * math.pi * freq * t)


def music_like(batch: int = 4, seconds: float = 0.5, seed: int = 0) -> torch.Tensor:
    """(batch, T) chords with noise, peak about 0.6."""
    t = torch.arange(round(seconds * SR)) / SR
    chord = sum(torch.sin(2 * math.pi * f * t) for f in (220.0, 277.2, 329.6, 3000.0)) / 4
    return 0.5 * chord + 0.05 * torch.randn(batch, t.numel(), generator=seeded(seed))


def peak_frequency(wave: torch.Tensor) -> float:
    """Frequency (Hz) of the largest FFT bin of a Hann-windowed 1-D signal."""
    spectrum = torch.fft.rfft(wave * torch.hann_window(wave.numel(), periodic=False)).abs()
    return int(spectrum.argmax()) * SR / wave.numel()


def band_energy(wave: torch.Tensor, low: float, high: float) -> float:
    """Spectral energy of a 1-D signal between ``low`` and ``high`` Hz."""
    spectrum = torch.fft.rfft(wave).abs().square()
    freqs = torch.fft.rfftfreq(wave.numel(), 1 / SR)
    return float(spectrum[(freqs >= low) & (freqs <= high)].sum())


def db(ratio: float) -> float:
    return 10 * math.log10(ratio)


# ----------------------------------------------------------------------------------------------------------
# Augment
# ----------------------------------------------------------------------------------------------------------


def test_augment_keeps_shape_dtype_and_is_finite_and_peak_limited():
    every = AugmentConfig(p_polarity=1.0, p_noise=1.0, p_gain=1.0, p_filter=1.0, p_delay=1.0, p_pitch=1.0, p_reverb=1.0)
    x = music_like(3)
    for config in (AugmentConfig(), every):
        y = Augment(SR, config)(x, seeded(1))
        assert y.shape == x.shape and y.dtype == x.dtype
        assert torch.isfinite(y).all()
        assert float(y.abs().max()) <= 1 + 1e-6
    one = Augment(SR, every)(x[0], seeded(1))  # a single (T,) waveform keeps its rank
    assert one.shape == x[0].shape


def test_augment_scales_examples_over_full_scale_back_to_peak_one():
    square = torch.sign(sine(100.0)).repeat(2, 1)  # peak 1: noise at 0 dB SNR must push it far over
    y = Augment(SR, only(p_noise=1.0, snr_db=(0.0, 0.0)))(square, seeded(0))
    assert torch.allclose(y.abs().amax(dim=-1), torch.ones(2), atol=1e-6)


def test_augment_is_reproducible_from_the_generator_alone():
    x = music_like(4)
    augment = Augment(SR)
    torch.manual_seed(123)  # the global RNG must play no part
    first = augment(x, seeded(7))
    torch.manual_seed(456)
    again = augment(x, seeded(7))
    other = augment(x, seeded(8))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_augment_with_every_probability_zero_is_the_identity():
    x = music_like(3)
    x = 1.5 * x / x.abs().amax(dim=-1, keepdim=True)  # even over full scale: untouched examples are not rescaled
    assert torch.equal(Augment(SR, only())(x, seeded(0)), x)


def test_polarity_inversion_negates_exactly():
    x = music_like(3)
    assert torch.equal(Augment(SR, only(p_polarity=1.0))(x, seeded(0)), -x)


def test_gain_is_a_constant_factor_within_the_drawn_db_range():
    x = music_like(8)
    y = Augment(SR, only(p_gain=1.0, gain_db=(-12.0, -6.0)))(x, seeded(0))
    ratio = y / x  # (B, T): one factor per example
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), rtol=1e-5)
    gain_db = 20 * torch.log10(ratio[:, 0])
    assert ((gain_db >= -12 - 1e-4) & (gain_db <= -6 + 1e-4)).all()
    assert gain_db.std() > 0.5  # each example draws its own gain


def test_highpass_removes_50_hz_and_keeps_5_khz():
    x = torch.stack([sine(50.0), sine(5000.0)])
    y = Augment(SR, only(p_filter=1.0, highpass_share=1.0, highpass_hz=(800.0, 1200.0)))(x, seeded(0))
    settled = slice(SR // 10, None)  # skip the filter's start-up transient
    low_before, low_after = band_energy(x[0, settled], 40, 60), band_energy(y[0, settled], 40, 60)
    high_before, high_after = band_energy(x[1, settled], 4900, 5100), band_energy(y[1, settled], 4900, 5100)
    assert db(low_before / low_after) > 30  # 2nd order at >= 800 Hz: about 48 dB down at 50 Hz
    assert abs(db(high_before / high_after)) < 1


def test_lowpass_removes_5_khz_and_keeps_50_hz():
    x = torch.stack([sine(50.0), sine(5000.0)])
    y = Augment(SR, only(p_filter=1.0, highpass_share=0.0, lowpass_hz=(1000.0, 1000.0)))(x, seeded(0))
    settled = slice(SR // 10, None)
    assert abs(db(band_energy(x[0, settled], 40, 60) / band_energy(y[0, settled], 40, 60))) < 1
    assert db(band_energy(x[1, settled], 4900, 5100) / band_energy(y[1, settled], 4900, 5100)) > 20


def test_per_example_biquads_match_torchaudio_filters():
    x = music_like(4)
    cutoff = torch.tensor([300.0, 1000.0, 2500.0, 3500.0])
    highpass = torch.tensor([True, False, True, False])
    a, b = _biquad_coefficients(cutoff, highpass, SR)
    ours = AF.lfilter(x, a, b, clamp=False)
    for i in range(4):
        design = AF.highpass_biquad if highpass[i] else AF.lowpass_biquad
        assert torch.allclose(ours[i], design(x[i], SR, float(cutoff[i])), atol=1e-5)


def test_delay_mixes_in_a_copy_after_the_drawn_delay():
    click = torch.zeros(1, SR // 2)
    click[0, 800] = 0.9
    y = Augment(SR, only(p_delay=1.0, delay_ms=(100.0, 100.0), delay_gain=0.5))(click, seeded(0))
    expected = torch.zeros_like(click)
    expected[0, 800] = 0.9 / 1.5
    expected[0, 800 + SR // 10] = 0.9 * 0.5 / 1.5
    assert torch.allclose(y, expected, atol=1e-7)


def test_pitch_shift_augmentation_moves_a_sine_by_the_drawn_ratio():
    x = sine(440.0).repeat(2, 1)
    y = Augment(SR, only(p_pitch=1.0, pitch_semitones=(3.0, 3.0)))(x, seeded(0))
    assert y.shape == x.shape
    for row in y:
        assert peak_frequency(row) == pytest.approx(440 * 2 ** (3 / 12), rel=0.03)


def test_reverb_adds_a_tail_as_long_as_rt60():
    click = torch.zeros(2, SR // 2)
    click[:, 1600] = 0.9  # at 0.1 s
    y = Augment(SR, only(p_reverb=1.0, reverb_rt60_s=(0.2, 0.2), reverb_wet=(0.5, 0.5)))(click, seeded(0))
    tail = slice(1600 + SR // 100, 1600 + SR // 5)  # 10 ms to 200 ms after the click
    assert float(click[:, tail].square().sum()) == 0
    assert (y[:, tail].square().sum(dim=-1) > 1e-3).all()
    assert float(y[:, 1600 + SR // 5 + 2 :].abs().max()) < 1e-6  # the response is rt60 long
    assert torch.allclose(y[:, 1600], torch.full((2,), 0.45), atol=0.05)  # the dry click at (1 - wet)
    assert not torch.equal(y[0], y[1])  # each example draws its own impulse response


def measured_snr_db(clean: torch.Tensor, noisy: torch.Tensor) -> torch.Tensor:
    """(B,) signal power over the power of ``noisy - clean``, dB."""
    return 10 * torch.log10(clean.square().sum(-1) / (noisy - clean).square().sum(-1))


def test_noise_augmentation_hits_the_drawn_snr():
    x = music_like(6)
    fixed = Augment(SR, only(p_noise=1.0, snr_db=(20.0, 20.0)))(x, seeded(0))
    assert torch.allclose(measured_snr_db(x, fixed), torch.full((6,), 20.0), atol=0.01)
    drawn = measured_snr_db(x, Augment(SR, only(p_noise=1.0, snr_db=(10.0, 30.0)))(x, seeded(0)))
    assert ((drawn > 10 - 0.01) & (drawn < 30 + 0.01)).all()
    assert drawn.std() > 1  # each example draws its own SNR


def test_augment_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="p_gain"):
        AugmentConfig(p_gain=1.5)
    with pytest.raises(ConfigError, match="gain_db"):
        AugmentConfig(gain_db=(0.0, -6.0))
    with pytest.raises(ConfigError, match="lowpass_hz.*Nyquist"):
        Augment(8000, AugmentConfig())  # 4,000 Hz low-pass at 8 kHz


# ----------------------------------------------------------------------------------------------------------
# Perturbations
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.8, 0.9, 1.1, 1.2])
def test_time_stretch_changes_length_and_keeps_pitch(rate):
    x = sine(440.0, seconds=1.0)
    y = time_stretch(x, SR, rate)
    assert y.shape == (round(x.numel() / rate),)
    assert peak_frequency(y) == pytest.approx(440.0, rel=0.02)
    assert time_stretch(x[None].repeat(2, 1), SR, rate).shape == (2, round(x.numel() / rate))


@pytest.mark.parametrize("semitones", [-4, -2, -1, 1, 2, 4])
def test_pitch_shift_moves_the_frequency_and_keeps_length(semitones):
    x = sine(440.0, seconds=1.0)
    y = pitch_shift(x, SR, semitones)
    assert y.shape == x.shape
    assert peak_frequency(y) == pytest.approx(440 * 2 ** (semitones / 12), rel=0.02)


def test_pitch_ratio_is_close_to_equal_temperament():
    for semitones in (-7.0, -2.5, 1.0, 4.0, 6.3):
        cents = 1200 * math.log2(float(pitch_ratio(semitones))) - 100 * semitones
        assert abs(cents) < 5
    assert pitch_ratio(12) == 2 and pitch_ratio(0) == 1


def loud_then_quiet() -> torch.Tensor:
    t = torch.arange(SR) / SR
    return torch.sin(2 * math.pi * 220 * t) * torch.where(t < 0.5, 0.8, 0.05)


def halves_db(wave: torch.Tensor) -> float:
    """RMS level of the first half over the second half, dB."""
    half = wave.numel() // 2
    return db(float(wave[:half].square().mean() / wave[half:].square().mean()))


def test_compression_reduces_dynamic_range_more_with_strength():
    x = loud_then_quiet()
    ranges = [halves_db(dynamic_range_compression(x, SR, strength)) for strength in (1, 2, 3)]
    original = halves_db(x)
    assert original - ranges[0] > 1  # even the mildest level compresses
    assert ranges[0] > ranges[1] > ranges[2]
    assert original - ranges[2] > 10


def crest(wave: torch.Tensor) -> torch.Tensor:
    """(B,) peak over RMS, dB."""
    return 20 * (wave.abs().amax(-1) / wave.square().mean(-1).sqrt()).log10()


def test_compression_keeps_rms_lowers_crest_factor_and_strength_zero_is_identity():
    x = torch.randn(2, SR, generator=seeded(0)) * torch.linspace(0.02, 0.3, SR)  # a crescendo of noise
    assert torch.equal(dynamic_range_compression(x, SR, 0), x)
    for strength in (1, 3):
        y = dynamic_range_compression(x, SR, strength)
        assert torch.allclose(y.square().mean(-1).sqrt(), x.square().mean(-1).sqrt(), rtol=1e-4)
        assert (crest(x) - crest(y) > 1).all()
    assert (crest(dynamic_range_compression(x, SR, 1)) > crest(dynamic_range_compression(x, SR, 3))).all()
    assert torch.equal(dynamic_range_compression(torch.zeros(SR // 10), SR, 2), torch.zeros(SR // 10))


def test_decoupled_peak_detector_matches_the_recursion():
    reduction = torch.rand(3, 400, generator=seeded(0)).double() * (torch.rand(3, 400, generator=seeded(1)) < 0.1)
    alpha = 0.97
    expected, held = torch.zeros_like(reduction), torch.zeros(3, dtype=torch.float64)
    for n in range(reduction.shape[-1]):
        held = torch.maximum(reduction[:, n], alpha * held)
        expected[:, n] = held
    assert torch.allclose(_decoupled_peak(reduction, alpha), expected, atol=1e-12)


def test_compressor_settings_mapping():
    assert compressor_settings(0) == (6.0, 1.0)
    assert compressor_settings(3) == (-12.0, 8.0)
    with pytest.raises(ValueError, match="strength"):
        compressor_settings(-1)


def test_white_noise_hits_the_snr_and_is_seeded():
    x = torch.stack([sine(440.0, seconds=2.0), 0.01 * sine(1000.0, seconds=2.0), torch.zeros(2 * SR)])
    for snr in (40.0, 20.0, 10.0):
        y = white_noise(x, snr, seeded(0))
        assert torch.allclose(measured_snr_db(x[:2], y[:2]), torch.full((2,), snr), atol=0.5)
        assert torch.equal(y[2], x[2])  # silence has no power, so it gets no noise
    assert torch.equal(white_noise(x, 20.0, seeded(3)), white_noise(x, 20.0, seeded(3)))
    assert not torch.equal(white_noise(x, 20.0, seeded(3)), white_noise(x, 20.0, seeded(4)))
    assert white_noise(x[0], 20.0, seeded(0)).shape == x[0].shape


def test_registry_defaults_labels_and_ranks():
    assert PERTURBATIONS["time_stretch"].strengths == (0.8, 0.9, 1.1, 1.2)
    assert PERTURBATIONS["pitch_shift"].strengths == (-2, -1, 1, 2)
    assert len(PERTURBATIONS["compression"].strengths) == 3
    assert PERTURBATIONS["white_noise"].strengths == (40, 20, 10)
    assert PERTURBATIONS["time_stretch"].label(0.8) == "time stretch ×0.8"
    assert PERTURBATIONS["pitch_shift"].label(-2.0) == "pitch shift -2 st"
    x = sine(440.0)
    for perturbation in PERTURBATIONS.values():
        assert perturbation.name in PERTURBATIONS
        strength = perturbation.strengths[0]
        assert perturbation.apply(x, SR, strength, seeded(0)).ndim == 1
        batched = perturbation.apply(x.repeat(2, 1), SR, strength, seeded(0))
        assert batched.ndim == 2 and torch.isfinite(batched).all()
    with pytest.raises(ConfigError, match="time_stretch, pitch_shift"):
        get_perturbation("reverse")


def test_bad_shapes_are_rejected_with_the_function_name():
    with pytest.raises(ValueError, match="time_stretch.*shape"):
        time_stretch(torch.zeros(1, 2, 100), SR, 1.1)
    with pytest.raises(TypeError, match="white_noise.*float"):
        white_noise(torch.zeros(100, dtype=torch.int16), 10.0, seeded(0))


def test_the_timbre_preset_equalises_without_gain_or_pitch() -> None:
    from retrieval.augment import PRESETS, TIMBRE

    assert PRESETS["timbre"] is TIMBRE and TIMBRE.p_gain == 0 and TIMBRE.p_pitch == 0 and TIMBRE.p_eq > 0
    wave = torch.randn(64, 8000) * 0.1
    eq_only = AugmentConfig(p_polarity=0, p_noise=0, p_gain=0, p_filter=0, p_delay=0, p_pitch=0, p_reverb=0,
                            p_eq=1.0, eq_db=(6.0, 6.0))
    out = Augment(16000, eq_only)(wave, torch.Generator().manual_seed(0))
    spectrum, original = torch.fft.rfft(out).abs(), torch.fft.rfft(wave).abs()
    bins = 8000 // 2 + 1  # 2 Hz per bin at 16 kHz over 8000 samples
    low, high = slice(1, 50), slice(bins - 500, bins)  # < 100 Hz, > 7 kHz: both shelves at +6 dB
    for band in (low, high):
        gain_db = 20 * torch.log10(spectrum[:, band].mean() / original[:, band].mean())
        assert 4.5 < gain_db < 6.5
    mid = slice(450, 550)  # ≈ 1 kHz, between the shelves' corners: much less than 6 dB
    assert 20 * torch.log10(spectrum[:, mid].mean() / original[:, mid].mean()) < 3.0
