"""Audio backbones: shapes on waves and mels of any length, the registry, config round trips, and that each
backbone can fit a tiny batch (so gradients reach every block)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from retrieval.audio import MelConfig, MelSpectrogram
from retrieval.encoders.audio import (
    AUDIO_BACKBONES,
    MelBackbone,
    ShortChunkCNN,
    ShortChunkResNet,
    build_audio_encoder,
)
from retrieval.errors import ConfigError

NARROW = (8, 8, 16, 16, 16, 16, 32)  # seven blocks, small enough for a shared 2-core CPU
OUTPUT_DIM = 24
NAMES = sorted(AUDIO_BACKBONES)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def narrow(name: str, **kwargs) -> MelBackbone:
    torch.manual_seed(0)  # parameter init only; the code under test takes no global randomness
    return build_audio_encoder(name, mel=MelConfig(), output_dim=OUTPUT_DIM, channels=NARROW, **kwargs)


def test_registry_holds_both_backbones():
    assert AUDIO_BACKBONES["short_chunk_cnn"] is ShortChunkCNN
    assert AUDIO_BACKBONES["short_chunk_resnet"] is ShortChunkResNet


@pytest.mark.parametrize("name", NAMES)
def test_default_crop_of_waves_gives_one_vector_per_clip(name):
    model = narrow(name).eval()
    assert model.input_frames == 173
    assert model.input_samples == MelConfig().samples_for_frames(173)
    wave = torch.randn(2, model.input_samples, generator=torch.Generator().manual_seed(1))
    out = model(wave)
    assert out.shape == (2, OUTPUT_DIM)
    assert out.dtype == torch.float32
    assert model.output_dim == OUTPUT_DIM
    assert (out >= 0).all()  # the head ends in ReLU


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("frames", [1, 7, 173, 600])
def test_shorter_and_longer_inputs_still_give_output_dim(name, frames):
    model = narrow(name).eval()
    # The STFT needs ≥ n_fft // 2 + 1 samples (2 frames); forward_mel takes any frame count.
    samples = MelConfig().samples_for_frames(max(frames, 2))
    wave = torch.randn(3, samples, generator=torch.Generator().manual_seed(2))
    assert model(wave).shape == (3, OUTPUT_DIM)
    assert model.forward_mel(torch.randn(3, 128, frames)).shape == (3, OUTPUT_DIM)


@pytest.mark.parametrize("name", NAMES)
def test_forward_is_forward_mel_of_the_frontend(name):
    model = narrow(name).eval()
    wave = torch.randn(2, 20_000, generator=torch.Generator().manual_seed(3))
    mel = MelSpectrogram(MelConfig())(wave)
    torch.testing.assert_close(model(wave), model.forward_mel(mel))


def test_other_mel_settings_and_block_counts():
    mel = MelConfig(n_mels=96, sample_rate=16000, n_fft=512, hop_length=256)
    model = ShortChunkCNN(mel, output_dim=10, channels=(4, 8, 8), input_frames=50).eval()
    assert model.input_samples == mel.samples_for_frames(50)
    assert model(torch.randn(2, model.input_samples)).shape == (2, 10)
    with pytest.raises(ValueError, match="96"):
        model.forward_mel(torch.randn(2, 128, 50))  # mels made with other settings


def test_bad_input_ranks_are_rejected():
    model = narrow("short_chunk_cnn").eval()
    with pytest.raises(ValueError, match="batch, samples"):
        model(torch.randn(20_000))
    with pytest.raises(ValueError, match="batch, 128, frames"):
        model.forward_mel(torch.randn(128, 50))


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="short_chunk_cnn.*short_chunk_resnet"):
        build_audio_encoder("vgg")


def test_unknown_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="widths"):
        build_audio_encoder("short_chunk_cnn", widths=(8,))
    with pytest.raises(ConfigError, match="n_bands"):
        build_audio_encoder("short_chunk_cnn", mel={"n_bands": 64})
    with pytest.raises(ConfigError, match="channels"):
        build_audio_encoder("short_chunk_cnn", channels=())


@pytest.mark.parametrize("name", NAMES)
def test_describe_rebuilds_the_same_model_through_json(name):
    model = narrow(name, input_frames=64).eval()
    described = json.loads(json.dumps(model.describe()))
    assert described["name"] == name
    rebuilt = build_audio_encoder(described["name"], **described["config"]).eval()
    assert rebuilt.mel == model.mel and rebuilt.input_frames == 64 and rebuilt.channels == NARROW
    rebuilt.load_state_dict(model.state_dict())  # same architecture: every key and shape matches
    mel = torch.randn(2, 128, 64)
    torch.testing.assert_close(rebuilt.forward_mel(mel), model.forward_mel(mel))


def test_paper_defaults():
    model = build_audio_encoder("short_chunk_cnn")
    assert model.channels == (128, 128, 256, 256, 256, 256, 512)
    assert model.output_dim == 256 and model.mel == MelConfig()
    convs = [m for m in model.blocks.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == list(model.channels)
    assert all(c.kernel_size == (3, 3) for c in convs)


def test_resnet_shortcut_is_projection_only_where_channels_change():
    model = narrow("short_chunk_resnet")
    projections = [not isinstance(block.shortcut, nn.Identity) for block in model.blocks]
    widths = (1, *NARROW)
    assert projections == [a != b for a, b in zip(widths[:-1], widths[1:], strict=True)]


@pytest.mark.parametrize("name", NAMES)
def test_can_overfit_a_tiny_batch(name):
    """4 clips, 2 classes, a linear head: cross-entropy must drop 100-fold within 60 steps."""
    generator = torch.Generator().manual_seed(0)
    mels = torch.randn(4, 128, 32, generator=generator)
    labels = torch.tensor([0, 1, 0, 1])
    model = narrow(name)
    head = nn.Linear(OUTPUT_DIM, 2)
    optimiser = torch.optim.Adam([*model.parameters(), *head.parameters()], lr=1e-2)
    losses = []
    for step in range(60):
        loss = nn.functional.cross_entropy(head(model.forward_mel(mels)), labels)
        optimiser.zero_grad()
        loss.backward()
        if step == 0:  # the loss reaches every block, not just the linear head
            for part in [*model.blocks, model.head]:
                assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())
        optimiser.step()
        losses.append(loss.item())
    # a frozen backbone (head only) reaches ~1/30 of the first loss here; training it reaches ~1/500
    assert losses[-1] < losses[0] / 100, losses[::10]
