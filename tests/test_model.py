"""The joint model: shapes per modality, unit norms, and the gated hybrid's one-dot-product form."""

from __future__ import annotations

import pytest
import torch

from retrieval.audio import MelConfig
from retrieval.encoders.backbones import build_audio_encoder
from retrieval.model import JointModel, TrackInputs

TEXT, EMBED, FACTORS, B, FRAMES = 12, 16, 8, 5, 16
MEL = MelConfig(n_mels=32)


def _model(modality: str) -> JointModel:
    torch.manual_seed(0)
    audio = None
    if modality != "cultural":
        out = FACTORS if modality == "concat" else EMBED
        audio = build_audio_encoder("short_chunk_cnn", mel=MEL, output_dim=out, channels=[4] * 7, input_frames=FRAMES)
    return JointModel(modality, TEXT, EMBED, hidden_dim=20, dropout=0.0, audio_encoder=audio,
                      listening_dim=None if modality == "audio" else FACTORS).eval()


def _tracks(has: list[bool] | None = None) -> TrackInputs:
    g = torch.Generator().manual_seed(1)
    return TrackInputs(
        features=torch.randn(B, 3, MEL.n_mels, FRAMES, generator=g),
        listening=torch.randn(B, FACTORS, generator=g),
        has_listening=torch.tensor(has or [True] * B),
    )


@pytest.mark.parametrize("modality", ["audio", "cultural", "concat", "gated"])
def test_shapes_and_unit_norm(modality: str) -> None:
    model = _model(modality)
    words = torch.randn(7, TEXT)
    text, tracks = model.encode_text(words), model.encode_tracks(_tracks())
    assert text.shape == (7, model.output_dim) and tracks.shape == (B, model.output_dim)
    torch.testing.assert_close(tracks.norm(dim=1), torch.ones(B))
    if modality != "gated":  # gated queries carry the gate in their norm (see the next test)
        torch.testing.assert_close(text.norm(dim=1), torch.ones(7))


def test_gated_dot_product_is_the_gate_weighted_mix() -> None:
    model = _model("gated")
    words, inputs = torch.randn(4, TEXT), _tracks()
    sims = model.similarities(words, model.track_parts(inputs))
    g = model.gate_weight(words).unsqueeze(-1)
    torch.testing.assert_close(sims["fused"], g * sims["audio"] + (1 - g) * sims["cultural"])
    # One dot product gives the trained similarity exactly...
    torch.testing.assert_close(model.encode_text(words) @ model.encode_tracks(inputs).T, sims["fused"])
    # ...and a cosine index (which normalises queries) keeps each query's ranking of tracks.
    cosine = torch.nn.functional.normalize(model.encode_text(words), dim=1) @ model.encode_tracks(inputs).T
    assert torch.equal(cosine.argsort(dim=1), sims["fused"].argsort(dim=1))


def test_gated_cold_start_uses_predicted_listening() -> None:
    model = _model("gated")
    with_data = model.track_parts(_tracks([True] * B))
    without = model.track_parts(_tracks([False] * B))
    torch.testing.assert_close(with_data["audio"], without["audio"])
    torch.testing.assert_close(without["cultural"], without["cultural_predicted"])
    assert not torch.allclose(with_data["cultural"], without["cultural"])


def test_wrong_audio_dimension_is_refused() -> None:
    audio = build_audio_encoder("short_chunk_cnn", mel=MEL, output_dim=EMBED + 1, channels=[4] * 7)
    with pytest.raises(ValueError, match="needs"):
        JointModel("audio", TEXT, EMBED, audio_encoder=audio)


@pytest.mark.parametrize("modality", ["audio", "cultural", "concat", "gated"])
def test_query_projector_is_encode_text_in_numpy(modality: str) -> None:
    model = _model(modality)
    g = torch.Generator().manual_seed(2)
    for module in model.modules():  # trained-looking batch norms, so the folding is really exercised
        if isinstance(module, torch.nn.BatchNorm1d):
            size = module.num_features
            module.running_mean.copy_(torch.randn(size, generator=g))
            module.running_var.copy_(torch.rand(size, generator=g) + 0.5)
            module.weight.data.copy_(torch.randn(size, generator=g))
            module.bias.data.copy_(torch.randn(size, generator=g))
    words = torch.randn(6, TEXT, generator=g)
    with torch.no_grad():
        expected = model.encode_text(words).numpy()
    projected = model.query_projector()(words.numpy())
    assert projected.dtype == expected.dtype and projected.shape == expected.shape
    torch.testing.assert_close(torch.from_numpy(projected), torch.from_numpy(expected), rtol=1e-5, atol=1e-6)
