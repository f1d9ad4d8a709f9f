"""Metrics of a multi-label tagger, *per tag over tracks*.

:func:`retrieval.evaluation.retrieval_metrics` applies unchanged with the predicted probabilities as scores: macro
PR-AUC (= mean AP), macro ROC-AUC, per-tag AP, plus precision / recall / F1 of the decisions ``p ≥ threshold``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["DEFAULT_THRESHOLD", "tagging_metrics"]

#: Decision threshold on p(tag | track) for precision / recall / F1.
DEFAULT_THRESHOLD = 0.5


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


def tagging_metrics(probabilities: np.ndarray, labels: np.ndarray, tags: Sequence[str] | None = None,
                    threshold: float = DEFAULT_THRESHOLD) -> dict:
    """Per-tag-over-tracks metrics of a multi-label tagger.

    Ranking metrics come from :func:`retrieval.evaluation.retrieval_metrics` (scores = probabilities): per tag,
    AP and ROC-AUC; ``pr_auc`` and ``roc_auc`` are their macro means over tags that have at least one positive
    and one negative track (the others are listed under ``excluded``, never scored as 0).

    Decisions ``ŷ = p ≥ threshold`` give, per tag, ``P = TP / (TP + FP)`` (0 when nothing is predicted),
    ``R = TP / (TP + FN)`` and ``F1 = 2PR / (P + R)`` (0 when P + R = 0), averaged over the same tags
    (``precision``, ``recall``, ``f1``), and the *micro* versions over all (track, tag) pairs
    (``micro_precision``, ``micro_recall``, ``micro_f1``; the authors' release computes these).

    Args:
        probabilities: (n_tracks, n_tags) predicted p(tag | track).
        labels: (n_tracks, n_tags) ground truth, bool or 0/1.
        tags: tag names for ``per_tag`` (defaults to column numbers).
        threshold: decision threshold for P / R / F1.

    Returns:
        ``{"pr_auc", "roc_auc", "precision", "recall", "f1", "micro_precision", "micro_recall", "micro_f1",
        "threshold", "n_tracks", "n_tags", "n_excluded", "excluded", "per_tag": {tag: {"ap", "roc_auc", "f1",
        "n_positives"}}}``.
    """
    from retrieval.evaluation import retrieval_metrics

    scores = np.asarray(probabilities, dtype=np.float64)
    truth = np.asarray(labels) != 0
    if scores.shape != truth.shape or scores.ndim != 2:
        raise ValueError(f"probabilities and labels must both be (n_tracks, n_tags), got {scores.shape} and "
                         f"{truth.shape}")
    tags = [str(j) for j in range(scores.shape[1])] if tags is None else list(tags)
    if len(tags) != scores.shape[1]:
        raise ValueError(f"got {len(tags)} tag names for {scores.shape[1]} columns")
    ranking = retrieval_metrics(scores, truth, k=1)
    valid = ranking.valid

    predicted = scores >= threshold
    tp = (predicted & truth).sum(axis=0).astype(np.float64)
    n_pred, n_true = predicted.sum(axis=0), truth.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(n_pred > 0, tp / n_pred, 0.0)
        recall = np.where(n_true > 0, tp / n_true, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    micro_p = tp.sum() / max(n_pred.sum(), 1)
    micro_r = tp.sum() / max(n_true.sum(), 1)
    micro_f1 = 2 * micro_p * micro_r / (micro_p + micro_r) if micro_p + micro_r > 0 else 0.0
    return {
        "pr_auc": _mean(ranking.ap[valid]),
        "roc_auc": _mean(ranking.roc_auc[valid]),
        "precision": _mean(precision[valid]),
        "recall": _mean(recall[valid]),
        "f1": _mean(f1[valid]),
        "micro_precision": float(micro_p),
        "micro_recall": float(micro_r),
        "micro_f1": float(micro_f1),
        "threshold": threshold,
        "n_tracks": int(scores.shape[0]),
        "n_tags": int(valid.sum()),
        "n_excluded": int((~valid).sum()),
        "excluded": [tags[j] for j in np.flatnonzero(~valid)],
        "per_tag": {
            tags[j]: {"ap": float(ranking.ap[j]), "roc_auc": float(ranking.roc_auc[j]), "f1": float(f1[j]),
                      "n_positives": int(ranking.n_positives[j])}
            for j in np.flatnonzero(valid)
        },
    }

