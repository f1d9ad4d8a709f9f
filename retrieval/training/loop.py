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

from retrieval.config import TrainConfig
from retrieval.data.assembly import ExperimentData
from retrieval.runs.folder import TrainState
from retrieval.training.losses import triplet_loss_from_similarity
from retrieval.training.mining import mine_negatives

# Weight of the gated model's cold-start regression (predict x_c from audio) relative to one triplet term.
COLD_START_WEIGHT = 1.0


def training_step(
    model, data: ExperimentData, sampler, config: TrainConfig, generator: torch.Generator
) -> dict:
    """One optimisation step's forward pass; returns {"loss": tensor, "triplets": int, "dropped": int}.

    Loss = Σ over the model's similarity matrices (one for single-space models; fused + audio + cultural for the
    gated model) of the mean-over-all-triplets hinge relu(margin − s(a, p) + s(a, n)), plus the gated model's
    cold-start term 1 − cos(x̂_c, x_c) over tracks with listening data.
    """
    labels = data.splits["train"].labels
    tags, positives = sampler.sample(config.batch_size, generator)
    inputs = data.random_inputs("train", positives, generator)
    parts = model.track_parts(inputs)
    sims = model.similarities(data.vocabulary.vectors[tags], parts)
    main = sims.get("fused", sims.get("shared"))
    triplets = mine_negatives(
        tags,
        positives,
        labels,
        similarity=main.detach(),
        weighted=config.negatives == "weighted",
        generator=generator,
    )
    loss = sum(triplet_loss_from_similarity(s, triplets, config.margin) for s in sims.values())
    if model.modality == "gated":
        has = parts["has_listening"]
        if has.any():
            cos = F.cosine_similarity(
                parts["cultural_predicted"][has], parts["cultural_target"][has].detach()
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
    """
    from tqdm.auto import tqdm

    state = state or TrainState()
    for epoch in range(state.epoch, config.epochs):
        model.train()
        started = time.perf_counter()
        total, count = 0.0, 0
        bar = tqdm(
            range(config.steps), desc=f"epoch {epoch + 1}/{config.epochs}", disable=not progress, leave=False
        )
        for _ in bar:
            out = step()
            optimizer.zero_grad(set_to_none=True)
            out["loss"].backward()
            optimizer.step()
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
        if (epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs:
            model.eval()
            record[metric] = evaluate(model)
            if record[metric] > state.best_map:
                state.best_map, state.best_epoch, improved = record[metric], epoch + 1, True
        state.history.append(record)
        state.epoch = epoch + 1
        if progress:
            shown = f"{metric} {record[metric]:.4f}" if metric in record else ""
            tqdm.write(f"epoch {epoch + 1}: loss {record['loss']:.4f} {shown} ({record[f'{unit}_per_s']:.0f} {unit}/s)")
        if improved:
            save("best", state, False)
        save("last", state, True)
    return state
