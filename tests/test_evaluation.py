"""Retrieval metrics against scikit-learn and by hand; exclusions; summaries; the category chart."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse
from sklearn.metrics import average_precision_score, roc_auc_score

from retrieval import evaluation
from retrieval.evaluation import (
    TagMetrics,
    cosine_scores,
    format_table,
    plot_category_map,
    retrieval_metrics,
    seen_unseen,
    summarize,
)


def sklearn_columns(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ap = [average_precision_score(labels[:, j], scores[:, j]) for j in range(scores.shape[1])]
    auc = [roc_auc_score(labels[:, j], scores[:, j]) for j in range(scores.shape[1])]
    return np.array(ap), np.array(auc)


def random_problem(seed: int, n_tracks: int = 50, n_tags: int = 7, ties: bool = False):
    rng = np.random.default_rng(seed)
    labels = rng.random((n_tracks, n_tags)) < rng.uniform(0.05, 0.5, n_tags)
    labels[0] = True  # every tag has a positive ...
    labels[1] = False  # ... and a negative
    scores = rng.normal(size=(n_tracks, n_tags)) + labels  # informative but imperfect
    if ties:
        scores = np.round(scores)  # a handful of distinct values: many ties, across labels too
    return scores, labels


# --- 2. against a reference --------------------------------------------------------------------------


def test_hand_made_example() -> None:
    scores = np.array([[0.9, 0.1], [0.8, 0.7], [0.1, 0.2], [0.5, 0.6]])
    labels = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], dtype=bool)
    m = retrieval_metrics(scores, labels, k=2)
    # Tag 0 ranking: t0 (+), t1, t3, t2 (+): AP = (1/1 + 2/4) / 2; AUC: 0.9 beats both, 0.1 beats none.
    assert m.ap[0] == pytest.approx(0.75)
    assert m.roc_auc[0] == pytest.approx(0.5)
    assert m.p_at_k[0] == pytest.approx(0.5)
    # Tag 1 ranking: t1 (+), t3 (+), t2, t0: perfect.
    assert m.ap[1] == m.roc_auc[1] == m.p_at_k[1] == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(10))
def test_matches_sklearn_without_ties(seed: int) -> None:
    scores, labels = random_problem(seed)
    ap, auc = sklearn_columns(scores, labels)
    m = retrieval_metrics(scores, labels)
    assert m.valid.all()
    np.testing.assert_allclose(m.ap, ap, rtol=0, atol=1e-12)
    np.testing.assert_allclose(m.roc_auc, auc, rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_matches_sklearn_with_ties(seed: int) -> None:
    scores, labels = random_problem(seed, ties=True)
    assert len(np.unique(scores)) < 10
    ap, auc = sklearn_columns(scores, labels)
    m = retrieval_metrics(scores, labels)
    np.testing.assert_allclose(m.roc_auc, auc, rtol=0, atol=1e-12)
    np.testing.assert_allclose(m.ap, ap, rtol=0, atol=1e-12)


def test_all_tied_scores_give_chance_auc_and_base_rate_ap() -> None:
    labels = np.array([[1], [0], [0], [1], [0]], dtype=bool)
    m = retrieval_metrics(np.zeros((5, 1)), labels, k=2)
    assert m.roc_auc[0] == pytest.approx(0.5)
    assert m.ap[0] == pytest.approx(2 / 5)
    assert m.p_at_k[0] == pytest.approx(0.5)  # ties broken by row order: rows 0 (+) and 1 (−)


def test_precision_at_k_by_hand() -> None:
    scores = np.array([[5.0], [4.0], [3.0], [2.0], [1.0], [0.0]])
    labels = np.array([[1], [0], [1], [1], [0], [0]], dtype=bool)
    for k, expected in [(1, 1.0), (2, 0.5), (3, 2 / 3), (4, 0.75), (6, 0.5)]:
        assert retrieval_metrics(scores, labels, k=k).p_at_k[0] == pytest.approx(expected)


def test_integer_scores_and_sparse_labels() -> None:
    scores, labels = random_problem(0, ties=True)
    dense = retrieval_metrics(scores, labels)
    # Unsigned scores must not wrap around when negated for the descending sort.
    shifted = (scores - scores.min()).astype(np.uint8)
    sparse = retrieval_metrics(shifted, scipy.sparse.csr_matrix(labels))
    for name in ("ap", "roc_auc", "p_at_k"):
        np.testing.assert_allclose(getattr(sparse, name), getattr(dense, name), atol=1e-12)


def test_chunking_does_not_change_results(monkeypatch: pytest.MonkeyPatch) -> None:
    scores, labels = random_problem(1, n_tags=10)
    whole = retrieval_metrics(scores, labels)
    monkeypatch.setattr(evaluation, "COLUMNS_PER_CHUNK", 3)
    chunked = retrieval_metrics(scores, labels)
    np.testing.assert_array_equal(chunked.ap, whole.ap)
    np.testing.assert_array_equal(chunked.roc_auc, whole.roc_auc)


@pytest.mark.parametrize(("n_tracks", "n_positives"), [(7, 1), (7, 3), (12, 11), (30, 4)])
def test_chance_map_is_the_mean_ap_of_random_rankings(chance_map, n_tracks: int, n_positives: int) -> None:
    # The end-to-end tests compare trained figures with this chance level: check it against 20 000 random rankings.
    draws = 20_000
    scores = np.random.default_rng(n_tracks + n_positives).random((n_tracks, draws))
    labels = np.zeros((n_tracks, draws), dtype=bool)
    labels[:n_positives] = True
    simulated = retrieval_metrics(scores, labels, k=1).ap.mean()
    summary = {"n_tracks": n_tracks, "per_tag": {"tag": {"n_positives": n_positives}}}
    assert chance_map(summary) == pytest.approx(simulated, abs=0.01)
    assert chance_map(summary) >= n_positives / n_tracks  # never below the positive rate


def test_cosine_scores() -> None:
    rng = np.random.default_rng(0)
    tracks, tags = rng.normal(size=(4, 3)), rng.normal(size=(2, 3))
    tracks[3] = 0.0
    scores = cosine_scores(tracks, tags)
    assert scores.shape == (4, 2)
    expected = (
        tracks[:3] @ tags.T / np.outer(np.linalg.norm(tracks[:3], axis=1), np.linalg.norm(tags, axis=1))
    )
    np.testing.assert_allclose(scores[:3], expected, atol=1e-12)
    np.testing.assert_array_equal(scores[3], 0.0)
    np.testing.assert_allclose(np.diag(cosine_scores(tags, tags)), 1.0)


# --- 3. excluded tags, bad input ---------------------------------------------------------------------


def test_tags_without_positive_or_negative_are_excluded_not_zero() -> None:
    scores, labels = random_problem(2, n_tags=4)
    labels[:, 1] = False  # no positive
    labels[:, 3] = True  # no negative
    m = retrieval_metrics(scores, labels)
    assert m.valid.tolist() == [True, False, True, False]
    for values in (m.ap, m.roc_auc, m.p_at_k):
        assert np.isnan(values[[1, 3]]).all() and not np.isnan(values[[0, 2]]).any()
    assert m.n_positives[[1, 3]].tolist() == [0, len(labels)]


def test_bad_inputs_raise() -> None:
    scores, labels = random_problem(0)
    with pytest.raises(ValueError, match="shape"):
        retrieval_metrics(scores, labels[:, :3])
    with pytest.raises(ValueError, match="k must be"):
        retrieval_metrics(scores, labels, k=len(scores) + 1)
    scores[4, 2] = np.nan
    with pytest.raises(ValueError, match=r"NaN .*\[2\]"):
        retrieval_metrics(scores, labels)
    with pytest.raises(ValueError, match="same d"):
        cosine_scores(np.ones((2, 3)), np.ones((2, 4)))


# --- summaries, table, chart -------------------------------------------------------------------------


def example_metrics() -> TagMetrics:
    return TagMetrics(
        ap=np.array([0.2, 0.4, np.nan, 0.9]),
        roc_auc=np.array([0.6, 0.8, np.nan, 1.0]),
        p_at_k=np.array([0.1, 0.3, np.nan, 0.5]),
        valid=np.array([True, True, False, True]),
        n_positives=np.array([3, 4, 0, 5]),
        k=10,
    )


TAGS = ["rock", "jazz", "polka", "happy"]
CATEGORIES = {"rock": "genre", "jazz": "genre", "polka": "genre", "happy": "mood", "unused": "decade"}


def test_summarize_overall_and_per_category() -> None:
    summary = summarize(example_metrics(), TAGS, CATEGORIES)
    assert summary["map"] == pytest.approx(0.5)
    assert summary["p_at_10"] == pytest.approx(0.3)
    assert summary["roc_auc"] == pytest.approx(0.8)
    assert (summary["n_tags"], summary["n_excluded"], summary["excluded"]) == (3, 1, ["polka"])
    assert summary["per_category"]["genre"] == {"map": pytest.approx(0.3), "n_tags": 2}
    assert summary["per_category"]["mood"] == {"map": pytest.approx(0.9), "n_tags": 1}
    assert set(summary["per_tag"]) == {"rock", "jazz", "happy"}
    assert summary["per_tag"]["jazz"]["p_at_10"] == pytest.approx(0.3)
    json.dumps(summary, allow_nan=False)  # JSON-ready: no NaN, no numpy scalars


def test_summarize_rejects_missing_category_and_wrong_length() -> None:
    with pytest.raises(ValueError, match="no category"):
        summarize(example_metrics(), TAGS, {"rock": "genre"})
    with pytest.raises(ValueError, match="tag names"):
        summarize(example_metrics(), TAGS[:3], CATEGORIES)


def test_format_table_lists_overall_and_categories() -> None:
    table = format_table(summarize(example_metrics(), TAGS, CATEGORIES))
    lines = table.splitlines()
    assert "P@10" in lines[0]
    assert lines[1].split() == ["overall", "3", "0.5000", "0.3000", "0.8000"]
    assert any(line.split() == ["genre", "2", "0.3000"] for line in lines)
    assert "polka" in lines[-1]


def test_plot_category_map_writes_a_png(tmp_path) -> None:
    summary = summarize(example_metrics(), TAGS, CATEGORIES)
    other = json.loads(json.dumps(summary))
    other["per_category"]["mood"]["map"] = None  # a category with nothing to show
    path = plot_category_map({"audio": summary, "cultural": other}, tmp_path / "plots" / "map.png")
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
    assert [p.name for p in path.parent.iterdir()] == ["map.png"]  # no temporary file left behind
    import matplotlib.image

    assert matplotlib.image.imread(path).ndim == 3


def test_seen_and_unseen_tags_are_summarised_apart() -> None:
    summary = summarize(example_metrics(), TAGS, CATEGORIES)
    summary["seen_unseen"] = seen_unseen(summary, ["happy", "polka"])  # polka has no valid ranking
    assert summary["seen_unseen"]["unseen"] == {"map": pytest.approx(0.9), "roc_auc": pytest.approx(
        summary["per_tag"]["happy"]["roc_auc"]), "p_at_10": pytest.approx(summary["per_tag"]["happy"]["p_at_10"]),
        "n_tags": 1}
    assert summary["seen_unseen"]["seen"]["n_tags"] == 2
    assert summary["seen_unseen"]["seen"]["map"] == pytest.approx(0.3)
    lines = format_table(summary).splitlines()
    assert any(line.split()[:4] == ["unseen", "tags", "1", "0.9000"] for line in lines)
    assert any(line.split()[:4] == ["seen", "tags", "2", "0.3000"] for line in lines)
