"""The paper's retrieval evaluation: rank every test track for every tag; P@k, ROC-AUC and AP per tag.

For each tag (a column of ``scores``, typically ``cos(tag, track)`` from :func:`cosine_scores`), tracks are
ranked by decreasing score and compared with the tag's ground-truth column of ``labels``:

- **AP** (average precision): the mean, over the tag's positive tracks, of the precision at the positive's
  rank: ``AP = (1 / n_pos) Σ_{positive r} tp(r) / r``. **MAP** is the mean AP over tags.
- **ROC-AUC**: the probability that a random positive scores above a random negative (ties count ½),
  computed from rank statistics (Mann–Whitney U): ``AUC = (Σ_pos rank − n_pos (n_pos + 1) / 2) /
  (n_pos · n_neg)`` with ascending ranks, tied scores sharing their average rank.
- **P@k**: the fraction of positives among the ``k`` top-ranked tracks.

Ties: tracks with equal scores form one group. AP and ROC-AUC treat a group as a single threshold, exactly
as scikit-learn's ``average_precision_score`` and ``roc_auc_score`` do: every positive in a group gets the
precision at the *end* of the group, and a positive tied with a negative counts ½ in the AUC. So both match
scikit-learn with or without ties. P@k breaks ties by track order (row index) -- it must cut somewhere.

Tags with no positive or no negative track in the split have no defined AP / AUC. They are **excluded**
(``TagMetrics.valid`` is False, their metrics are NaN) and reported, never scored as 0.

Each column is sorted once (``argsort``); everything else is cumulative sums over the sorted columns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.errors import ConfigError
from retrieval.fileio import atomic_path
from retrieval.vectors import unit_rows

#: Tags scored per chunk: bounds memory to a few arrays of (n_tracks, chunk) at 8 bytes each.
COLUMNS_PER_CHUNK = 128

#: Guard for the L2 normalisation of all-zero embeddings (their cosines come out as 0).
NORM_EPS = 1e-12


@dataclass(frozen=True)
class TagMetrics:
    """Per-tag retrieval metrics; every array has shape ``(n_tags,)``.

    Attributes:
        ap: average precision (NaN where not ``valid``).
        roc_auc: area under the ROC curve (NaN where not ``valid``).
        p_at_k: precision at ``k`` (NaN where not ``valid``).
        valid: whether the tag has ≥ 1 positive and ≥ 1 negative track (else it is excluded).
        n_positives: number of tracks carrying the tag.
        k: the ``k`` of ``p_at_k``.
    """

    ap: np.ndarray
    roc_auc: np.ndarray
    p_at_k: np.ndarray
    valid: np.ndarray
    n_positives: np.ndarray
    k: int


def cosine_scores(track_emb: np.ndarray, tag_emb: np.ndarray) -> np.ndarray:
    """Cosine similarity of every track with every tag.

    Args:
        track_emb: ``(n_tracks, d)`` track embeddings.
        tag_emb: ``(n_tags, d)`` tag embeddings.

    Returns:
        ``(n_tracks, n_tags)`` array ``S[i, j] = <x_i, t_j> / (‖x_i‖ ‖t_j‖)``; an all-zero row scores 0.

    Example:
        >>> cosine_scores(np.array([[1.0, 0.0]]), np.array([[2.0, 0.0], [0.0, 3.0]]))
        array([[1., 0.]])
    """
    track_emb = np.asarray(track_emb)
    tag_emb = np.asarray(tag_emb)
    if track_emb.ndim != 2 or tag_emb.ndim != 2 or track_emb.shape[1] != tag_emb.shape[1]:
        raise ValueError(
            f"track_emb and tag_emb must be (n, d) and (m, d) with the same d, got {track_emb.shape} and "
            f"{tag_emb.shape}"
        )

    return unit_rows(track_emb, NORM_EPS) @ unit_rows(tag_emb, NORM_EPS).T


def _dense_labels(labels: object, shape: tuple[int, ...]) -> np.ndarray:
    """``labels`` (dense or scipy sparse) as a dense bool array of ``shape``."""
    if hasattr(labels, "toarray"):
        labels = labels.toarray()
    labels = np.asarray(labels)
    if labels.shape != shape:
        raise ValueError(f"labels must have the shape of scores {shape}, got {labels.shape}")
    return labels if labels.dtype == bool else labels != 0


def _column_metrics(scores: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    """AP, ROC-AUC and P@k of each column of a ``(n, c)`` chunk (NaN for columns without pos or neg)."""
    n = scores.shape[0]
    order = np.argsort(-scores, axis=0, kind="stable")  # descending; ties keep row order
    sorted_scores = np.take_along_axis(scores, order, axis=0)
    hits = np.take_along_axis(labels, order, axis=0)  # (n, c) bool: is the r-th ranked track positive

    # Tie groups over sorted positions r = 0..n-1: [group_start[r], group_end[r]] (inclusive).
    position = np.arange(n)[:, None]
    new_group = np.ones_like(hits)
    new_group[1:] = sorted_scores[1:] != sorted_scores[:-1]
    group_start = np.maximum.accumulate(np.where(new_group, position, 0), axis=0)
    ends_group = np.ones_like(hits)
    ends_group[:-1] = new_group[1:]
    group_end = np.minimum.accumulate(np.where(ends_group, position, n - 1)[::-1], axis=0)[::-1]

    n_pos = hits.sum(axis=0)
    n_neg = n - n_pos
    valid = (n_pos > 0) & (n_neg > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        # AP: a positive at position r gets precision tp / retrieved at the end of its tie group.
        true_pos = np.cumsum(hits, axis=0)
        precision = np.take_along_axis(true_pos, group_end, axis=0) / (group_end + 1)
        ap = np.where(hits, precision, 0.0).sum(axis=0) / n_pos
        # ROC-AUC: ascending 1-based average rank of position r is n − (start + end) / 2.
        rank = n - (group_start + group_end) / 2
        rank_sum = np.where(hits, rank, 0.0).sum(axis=0)
        auc = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    p_at_k = hits[:k].sum(axis=0) / k
    nan = np.full(scores.shape[1], np.nan)
    return (np.where(valid, ap, nan), np.where(valid, auc, nan), np.where(valid, p_at_k, nan), valid, n_pos)


def retrieval_metrics(scores: np.ndarray, labels: object, k: int = 10) -> TagMetrics:
    """Per-tag AP, ROC-AUC and P@k of ranking the tracks (rows) for each tag (column).

    Args:
        scores: ``(n_tracks, n_tags)`` relevance of each track to each tag (higher = more relevant).
        labels: ``(n_tracks, n_tags)`` ground truth, bool (or 0/1) array or scipy sparse matrix.
        k: cut-off of P@k, ``1 ≤ k ≤ n_tracks``.

    Returns:
        :class:`TagMetrics`; tags without a positive or without a negative are marked invalid (NaN).

    Raises:
        ValueError: on mismatched shapes, NaN scores or a bad ``k``.

    Example:
        >>> scores = np.array([[0.9, 0.1], [0.8, 0.7], [0.1, 0.2]])
        >>> labels = np.array([[1, 0], [0, 1], [1, 0]], dtype=bool)
        >>> m = retrieval_metrics(scores, labels, k=1)
        >>> m.ap.round(3).tolist(), m.roc_auc.tolist(), m.p_at_k.tolist()
        ([0.833, 1.0], [0.5, 1.0], [1.0, 1.0])
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be (n_tracks, n_tags), got shape {scores.shape}")
    labels = _dense_labels(labels, scores.shape)
    n_tracks, n_tags = scores.shape
    if not 1 <= k <= n_tracks:
        raise ConfigError(f"eval.k: k must be between 1 and the number of tracks ({n_tracks}), got {k}")
    if np.isnan(scores).any():
        bad = np.unique(np.nonzero(np.isnan(scores))[1])
        raise ValueError(f"scores contain NaN in {len(bad)} tag column(s), first {bad[:5].tolist()}")

    chunks = [
        _column_metrics(
            scores[:, start : start + COLUMNS_PER_CHUNK].astype(np.float64),
            labels[:, start : start + COLUMNS_PER_CHUNK],
            k,
        )
        for start in range(0, n_tags, COLUMNS_PER_CHUNK)
    ]
    ap, auc, p_at_k, valid, n_pos = (np.concatenate(parts) for parts in zip(*chunks, strict=True))
    return TagMetrics(ap=ap, roc_auc=auc, p_at_k=p_at_k, valid=valid, n_positives=n_pos, k=k)


