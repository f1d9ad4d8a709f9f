"""Train and evaluate a retrieval run from a config: build the objects, train, evaluate.

The run folder's layout and resume rules are :mod:`retrieval.runs.folder`; loading a trained run is
:func:`retrieval.runs.load_run`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from retrieval.config import Config
from retrieval.data.assembly import ExperimentData, prepare_data
from retrieval.fileio import write_text_atomic
from retrieval.model import JointModel
from retrieval.runs import RunFolder, TrainState, build_model, load_run, model_args, text_encoder_for
from retrieval.training.loop import train, training_step

log = logging.getLogger(__name__)


# ---- evaluation ----------------------------------------------------------------------------------------------
@torch.no_grad()
def split_scores(
    model: JointModel, data: ExperimentData, split: str, n_crops: int, batch_size: int
) -> np.ndarray:
    """(n_tracks, n_tags) similarity of every track of ``split`` to every tag."""
    from retrieval.embedding import embed_split

    model.eval()
    tracks = embed_split(model, data, split, n_crops, batch_size)
    tags = model.encode_text(data.vocabulary.vectors)
    return (tracks @ tags.T).numpy()


def evaluate_split(model: JointModel, data: ExperimentData, split: str, config: Config) -> dict:
    """The paper's protocol on ``split``: per-tag AP, ROC-AUC, P@k; means; per-category MAP."""
    from retrieval.evaluation import retrieval_metrics, summarize

    scores = split_scores(model, data, split, config.eval.n_crops, config.eval.batch_size)
    labels = data.splits[split].labels.numpy()
    metrics = retrieval_metrics(scores, labels, k=config.eval.k)
    return summarize(metrics, data.vocabulary.tags, data.vocabulary.category_of)


def train_run(config: Config, out: str | Path, resume: bool = False, progress: bool = True) -> TrainState:
    """Train ``config`` into run folder ``out`` (``resume``: continue from ``out/checkpoints/last.ckpt``)."""
    from retrieval.training.mining import SAMPLERS

    folder = RunFolder.open(config, out, resume)
    text_encoder = text_encoder_for(config, folder.path / "text")
    modality = config.model.modality
    data, factors = prepare_data(
        config,
        text_encoder=text_encoder,
        progress=progress,
        need_audio=modality != "cultural",
        need_listening=True,
    )
    if factors is not None:
        factors.save(folder.path / "item_factors.npz")
    if config.data.unseen_tags:
        data.hold_out(config.data.unseen_tags)
    listening_dim = (
        data.splits["train"].listening.shape[1] if data.splits["train"].listening is not None else None
    )
    args = model_args(config, data.vocabulary.vectors.shape[1], listening_dim)
    torch.manual_seed(config.train.seed)
    model = build_model(args)
    sampler = SAMPLERS[config.train.sampler](data.splits["train"].labels)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=config.train.lr, weight_decay=config.train.weight_decay
    )
    generator = torch.Generator().manual_seed(config.train.seed)
    state = folder.restore(model, optimizer, generator) if resume else None

    def evaluate(m) -> float:
        return evaluate_split(m, data, "valid", config)["map"]

    def step() -> dict:
        return training_step(model, data, sampler, config.train, generator)

    save = folder.saver(args, model, optimizer, generator, data.vocabulary)
    return train(model, step, optimizer, config.train, evaluate, save, state, progress)


def evaluate_run(run: str | Path, split: str = "test", progress: bool = True) -> dict:
    """Evaluate a trained run on ``split``; writes RUN/metrics.json and RUN/category_map.png."""
    from retrieval.evaluation import plot_category_map, seen_unseen

    loaded = load_run(run)
    modality = loaded.config.model.modality
    data, _ = prepare_data(
        loaded.config,
        vocabulary=loaded.vocabulary,
        progress=progress,
        need_audio=modality != "cultural",
        need_listening=True,
    )
    summary = evaluate_split(loaded.model, data, split, loaded.config)
    if loaded.config.data.unseen_tags:
        summary["seen_unseen"] = seen_unseen(summary, loaded.config.data.unseen_tags)
    summary["split"] = split
    summary["n_tracks"] = len(data.splits[split].ids)
    summary["excluded_tracks"] = data.excluded
    summary["run"] = str(loaded.folder)
    write_text_atomic(loaded.folder / "metrics.json", json.dumps(summary, indent=2))
    plot_category_map({loaded.folder.name: summary}, loaded.folder / "category_map.png")
    return summary
