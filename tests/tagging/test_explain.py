"""Per-tag attention heat maps: shapes, tag specificity, gradients, the hook's exactness, files written."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from retrieval.encoders.backbones.attention import CNNSA, MusicTaggingTransformer, SpecTNT
from retrieval.encoders.backbones.short_chunk import ShortChunkCNN
from retrieval.tagging.explain import _crops, _recording, _temporal_attentions, explain, tag_attention
from retrieval.tagging.model import TaggingModel

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def tiny_cnnsa(n_tags: int = 4, layers: int = 2, seed: int = 0) -> TaggingModel:
    """An untrained CNNSA tagger: 96 mels, 32-frame crops, time stride 4 (8 tokens per crop)."""
    torch.manual_seed(seed)
    backbone = CNNSA(output_dim=8, channels=(4, 4, 8), pools=((2, 2), (2, 2), (2, 1)), input_frames=32, width=16,
                     heads=2, layers=layers)
    return TaggingModel(backbone, n_tags).eval()


def tiny_model(kind: str) -> TaggingModel:
    torch.manual_seed(0)
    if kind == "cnnsa":
        return tiny_cnnsa()
    if kind == "mtt":
        backbone = MusicTaggingTransformer(output_dim=8, channels=(4, 4, 4), input_frames=24, width=16, heads=2,
                                           layers=2)
    else:
        backbone = SpecTNT(output_dim=8, channels=(4,), input_frames=20, blocks=2, spectral_dim=8, spectral_heads=2,
                           temporal_dim=8, temporal_heads=2)
    return TaggingModel(backbone, 4).eval()


def features(model: TaggingModel, frames: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(model.mel.n_mels, frames, generator=torch.Generator().manual_seed(seed))


# ---- 1. shapes ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["cnnsa", "mtt", "spectnt"])
def test_relevance_is_one_normalised_row_per_tag_over_every_frame(kind: str) -> None:
    model = tiny_model(kind)
    frames = 2 * model.input_frames + 7  # the last crop is zero-padded
    relevance = tag_attention(model, features(model, frames), [2, 0, 3])
    assert relevance.shape == (3, frames) and relevance.dtype == torch.float32
    assert torch.isfinite(relevance).all()
    assert relevance.min() >= 0 and relevance.max() <= 1
    torch.testing.assert_close(relevance.amax(dim=1), torch.ones(3))


def test_each_token_covers_its_stride_of_frames() -> None:
    model = tiny_cnnsa()  # time stride 2 · 2 · 1 = 4
    relevance = tag_attention(model, features(model, 64), [1], normalise=False)[0]
    blocks = relevance.view(-1, 4)  # one row per token
    assert torch.equal(blocks, blocks[:, :1].expand(-1, 4))
    assert len(torch.unique(blocks[:, 0])) > 1  # ... and tokens differ


def test_short_tracks_and_batching_give_the_same_relevance() -> None:
    model = tiny_cnnsa()
    x = features(model, 100)
    torch.testing.assert_close(tag_attention(model, x, [0, 1], batch_size=1), tag_attention(model, x, [0, 1]))
    assert tag_attention(model, x[:, :5], [0]).shape == (1, 5)


# ---- 2. against a reference -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["cnnsa", "mtt", "spectnt"])
def test_recording_hook_keeps_outputs_and_weights_and_puts_them_in_the_graph(kind: str) -> None:
    model = tiny_model(kind)
    crops = _crops(features(model, 3 * model.input_frames), model.input_frames)
    with torch.no_grad():
        expected_logits = model.forward_features(crops)
        expected_maps = model.backbone.attention_maps(crops)
    inputs = crops.clone().requires_grad_(True)
    with _recording(_temporal_attentions(model)) as maps:
        logits = model.forward_features(inputs)
    torch.testing.assert_close(logits, expected_logits)
    torch.testing.assert_close(torch.stack(maps, dim=1), expected_maps)
    grads = torch.autograd.grad(logits[:, 0].sum(), maps)  # raises if a map were outside the graph
    assert all(g.abs().sum() > 0 for g in grads)
    with torch.no_grad():  # the hooks are gone afterwards
        torch.testing.assert_close(model.forward_features(crops), expected_logits)


def test_one_layer_relevance_is_the_positive_gradient_times_attention_of_the_cls_row() -> None:
    model = tiny_cnnsa(layers=1)
    x = features(model, model.input_frames)  # exactly one crop
    crops = x[None].clone().requires_grad_(True)
    with _recording(_temporal_attentions(model)) as maps:
        logit = model.forward_features(crops)[0, 2]
    (grad,) = torch.autograd.grad(logit, maps)
    tokens = (grad * maps[0]).clamp(min=0).mean(dim=1)[0, 0, 1:]  # (T',) the [CLS] row, one layer
    expected = tokens.repeat_interleave(4)[: model.input_frames]
    torch.testing.assert_close(tag_attention(model, x, [2], normalise=False)[0], expected.detach())


# ---- 3. invariants --------------------------------------------------------------------------------------------
def test_relevance_comes_from_the_tag_gradient_not_the_raw_attention() -> None:
    model = tiny_cnnsa()
    with torch.no_grad():
        model.classifier.weight[1] = 0.0  # tag 1's logit no longer depends on the input
    raw = tag_attention(model, features(model, 70), [0, 1], normalise=False)
    assert raw[0].abs().sum() > 0
    assert torch.equal(raw[1], torch.zeros_like(raw[1]))
    normalised = tag_attention(model, features(model, 70), [1])  # an all-zero row stays zero, not NaN
    assert torch.equal(normalised, torch.zeros_like(normalised))


def test_model_mode_is_restored_and_a_no_grad_caller_still_works() -> None:
    model = tiny_cnnsa().train()
    with torch.no_grad():
        relevance = tag_attention(model, features(model, 40), [0])
    assert model.training and torch.isfinite(relevance).all() and relevance.max() == 1


def test_bad_inputs_are_rejected_with_what_to_do() -> None:
    model = tiny_cnnsa()
    with pytest.raises(ValueError, match=r"indices in \[0, 4\)"):
        tag_attention(model, features(model, 40), [4])
    with pytest.raises(ValueError, match="n_mels=96"):
        tag_attention(model, torch.zeros(40, 96), [0])
    cnn = TaggingModel(ShortChunkCNN(output_dim=8, channels=(4, 4)), 3).eval()
    with pytest.raises(ValueError, match=r"'short_chunk_cnn'.*cnnsa.*music_tagging_transformer.*spectnt"):
        tag_attention(cnn, torch.zeros(cnn.mel.n_mels, 40), [0])


# ---- 4. end to end on a trained run ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def audio_file(tiny_corpus: Path) -> Path:
    return sorted((tiny_corpus / "audio").rglob("*.ogg"))[0]


@pytest.fixture(scope="module")
def trained(tiny_tagging_run: Path):
    from retrieval.runs import load_run

    return load_run(tiny_tagging_run, task="tagging")


def test_a_trained_taggers_rows_differ_between_tags(trained, audio_file: Path) -> None:
    from retrieval.audio import features_of_file

    x = torch.from_numpy(features_of_file(audio_file, trained.model.mel))
    relevance = tag_attention(trained.model, x, [0, 1, 2])
    assert relevance.shape == (3, x.shape[1])
    assert not torch.allclose(relevance[0], relevance[1]) and not torch.allclose(relevance[1], relevance[2])


def test_explain_writes_a_png_per_tag_and_an_overview_for_the_top_tags(tiny_tagging_run: Path, trained,
                                                                        audio_file: Path, tmp_path: Path) -> None:
    from retrieval.audio import features_of_file

    result = explain(audio_file, tiny_tagging_run, tmp_path / "maps", top_k=3)
    assert [p.name for p in result.paths][-1] == f"{audio_file.stem}__overview.png"
    assert len(result.paths) == 4 and len(result.lines()) == 4
    for path in result.paths:
        assert path.parent == tmp_path / "maps" and path.read_bytes()[:8] == PNG_MAGIC
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == sorted(p.name for p in result.paths)

    # Reference: a plain loop over consecutive zero-padded crops, sigmoids averaged, top 3.
    model, length = trained.model, trained.model.input_frames
    x = features_of_file(audio_file, model.mel)
    x = np.pad(x, ((0, 0), (0, -x.shape[1] % length)))
    with torch.no_grad():
        p = np.mean([torch.sigmoid(model.forward_features(torch.from_numpy(x[None, :, s:s + length])))[0].numpy()
                     for s in range(0, x.shape[1], length)], axis=0)
    top = np.argsort(-p)[:3]
    assert list(result.probabilities) == [trained.vocabulary.tags[i] for i in top]
    np.testing.assert_allclose(list(result.probabilities.values()), p[top], rtol=1e-5)
    tag = trained.vocabulary.tags[top[0]]
    assert result.figures[tag].name.startswith(f"{audio_file.stem}__")


def test_explain_named_tags_and_unknown_tags(tiny_tagging_run: Path, trained, audio_file: Path,
                                             tmp_path: Path) -> None:
    tag = trained.vocabulary.tags[-1]
    result = explain(audio_file, tiny_tagging_run, tmp_path, tags=[tag])
    assert list(result.probabilities) == [tag] and result.figures[tag].read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(ValueError, match=rf"unknown tag.*{tag[:-1]}x.*close.*{tag}"):
        explain(audio_file, tiny_tagging_run, tmp_path, tags=[tag[:-1] + "x"])


def test_explain_refuses_a_run_without_attention(tiny_tagging_run: Path, trained, audio_file: Path,
                                                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import retrieval.runs as runs

    cnn = TaggingModel(ShortChunkCNN(output_dim=8, channels=(4, 4)), len(trained.vocabulary.tags)).eval()
    monkeypatch.setattr(runs, "load_run", lambda run, task=None: replace(trained, model=cnn))
    with pytest.raises(ValueError, match="short_chunk_cnn.*has no attention over time"):
        explain(audio_file, tiny_tagging_run, tmp_path / "none")
    assert not (tmp_path / "none").exists()


def test_cli_explain_writes_heat_maps(tiny_tagging_run, tiny_corpus, tmp_path, capsys):
    from retrieval.cli import main

    audio = sorted(tiny_corpus.glob("audio/**/*.ogg"))[0]
    assert main(["--quiet", "explain", str(audio), "--model", str(tiny_tagging_run), "--out", str(tmp_path),
                 "--top-k", "2"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("wrote") == 3 and "overview" in printed
    assert len(list(tmp_path.glob("*.png"))) == 3
