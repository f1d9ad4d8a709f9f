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

Modules:
    signal         time_stretch, pitch_shift, dynamic_range_compression, white_noise (shared by both uses).
    noisy_student  Augment, AugmentConfig: the noisy-student training augmentation; PRESETS (``train.augment``:
                   ``noisy_student``, or ``timbre`` — EQ, filters, reverb and mild noise, no gain or pitch — for
                   audio towers that must hear other recordings of the same music).
    perturbations  Perturbation, PERTURBATIONS, get_perturbation: the robustness table's conditions.

Example::

    augment = Augment(sample_rate=16000)
    noisy = augment(crops, torch.Generator().manual_seed(0))          # (16, 48000) -> (16, 48000)

    for name, perturbation in PERTURBATIONS.items():
        for strength in perturbation.strengths:
            wave_p = perturbation.apply(wave, 16000, strength, torch.Generator().manual_seed(0))
            print(perturbation.label(strength))                        # e.g. "time stretch ×0.8"
"""
from retrieval.augment.noisy_student import PRESETS, TIMBRE, Augment, AugmentConfig
from retrieval.augment.perturbations import PERTURBATIONS, Perturbation, get_perturbation
from retrieval.augment.signal import (
    compressor_settings,
    dynamic_range_compression,
    pitch_ratio,
    pitch_shift,
    time_stretch,
    white_noise,
)

__all__ = [
    "PERTURBATIONS",
    "PRESETS",
    "TIMBRE",
    "Augment",
    "AugmentConfig",
    "Perturbation",
    "compressor_settings",
    "dynamic_range_compression",
    "get_perturbation",
    "pitch_ratio",
    "pitch_shift",
    "time_stretch",
    "white_noise",
]
