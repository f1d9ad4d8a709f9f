"""The published musicnn as the joint model's audio tower: config → train → checkpoint → load, frozen or not."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from retrieval.config import load_config
from retrieval.encoders.backbones import PretrainedMusicnnTower, build_audio_encoder
from retrieval.errors import ConfigError
from retrieval.pretrained.tagger import PretrainedTagger

TOWER = ["model.audio.backbone=musicnn", "model.audio.pretrained=mtt", "model.audio.channels=null",
         "train.epochs=1", "train.steps=2", "train.batch_size=4", "eval.n_crops=1"]


def test_a_frozen_tower_trains_only_its_head_and_round_trips(tiny_corpus: Path, tiny_config_path: Path,
                                                             tmp_path: Path) -> None:
    from retrieval.runs import load_run
    from retrieval.training.experiment import train_run

    config = load_config(tiny_config_path, [f"data.root={tiny_corpus}", *TOWER])
    train_run(config, tmp_path / "run", progress=False)
    run = load_run(tmp_path / "run")
    tower = run.model.audio
    assert isinstance(tower, PretrainedMusicnnTower) and tower.freeze
    published = PretrainedTagger("musicnn-mtt").model.state_dict()
    for key, value in tower.network.state_dict().items():  # weights and batch-norm statistics as published
        assert torch.equal(value, published[key]), key
    fresh = build_audio_encoder("musicnn_pretrained", **tower.config())
    assert not torch.equal(fresh.head.weight, tower.head.weight)  # the head was trained (and saved)
    mel = torch.rand(2, 96, 187) * 3
    with torch.no_grad():
        again = load_run(tmp_path / "run").model.audio.eval()
        torch.testing.assert_close(again.forward_mel(mel), tower.eval().forward_mel(mel))
    assert tower.mel.log == "musicnn" and tower.mel.sample_rate == 16000 and tower.input_frames == 187


def test_an_unfrozen_tower_fine_tunes_and_bad_settings_are_named() -> None:
    tower = build_audio_encoder("musicnn_pretrained", pretrained="msd", freeze=False, output_dim=8).train()
    assert tower.network.training and all(p.requires_grad for p in tower.network.parameters())
    loss = tower.forward_mel(torch.rand(2, 96, 187)).sum()
    loss.backward()
    assert tower.network.dense.weight.grad is not None
    vgg = build_audio_encoder("vgg_pretrained", pretrained="mtt", output_dim=8).eval()
    assert vgg.forward_mel(torch.rand(2, 96, 187)).shape == (2, 8) and vgg.network.penultimate_dim == 256
    with pytest.raises(ConfigError, match="pretrained must be one of"):
        build_audio_encoder("musicnn_pretrained", pretrained="imagenet")
    with pytest.raises(ConfigError, match="musicnn's own front end"):
        build_audio_encoder("musicnn_pretrained", input_frames=100)
    with pytest.raises(ConfigError, match="model.audio.backbone in"):
        from retrieval.runs.build import model_args

        model_args(load_config("demo", ["model.audio.pretrained=mtt"]), 100, 16)


def test_a_frozen_towers_cached_network_outputs_stand_in_for_its_mels(tiny_corpus: Path,
                                                                     tiny_config_path: Path) -> None:
    from retrieval.data.assembly import prepare_data
    from retrieval.data.frozen import PATCHES, FrozenFeatures, freeze_features
    from retrieval.runs import build_model, model_args

    config = load_config(tiny_config_path, [f"data.root={tiny_corpus}", *TOWER, "model.modality=audio"])
    data, _ = prepare_data(config, progress=False, need_listening=False, splits=("test",))
    model = build_model(model_args(config, 8, None)).eval()  # the text side is not used here
    rows = list(range(len(data.splits["test"].ids)))
    with torch.no_grad():
        from_mels = model.audio_features(data.track_inputs("test", rows, PATCHES).features)
        freeze_features(data, model, progress=False)
        assert isinstance(data.features, FrozenFeatures)
        cached = data.track_inputs("test", rows, PATCHES).features
        assert cached.shape == (len(rows), PATCHES, model.audio.network.penultimate_dim, 1)
        torch.testing.assert_close(model.audio_features(cached), from_mels, atol=1e-5, rtol=1e-5)
        ids = data.splits["test"].ids
        fractions = ([0.0, 0.5, 0.99] * len(ids))[: len(ids)]
        crops = data.features.crops_at(ids, data.input_frames, fractions)
        assert crops.shape == (len(rows), model.audio.network.penultimate_dim, 1)
        torch.testing.assert_close(crops[0, :, 0], cached[0, 0, :, 0])  # fraction 0: the first patch
    assert data.features.folder.name.startswith("frozen-musicnn-mtt-")  # (the session's other runs share it)
    assert all((data.features.folder / f"{i}.npy").is_file() for i in data.splits["test"].ids)
