"""Training and reading out patch classifiers; the genre head on transferred features; the scores.

Patches are held in one tensor ``(n_tracks, n_patches, n_mels, frames)`` (equally spaced ~1-s crops of each
track, :mod:`retrieval.heads.artist_groups.inputs`). An epoch visits every (track, patch) pair of the
training rows once, in an order drawn from a ``torch.Generator``; the loss is the sum over tasks of the
cross-entropy. A track's prediction is the mean over its patches (of softmax probabilities, or of penultimate
features for transfer), as in Kim et al.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from retrieval.devices import autocast, check_precision, grad_scaler, resolve_device
from retrieval.heads.artist_groups.networks import PatchClassifier

__all__ = ["classification_scores", "fit_genre_head", "track_outputs", "train_patch_classifier"]

DEFAULT_HEAD_C = 1.0
DEFAULT_HEAD_MAX_ITER = 2000


def train_patch_classifier(
    model: PatchClassifier,
    patches: torch.Tensor,
    targets: Mapping[str, torch.Tensor],
    rows: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    generator: torch.Generator,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
) -> list[float]:
    """Train ``model`` to predict each track's class per task from its patches (Adam, summed cross-entropy).

    Args:
        model: the network; trained in place.
        patches: (n_tracks, n_patches, n_mels, frames), any float dtype (cast to float32 per batch).
        targets: task → (n_tracks,) int64 class of each track; one entry per head of ``model``.
        rows: (n_rows,) int64 track rows to train on; their targets must be ≥ 0.
        epochs: passes over every (row, patch) pair.
        batch_size: patches per step.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        generator: draws the visiting order (seed it for reproducible training).
        device: where the model and batches live.
        precision: ``fp32``, or ``bf16`` / ``fp16`` autocast of the forward pass (:mod:`retrieval.devices`).

    Returns:
        Mean training loss of each epoch.
    """
    if set(targets) != set(model.heads):
        raise ValueError(f"targets cover {sorted(targets)} but the model has heads {sorted(model.heads)}")
    for task, y in targets.items():
        if (y[rows] < 0).any() or (y[rows] >= model.n_classes[task]).any():
            raise ValueError(f"task {task!r}: training rows need targets in [0, {model.n_classes[task]})")
    device = resolve_device(device, key="device")
    scaler = grad_scaler(device, check_precision(precision, key="precision"))
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    n_patches = patches.shape[1]
    pairs = torch.cartesian_prod(rows, torch.arange(n_patches))  # (n_rows · n_patches, 2): (track, patch)
    history = []
    for _ in range(epochs):
        order = pairs[torch.randperm(pairs.shape[0], generator=generator)]
        total = 0.0
        for start in range(0, order.shape[0], batch_size):
            track, patch = order[start : start + batch_size].T
            mel = patches[track, patch].to(device=device, dtype=torch.float32)
            with autocast(device, precision):
                logits = model(mel)
            loss = sum(loss_fn(logits[task].float(), targets[task][track].to(device)) for task in logits)
            optimizer.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            total += loss.item() * track.shape[0]
        history.append(total / order.shape[0])
    return history


@torch.no_grad()
def track_outputs(
    model: PatchClassifier,
    patches: torch.Tensor,
    batch_size: int,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Track-level outputs: means over each track's patches.

    Args:
        model: a trained network (put in eval mode here).
        patches: (n_tracks, n_patches, n_mels, frames).
        batch_size: patches per forward pass (rounded down to whole tracks, at least one track).

    Returns:
        ``(features, probabilities)``: features (n_tracks, feature_dim) = mean penultimate features;
        probabilities {task: (n_tracks, n_classes)} = mean softmax.
    """
    device = resolve_device(device, key="device")
    model.to(device).eval()
    n_tracks, n_patches = patches.shape[:2]
    step = max(1, batch_size // n_patches)
    features, probabilities = [], {task: [] for task in model.heads}
    for start in range(0, n_tracks, step):
        chunk = patches[start : start + step]
        mel = chunk.flatten(0, 1).to(device=device, dtype=torch.float32)  # (b · n_patches, n_mels, frames)
        with autocast(device, precision):
            feats = model.features(mel)
            logits = {task: head(feats).float() for task, head in model.heads.items()}
        feats = feats.float()
        features.append(feats.unflatten(0, (chunk.shape[0], n_patches)).mean(dim=1).cpu())
        for task in model.heads:
            probs = logits[task].softmax(dim=-1).unflatten(0, (chunk.shape[0], n_patches)).mean(dim=1)
            probabilities[task].append(probs.cpu())
    return torch.cat(features), {task: torch.cat(p) for task, p in probabilities.items()}


def fit_genre_head(features: np.ndarray, genres: np.ndarray, seed: int, c: float = DEFAULT_HEAD_C):
    """The genre head on (transferred) track features: standardisation → multinomial logistic regression.

    The standardisation statistics come from the training rows only (they are part of the fitted pipeline).

    Args:
        features: (n_train, d) track features.
        genres: (n_train,) int genre of each row.
        seed: the solver's ``random_state``.
        c: inverse L2 regularisation strength.

    Returns:
        A fitted scikit-learn pipeline (``predict(features) -> genres``).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    head = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=DEFAULT_HEAD_MAX_ITER, random_state=seed))
    return head.fit(features, genres)


def classification_scores(true: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Accuracy and macro F1 (F1 averaged over the classes present in ``true``; an unpredicted class counts 0).

    Example:
        >>> classification_scores(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]))
        {'accuracy': 0.75, 'macro_f1': 0.7333333333333334}
    """
    from sklearn.metrics import f1_score

    true, predicted = np.asarray(true), np.asarray(predicted)
    if true.shape != predicted.shape or true.size == 0:
        raise ValueError(f"need equal, non-empty label arrays; got {true.shape} and {predicted.shape}")
    return {
        "accuracy": float((true == predicted).mean()),
        "macro_f1": float(f1_score(true, predicted, labels=np.unique(true), average="macro", zero_division=0)),
    }
