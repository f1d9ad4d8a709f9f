"""The robustness evaluation's perturbations (SMC 2020, REFERENCE §3): ``PERTURBATIONS[name].apply(wave, sr,
strength, generator)`` for time_stretch | pitch_shift | dynamic_range_compression | white_noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from retrieval.augment.signal import dynamic_range_compression, pitch_shift, time_stretch, white_noise
from retrieval.errors import ConfigError


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
