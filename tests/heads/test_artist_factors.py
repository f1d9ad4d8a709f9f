"""Artist group factors: features, clustering → targets, patch networks, and a tiny end-to-end comparison."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import sparse

from retrieval.audio import MelConfig
from retrieval.errors import ConfigError
from retrieval.heads.artist_factors import (
    AudioStatistics,
    artist_group_targets,
    artist_means,
    chroma_filterbank,
    cluster_artists,
    tag_profiles,
)
from retrieval.heads.artist_groups import load_artist_factor_config, run_artist_factor_comparison
from retrieval.heads.artist_groups.inputs import NO_GENRE, demo_top_genres
from retrieval.heads.artist_groups.networks import build_patch_classifier
from retrieval.heads.artist_groups.training import classification_scores, track_outputs, train_patch_classifier

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "artist_factors"


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _toy_factors(seed: int = 0, n_artists: int = 30, n_tracks: int = 120):
    rng = np.random.default_rng(seed)
    artists = np.array([f"artist{i:02d}" for i in range(n_artists)])
    track_artists = rng.choice(artists, size=n_tracks)
    track_artists[:n_artists] = artists  # every artist has a track
    factors = {
        "audio": pd.DataFrame(rng.normal(size=(n_artists, 5)), index=artists),
        "tags": pd.DataFrame(rng.random(size=(n_artists, 7)), index=artists),
    }
    return track_artists, factors


# 1. Shapes and dtypes --------------------------------------------------------------------------------------


def test_audio_statistics_shape():
    mel = MelConfig(n_mels=32)
    stats = AudioStatistics(mel, n_mfcc=13, chroma_n_fft=2048)
    out = stats(torch.randn(mel.sample_rate))
    assert out.shape == (13 + 12,) == (stats.dim,)
    assert torch.isfinite(out).all()
    assert stats(torch.randn(600)).shape == (stats.dim,)  # shorter than one chroma frame: padded


def test_patch_classifier_shapes():
    model = build_patch_classifier(MelConfig(n_mels=16), {"a": 3, "b": 5}, (4, 8), 6, 10, seed=0).eval()
    logits = model(torch.randn(2, 16, 10))
    assert {k: v.shape for k, v in logits.items()} == {"a": (2, 3), "b": (2, 5)}
    feats, probs = track_outputs(model, torch.randn(3, 4, 16, 10).half(), batch_size=5)
    assert feats.shape == (3, 6)
    assert probs["b"].shape == (3, 5)
    torch.testing.assert_close(probs["a"].sum(dim=1), torch.ones(3))


# 2. Against a reference ----------------------------------------------------------------------------------


def test_artist_means_match_groupby():
    rng = np.random.default_rng(1)
    artists = rng.choice(["x", "y", "z"], size=40)
    values = rng.normal(size=(40, 3))
    expected = pd.DataFrame(values).groupby(artists).mean()
    np.testing.assert_allclose(artist_means(artists, values).to_numpy(), expected.to_numpy())


def test_artist_means_without_valid_rows_get_the_global_mean():
    values = np.array([[1.0], [3.0], [100.0]])
    out = artist_means(["a", "a", "b"], values, valid=np.array([True, True, False]))
    assert out.loc["a", 0] == 2.0
    assert out.loc["b", 0] == 2.0  # b has no valid track: the mean of the valid ones


def test_tag_profiles_are_fractions():
    labels = sparse.csr_matrix(np.array([[1, 0], [1, 1], [0, 1]]))
    profiles = tag_profiles(["a", "a", "b"], labels, ["rock", "jazz"])
    assert profiles.loc["a"].tolist() == [1.0, 0.5]
    assert profiles.loc["b"].tolist() == [0.0, 1.0]


def test_chroma_of_a_sine_peaks_at_its_pitch_class():
    mel = MelConfig(n_mels=32)
    t = torch.arange(mel.sample_rate) / mel.sample_rate
    stats = AudioStatistics(mel, n_mfcc=13)
    for hz, pitch_class in ((440.0, 9), (261.63, 0)):  # A4, C4
        chroma = stats(torch.sin(2 * torch.pi * hz * t))[13:]
        assert int(chroma.argmax()) == pitch_class
    assert int(chroma_filterbank(4096, 22050).sum()) == int((np.arange(2049) * 22050 / 4096 >= 55).sum())


def test_scores_match_sklearn():
    from sklearn.metrics import accuracy_score, f1_score

    rng = np.random.default_rng(2)
    true, pred = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    scores = classification_scores(true, pred)
    assert scores["accuracy"] == pytest.approx(accuracy_score(true, pred))
    assert scores["macro_f1"] == pytest.approx(f1_score(true, pred, average="macro"))


# 3. Invariants -------------------------------------------------------------------------------------------


def test_every_track_gets_exactly_one_group_per_factor_within_k():
    track_artists, factors = _toy_factors()
    targets = artist_group_targets(track_artists, factors, n_groups={"audio": 4, "tags": 6}, seed=0)
    assert set(targets) == {"audio", "tags"}
    for name, k in (("audio", 4), ("tags", 6)):
        y = targets[name]
        assert y.shape == (len(track_artists),) and y.dtype == np.int64
        assert y.min() >= 0 and y.max() < k
        assert len(np.unique(y)) == k  # k-means uses every group here
        # One group per artist: tracks of the same artist share it.
        per_artist = pd.Series(y).groupby(track_artists).nunique()
        assert (per_artist == 1).all()


def test_groups_are_deterministic_for_a_seed():
    track_artists, factors = _toy_factors()
    first = artist_group_targets(track_artists, factors, 5, seed=3)
    again = artist_group_targets(track_artists, factors, 5, seed=3)
    for name in factors:
        np.testing.assert_array_equal(first[name], again[name])


def test_held_out_artists_do_not_shape_the_groups():
    track_artists, factors = _toy_factors()
    fit = [f"artist{i:02d}" for i in range(20)]
    base = cluster_artists(factors["audio"], 3, seed=0, fit_artists=fit)
    moved = factors["audio"].copy()
    moved.iloc[25:] += 50.0  # change only held-out artists
    changed = cluster_artists(moved, 3, seed=0, fit_artists=fit)
    pd.testing.assert_series_equal(base.loc[fit], changed.loc[fit])
    assert base.between(0, 2).all() and changed.between(0, 2).all()


def test_bad_k_and_unknown_artist_are_named():
    track_artists, factors = _toy_factors(n_artists=6, n_tracks=12)
    with pytest.raises(ConfigError, match="n_groups = 7"):
        artist_group_targets(track_artists, factors, 7, seed=0)
    with pytest.raises(KeyError, match="'audio'.*'nobody'"):
        artist_group_targets([*track_artists, "nobody"], factors, 2, seed=0)


def test_demo_top_genre_rule():
    tags = pd.DataFrame(
        {
            "song_id": ["s1", "s1", "s1", "s2", "s3", "s4", "s4"],
            "cleaned_tag": ["irish folk", "celtic", "baroque", "folk", "mass", "medieval", "renaissance"],
            "score": [60, 60, 100, 90, 40, 80, 80],
        }
    )
    genres, names = demo_top_genres(tags, ["s1", "s2", "s3", "s4"], min_score=50)
    assert names[genres[0]] == "celtic"  # two celtic votes (120) beat baroque (100)
    assert genres[1] == NO_GENRE  # "folk" does not vote
    assert genres[2] == NO_GENRE  # below the score threshold
    assert names[genres[3]] == "medieval"  # a tie goes to the earlier top genre


def test_training_lowers_the_loss_and_is_seeded():
    def run():
        model = build_patch_classifier(MelConfig(n_mels=8), {"g": 2}, (4,), 4, 6, seed=0)
        gen = torch.Generator().manual_seed(0)
        patches = torch.randn(16, 2, 8, 6, generator=gen)
        y = torch.arange(16) % 2
        patches[y == 1] += 2.0  # separable classes
        return train_patch_classifier(model, patches, {"g": y}, torch.arange(16), epochs=5, batch_size=8, lr=1e-2,
                                      weight_decay=0.0, generator=torch.Generator().manual_seed(1))

    losses = run()
    assert losses[-1] < losses[0]
    assert run() == losses


def test_config_validation():
    assert load_artist_factor_config(CONFIGS / "demo.yaml").n_groups == 16
    assert load_artist_factor_config(None, ["epochs=2"]).epochs == 2
    with pytest.raises(ConfigError, match="factors"):
        load_artist_factor_config(None, ["factors=[audio, lyrics]"])
    with pytest.raises(ConfigError, match="unknown config key 'epoch'"):
        load_artist_factor_config(None, ["epoch=2"])


# 4. End to end -------------------------------------------------------------------------------------------


def test_comparison_runs_on_a_toy_corpus(tmp_path):
    from retrieval.data.demo import build_demo_corpus

    corpus = tmp_path / "corpus"
    build_demo_corpus(corpus, n_tracks=48, seconds=5, workers=1, progress=False)
    result = run_artist_factor_comparison(corpus, tmp_path / "out", CONFIGS / "tiny.yaml")
    schemes = [row["scheme"] for row in result["rows"]]
    assert schemes == ["direct", *["single-task transfer"] * 3, "multi-task transfer", "multi-task learning"]
    for row in result["rows"]:
        assert 0.0 <= row["accuracy"] <= 1.0 and 0.0 <= row["macro_f1"] <= 1.0
    saved = json.loads((tmp_path / "out" / "artist_factors.json").read_text())
    assert saved["rows"] == json.loads(json.dumps(result["rows"]))
    assert "| multi-task learning |" in (tmp_path / "out" / "artist_factors.md").read_text()
