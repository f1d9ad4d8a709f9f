"""Every registered audio backbone: shapes on waves and features of any length, its recorded input settings,
config round trips through JSON, and that it can fit a tiny batch (so gradients reach every block).
Class-specific behaviour lives in test_cnn_backbones.py, test_attention_backbones.py and here for Short-chunk."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from retrieval.audio import MelConfig, WaveConfig, front_end
from retrieval.config import AudioSettings
from retrieval.encoders.backbones import AUDIO_BACKBONES, backbone_arguments, backbone_input, build_audio_encoder
from retrieval.encoders.backbones.base import Backbone, InputSettings
from retrieval.encoders.backbones.short_chunk import ShortChunkCNN, ShortChunkResNet
from retrieval.errors import ConfigError

OUTPUT_DIM = 12
SMC_MEL = MelConfig(sample_rate=16000, n_fft=512, hop_length=256, n_mels=32)
SHORT_MEL = MelConfig(sample_rate=22050, n_fft=1024, hop_length=512, n_mels=32)
#: Tiny constructor arguments per backbone: fast on a shared 2-core CPU, still every block of the real design.
TINY: dict[str, dict] = {
    "fcn": {"mel": SMC_MEL, "channels": (4, 4, 4, 4, 4), "input_frames": 64},
    "musicnn": {"mel": SMC_MEL, "channels": (8, 8), "timbral_channels": 4, "temporal_channels": 2,
                "input_frames": 64},
    "crnn": {"mel": SMC_MEL, "channels": (4, 4, 4, 4), "gru_hidden": 8, "input_frames": 64},
    "sample_cnn": {"channels": (4,) * 6, "input_frames": 3**6},
    "sample_cnn_se": {"channels": (4,) * 6, "input_frames": 3**6, "se_ratio": 2},
    "short_chunk_cnn": {"mel": SHORT_MEL, "channels": (4, 4, 8, 8), "input_frames": 32},
    "short_chunk_resnet": {"mel": SHORT_MEL, "channels": (4, 4, 8, 8), "input_frames": 32},
    "harmonic_cnn": {"mel": SMC_MEL, "channels": (4, 4, 8), "n_harmonics": 3, "input_frames": 32},
    "cnnsa": {"mel": SMC_MEL, "channels": (4, 4, 8), "pools": ((2, 2), (2, 2), (2, 1)), "width": 16, "heads": 2,
              "layers": 1, "input_frames": 32},
    "music_tagging_transformer": {"mel": SHORT_MEL, "channels": (4, 4, 4), "width": 16, "heads": 2, "layers": 1,
                                  "input_frames": 32},
    "spectnt": {"mel": SHORT_MEL, "channels": (8,), "blocks": 1, "spectral_dim": 16, "spectral_heads": 2,
                "temporal_dim": 16, "temporal_heads": 2, "input_frames": 32, "dropout": 0.0},
    # the published networks at their own (fixed) widths and input, frozen (fine-tuning: tests/pretrained)
    "musicnn_pretrained": {"pretrained": "mtt"},
    "vgg_pretrained": {"pretrained": "msd"},
}
NAMES = sorted(AUDIO_BACKBONES)
#: Adam step size of the overfit test; SpecTNT's FCT path diverges at 1e-2.
OVERFIT_LR = {"spectnt": 2e-3}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(name: str, **kwargs) -> Backbone:
    torch.manual_seed(0)  # parameter init only; the code under test takes no global randomness
    return build_audio_encoder(name, output_dim=OUTPUT_DIM, **{**TINY[name], **kwargs})


def features(model: Backbone, batch: int, frames: int, seed: int = 0) -> torch.Tensor:
    """Random features of the model's front end: (batch, n_mels, frames) (n_mels = 1 for a waveform)."""
    return torch.randn(batch, model.mel.n_mels, frames, generator=torch.Generator().manual_seed(seed))


def test_registry_holds_every_backbone_of_the_seed_papers():
    assert set(AUDIO_BACKBONES) == {
        "fcn", "musicnn", "crnn", "sample_cnn", "sample_cnn_se", "short_chunk_cnn", "short_chunk_resnet",
        "harmonic_cnn", "cnnsa", "music_tagging_transformer", "spectnt", "musicnn_pretrained", "vgg_pretrained"}
    assert set(TINY) == set(AUDIO_BACKBONES)  # a new backbone gets tiny test arguments here
    assert AUDIO_BACKBONES["short_chunk_cnn"] is ShortChunkCNN
    assert AUDIO_BACKBONES["short_chunk_resnet"] is ShortChunkResNet
    assert all(cls.name == name for name, cls in AUDIO_BACKBONES.items())


@pytest.mark.parametrize("name", NAMES)
def test_each_backbone_records_its_paper_input(name):
    cls = AUDIO_BACKBONES[name]
    settings = cls.paper_settings()
    assert isinstance(settings, InputSettings)
    assert settings.mel.frames(settings.input_samples) == settings.input_frames
    assert settings.input_samples / settings.mel.sample_rate > 2.5  # every paper crop is seconds long
    built = build_audio_encoder(name, output_dim=8, **{k: v for k, v in TINY[name].items()
                                                        if k not in ("mel", "input_frames")})
    assert built.mel == settings.mel and built.input_frames == settings.input_frames


