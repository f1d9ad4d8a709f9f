"""The training loop: sample (tag, positive) rows → embed → mine in-batch negatives → triplet loss → step.

It receives built objects (model, sampler, loss, optimizer, data) and builds none of them
(:mod:`retrieval.training.experiment` and the tasks do). One "epoch" is ``train.steps`` batches, after which the
model is evaluated on the validation split (the paper's protocol, MAP) and checkpointed:

- ``last.ckpt``: weights + optimizer + every random state (for ``--resume``);
- ``best.ckpt``: the weights with the best validation MAP so far (what evaluation and search use).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from retrieval.config import TrainConfig
from retrieval.devices import autocast, grad_scaler, model_device
from retrieval.model import JointModel, TrackInputs, part_similarities
from retrieval.runs.folder import TrainState
from retrieval.training.batches import seed_dropout, step_generator
from retrieval.training.losses import triplet_loss_from_similarity
from retrieval.training.mining import mine_negatives

# Weight of the gated model's cold-start regression (predict x_c from audio) relative to one triplet term.
COLD_START_WEIGHT = 1.0


class TripletForward(nn.Module):
    """The parameterised half of a training step, as one ``forward`` (what ``DistributedDataParallel`` wraps):
    word vectors and track inputs → the model's normalised text parts, track parts and (gated) gate weights.
    Everything after it — similarities, mining, the loss — has no parameters and runs on the gathered parts.
    """

    def __init__(self, model: JointModel):
        super().__init__()
        self.model = model

    def forward(self, word_vectors: torch.Tensor, tracks: TrackInputs) -> dict[str, torch.Tensor]:
        parts = {f"text.{k}": v for k, v in self.model.text_parts(word_vectors).items()}
        parts.update({f"track.{k}": v for k, v in self.model.track_parts(tracks).items()})
        if self.model.modality == "gated":
            parts["gate"] = self.model.gate_weight(word_vectors)
        return parts


def _concat(parts: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {key: torch.cat([p[key] for p in parts]) for key in parts[0]}


def training_step(
    forward: nn.Module,
    batch: dict,
    word_vectors: torch.Tensor,
    labels: torch.Tensor,
    config: TrainConfig,
    micro: int = 1,
    shard: int = 0,
    gather: Callable[[dict], dict] | None = None,
) -> dict:
    """One optimisation step's forward pass; returns {"loss": tensor, "triplets": int, "dropped": int}.

    Loss = Σ over the model's similarity matrices (one for single-space models; fused + audio + cultural for the
    gated model) of the mean-over-all-triplets hinge relu(margin − s(a, p) + s(a, n)), plus the gated model's
    cold-start term 1 − cos(x̂_c, x_c) over tracks with listening data. Negatives are mined among the global
    batch's tracks (every process's, after ``gather``), with the step's own generator.

    Args:
        forward: a :class:`TripletForward` (or the ``DistributedDataParallel`` around one).
        batch: :class:`~retrieval.training.batches.RetrievalBatches`' batch, on the model's device.
        word_vectors: (n_tags, text_dim) the vocabulary's word vectors, on the model's device.
        labels: (n_train, n_tags) bool training labels (CPU: mining runs there).
        micro: forward passes this process cuts its rows into (batch-norm statistics are per pass), so one
            process computes exactly what ``micro`` DDP processes would.
        shard: the index of this process's first pass among all passes of the step (``rank · micro``).
        gather: this process's parts → the parts of every process, in rank order, differentiably
            (:meth:`retrieval.training.distributed.Distributed.gather`); None for one process.
    """
    tags, positives, step = batch["tags"], batch["positives"], batch["step"]
    local = len(batch["has_listening"])
    first = shard // micro * local  # this process's rows of the global batch
    size = local // micro
    passes = []
    for m in range(micro):
        rows = slice(m * size, (m + 1) * size)
        seed_dropout(config.seed, step, shard + m)
        tracks = TrackInputs(
            features=batch["features"][rows] if "features" in batch else None,
            listening=batch["listening"][rows] if "listening" in batch else None,
            has_listening=batch["has_listening"][rows],
        )
        passes.append(forward(word_vectors[tags[first + m * size: first + (m + 1) * size]], tracks))
    parts = _concat(passes)
    if gather is not None:
        parts = gather(parts)
    text = {k.removeprefix("text."): v for k, v in parts.items() if k.startswith("text.")}
    track = {k.removeprefix("track."): v for k, v in parts.items() if k.startswith("track.")}
    # Cosines and the hinge in float32 whatever the autocast precision of the towers.
    sims = {k: v.float() for k, v in part_similarities(text, track, parts.get("gate")).items()}
    main = sims.get("fused", sims.get("shared"))
    triplets = mine_negatives(
        tags.cpu(),
        positives.cpu(),
        labels,
        similarity=main.detach().cpu(),
        weighted=config.negatives == "weighted",
        generator=step_generator(config.seed, step, "mine"),
    )
    loss = sum(triplet_loss_from_similarity(s, triplets, config.margin) for s in sims.values())
    if "gate" in parts:
        has = track["has_listening"].bool()
        if has.any():
            cos = F.cosine_similarity(
                track["cultural_predicted"][has].float(), track["cultural_target"][has].detach().float()
            )
            loss = loss + COLD_START_WEIGHT * (1 - cos).mean()
    return {
        "loss": loss,
        "triplets": len(triplets.anchors),
        "dropped": config.batch_size - len(triplets.anchors),
    }


def train(
    model,
    step: Callable[[], dict],
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    evaluate: Callable[[object], float],
    save: Callable[[str, TrainState, bool], None],
    state: TrainState | None = None,
    progress: bool = True,
    unit: str = "triplets",
    metric: str = "valid_map",
    main: bool = True,
) -> TrainState:
    """Run epochs ``state.epoch .. config.epochs - 1`` (any task: the step decides what is learned).

    Args:
        step: one batch's forward pass → ``{"loss": tensor, unit: count}`` (e.g. :func:`training_step`); it
            draws its randomness from a generator the caller saves with the checkpoint.
        evaluate: model → the validation figure to maximise (called after every ``eval_every`` epochs).
        save: (name, state, with_train_state) → writes ``name`` ("last" or "best") checkpoint.
        state: a resumed state, or None to start fresh.
        unit: what ``step`` counts (history records ``<unit>_per_s``).
        metric: the history key of the validation figure (``valid_map``, ``valid_pr_auc``, ...).
        main: whether this process validates, checkpoints and reports (rank 0 of a distributed run); the
            others only step.

    Each step runs under ``config.precision``'s autocast on the model's device, with loss scaling for fp16 on
    CUDA (:mod:`retrieval.devices`); the scaler's state travels in ``state.loss_scale`` (saved with ``last``).
    """
    from tqdm.auto import tqdm

    state = state or TrainState()
    device = model_device(model)
    scaler = grad_scaler(device, config.precision)
    if scaler.is_enabled() and state.loss_scale:
        scaler.load_state_dict(state.loss_scale)
    progress = progress and main
    for epoch in range(state.epoch, config.epochs):
        model.train()
        started = time.perf_counter()
        total, count = 0.0, 0
        bar = tqdm(
            range(config.steps), desc=f"epoch {epoch + 1}/{config.epochs}", disable=not progress, leave=False
        )
        for _ in bar:
            with autocast(device, config.precision):
                out = step()
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(out["loss"]).backward()
            scaler.step(optimizer)
            scaler.update()
            total += out["loss"].item()
            count += out[unit]
            bar.set_postfix(loss=f"{out['loss'].item():.4f}")
        seconds = time.perf_counter() - started
        record = {
            "epoch": epoch + 1,
            "loss": total / config.steps,
            f"{unit}_per_s": count / seconds,
            "seconds": seconds,
        }
        improved = False
        if main and ((epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs):
            model.eval()
            record[metric] = evaluate(model)
            if record[metric] > state.best_map:
                state.best_map, state.best_epoch, improved = record[metric], epoch + 1, True
        state.history.append(record)
        state.epoch = epoch + 1
        state.loss_scale = scaler.state_dict() if scaler.is_enabled() else {}
        if progress:
            shown = f"{metric} {record[metric]:.4f}" if metric in record else ""
            tqdm.write(f"epoch {epoch + 1}: loss {record['loss']:.4f} {shown} ({record[f'{unit}_per_s']:.0f} {unit}/s)")
        if improved:
            save("best", state, False)
        if main:
            save("last", state, True)
    return state