def _mean_or_none(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


def summarize(metrics: TagMetrics, tags: Sequence[str], categories: Mapping[str, str]) -> dict:
    """Overall, per-category and per-tag figures, ready for ``json.dump``.

    Args:
        metrics: the output of :func:`retrieval_metrics`.
        tags: ``n_tags`` tag names, in column order.
        categories: tag name → category (e.g. ``"genre"``); must cover every tag.

    Returns:
        ``{"map", "p_at_<k>", "roc_auc", "k", "n_tags", "n_excluded", "excluded": [tag, ...],
        "per_category": {category: {"map", "n_tags"}}, "per_tag": {tag: {"category", "ap", "roc_auc",
        "p_at_<k>", "n_positives"}}}``. Means are over valid tags only; excluded tags appear only in
        ``"excluded"``. A category without any valid tag has ``"map": None``. With no valid tag at all,
        the overall means are None.

    Raises:
        ValueError: if ``tags`` does not match the metrics or a tag has no category.
    """
    if len(tags) != len(metrics.ap):
        raise ValueError(f"got {len(tags)} tag names for {len(metrics.ap)} metric columns")
    missing = [tag for tag in tags if tag not in categories]
    if missing:
        raise ValueError(
            f"{len(missing)} tag(s) have no category, e.g. {missing[:5]}; pass a complete mapping"
        )

    p_key = f"p_at_{metrics.k}"
    valid = metrics.valid
    tag_category = np.array([categories[tag] for tag in tags], dtype=object)
    per_category = {}
    for category in sorted(set(tag_category)):
        in_category = valid & (tag_category == category)
        per_category[category] = {
            "map": _mean_or_none(metrics.ap[in_category]),
            "n_tags": int(in_category.sum()),
        }
    per_tag = {
        tags[j]: {
            "category": categories[tags[j]],
            "ap": float(metrics.ap[j]),
            "roc_auc": float(metrics.roc_auc[j]),
            p_key: float(metrics.p_at_k[j]),
            "n_positives": int(metrics.n_positives[j]),
        }
        for j in np.flatnonzero(valid)
    }
    return {
        "map": _mean_or_none(metrics.ap[valid]),
        p_key: _mean_or_none(metrics.p_at_k[valid]),
        "roc_auc": _mean_or_none(metrics.roc_auc[valid]),
        "k": metrics.k,
        "n_tags": int(valid.sum()),
        "n_excluded": int((~valid).sum()),
        "excluded": [tags[j] for j in np.flatnonzero(~valid)],
        "per_category": per_category,
        "per_tag": per_tag,
    }


def seen_unseen(summary: dict, unseen: Sequence[str]) -> dict:
    """MAP, ROC-AUC and P@k of a :func:`summarize` result on the ``unseen`` tags and on the rest (the seen ones).

    Returns:
        ``{"seen": {"map", "roc_auc", "p_at_<k>", "n_tags"}, "unseen": {...}}`` (None means with no valid tag).
    """
    p_key = f"p_at_{summary['k']}"
    held = set(unseen)
    groups = {"seen": [t for t in summary["per_tag"] if t not in held],
              "unseen": [t for t in summary["per_tag"] if t in held]}
    return {
        name: {
            "map": _mean_or_none(np.array([summary["per_tag"][t]["ap"] for t in tags])),
            "roc_auc": _mean_or_none(np.array([summary["per_tag"][t]["roc_auc"] for t in tags])),
            p_key: _mean_or_none(np.array([summary["per_tag"][t][p_key] for t in tags])),
            "n_tags": len(tags),
        }
        for name, tags in groups.items()
    }


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def format_table(summary: Mapping) -> str:
    """A plain-text table of a :func:`summarize` result: the overall line, then one line per category.

    Example output::

        scope            tags     MAP    P@10  ROC-AUC
        overall            48  0.1852  0.3500   0.8710
          genre            20  0.2100
          mood             10  0.0630
        excluded: 2 tag(s) without positive or negative tracks: polka, yodel
    """
    k = summary["k"]
    rows = [f"{'scope':<16}{'tags':>5}{'MAP':>8}{f'P@{k}':>8}{'ROC-AUC':>9}"]
    rows.append(
        f"{'overall':<16}{summary['n_tags']:>5}{_fmt(summary['map']):>8}{_fmt(summary[f'p_at_{k}']):>8}"
        f"{_fmt(summary['roc_auc']):>9}"
    )
    for category, figures in summary["per_category"].items():
        rows.append(f"  {category:<14}{figures['n_tags']:>5}{_fmt(figures['map']):>8}")
    for name, figures in summary.get("seen_unseen", {}).items():
        rows.append(f"{name + ' tags':<16}{figures['n_tags']:>5}{_fmt(figures['map']):>8}"
                    f"{_fmt(figures[f'p_at_{k}']):>8}{_fmt(figures['roc_auc']):>9}")
    if summary["n_excluded"]:
        rows.append(
            f"excluded: {summary['n_excluded']} tag(s) without positive or negative tracks: "
            + ", ".join(summary["excluded"])
        )
    return "\n".join(rows)


def plot_category_map(summaries: Mapping[str, Mapping], path: str | Path) -> Path:
    """Save a grouped bar chart of per-category MAP: one group per category, one bar per run.

    Args:
        summaries: run name (e.g. ``"audio"``, ``"cultural"``) → its :func:`summarize` result.
        path: the PNG to write (atomically).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    # The object-oriented API with an explicit Agg canvas: no pyplot global state, no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not summaries:
        raise ValueError("plot_category_map needs at least one summary")
    runs = list(summaries)
    categories = sorted({category for summary in summaries.values() for category in summary["per_category"]})
    group_width = 0.8  # fraction of the category slot filled by its bars
    bar_width = group_width / len(runs)
    x = np.arange(len(categories))

    figure = Figure(figsize=(max(6.0, 1.2 * len(categories) * max(1, len(runs) / 2)), 4.0))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for i, run in enumerate(runs):
        per_category = summaries[run]["per_category"]
        heights = [
            math.nan if per_category.get(c, {}).get("map") is None else per_category[c]["map"]
            for c in categories
        ]
        axes.bar(x - group_width / 2 + (i + 0.5) * bar_width, heights, bar_width, label=run)
    axes.set_xticks(x, categories, rotation=30, ha="right")
    axes.set_ylabel("MAP")
    axes.set_title("Per-category MAP")
    axes.legend()
    figure.tight_layout()

    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    return path
