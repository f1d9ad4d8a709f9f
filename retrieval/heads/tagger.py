"""Taggers trained on frozen features: standardisation baked in, a small network, BCE, model selection on PR-AUC.

A tagger maps a track's frozen feature vector (a shared-space embedding, an encoder's penultimate features, or
ALS listening factors) to one independent probability per tag (multi-label)::

    x (B, d) ─Standardize: (x − μ) / σ─▶ network ─▶ logits (B, n_tags) ─sigmoid─▶ p(tag | track)

μ and σ are the *training-set* mean and standard deviation, stored as buffers inside the model, so a saved tagger
takes raw features and nobody has to carry a scaler around. Networks (:data:`NETWORKS`):

- ``linear``: the linear probe, ``Linear(d, n_tags)``.
- ``mlp``: :class:`~retrieval.encoders.projection.MLPHead` (Linear → BatchNorm → ReLU → Dropout → Linear).
- ``stacked_mlp``: ``n_layers`` × (Linear → ReLU → Dropout) → Linear, the mood MLP of Korzeniowski et al.
  (REFERENCE §2; see :mod:`retrieval.heads.moods`).

Training (:func:`fit_tagger`): BCE with logits, Adam, a per-step learning rate that rises linearly from 0 over
``warmup_epochs`` and then follows a cosine to 0 at the last step, and **model selection on validation PR-AUC**
(macro average precision over tags): the weights of the best epoch are kept; training stops early after
``patience`` epochs without improvement (``None``: run every epoch, as the paper does).

Metrics (:func:`tagging_metrics`): evaluation is *per tag over tracks*, so :func:`retrieval.evaluation.
retrieval_metrics` applies unchanged with the predicted probabilities as scores: macro PR-AUC (= mean AP), macro
ROC-AUC, per-tag AP, plus precision / recall / F1 of the decisions ``p ≥ threshold``.
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

from retrieval.encoders.projection import MLPHead
from retrieval.errors import DataError
from retrieval.fileio import atomic_path

__all__ = [
    "NETWORKS",
    "LinearProbe",
    "StackedMLP",
    "Standardize",
    "Tagger",
    "TrainSettings",
    "fit_tagger",
    "tagging_metrics",
    "train_head_command",
    "train_tagger",
]

#: A feature whose training-set standard deviation is below this is constant: it is centred but not scaled
#: (σ := 1), as scikit-learn's StandardScaler does, instead of being blown up by a division by ~0.
STD_FLOOR = 1e-8

#: Decision threshold on p(tag | track) for precision / recall / F1.
DEFAULT_THRESHOLD = 0.5

#: Rows per forward pass in :meth:`Tagger.predict` (bounds memory, does not change results).
PREDICT_BATCH = 4096

#: Marks a file written by :meth:`Tagger.save`; bumped if the layout changes.
FORMAT = "retrieval.tagger/1"


# ---- building blocks ------------------------------------------------------------------------------------------
class Standardize(nn.Module):
    """``x ↦ (x − mean) / std`` with the statistics stored as buffers (saved in the ``state_dict``).

    Args:
        mean: (d,) per-feature mean of the training set.
        std: (d,) per-feature standard deviation of the training set (values < :data:`STD_FLOOR` become 1).
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        mean = torch.as_tensor(mean, dtype=torch.float32)
        std = torch.as_tensor(std, dtype=torch.float32)
        if mean.dim() != 1 or mean.shape != std.shape:
            raise ValueError(f"mean and std must be (d,) vectors of one size, got {tuple(mean.shape)} and "
                             f"{tuple(std.shape)}")
        self.register_buffer("mean", mean.clone())
        self.register_buffer("std", torch.where(std < STD_FLOOR, torch.ones_like(std), std))

    @classmethod
    def fit(cls, features: np.ndarray | torch.Tensor) -> Standardize:
        """Statistics of ``features`` (n, d): mean and population standard deviation (ddof 0) per column."""
        x = torch.as_tensor(np.asarray(features), dtype=torch.float64)
        return cls(x.mean(dim=0).float(), x.std(dim=0, correction=0).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, d) raw features → (B, d) standardised features."""
        return (x - self.mean) / self.std


class LinearProbe(nn.Module):
    """The linear probe: one ``Linear(in_dim, out_dim)`` on (standardised) frozen features.

    Example:
        >>> LinearProbe(8, 3)(torch.zeros(2, 8)).shape
        torch.Size([2, 3])
    """

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.in_dim, self.output_dim = int(in_dim), int(out_dim)
        self.linear = nn.Linear(self.in_dim, self.output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_dim) → (B, out_dim) logits."""
        return self.linear(x)

    def config(self) -> dict[str, int]:
        """Constructor arguments, so a saved tagger can rebuild it."""
        return {"in_dim": self.in_dim, "out_dim": self.output_dim}


