"""FCN, CRNN, Musicnn and HarmonicCNN: shapes, trainability, config round trip, harmonic stack."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from retrieval.audio import MelConfig
from retrieval.encoders.backbones.cnn import CRNN, FCN, HarmonicCNN, HarmonicStack, Musicnn

N_MELS = 32
TINY_MEL = MelConfig(sample_rate=8000, n_fft=256, hop_length=128, n_mels=N_MELS)
OUT = 8
TINY = {
    FCN: {"channels": (4, 4, 4, 4, 4)},
    CRNN: {"channels": (4, 4, 4, 4), "gru_hidden": 6, "gru_layers": 1},
    Musicnn: {"channels": (8, 8), "timbral_channels": 3, "temporal_channels": 2},
    HarmonicCNN: {"channels": (4, 4, 8), "n_harmonics": 3},
}
CLASSES = list(TINY)


def tiny(cls: type) -> nn.Module:
    return cls(mel=TINY_MEL, output_dim=OUT, **TINY[cls])


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("frames", [20, 77])
def test_output_shape(cls: type, frames: int) -> None:
    torch.manual_seed(0)
    model = tiny(cls).eval()
    assert model.forward_mel(torch.randn(3, N_MELS, frames)).shape == (3, OUT)
    wave = torch.randn(2, TINY_MEL.samples_for_frames(frames))
    assert model(wave).shape == (2, OUT)


@pytest.mark.parametrize("cls", CLASSES)
def test_paper_settings_match_reference(cls: type) -> None:
    settings = cls.paper_settings()
    mel = settings.mel
    assert (mel.sample_rate, mel.n_fft, mel.hop_length) == (16000, 512, 256)
    assert mel.n_mels == (128 if cls is HarmonicCNN else 96)
    seconds = {FCN: 29, CRNN: 29, Musicnn: 3, HarmonicCNN: 5}[cls]
    assert settings.input_frames == 1 + seconds * 16000 // 256
    assert mel.frames(settings.input_samples) == settings.input_frames
    assert abs(settings.input_samples / 16000 - seconds) < 256 / 16000


@pytest.mark.parametrize("cls", CLASSES)
def test_tiny_model_overfits_four_items(cls: type) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    mels = torch.randn(4, N_MELS, 24)
    targets = torch.eye(4)
    backbone = tiny(cls)
    head = nn.Linear(OUT, 4)
    optimiser = torch.optim.Adam([*backbone.parameters(), *head.parameters()], lr=1e-2)
    loss_fn = nn.BCEWithLogitsLoss()
    losses = []
    for _ in range(60):
        optimiser.zero_grad()
        loss = loss_fn(head(backbone.forward_mel(mels)), targets)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10, (losses[0], losses[-1])


@pytest.mark.parametrize("cls", CLASSES)
def test_config_round_trip(cls: type) -> None:
    torch.manual_seed(0)
    model = tiny(cls)
    with torch.no_grad():  # make BatchNorm running stats non-trivial so the state dict matters
        model.train()(torch.randn(2, TINY_MEL.samples_for_frames(30)))
    rebuilt = cls(**model.config())
    rebuilt.load_state_dict(model.state_dict())
    assert rebuilt.config() == model.config()
    mel = torch.randn(2, N_MELS, 30)
    torch.testing.assert_close(rebuilt.eval().forward_mel(mel), model.eval().forward_mel(mel))
    assert model.describe()["name"] == cls.name


def test_harmonic_stack_first_channel_is_input_and_second_is_octave() -> None:
    mel = MelConfig(sample_rate=16000, n_fft=512, hop_length=256, n_mels=64)
    stack = HarmonicStack(mel, 2)
    x = torch.randn(1, 1, 64, 5)
    y = stack(x)
    assert y.shape == (1, 2, 64, 5)
    torch.testing.assert_close(y[:, 0], x[:, 0])
    # a spectrum that is a linear ramp over band index interpolates exactly: the octave channel at band k
    # reads the ramp at the (fractional) band of 2·f_k, which lies above band k and beyond f_max at the top
    ramp = torch.arange(64, dtype=torch.float32)[None, None, :, None].expand(1, 1, 64, 3)
    octave = stack(ramp)[0, 1, :, 0]
    assert torch.all(octave[:10] > ramp[0, 0, :10, 0])
    assert octave[-1] == 0.0  # beyond f_max → the clip's floor (min of the ramp)


def test_bad_pools_raise() -> None:
    from retrieval.errors import ConfigError

    with pytest.raises(ConfigError, match="pools"):
        FCN(mel=TINY_MEL, channels=(4, 4), pools=((2, 2),))
