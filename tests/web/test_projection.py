"""The catalogue map's projection and labels on hand-made vectors."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.web.projection import label_tracks, project


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_two_clusters_stay_apart_and_the_map_is_scaled(method: str) -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(16), rng.standard_normal(16)
    vectors = np.concatenate([a + 0.05 * rng.standard_normal((20, 16)), b + 0.05 * rng.standard_normal((20, 16))])
    points = project(vectors, method)
    assert points.shape == (40, 2) and points.dtype == np.float32
    assert np.abs(points).max() == pytest.approx(1.0)
    centre_a, centre_b = points[:20].mean(axis=0), points[20:].mean(axis=0)
    spread = max(np.linalg.norm(points[:20] - centre_a, axis=1).max(),
                 np.linalg.norm(points[20:] - centre_b, axis=1).max())
    assert np.linalg.norm(centre_a - centre_b) > 2 * spread
    np.testing.assert_array_equal(points, project(vectors, method))  # seeded


def test_tiny_catalogues_and_unknown_methods() -> None:
    assert project(np.ones((1, 4))).shape == (1, 2) and project(np.eye(2)).tolist() == [[-1, 0], [1, 0]]
    with pytest.raises(ValueError, match="pca, tsne"):
        project(np.eye(4), "umap")


def test_a_tracks_own_tag_wins_over_the_nearest() -> None:
    tags, categories = ["rock", "jazz", "sad"], ["genre", "genre", "mood"]
    scores = np.array([[0.9, 0.1, 0.5], [0.2, 0.3, 0.9], [0.8, 0.1, 0.0]])
    labels, predicted = label_tracks("genre", tags, categories, scores, [(), ("sad",), ("sad", "jazz")])
    assert labels == ["rock", "jazz", "jazz"] and predicted == [True, True, False]
    with pytest.raises(ValueError, match="categories: genre, mood"):
        label_tracks("decade", tags, categories, scores, [()] * 3)