class StackedMLP(nn.Module):
    """``n_layers`` × (Linear → ReLU → Dropout) → Linear(out_dim): the mood MLP of Korzeniowski et al.

    Initialised as in the authors' release: hidden layers Kaiming-uniform (ReLU gain), the output layer
    Kaiming-normal with gain 1; biases keep PyTorch's default.

    Args:
        in_dim: input size. out_dim: number of tags (logits).
        n_layers: hidden layers (0 gives a linear model). hidden_dim: units per hidden layer.
        dropout: drop probability after every hidden layer.

    Example:
        >>> StackedMLP(8, 3, n_layers=2, hidden_dim=16).eval()(torch.zeros(5, 8)).shape
        torch.Size([5, 3])
    """

    def __init__(self, in_dim: int, out_dim: int, n_layers: int = 4, hidden_dim: int = 3909, dropout: float = 0.25):
        super().__init__()
        if min(in_dim, out_dim, hidden_dim) < 1 or n_layers < 0:
            raise ValueError(f"need positive dimensions and n_layers ≥ 0, got in={in_dim} out={out_dim} "
                             f"hidden={hidden_dim} n_layers={n_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.in_dim, self.output_dim = int(in_dim), int(out_dim)
        self.n_layers, self.hidden_dim, self.dropout = int(n_layers), int(hidden_dim), float(dropout)
        layers: list[nn.Module] = []
        width = self.in_dim
        for _ in range(self.n_layers):
            linear = nn.Linear(width, self.hidden_dim)
            nn.init.kaiming_uniform_(linear.weight, nonlinearity="relu")
            layers += [linear, nn.ReLU(), nn.Dropout(self.dropout)]
            width = self.hidden_dim
        out = nn.Linear(width, self.output_dim)
        nn.init.kaiming_normal_(out.weight, nonlinearity="sigmoid")
        self.layers = nn.Sequential(*layers, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_dim) → (B, out_dim) logits."""
        return self.layers(x)

    def config(self) -> dict[str, int | float]:
        """Constructor arguments, so a saved tagger can rebuild it."""
        return {"in_dim": self.in_dim, "out_dim": self.output_dim, "n_layers": self.n_layers,
                "hidden_dim": self.hidden_dim, "dropout": self.dropout}


#: Tagger networks by name: each takes ``in_dim`` and ``out_dim`` (plus its own options) and has ``config()``.
NETWORKS: dict[str, type[nn.Module]] = {"linear": LinearProbe, "mlp": MLPHead, "stacked_mlp": StackedMLP}


def build_network(kind: str, **args) -> nn.Module:
    """``NETWORKS[kind](**args)``; an unknown ``kind`` names the valid ones."""
    if kind not in NETWORKS:
        raise ValueError(f"unknown tagger network '{kind}'; choose one of: {', '.join(NETWORKS)}")
    return NETWORKS[kind](**args)


# ---- the tagger -----------------------------------------------------------------------------------------------
class Tagger(nn.Module):
    """Standardisation + network: raw frozen features (B, d) → tag logits (B, n_tags).

    Args:
        kind: a key of :data:`NETWORKS`.
        network_args: the network's constructor arguments (``in_dim``, ``out_dim``, ...).
        mean, std: (d,) training-set statistics (see :class:`Standardize`).
        tags: the ``n_tags`` tag names, in output order (defaults to ``"tag0"``, ``"tag1"``, ...).
        info: JSON-able notes saved with the model (training history, feature source, ...).
    """

    def __init__(self, kind: str, network_args: dict, mean: torch.Tensor, std: torch.Tensor,
                 tags: Sequence[str] | None = None, info: dict | None = None):
        super().__init__()
        self.kind = kind
        self.network_args = dict(network_args)
        self.standardize = Standardize(mean, std)
        self.network = build_network(kind, **self.network_args)
        n_tags = self.network.output_dim
        self.tags = list(tags) if tags is not None else [f"tag{j}" for j in range(n_tags)]
        if len(self.tags) != n_tags:
            raise ValueError(f"got {len(self.tags)} tag names for a network with {n_tags} outputs")
        if self.standardize.mean.shape[0] != self.network.in_dim:
            raise ValueError(f"standardisation has {self.standardize.mean.shape[0]} features, the network "
                             f"expects {self.network.in_dim}")
        self.info = dict(info or {})

    @property
    def in_dim(self) -> int:
        return self.network.in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_dim) raw features → (B, n_tags) logits."""
        if x.dim() != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"tagger expects (batch, {self.in_dim}) features, got {tuple(x.shape)}")
        return self.network(self.standardize(x))

    @torch.no_grad()
    def predict(self, features: np.ndarray | torch.Tensor, batch_size: int = PREDICT_BATCH) -> np.ndarray:
        """p(tag | track) for every row: (n, in_dim) → (n, n_tags) float32 in [0, 1] (eval mode)."""
        was_training = self.training
        self.eval()
        device = self.standardize.mean.device
        x = torch.as_tensor(np.asarray(features, dtype=np.float32))
        out = [torch.sigmoid(self(x[i:i + batch_size].to(device))).cpu() for i in range(0, len(x), batch_size)]
        self.train(was_training)
        return (torch.cat(out) if out else torch.zeros(0, len(self.tags))).numpy()

    def save(self, path: str | Path) -> Path:
        """Write a plain dict (loadable with ``weights_only=True``) atomically to ``path``."""
        payload = {
            "format": FORMAT,
            "kind": self.kind,
            "network_args": self.network_args,
            "tags": self.tags,
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
            "info": self.info,
        }
        path = Path(path)
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> Tagger:
        """Rebuild a tagger written by :meth:`save` (eval mode).

        Raises:
            DataError: the file is missing or is not a saved tagger.
        """
        path = Path(path)
        if not path.is_file():
            raise DataError(path, "no such tagger file; train one first (train_tagger(...).save(path))")
        try:
            payload = torch.load(path, map_location=device, weights_only=True)
        except Exception as error:  # noqa: BLE001 -- any unpickling failure means "not a tagger file"
            raise DataError(path, f"not a saved tagger ({type(error).__name__}: {error})") from error
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise DataError(path, f"not a saved tagger (expected format '{FORMAT}')", key="format")
        state = payload["state_dict"]
        tagger = cls(payload["kind"], payload["network_args"], state["standardize.mean"], state["standardize.std"],
                     payload["tags"], payload["info"])
        tagger.load_state_dict(state)
        return tagger.to(device).eval()


