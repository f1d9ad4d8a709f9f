"""Pretrained retrievers: musicnn's front end, tags of a file, the weight cache, and index → search / similar."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import retrieval
from retrieval.cli import main
from retrieval.errors import RetrievalError
from retrieval.pretrained.musicnn import N_MELS, PATCH_FRAMES, SAMPLE_RATE
from retrieval.pretrained.retriever import PretrainedRetriever
from retrieval.pretrained.tagger import PretrainedTagger, log_mel_patches


def _tone(path: Path, pitch: float, seconds: float = 7.0, rate: int = 44100) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    wave = sum(np.sin(2 * np.pi * pitch * k * t) / k for k in (1, 2, 3, 4)) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    stereo = np.stack([wave, 0.8 * wave], axis=1) * (0.05 / np.abs(wave).max())
    sf.write(path, stereo, rate)
    return path


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One $RETRIEVAL_HOME for the module: the converted weights and the sentence model are exported once."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(autouse=True)
def _home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRIEVAL_HOME", str(home))


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("music")
    for i, pitch in enumerate((110.0, 220.0, 440.0, 880.0)):
        _tone(folder / f"tone{i}.{'wav' if i % 2 else 'flac'}", pitch)
    return folder


def test_front_end_is_musicnns_log_mel_in_3_s_patches() -> None:
    audio = np.random.default_rng(0).normal(0, 0.05, 10 * SAMPLE_RATE).astype(np.float32)
    patches = log_mel_patches(audio)
    frames = 10 * SAMPLE_RATE // 256 + 1  # a centred STFT
    assert patches.shape == (frames // PATCH_FRAMES, N_MELS, PATCH_FRAMES) == (3, 96, 187)
    import torchaudio  # musicnn's mel, written out: librosa's defaults (Slaney scale and norm, zero padding)

    mel = torchaudio.transforms.MelSpectrogram(SAMPLE_RATE, n_fft=512, hop_length=256, n_mels=96, power=2.0,
                                               pad_mode="constant", mel_scale="slaney", norm="slaney")
    power = mel(torch.from_numpy(audio)).numpy().astype(np.float16).astype(np.float32)
    np.testing.assert_allclose(patches[1], np.log10(1 + 10000 * power[:, PATCH_FRAMES:2 * PATCH_FRAMES]), rtol=1e-6)
    assert log_mel_patches(audio[:SAMPLE_RATE]).shape == (1, 96, 187)  # a 1-s clip: one zero-padded patch


def test_tags_of_a_file_are_the_mean_over_its_patches(music: Path, home: Path) -> None:
    retriever = retrieval.load("musicnn-mtt")
    assert isinstance(retriever, PretrainedRetriever)
    tags = retriever.tag(music / "tone2.flac", k=50)
    assert len(tags) == 50 and sorted(t for t, _ in tags) == sorted(retriever.labels)
    assert [s for _, s in tags] == sorted((s for _, s in tags), reverse=True)
    from retrieval.audio import load_audio

    probabilities, _ = retriever.tagger.embed_patches(log_mel_patches(load_audio(music / "tone2.flac", SAMPLE_RATE)))
    mean = dict(zip(retriever.labels, probabilities.mean(axis=0).tolist(), strict=True))
    assert dict(tags) == pytest.approx(mean, abs=1e-6)
    # the converted weights were cached, and are read back (weights_only) by the next tagger
    cached = list((home / "models" / "musicnn").glob("MTT_musicnn-*.pt"))
    assert len(cached) == 1
    cached[0].write_bytes(b"damaged")
    again = PretrainedTagger("musicnn-mtt")  # a damaged cache is converted again, not trusted
    np.testing.assert_allclose(again.embed_file(music / "tone2.flac")[0], probabilities.mean(axis=0), atol=1e-6)
    assert torch.load(cached[0], weights_only=True).keys() == again.model.state_dict().keys()


def test_text_weights_pick_the_named_tag() -> None:
    retriever = PretrainedRetriever("musicnn-mtt")
    weights = retriever.tag_weights(["piano", "a choir singing", "no vocals"])
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)
    best = [retriever.labels[i] for i in weights.argmax(axis=1)]
    assert best[0] == "piano" and best[1] in ("choir", "choral") and best[2] in ("no vocals", "no vocal", "no voice")
    with pytest.raises(RetrievalError, match="no index"):
        retriever.search("piano")


def test_index_search_and_similar(music: Path, tmp_path: Path, capsys) -> None:
    assert main(["-q", "index", str(music), "--model", "musicnn-msd", "--out", str(tmp_path / "idx")]) == 0
    retriever = retrieval.load(tmp_path / "idx")
    assert isinstance(retriever, PretrainedRetriever) and len(retriever.index) == 4
    result = retriever.search("mellow acoustic", k=4)
    # score = Σ_j w_j p_j, computed here from the saved probabilities
    saved = np.load(tmp_path / "idx" / "tags.npz")
    weights = retriever.tag_weights("mellow acoustic")[0]
    expected = dict(zip(saved["ids"].tolist(), (saved["probabilities"] @ weights).tolist(), strict=True))
    assert [hit.track_id for hit in result] == sorted(expected, key=lambda i: -expected[i])
    assert [hit.score for hit in result] == pytest.approx([expected[hit.track_id] for hit in result], rel=1e-5)
    assert {t for t, _ in result.matched_tags[:2]} == {"Mellow", "acoustic"}
    similar = retriever.similar("tone1.wav", k=3)
    assert len(similar) == 3 and "tone1.wav" not in [hit.track_id for hit in similar]
    assert retriever.search_by_audio(music / "tone1.wav", k=1)[0].track_id == "tone1.wav"
    features = retriever.embed_audio(music / "tone1.wav")
    np.testing.assert_allclose(features[0] / np.linalg.norm(features[0]), retriever.index.vectors_of(["tone1.wav"])[0],
                               atol=1e-5)
    assert retriever.embed_text("mellow acoustic").shape == (1, 50)
    capsys.readouterr()
    assert main(["search", "mellow acoustic", "--index", str(tmp_path / "idx"), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["hits"]) == 4
    assert main(["models", "--json"]) == 0
    names = [row["name"] for row in json.loads(capsys.readouterr().out)["models"]]
    assert names == ["musicnn-mtt", "musicnn-msd", "vgg-mtt", "vgg-msd"]
    assert main(["tag", str(music / "tone0.flac"), "--model", "vgg-mtt", "-k", "3", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["tags"]) == 3
