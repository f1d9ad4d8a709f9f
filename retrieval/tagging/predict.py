"""Whole-track tagging with a trained tagger, and the tagging protocol's metrics (SMC 2020, REFERENCE §3–4).

A track is tagged from ``n_crops`` equally spaced crops, one sigmoid per crop and tag, averaged. The same code tags
a split from the feature cache (evaluation), files on disk (``retrieval tag``, the speed figure) and perturbed
audio (robustness).
"""

from __future__ import annotations

import numpy as np
import torch

from retrieval.data.assembly import ExperimentData
from retrieval.data.vocabulary import Vocabulary
from retrieval.devices import model_device
from retrieval.tagging.model import TaggingModel

__all__ = ["predict_files", "split_probabilities", "tagging_summary"]


@torch.no_grad()
def split_probabilities(model: TaggingModel, data: ExperimentData, split: str, n_crops: int,
                        batch_size: int) -> np.ndarray:
    """(n_tracks, n_tags) whole-track probabilities of every track of ``split`` (from the feature cache)."""
    model.eval()
    device = model_device(model)
    n = len(data.splits[split].ids)
    out = [model.predict_crops(data.track_inputs(split, range(s, min(s + batch_size, n)), n_crops).features
                               .to(device)).float().cpu()
           for s in range(0, n, batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, model.n_tags), dtype=np.float32)


def tagging_summary(probabilities: np.ndarray, labels: np.ndarray, vocabulary: Vocabulary) -> dict:
    """Macro ROC-AUC and PR-AUC (mean over tags with a positive and a negative), per category and per tag.

    PR-AUC is average precision, computed exactly as the retrieval protocol's per-tag AP, so ``pr_auc`` is also
    this tagger's MAP when it ranks the split's tracks for each tag (``map`` carries the same number, for tables
    and plots shared with retrieval runs).
    """
    from retrieval.evaluation import retrieval_metrics, summarize

    k = min(10, len(labels))
    summary = summarize(retrieval_metrics(probabilities, labels, k=k), vocabulary.tags, vocabulary.category_of)
    summary["pr_auc"] = summary["map"]
    for figures in summary["per_category"].values():
        figures["pr_auc"] = figures["map"]
    return summary


def predict_files(model: TaggingModel, paths, n_crops: int) -> torch.Tensor:
    """Audio files (any format and rate) → (len(paths), n_tags) whole-track probabilities.

    Raises:
        AudioError: a file cannot be decoded (named).
    """
    from retrieval.audio import whole_track_crops

    model.eval()
    crops = [torch.from_numpy(whole_track_crops(p, model.mel, model.input_frames, n_crops)) for p in paths]
    if not crops:
        return torch.zeros(0, model.n_tags)
    return model.predict_crops(torch.stack(crops).float().to(model_device(model))).float().cpu()