# ---- metrics --------------------------------------------------------------------------------------------------
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


# ---- training -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainSettings:
    """How a tagger is trained (see the module docstring).

    Attributes:
        lr: peak learning rate of Adam. weight_decay: Adam's L2 weight decay.
        batch_size: tracks per step. epochs: passes over the training set (at most).
        warmup_epochs: epochs of linear warm-up from 0 to ``lr`` before the cosine decay to 0.
        patience: stop after this many epochs without a better validation PR-AUC (None: never stop early).
        seed: seeds initialisation, shuffling and dropout. device: where to train ("cpu", "cuda", ...).
    """

    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 128
    epochs: int = 100
    warmup_epochs: float = 1.0
    patience: int | None = 10
    seed: int = 0
    device: str = "cpu"


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
    device = torch.device(settings.device)
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
                loss = loss_fn(tagger(x[rows]), y[rows])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
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
        kind: a key of :data:`NETWORKS` ("linear", "mlp" or "stacked_mlp").
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


# ---- the command ----------------------------------------------------------------------------------------------
def train_head_command(run_dir: str | Path, task: str, out: str | Path, features: str = "shared",
                       head: str = "linear", settings: TrainSettings = TrainSettings(), **network_args) -> dict:
    """What ``retrieval train-head --run RUN --task mood|genre --features shared|audio|listening --head linear|mlp
    --out HEAD`` does: train a tagger for one tag category on a run's frozen features, save it, score the test split.

    Args:
        run_dir: a trained run. task: the tag category to predict ("mood", "genre", or any category of the run).
        out: where to save the tagger (:meth:`Tagger.save`).
        features: "shared" | "audio" | "listening" (see :mod:`retrieval.heads.features`).
        head: a key of :data:`NETWORKS`. settings: training settings. **network_args: e.g. ``hidden_dim``.

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
