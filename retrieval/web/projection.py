"""The catalogue map: every indexed track as a point in 2-D, labelled by a tag category.

A projection of the index's unit vectors: PCA (default; the top two principal axes, milliseconds for thousands
of tracks) or t-SNE (scikit-learn, perplexity min(30, (n − 1) / 3); seconds to minutes, seeded). Each track's
label in a category is its own catalogue tag of that category when it has one, else the category's tag nearest
to it in the model's space (``"predicted"``), so a folder of untagged files is coloured too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["PROJECTIONS", "label_tracks", "project"]

PROJECTIONS = ("pca", "tsne")
_SEED = 0


def project(vectors: np.ndarray, method: str = "pca") -> np.ndarray:
    """(n, d) vectors → (n, 2) float32 coordinates scaled into [-1, 1] on the longer axis.

    Raises:
        ValueError: an unknown method (the valid ones are listed).
    """
    if method not in PROJECTIONS:
        raise ValueError(f"unknown projection {method!r}; use one of {', '.join(PROJECTIONS)}")
    vectors = np.asarray(vectors, dtype=np.float64)
    n = len(vectors)
    if n < 3:  # too few points for either method: spread them on a line
        points = np.stack([np.linspace(-1, 1, n) if n > 1 else np.zeros(n), np.zeros(n)], axis=1)
        return points.astype(np.float32)
    if method == "pca":
        from sklearn.decomposition import PCA

        points = PCA(n_components=2, random_state=_SEED).fit_transform(vectors)
    else:
        from sklearn.manifold import TSNE

        points = TSNE(n_components=2, perplexity=min(30.0, (n - 1) / 3), init="pca", random_state=_SEED,
                      metric="cosine").fit_transform(vectors)
    points = points - points.mean(axis=0)
    scale = np.abs(points).max()
    return (points / scale if scale > 0 else points).astype(np.float32)


def label_tracks(category: str, tags: Sequence[str], categories: Sequence[str], scores: np.ndarray,
                 catalogue_tags: Sequence[Sequence[str]]) -> tuple[list[str], list[bool]]:
    """Each track's tag in ``category``: its first catalogue tag there, else the category's best-scoring tag.

    Args:
        category: a tag category (e.g. "genre").
        tags, categories: the vocabulary's tags and the category of each.
        scores: (n_tracks, n_tags) zero-shot scores (higher: closer).
        catalogue_tags: each track's own tags (possibly none).

    Returns:
        (labels, predicted): one tag per track, and whether it was predicted rather than the track's own.

    Raises:
        ValueError: ``category`` has no tags (the categories are listed).
    """
    columns = np.flatnonzero(np.asarray(categories) == category)
    if not len(columns):
        raise ValueError(f"no tags in category {category!r}; categories: {', '.join(sorted(set(categories)))}")
    in_category = {tags[column] for column in columns}
    nearest = np.asarray(tags, dtype=object)[columns[np.argmax(scores[:, columns], axis=1)]]
    labels, predicted = [], []
    for own, guess in zip(catalogue_tags, nearest, strict=True):
        label = next((tag for tag in own if tag in in_category), None)
        labels.append(label if label is not None else str(guess))
        predicted.append(label is None)
    return labels, predicted
