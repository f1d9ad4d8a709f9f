"""Devices and precisions: names resolved or refused clearly; bf16 autocast embeds as fp32 does (cosine ≥ 0.999)."""

from __future__ import annotations

from pathlib import Path

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

    retriever = retrieval.load(tiny_run, device="auto")
    assert next(retriever.model.parameters()).device.type == resolve_device("auto").type
    assert retriever.embed_text(["rock"]).dtype == "float32"
    with pytest.raises(ConfigError, match="device: 'cuda:99' is not on this machine"):
        retrieval.load(tiny_run, device="cuda:99")
