"""Attention backbones: shapes, attention maps, a tiny overfit, and config round trips."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from retrieval.audio import MelConfig
from retrieval.encoders.backbones.attention import CNNSA, MusicTaggingTransformer, SpecTNT

N_MELS = 32
OUTPUT_DIM = 8

TINY = {
    CNNSA: dict(channels=(4, 4, 8), pools=((2, 2), (2, 2), (8, 1)), width=16, layers=2, heads=2),
    MusicTaggingTransformer: dict(channels=(4, 4, 4), width=16, layers=2, heads=2),
    SpecTNT: dict(channels=(8,), blocks=2, spectral_dim=16, spectral_heads=2, temporal_dim=32, temporal_heads=2),
}
CLASSES = list(TINY)
#: Adam step sizes for the overfit test (SpecTNT's FCT path diverges at 1e-2).
OVERFIT_LR = {CNNSA: 1e-2, MusicTaggingTransformer: 1e-2, SpecTNT: 2e-3}


def _tiny(cls, seed: int = 0, dropout: float = 0.0):
    torch.manual_seed(seed)
    mel = MelConfig(sample_rate=8000, n_fft=256, hop_length=128, n_mels=N_MELS)
    return cls(mel, output_dim=OUTPUT_DIM, input_frames=40, dropout=dropout, **TINY[cls])


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("frames", [40, 23])
def test_output_and_attention_shapes(cls, frames):
    net = _tiny(cls).eval()
    mel = torch.randn(3, N_MELS, frames, generator=torch.Generator().manual_seed(1))
    assert net.forward_mel(mel).shape == (3, OUTPUT_DIM)
    maps = net.attention_maps(mel)
    time_pools = 2 if cls is SpecTNT else 4  # SpecTNT's one block pools time by 2, the others' two blocks by 4
    tokens = -(-frames // time_pools) + 1  # plus [CLS]
    assert maps.shape[0] == 3 and maps.shape[-2:] == (tokens, tokens)
    torch.testing.assert_close(maps.sum(-1), torch.ones(maps.shape[:-1]))


@pytest.mark.parametrize("cls", CLASSES)
def test_forward_on_waves(cls):
    net = _tiny(cls).eval()
    assert net(torch.zeros(2, net.input_samples)).shape == (2, OUTPUT_DIM)


@pytest.mark.parametrize("cls", CLASSES)
def test_paper_settings_match_reference(cls):
    settings = cls.paper_settings()
    assert settings.mel.frames(settings.input_samples) == settings.input_frames
    seconds = {CNNSA: 15.0, MusicTaggingTransformer: 10.0, SpecTNT: 4.54}[cls]
    assert settings.input_frames == settings.mel.frames(round(seconds * settings.mel.sample_rate))
    assert settings.mel.n_mels == (96 if cls is CNNSA else 128)


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_tiny_model_overfits_four_items(cls, seed):
    torch.set_num_threads(1)
    net = _tiny(cls, seed=seed)
    head = nn.Linear(OUTPUT_DIM, 4)
    generator = torch.Generator().manual_seed(2)
    mel = torch.randn(4, N_MELS, 24, generator=generator)
    targets = torch.arange(4)
    optimizer = torch.optim.Adam([*net.parameters(), *head.parameters()], lr=OVERFIT_LR[cls])
    losses = []
    for _ in range(60):
        loss = nn.functional.cross_entropy(head(net.forward_mel(mel)), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10, losses[::10]


@pytest.mark.parametrize("cls", CLASSES)
def test_config_round_trip(cls):
    net = _tiny(cls, seed=3).eval()
    config = net.config()
    rebuilt = cls(**{**config, "mel": MelConfig(**config["mel"])})
    rebuilt.load_state_dict(net.state_dict())
    rebuilt.eval()
    assert rebuilt.config() == config and dataclasses.asdict(rebuilt.mel) == config["mel"]
    mel = torch.randn(2, N_MELS, 30, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(rebuilt.forward_mel(mel), net.forward_mel(mel), rtol=0, atol=0)
    assert net.describe()["name"] == cls.name


def test_bad_pools_and_heads_are_config_errors():
    from retrieval.errors import ConfigError

    mel = MelConfig(n_mels=N_MELS)
    with pytest.raises(ConfigError, match="pool"):
        MusicTaggingTransformer(mel, channels=(4, 4), pools=((2, 2),))
    with pytest.raises(ConfigError, match="divisible"):
        MusicTaggingTransformer(mel, channels=(4, 4, 4), width=10, heads=4)
