"""Training a tagger on frozen features: BCE with logits, Adam, warm-up + cosine, model selection on PR-AUC.

:func:`fit_tagger`: BCE with logits, Adam, a per-step learning rate that rises linearly from 0 over
``warmup_epochs`` and then follows a cosine to 0 at the last step, and **model selection on validation PR-AUC**
(macro average precision over tags): the weights of the best epoch are kept; training stops early after
``patience`` epochs without improvement (``None``: run every epoch, as the paper does).
:func:`train_tagger` builds the tagger (standardisation fitted on the training features) and fits it;
:func:`train_head` does it on a trained run's frozen features and saves the result (``retrieval train-head``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from retrieval.devices import autocast, check_precision, grad_scaler, resolve_device
from retrieval.heads.probe.metrics import tagging_metrics
from retrieval.heads.probe.model import Tagger
from retrieval.heads.probe.networks import Standardize

__all__ = ["TrainSettings", "fit_tagger", "train_head", "train_tagger", "warmup_cosine"]


@dataclass(frozen=True)
class TrainSettings:
    """How a tagger is trained (see the module docstring).

    Attributes:
        lr: peak learning rate of Adam. weight_decay: Adam's L2 weight decay.
        batch_size: tracks per step. epochs: passes over the training set (at most).
        warmup_epochs: epochs of linear warm-up from 0 to ``lr`` before the cosine decay to 0.
        patience: stop after this many epochs without a better validation PR-AUC (None: never stop early).
        seed: seeds initialisation, shuffling and dropout. device: where to train (``auto``, ``cpu``, ``cuda``,
        ``cuda:N``, ``mps``). precision: ``fp32``, or ``bf16`` / ``fp16`` autocast of the forward pass
        (:mod:`retrieval.devices`; fp16 with loss scaling on CUDA).
    """

    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 128
    epochs: int = 100
    warmup_epochs: float = 1.0
    patience: int | None = 10
    seed: int = 0
    device: str = "cpu"
    precision: str = "fp32"


def _check_xy(x: np.ndarray, y: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ValueError(f"{name}: features must be (n, d) and targets (n, n_tags) with the same n, got "
                         f"{x.shape} and {y.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: features contain NaN or infinite values in {int((~np.isfinite(x)).any(1).sum())} "
                         "row(s)")
    return x, (y != 0).astype(np.float32)


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A shuffled epoch; a last batch of one row joins the previous one (BatchNorm needs ≥ 2 rows)."""
    order = torch.randperm(n, generator=generator)
    batches = list(order.split(batch_size))
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2:] = [torch.cat(batches[-2:])]
    return batches


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """Learning-rate multiplier: ``step / warmup`` during warm-up, then ``½ (1 + cos(π · progress))`` → 0.

    Example:
        >>> [round(warmup_cosine(s, 2, 6), 3) for s in range(7)]
        [0.0, 0.5, 1.0, 0.854, 0.5, 0.146, 0.0]
    """
    if step < warmup_steps:
        return step / warmup_steps
    progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def fit_tagger(tagger: Tagger, x_train: np.ndarray, y_train: np.ndarray, x_valid: np.ndarray,
               y_valid: np.ndarray, settings: TrainSettings = TrainSettings(),
               on_epoch: Callable[[dict], None] | None = None) -> Tagger:
    """Train ``tagger`` in place with BCE; keep the weights of the epoch with the best validation PR-AUC.

    Args:
        tagger: a built :class:`Tagger` (its standardisation already fitted on ``x_train``).
        x_train, y_train: (n, d) features and (n, n_tags) multi-hot targets.
        x_valid, y_valid: the validation split, same layout (needs a tag with positives and negatives).
        settings: optimiser, schedule, early stopping, seed, device.
        on_epoch: optional callable ``f(epoch_record)`` called after each epoch (progress reporting).

    Returns:
        ``tagger`` with the best weights, in eval mode; ``tagger.info["training"]`` holds ``best_epoch``,
        ``best_valid_pr_auc`` and ``history`` (per epoch: ``epoch``, ``loss``, ``valid_pr_auc``, ``lr``).
    """
    x_train, y_train = _check_xy(x_train, y_train, "train")
    x_valid, y_valid = _check_xy(x_valid, y_valid, "valid")
    if y_train.shape[1] != tagger.network.output_dim or x_train.shape[1] != tagger.in_dim:
        raise ValueError(f"tagger is ({tagger.in_dim} → {tagger.network.output_dim}), data is "
                         f"({x_train.shape[1]} → {y_train.shape[1]})")
    if len(x_train) < 2:
        raise ValueError(f"need at least 2 training rows, got {len(x_train)}")
    device = resolve_device(settings.device, key="device")
    scaler = grad_scaler(device, check_precision(settings.precision, key="precision"))
    tagger.to(device)
    x = torch.from_numpy(x_train).to(device)
    y = torch.from_numpy(y_train).to(device)
    generator = torch.Generator().manual_seed(settings.seed)
    steps_per_epoch = len(_batches(len(x), settings.batch_size, torch.Generator().manual_seed(0)))
    total_steps = steps_per_epoch * settings.epochs
    warmup_steps = round(settings.warmup_epochs * steps_per_epoch)
    optimizer = torch.optim.Adam(tagger.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, warmup_steps, total_steps))
    loss_fn = nn.BCEWithLogitsLoss()

    history: list[dict] = []
    best_ap, best_epoch, best_state = -math.inf, 0, None
    # Dropout draws from the global RNG: fork it so training is seeded without touching the caller's state.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(settings.seed)
        for epoch in range(1, settings.epochs + 1):
            tagger.train()
            total, seen = 0.0, 0
            for rows in _batches(len(x), settings.batch_size, generator):
                rows = rows.to(device)
                with autocast(device, settings.precision):
                    loss = loss_fn(tagger(x[rows]).float(), y[rows])
                optimizer.zero_grad()
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                schedule.step()
                total += float(loss.detach()) * len(rows)
                seen += len(rows)
            valid_ap = tagging_metrics(tagger.predict(x_valid), y_valid)["pr_auc"]
            if valid_ap is None:
                raise ValueError("validation targets have no tag with both positive and negative tracks: "
                                 "model selection on PR-AUC is impossible")
            record = {"epoch": epoch, "loss": total / seen, "valid_pr_auc": valid_ap,
                      "lr": optimizer.param_groups[0]["lr"]}
            history.append(record)
            if on_epoch is not None:
                on_epoch(record)
            if valid_ap > best_ap:
                best_ap, best_epoch = valid_ap, epoch
                best_state = copy.deepcopy(tagger.state_dict())
            elif settings.patience is not None and epoch - best_epoch >= settings.patience:
                break
    tagger.load_state_dict(best_state)
    tagger.info["training"] = {"best_epoch": best_epoch, "best_valid_pr_auc": best_ap, "history": history,
                               "settings": asdict(settings)}
    return tagger.eval()


