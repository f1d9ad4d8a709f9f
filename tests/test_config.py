"""Configs: YAML → frozen dataclasses, validated; `extends`; dotted overrides; every shipped config loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.config import Config, config_from_dict, load_config
from retrieval.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_shipped_config_loads(path: Path) -> None:
    family = path.relative_to(CONFIGS).parts[0]
    if path.name in ("table.yaml", "noisy_student.yaml"):  # comparison tables: every row's config loads
        from retrieval.training.compare import read_table

        assert all(load_config(row["config"], [s.replace("{out}", "OUT") for s in row["set"]])
                   for row in read_table(path))
    elif family == "moods":
        from retrieval.heads.moods import load_mood_config

        assert load_mood_config(path)
    elif family == "artist_factors":
        from retrieval.heads.artist_groups.comparison import load_artist_factor_config

        assert load_artist_factor_config(path)
    else:
        assert isinstance(load_config(path), Config)


def test_defaults_are_the_papers_settings() -> None:
    from retrieval.data.assembly import audio_input
    from retrieval.runs import build_model, model_args

    config = load_config(CONFIGS / "base.yaml")
    mel, _, frames = audio_input(config)
    assert (mel.sample_rate, mel.n_fft, mel.hop_length, mel.n_mels, frames) == (22050, 1024, 512, 128, 173)
    audio = build_model(model_args(config, text_dim=8, listening_dim=None)).audio
    assert audio.channels == (128, 128, 256, 256, 256, 256, 512) and audio.mel == mel
    assert (config.train.margin, config.train.lr, config.train.batch_size) == (0.4, 1e-4, 128)
    assert (config.eval.n_crops, config.model.embed_dim) == (8, 256)


def test_overrides_and_extends(tmp_path: Path) -> None:
    child = tmp_path / "child.yaml"
    child.write_text(f"extends: {CONFIGS / 'demo.yaml'}\ntrain:\n  lr: 3.0e-4\n")
    config = load_config(child, ["model.modality=audio", "model.audio.channels=[4, 4]", "train.weight_decay=1e-5"])
    assert config.train.lr == 3e-4 and config.train.weight_decay == 1e-5
    assert config.model.modality == "audio" and config.model.audio.channels == (4, 4)
    from retrieval.data.assembly import audio_input

    assert audio_input(config).mel.n_mels == 64  # demo.yaml's size: demo
    assert config_from_dict(config.to_dict()) == config


def test_switching_the_audio_tower_is_one_line(tmp_path: Path) -> None:
    from retrieval.runs import build_model, model_args

    config = load_config(CONFIGS / "demo.yaml", ["model.audio.backbone=musicnn"])
    model = build_model(model_args(config, text_dim=8, listening_dim=16))
    assert type(model.audio).__name__ == "Musicnn" and model.audio.mel.sample_rate == 16000
    assert model.audio.timbral_channels == 32  # Musicnn's DEMO size, not the demo Short-chunk CNN's channels


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("train.lrr=1", "train.lrr"),
        ("model.modality=fusion", "model.modality"),
        ("train.steps=many", "train.steps"),
        ("model.mel.n_mels=0", "n_mels"),
        ("model.audio.channels=[a]", "model.audio.channels[0]"),
        ("nonsense", "nonsense"),
    ],
)
def test_bad_values_name_the_key(override: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
        load_config(CONFIGS / "demo.yaml", [override])


def test_missing_and_cyclic_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    loop = tmp_path / "loop.yaml"
    loop.write_text("extends: loop.yaml\n")
    with pytest.raises(ConfigError, match="loops"):
        load_config(loop)
