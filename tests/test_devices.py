"""Devices and precisions: names resolved or refused clearly; bf16 autocast embeds as fp32 does (cosine ≥ 0.999)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from retrieval.config import load_config
from retrieval.devices import autocast, grad_scaler, place_model, resolve_device, use_channels_last
from retrieval.errors import ConfigError


def test_device_names_resolve_to_what_this_machine_has() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    with pytest.raises(ConfigError, match=r"train.device: 'cuda:99' is not on this machine \(it has cpu"):
        resolve_device("cuda:99")
    with pytest.raises(ConfigError, match="'tpu' is not a device; choose auto, cpu, cuda, cuda:N or mps"):
        resolve_device("tpu")


def test_config_refuses_a_misspelt_device_or_precision(tiny_config_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"train.*'gpu' is not allowed; choose auto, cpu, cuda, cuda:N or mps"):
        load_config(tiny_config_path, ["train.device=gpu"])
    with pytest.raises(ConfigError, match="train.precision' = 'fp8' is not allowed; choose one of: fp32, bf16, fp16"):
        load_config(tiny_config_path, ["train.precision=fp8"])
    with pytest.raises(ConfigError, match="train.workers: must be ≥ 0"):
        load_config(tiny_config_path, ["train.workers=-1"])
    assert load_config(tiny_config_path, ["train.device=cuda:1"]).train.device == "cuda:1"  # exists or not: asked later


def test_loss_scaling_only_for_fp16_on_cuda() -> None:
    cpu = torch.device("cpu")
    assert not grad_scaler(cpu, "fp16").is_enabled() and not grad_scaler(cpu, "bf16").is_enabled()
    assert isinstance(autocast(cpu, "bf16"), torch.autocast)
    with autocast(cpu, "bf16"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with autocast(cpu, "fp32"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_a_resumed_fp16_run_keeps_its_loss_scale(monkeypatch) -> None:
    """The scaler's state goes into ``TrainState.loss_scale`` and a resumed ``train`` starts from it (an enabled
    CPU scaler stands in for CUDA's, which is the only place fp16 scaling runs)."""
    from dataclasses import replace

    from retrieval.config import TrainConfig
    from retrieval.training import loop

    scalers = []

    def cpu_scaler(device, precision):
        scalers.append(torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=1, enabled=True))
        return scalers[-1]

    monkeypatch.setattr(loop, "grad_scaler", cpu_scaler)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

    def step():
        return {"loss": model(torch.ones(4, 3)).pow(2).mean(), "triplets": 4}

    settings = replace(TrainConfig(), epochs=1, steps=3, eval_every=10**6, precision="fp32")
    state = loop.train(model, step, optimizer, settings, lambda _: 0.0, lambda *_: None, progress=False)
    assert state.loss_scale["scale"] == 1024.0 * 2**3  # grew once per finite step
    resumed = loop.train(model, step, optimizer, replace(settings, epochs=2), lambda _: 0.0, lambda *_: None,
                         state, progress=False)
    assert resumed.loss_scale["scale"] == 1024.0 * 2**6 and scalers[-1].get_scale() == 1024.0 * 2**6