def train_tagger(x_train: np.ndarray, y_train: np.ndarray, x_valid: np.ndarray, y_valid: np.ndarray,
                 kind: str = "linear", tags: Sequence[str] | None = None,
                 settings: TrainSettings = TrainSettings(), **network_args) -> Tagger:
    """Build a tagger on frozen features (standardisation fitted on ``x_train``) and train it.

    Args:
        x_train, y_train, x_valid, y_valid: see :func:`fit_tagger`.
        kind: a key of :data:`~retrieval.heads.probe.networks.NETWORKS` ("linear", "mlp" or "stacked_mlp").
        tags: tag names in target-column order.
        settings: see :class:`TrainSettings`.
        **network_args: extra constructor arguments of the network (e.g. ``hidden_dim=256, dropout=0.25``).

    Returns:
        The trained :class:`Tagger` (best validation epoch), eval mode.

    Example:
        >>> tagger = train_tagger(x_tr, y_tr, x_va, y_va, kind="linear")  # doctest: +SKIP
        >>> tagging_metrics(tagger.predict(x_te), y_te, tagger.tags)["pr_auc"]  # doctest: +SKIP
    """
    x_train = np.asarray(x_train, dtype=np.float32)
    y_train = np.asarray(y_train)
    if x_train.ndim != 2 or y_train.ndim != 2:
        raise ValueError(f"features must be (n, d) and targets (n, n_tags), got {x_train.shape} and {y_train.shape}")
    scaler = Standardize.fit(x_train)
    with torch.random.fork_rng():
        torch.manual_seed(settings.seed)  # seeded initialisation, caller's RNG untouched
        tagger = Tagger(kind, {"in_dim": x_train.shape[1], "out_dim": y_train.shape[1], **network_args},
                        scaler.mean, scaler.std, tags)
    return fit_tagger(tagger, x_train, y_train, x_valid, y_valid, settings)


def train_head(run_dir: str | Path, task: str, out: str | Path, features: str = "shared",
               head: str = "linear", settings: TrainSettings = TrainSettings(), **network_args) -> dict:
    """Train a tagger for one tag category on a run's frozen features, save it, score the test split
    (``retrieval train-head --run RUN --task mood|genre --features shared|audio|listening --head linear|mlp``).

    Args:
        run_dir: a trained run. task: the tag category to predict ("mood", "genre", or any category of the run).
        out: where to save the tagger (:meth:`Tagger.save`).
        features: "shared" | "audio" | "listening" (see :mod:`retrieval.heads.features`).
        head: a key of :data:`~retrieval.heads.probe.networks.NETWORKS`. settings: training settings.
        **network_args: e.g. ``hidden_dim``.

    Returns:
        ``{"head": str(out), "run", "task", "features", "kind", "tags", "best_epoch", "valid_pr_auc",
        "test": tagging_metrics(...)}`` (JSON-able).
    """
    from retrieval.heads.features import load_frozen_features

    splits = load_frozen_features(run_dir, features)
    (x_tr, (y_tr, tags)), (x_va, (y_va, _)), (x_te, (y_te, _)) = (
        (splits[s].X, splits[s].category(task)) for s in ("train", "valid", "test"))
    tagger = train_tagger(x_tr, y_tr, x_va, y_va, kind=head, tags=tags, settings=settings, **network_args)
    from retrieval.runs import load_run

    # The model fingerprint lets a Retriever refuse a head trained on another model's features.
    tagger.info.update({"run": str(run_dir), "task": task, "features": features,
                        "fingerprint": load_run(run_dir).fingerprint})
    tagger.save(out)
    return {
        "head": str(out),
        "run": str(run_dir),
        "task": task,
        "features": features,
        "kind": head,
        "tags": tags,
        "best_epoch": tagger.info["training"]["best_epoch"],
        "valid_pr_auc": tagger.info["training"]["best_valid_pr_auc"],
        "test": tagging_metrics(tagger.predict(x_te), y_te, tags),
    }
