"""Taggers on frozen features: networks, standardisation, training, metrics, save / load, frozen features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from retrieval.errors import DataError
from retrieval.heads.probe import (
    NETWORKS,
    Standardize,
    Tagger,
    TrainSettings,
    tagging_metrics,
    train_tagger,
    warmup_cosine,
)

FAST = TrainSettings(lr=5e-2, batch_size=32, epochs=30, patience=10, seed=0)


def separable(n: int, d: int = 6, n_tags: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Tag j is on iff w_j · x > 0: linearly separable, features at unequal scales and offsets."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = x @ np.random.default_rng(99).standard_normal((d, n_tags)) > 0
    return (x * np.arange(1, d + 1) * 10 + 50).astype(np.float32), y


# ---- 1. shapes --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(NETWORKS))
def test_every_network_maps_features_to_tag_logits(kind: str) -> None:
    tagger = Tagger(kind, {"in_dim": 5, "out_dim": 3}, torch.zeros(5), torch.ones(5)).eval()
    assert tagger(torch.randn(4, 5)).shape == (4, 3)
    probabilities = tagger.predict(np.zeros((7, 5), dtype=np.float32))
    assert probabilities.shape == (7, 3) and probabilities.dtype == np.float32
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    with pytest.raises(ValueError, match=r"\(batch, 5\)"):
        tagger(torch.randn(4, 6))


def test_unknown_network_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="linear, mlp, stacked_mlp"):
        Tagger("svm", {"in_dim": 2, "out_dim": 1}, torch.zeros(2), torch.ones(2))


# ---- 2. against a reference -------------------------------------------------------------------------------------
def test_standardize_matches_numpy_and_keeps_constant_columns_finite() -> None:
    x = np.random.default_rng(0).normal(3.0, 2.0, (50, 4)).astype(np.float32)
    x[:, 2] = 7.0  # constant column: σ = 0 must not divide by zero
    z = Standardize.fit(x)(torch.from_numpy(x)).numpy()
    expected = (x - x.mean(0)) / np.where(x.std(0) < 1e-8, 1.0, x.std(0))
    np.testing.assert_allclose(z, expected, atol=1e-5)
    assert np.isfinite(z).all() and (z[:, 2] == 0).all()


def test_tagging_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    labels = rng.random((40, 4)) < 0.3
    labels[0] = True  # every column has a positive
    labels[1] = False  # ... and a negative
    scores = np.clip(labels * 0.3 + rng.random((40, 4)) * 0.7, 0, 1)
    m = tagging_metrics(scores, labels, ["a", "b", "c", "d"], threshold=0.5)
    assert m["pr_auc"] == pytest.approx(average_precision_score(labels, scores, average="macro"))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(labels, scores, average="macro"))
    assert m["f1"] == pytest.approx(f1_score(labels, scores >= 0.5, average="macro", zero_division=0))
    assert m["micro_f1"] == pytest.approx(f1_score(labels, scores >= 0.5, average="micro"))
    assert m["per_tag"]["c"]["ap"] == pytest.approx(average_precision_score(labels[:, 2], scores[:, 2]))


def test_tags_without_positives_are_excluded_not_scored_zero() -> None:
    labels = np.array([[1, 0], [0, 0], [1, 0]], dtype=bool)
    m = tagging_metrics(np.array([[0.9, 0.1], [0.2, 0.3], [0.8, 0.2]]), labels, ["x", "never"])
    assert m["excluded"] == ["never"] and m["n_tags"] == 1 and m["pr_auc"] == 1.0


def test_warmup_then_cosine_to_zero() -> None:
    values = [warmup_cosine(step, 4, 20) for step in range(21)]
    assert values[0] == 0.0 and values[4] == 1.0 and values[20] == pytest.approx(0.0)
    assert all(a <= b for a, b in zip(values[:4], values[1:5], strict=True))  # rising during warm-up
    assert all(a >= b for a, b in zip(values[4:], values[5:], strict=False))  # then falling


# ---- 3. invariants ----------------------------------------------------------------------------------------------
def test_standardisation_is_baked_in() -> None:
    x, y = separable(80)
    tagger = train_tagger(x[:60], y[:60], x[60:], y[60:], kind="linear", settings=FAST).eval()
    raw = torch.from_numpy(x)
    by_hand = (raw - torch.from_numpy(x[:60].mean(0))) / torch.from_numpy(x[:60].std(0))
    with torch.no_grad():
        torch.testing.assert_close(tagger(raw), tagger.network(by_hand), atol=1e-4, rtol=1e-4)


def test_save_load_round_trip_gives_identical_outputs(tmp_path: Path) -> None:
    x, y = separable(80)
    tagger = train_tagger(x[:60], y[:60], x[60:], y[60:], kind="mlp", tags=["a", "b", "c"], settings=FAST,
                          hidden_dim=16)
    path = tagger.save(tmp_path / "head.pt")
    again = Tagger.load(path)
    np.testing.assert_array_equal(again.predict(x), tagger.predict(x))
    assert again.tags == ["a", "b", "c"] and again.info["training"]["best_epoch"] >= 1
    assert [p.name for p in tmp_path.iterdir()] == ["head.pt"]  # no temporary file left behind


def test_training_is_deterministic_for_a_seed_and_leaves_global_rng_alone() -> None:
    x, y = separable(80)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = train_tagger(x[:60], y[:60], x[60:], y[60:], kind="stacked_mlp", settings=FAST, n_layers=1, hidden_dim=8)
    assert torch.equal(torch.get_rng_state(), before)
    b = train_tagger(x[:60], y[:60], x[60:], y[60:], kind="stacked_mlp", settings=FAST, n_layers=1, hidden_dim=8)
    np.testing.assert_array_equal(a.predict(x), b.predict(x))


def test_load_names_a_missing_or_foreign_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="missing.pt"):
        Tagger.load(tmp_path / "missing.pt")
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(DataError, match=r"other\.pt.*not a saved tagger"):
        Tagger.load(tmp_path / "other.pt")


# ---- 4. end to end ----------------------------------------------------------------------------------------------
def test_linear_probe_learns_a_linearly_separable_problem() -> None:
    x, y = separable(400, seed=2)
    tagger = train_tagger(x[:250], y[:250], x[250:320], y[250:320], kind="linear", settings=FAST)
    m = tagging_metrics(tagger.predict(x[320:]), y[320:])
    assert m["roc_auc"] > 0.97 and m["pr_auc"] > 0.95 and m["f1"] > 0.85


def test_model_selection_keeps_the_best_validation_epoch() -> None:
    x, y = separable(200, seed=3)
    tagger = train_tagger(x[:120], y[:120], x[120:], y[120:], kind="linear", settings=FAST)
    info = tagger.info["training"]
    best = max(record["valid_pr_auc"] for record in info["history"])
    assert info["best_valid_pr_auc"] == best
    assert tagging_metrics(tagger.predict(x[120:]), y[120:])["pr_auc"] == pytest.approx(best)


def test_frozen_features_and_train_head_on_a_run(tiny_run: Path, tmp_path: Path) -> None:
    from retrieval.heads.features import frozen_features, load_frozen_feature_kinds
    from retrieval.heads.probe import train_head
    from retrieval.runs import load_run

    run = load_run(tiny_run)
    dims = {"shared": run.model.output_dim, "audio": run.model.audio.output_dim,
            "listening": run.model.listening_dim}
    features = load_frozen_feature_kinds(tiny_run, list(dims), ("train", "test"))
    for kind, dim in dims.items():
        ids, x, labels = features[kind]["train"]
        assert x.shape == (len(ids), dim) and x.dtype == np.float32 and np.isfinite(x).all()
        assert labels.shape == (len(ids), len(run.vocabulary.tags)) and labels.dtype == bool
        assert ids == features["shared"]["train"].ids  # the same tracks for every kind
    # The shared space is unit norm; one split alone gives the same vectors as several at once.
    np.testing.assert_allclose(np.linalg.norm(features["shared"]["test"].X, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(frozen_features(tiny_run, "test", "listening").X, features["listening"]["test"].X)

    result = train_head(tiny_run, "genre", tmp_path / "genre.pt", features="shared",
                        settings=TrainSettings(epochs=3, batch_size=16))
    head = Tagger.load(tmp_path / "genre.pt")
    assert head.tags == result["tags"] and head.info["task"] == "genre"
    assert set(result["test"]) >= {"pr_auc", "roc_auc", "per_tag"}
