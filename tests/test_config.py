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


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.margin=-1", "train.margin: must be ≥ 0, got -1"),
        ("train.lr=0", "train.lr: must be > 0, got 0"),
        ("train.weight_decay=-1e-4", "train.weight_decay: must be ≥ 0, got -0.0001"),
        ("train.epochs=0", "train.epochs: must be ≥ 1, got 0"),
        ("train.steps=0", "train.steps: must be ≥ 1, got 0"),
        ("train.batch_size=0", "train.batch_size: must be ≥ 1, got 0"),
        ("train.num_threads=0", "train.num_threads: must be ≥ 1, got 0"),
        ("model.dropout=1", r"model.dropout: must be in \[0, 1\), got 1"),
        ("model.dropout=-0.1", r"model.dropout: must be in \[0, 1\), got -0.1"),
        ("model.embed_dim=0", "model.embed_dim: must be ≥ 1, got 0"),
        ("model.hidden_dim=-3", "model.hidden_dim: must be ≥ 1, got -3"),
        ("model.audio.channels=[8, 0]", r"model.audio.channels\[1\]: must be ≥ 1, got 0"),
        ("model.listening.factors=0", "model.listening.factors: must be ≥ 1, got 0"),
        ("model.listening.iterations=0", "model.listening.iterations: must be ≥ 1, got 0"),
        ("eval.k=0", "eval.k: must be ≥ 1, got 0"),
        ("eval.n_crops=0", "eval.n_crops: must be ≥ 1, got 0"),
        ("eval.batch_size=0", "eval.batch_size: must be ≥ 1, got 0"),
        ("tagging.unlabeled_share=1.5", r"tagging.unlabeled_share: must be in \[0, 1\], got 1.5"),
        ("model.mel.n_mels=0", "model.mel: MelConfig.n_mels"),
    ],
)
def test_values_out_of_range_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(CONFIGS / "demo.yaml", [override])


def test_range_edges_are_allowed() -> None:
    config = load_config(CONFIGS / "demo.yaml", ["train.margin=0", "model.dropout=0", "train.weight_decay=0",
                                                 "tagging.unlabeled_share=1", "eval.k=1", "train.epochs=1"])
    assert (config.train.margin, config.model.dropout, config.tagging.unlabeled_share) == (0, 0, 1)


def test_saved_configs_are_checked_too() -> None:
    saved = load_config(CONFIGS / "demo.yaml").to_dict()
    saved["train"]["margin"] = -0.5
    with pytest.raises(ConfigError, match="train.margin: must be ≥ 0, got -0.5"):
        config_from_dict(saved)


def test_missing_and_cyclic_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    loop = tmp_path / "loop.yaml"
    loop.write_text("extends: loop.yaml\n")
    with pytest.raises(ConfigError, match="loops"):
        load_config(loop)