@pytest.mark.parametrize("name", NAMES)
def test_default_crop_of_waves_gives_one_vector_per_clip(name):
    model = tiny(name).eval()
    wave = torch.randn(2, model.input_samples, generator=torch.Generator().manual_seed(1))
    out = model(wave)
    assert out.shape == (2, OUTPUT_DIM) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_forward_is_forward_mel_of_the_frontend(name):
    model = tiny(name).eval()
    wave = torch.randn(2, model.input_samples + 1000, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(model(wave), model.forward_mel(front_end(model.mel)(wave)))


@pytest.mark.parametrize("name", NAMES)
def test_longer_and_shorter_inputs_than_the_crop_still_give_output_dim(name):
    model = tiny(name).eval()
    for frames in (model.input_frames // 2, model.input_frames * 2):
        assert model.forward_mel(features(model, 3, frames)).shape == (3, OUTPUT_DIM)


@pytest.mark.parametrize("name", NAMES)
def test_demo_size_builds_and_runs(name):
    settings = AudioSettings(backbone=name, size="demo")
    args = backbone_arguments(settings, None, output_dim=8)
    model = build_audio_encoder(name, **args).eval()
    resolved = backbone_input(settings, None)
    assert (resolved.mel, resolved.input_frames) == (model.mel, model.input_frames)
    with torch.no_grad():
        assert model(torch.zeros(1, model.input_samples)).shape == (1, 8)


def test_config_settings_override_the_size():
    settings = AudioSettings(backbone="music_tagging_transformer", size="demo", input_frames=100,
                             options={"width": 32})
    args = backbone_arguments(settings, None, output_dim=8)
    assert args["input_frames"] == 100 and args["width"] == 32 and args["layers"] == 2  # layers from DEMO


def test_a_waveform_model_refuses_mel_settings():
    with pytest.raises(ConfigError, match="raw waveform"):
        build_audio_encoder("sample_cnn", mel=MelConfig())
    assert build_audio_encoder("sample_cnn", mel={"sample_rate": 8000}, channels=(4,) * 3).mel == WaveConfig(8000)


def test_other_mel_settings_and_block_counts():
    mel = MelConfig(n_mels=96, sample_rate=16000, n_fft=512, hop_length=256)
    model = ShortChunkCNN(mel, output_dim=10, channels=(4, 8, 8), input_frames=50).eval()
    assert model.input_samples == mel.samples_for_frames(50)
    assert model(torch.randn(2, model.input_samples)).shape == (2, 10)
    with pytest.raises(ValueError, match="96"):
        model.forward_mel(torch.randn(2, 128, 50))  # mels made with other settings


def test_bad_input_ranks_are_rejected():
    model = tiny("short_chunk_cnn").eval()
    with pytest.raises(ValueError, match="batch, samples"):
        model(torch.randn(20_000))
    with pytest.raises(ValueError, match="batch, 32, frames"):
        model.forward_mel(torch.randn(32, 50))


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
    model = tiny(name).eval()
    described = json.loads(json.dumps(model.describe()))
    assert described["name"] == name
    rebuilt = build_audio_encoder(described["name"], **described["config"]).eval()
    assert rebuilt.mel == model.mel and rebuilt.input_frames == model.input_frames
    rebuilt.load_state_dict(model.state_dict())  # same architecture: every key and shape matches
    x = features(model, 2, model.input_frames)
    torch.testing.assert_close(rebuilt.forward_mel(x), model.forward_mel(x))


def test_paper_defaults():
    model = build_audio_encoder("short_chunk_cnn")
    assert model.channels == (128, 128, 256, 256, 256, 256, 512)
    assert model.output_dim == 256 and model.mel == MelConfig() and model.input_frames == 173
    convs = [m for m in model.blocks.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == list(model.channels)
    assert all(c.kernel_size == (3, 3) for c in convs)


def test_resnet_shortcut_is_projection_only_where_channels_change():
    model = tiny("short_chunk_resnet")
    projections = [not isinstance(block.shortcut, nn.Identity) for block in model.blocks]
    widths = (1, *TINY["short_chunk_resnet"]["channels"])
    assert projections == [a != b for a, b in zip(widths[:-1], widths[1:], strict=True)]


@pytest.mark.parametrize("name", NAMES)
def test_can_overfit_a_tiny_batch(name):
    """4 clips, 2 classes, a linear head: cross-entropy must drop 20-fold within 80 steps, and the first
    step's gradient reaches every block."""
    model = tiny(name)
    x = features(model, 4, model.input_frames)
    labels = torch.tensor([0, 1, 0, 1])
    head = nn.Linear(OUTPUT_DIM, 2)
    optimiser = torch.optim.Adam([*model.parameters(), *head.parameters()], lr=OVERFIT_LR.get(name, 1e-2))
    losses = []
    for step in range(80):
        loss = nn.functional.cross_entropy(head(model.forward_mel(x)), labels)
        optimiser.zero_grad()
        loss.backward()
        if step == 0:
            for part in model.blocks:  # every trainable block (a frozen published network has none)
                trainable = [p for p in part.parameters() if p.requires_grad]
                assert not trainable or any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable)
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 20, losses[::10]
