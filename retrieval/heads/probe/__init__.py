"""Taggers on frozen features (linear probe / MLP): standardisation baked in, a small network, BCE, model
selection on PR-AUC.

A tagger maps a track's frozen feature vector (a shared-space embedding, an encoder's penultimate features, or
ALS listening factors) to one independent probability per tag (multi-label)::

    x (B, d) ─Standardize: (x − μ) / σ─▶ network ─▶ logits (B, n_tags) ─sigmoid─▶ p(tag | track)

Modules (in data-flow order):
    networks   Standardize and the networks (``linear``, ``mlp``, ``stacked_mlp``) by name (:data:`NETWORKS`).
    model      Tagger: standardisation + network, ``predict``, ``save`` / ``load`` (``weights_only``).
    metrics    tagging_metrics: per tag over tracks, macro PR-AUC / ROC-AUC and P / R / F1 of ``p ≥ threshold``.
    training   TrainSettings, fit_tagger / train_tagger on arrays, train_head on a trained run's features.

Not to be confused with :mod:`retrieval.tagging`, which trains whole audio taggers end to end from audio.
"""

from retrieval.heads.probe.metrics import DEFAULT_THRESHOLD, tagging_metrics
from retrieval.heads.probe.model import Tagger
from retrieval.heads.probe.networks import NETWORKS, STD_FLOOR, LinearProbe, StackedMLP, Standardize, build_network
from retrieval.heads.probe.training import TrainSettings, fit_tagger, train_head, train_tagger, warmup_cosine

__all__ = [
    "DEFAULT_THRESHOLD",
    "NETWORKS",
    "STD_FLOOR",
    "LinearProbe",
    "StackedMLP",
    "Standardize",
    "Tagger",
    "TrainSettings",
    "build_network",
    "fit_tagger",
    "tagging_metrics",
    "train_head",
    "train_tagger",
    "warmup_cosine",
]