@pytest.mark.parametrize("config", ["demo", "msd500/audio_word2vec"])
def test_bf16_and_channels_last_embed_as_fp32_does(config: str) -> None:
    # The demo tower and the paper-size Short-chunk CNN, fp32 weights after a few batch-norm updates; the same
    # crops embedded in fp32 and in bf16 autocast (± channels-last): cosine ≥ 0.999 on every track.
    from retrieval.data.assembly import audio_input
    from retrieval.model import TrackInputs
    from retrieval.runs import build_model, model_args

    cfg = load_config(config, ["model.modality=audio", "train.device=cpu"])
    torch.manual_seed(0)
    model = build_model(model_args(cfg, 300, None))
    settings = audio_input(cfg)
    crops = torch.randn(6, settings.mel.n_mels, settings.input_frames, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for _ in range(3):  # running statistics of these inputs, so eval mode is not the identity init
            model.train()
            model.encode_tracks(TrackInputs(features=crops))
    model.eval()
    with torch.no_grad():
        exact = model.encode_tracks(TrackInputs(features=crops))
        for channels_last in (False, True):
            train = cfg.train.__class__(precision="bf16", channels_last=channels_last)
            placed = place_model(model, torch.device("cpu"), train)
            with autocast(torch.device("cpu"), "bf16"):
                low = placed.encode_tracks(TrackInputs(features=crops)).float()
            cosine = torch.nn.functional.cosine_similarity(low, exact)
            assert cosine.min() >= 0.999, (channels_last, cosine)
            assert not torch.equal(low, exact)  # bf16 really ran
    assert use_channels_last(torch.device("cuda"), cfg.train)  # null: on for CUDA


@pytest.mark.slow
def test_bf16_training_and_a_run_loaded_on_a_device(tmp_path, tiny_corpus: Path, tiny_config_path: Path,
                                                    tiny_run: Path) -> None:
    import retrieval
    from retrieval.runs.checkpoint import load_checkpoint
    from retrieval.training.experiment import train_run

    config = load_config(tiny_config_path, [f"data.root={tiny_corpus}", "model.modality=audio", "train.epochs=1",
                                            "train.precision=bf16", "train.device=cpu"])
    state = train_run(config, tmp_path / "bf16", progress=False)
    assert state.epoch == 1 and torch.isfinite(torch.tensor(state.history[0]["loss"]))
    weights = load_checkpoint(tmp_path / "bf16" / "checkpoints" / "last.ckpt")["model"]
    assert all(w.dtype in (torch.float32, torch.int64) for w in weights.values())  # autocast: fp32 master weights
    # evaluated where and how the CLI says (default: the run's train.device / train.precision)
    from retrieval.cli import main

    assert main(["-q", "evaluate", str(tmp_path / "bf16"), "--device", "cpu", "--precision", "fp32", "--json"]) == 0
    assert main(["-q", "evaluate", str(tmp_path / "bf16"), "--device", "cuda:99"]) == 2
    # resuming elsewhere (another device, precision, workers) is the same run; another lr is not
    from retrieval.runs.folder import config_changes

    moved = load_config(tiny_config_path, [f"data.root={tiny_corpus}", "model.modality=audio", "train.epochs=2",
                                           "train.precision=fp32", "train.device=auto", "train.workers=2"])
    assert config_changes(config, moved) == []
    assert config_changes(config, load_config(tiny_config_path, ["train.lr=1"])) != []

    retriever = retrieval.load(tiny_run, device="auto")
    assert next(retriever.model.parameters()).device.type == resolve_device("auto").type
    assert retriever.embed_text(["rock"]).dtype == "float32"
    with pytest.raises(ConfigError, match="device: 'cuda:99' is not on this machine"):
        retrieval.load(tiny_run, device="cuda:99")


def test_heads_train_in_bf16() -> None:
    # The probe / mood MLP and the artist-factor patch CNN under bf16 autocast: fp32 weights, a loss that falls.
    from retrieval.audio import MelConfig
    from retrieval.heads.artist_groups.networks import build_patch_classifier
    from retrieval.heads.artist_groups.training import track_outputs, train_patch_classifier
    from retrieval.heads.probe import TrainSettings, train_tagger

    rng = np.random.default_rng(0)
    x = rng.standard_normal((80, 6)).astype(np.float32)
    y = x @ rng.standard_normal((6, 3)) > 0
    settings = TrainSettings(lr=5e-2, batch_size=32, epochs=5, patience=None, precision="bf16")
    tagger = train_tagger(x[:60], y[:60], x[60:], y[60:], kind="linear", settings=settings)
    losses = [r["loss"] for r in tagger.info["training"]["history"]]
    assert losses[-1] < losses[0] and all(p.dtype == torch.float32 for p in tagger.parameters())
    with pytest.raises(ConfigError, match="precision: 'fp8' is not a precision"):
        train_tagger(x[:60], y[:60], x[60:], y[60:], settings=TrainSettings(epochs=1, precision="fp8"))

    model = build_patch_classifier(MelConfig(n_mels=16), {"group": 3}, (4, 4), 8, 16, seed=0)
    patches = torch.randn(6, 2, 16, 16, generator=torch.Generator().manual_seed(0))
    targets = {"group": torch.tensor([0, 1, 2, 0, 1, 2])}
    history = train_patch_classifier(model, patches, targets, torch.arange(6), epochs=4, batch_size=4, lr=1e-2,
                                     weight_decay=0.0, generator=torch.Generator().manual_seed(0),
                                     precision="bf16")
    assert np.isfinite(history).all()
    features, probabilities = track_outputs(model, patches, 4, precision="bf16")
    assert features.dtype == torch.float32 and torch.allclose(probabilities["group"].sum(1), torch.ones(6), atol=1e-5)


@pytest.mark.slow
def test_an_index_embedded_in_bf16_agrees_with_fp32(tmp_path, tiny_run: Path, tiny_corpus: Path) -> None:
    from retrieval.cli import main
    from retrieval.index import load_index

    for precision in ("fp32", "bf16"):
        assert main(["-q", "index", str(tiny_corpus / "audio"), "--model", str(tiny_run), "--out",
                     str(tmp_path / precision), "--backend", "exact", "--cache-dir", str(tmp_path / "cache"),
                     "--device", "cpu", "--precision", precision]) == 0
    exact, low = (load_index(tmp_path / p) for p in ("fp32", "bf16"))
    assert list(exact.ids) == list(low.ids) and len(exact) == 48
    cosine = (exact.vectors * low.vectors).sum(1)  # unit rows
    assert cosine.min() >= 0.999 and not np.array_equal(exact.vectors, low.vectors)
    # bf16 vectors have their own per-file cache, beside the fp32 one
    assert len(list((tmp_path / "cache").iterdir())) == 2
