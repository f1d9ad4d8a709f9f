"""The mood MLP's settings and their YAML loader (``configs/moods/*.yaml``, read like every config)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from retrieval.errors import ConfigError
from retrieval.heads.probe import TrainSettings

__all__ = ["MoodConfig", "load_mood_config"]


@dataclass(frozen=True)
class MoodConfig:
    """The mood MLP and its training (defaults: the paper's best listening-based setting).

    Attributes:
        n_layers: hidden layers. hidden_dim: units per hidden layer. dropout: after every hidden layer.
        lr: peak learning rate (Adam). weight_decay: Adam weight decay.
        batch_size, epochs, warmup_epochs: see :class:`~retrieval.heads.probe.TrainSettings`.
        patience: early stopping on validation AP (None: train every epoch, as the paper does).
        threshold: decision threshold for P / R / F1. seed: seeds everything. device: ``auto``, ``cpu``,
        ``cuda``, ``cuda:N``, ``mps``. precision: ``fp32``, ``bf16`` or ``fp16`` (autocast, :mod:`retrieval.devices`).
    """

    n_layers: int = 4
    hidden_dim: int = 3909
    dropout: float = 0.25
    lr: float = 4e-4
    weight_decay: float = 0.0
    batch_size: int = 128
    epochs: int = 100
    warmup_epochs: float = 1.0
    patience: int | None = None
    threshold: float = 0.5
    seed: int = 0
    device: str = "cpu"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"

    def train_settings(self) -> TrainSettings:
        return TrainSettings(lr=self.lr, weight_decay=self.weight_decay, batch_size=self.batch_size,
                             epochs=self.epochs, warmup_epochs=self.warmup_epochs, patience=self.patience,
                             seed=self.seed, device=self.device, precision=self.precision)



def load_mood_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> MoodConfig:
    """Read a flat YAML mood config (a path or a shipped name such as ``"moods/tiny"``; None → defaults) plus
    ``key=value`` overrides. Read by :func:`retrieval.config.read_yaml_with_extends`, so ``extends:`` works too.

    Raises:
        ConfigError: missing file, bad YAML, unknown key or bad value (named, with the allowed keys).
    """
    from retrieval.config import from_dict, merge, parse_overrides, read_yaml_with_extends, resolve_config

    raw = read_yaml_with_extends(resolve_config(path)) if path is not None else {}
    try:
        return from_dict(MoodConfig, merge(raw, parse_overrides(overrides)))
    except ConfigError as error:
        raise ConfigError(f"{path or 'mood config'}: {error}") from None
