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

from retrieval.config import Config, expand_path
from retrieval.data.assembly import ExperimentData, prepare_data
from retrieval.data.corpus import check_corpus_root
from retrieval.data.frozen import freeze_features
from retrieval.devices import autocast, model_device, place_model
from retrieval.fileio import folder_lock, write_text_atomic
from retrieval.model import JointModel
from retrieval.runs import RunFolder, TrainState, build_model, load_run, model_args, text_encoder_for
from retrieval.training.loop import TripletForward, train, training_step

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
    tags = model.encode_text(data.vocabulary.vectors.to(model_device(model))).float().cpu()
    return tracks.numpy() @ tags.numpy().T  # numpy: float32 also under the caller's autocast


def evaluate_split(model: JointModel, data: ExperimentData, split: str, config: Config) -> dict:
    """The paper's protocol on ``split``: per-tag AP, ROC-AUC, P@k; means; per-category MAP."""
    from retrieval.evaluation import retrieval_metrics, summarize

    scores = split_scores(model, data, split, config.eval.n_crops, config.eval.batch_size)
    labels = data.splits[split].labels.numpy()
    metrics = retrieval_metrics(scores, labels, k=config.eval.k)
    return summarize(metrics, data.vocabulary.tags, data.vocabulary.category_of)


def evaluate_generalisation(run: str | Path, other: str | Path, progress: bool = True) -> dict:
    """MAP on the demo test split vs on the other render (:mod:`retrieval.data.demo.other_render`), shared tags.

    Both sides are scored on the tags the other render shares with the run's vocabulary, cold start (no listening
    data on either side, so a hybrid embeds every track from its audio alone: the other render's tracks have never
    been played). Writes ``RUN/generalisation.json``.

    Returns:
        ``{"shared_tags", "demo_test_map", "other_render_map", "ratio", "per_category": {category: {"demo_test",
        "other_render", "ratio", "n_tags"}}, "tags", "demo_test", "other_render", "run", "other"}``: MAPs over the
        shared tags with positives in both test sets (``tags``); ``demo_test`` / ``other_render`` are
        :func:`evaluate_split`'s whole summaries.

    Raises:
        InputError: a cultural or concat run (they cannot embed tracks without listening data), or no shared tag.
    """
    import dataclasses

    from retrieval.data.assembly import config_corpus
    from retrieval.errors import InputError

    loaded = load_run(run)
    config = loaded.config
    if config.model.modality in ("cultural", "concat"):
        raise InputError(f"{run}: a {config.model.modality} run needs listening data for every track; the other "
                         "render's tracks have none, so it cannot be evaluated there")
    other_config = dataclasses.replace(
        config, data=dataclasses.replace(config.data, root=str(other), splits=None, unseen_tags=())
    )
    other_tags = set(config_corpus(other_config).tag_names)
    shared = [t for t in loaded.vocabulary.tags if t in other_tags]
    if not shared:
        raise InputError(f"{other}: shares no tag with the run's vocabulary; build it from the run's demo corpus "
                         "(retrieval data other-render)")
    vocabulary = loaded.vocabulary.subset(shared)
    summaries = {}
    for name, settings in (("demo_test", config), ("other_render", other_config)):
        data, _ = prepare_data(settings, vocabulary=vocabulary, progress=progress, need_listening=False,
                               splits=("test",))
        freeze_features(data, loaded.model, progress)
        summaries[name] = evaluate_split(loaded.model, data, "test", config)
        summaries[name]["n_tracks"] = len(data.splits["test"].ids)
    # The same tags on both sides: those with positives (and negatives) in both test sets.
    common = [t for t in shared if all(t in summaries[name]["per_tag"] for name in summaries)]

    def mean_ap(name: str, tags: list[str]) -> float | None:
        return float(np.mean([summaries[name]["per_tag"][t]["ap"] for t in tags])) if tags else None

    per_category = {}
    for category in sorted({vocabulary.category_of[t] for t in common}):
        tags = [t for t in common if vocabulary.category_of[t] == category]
        before, after = mean_ap("demo_test", tags), mean_ap("other_render", tags)
        per_category[category] = {"n_tags": len(tags), "demo_test": before, "other_render": after,
                                  "ratio": after / before if before else None}
    before, after = mean_ap("demo_test", common), mean_ap("other_render", common)
    result = {"shared_tags": len(common), "demo_test_map": before, "other_render_map": after,
              "ratio": after / before if before else None, "per_category": per_category,
              "tags": common, **summaries, "run": str(loaded.folder), "other": str(other)}
    write_text_atomic(loaded.folder / "generalisation.json", json.dumps(result, indent=2))
    return result


def format_generalisation(result: dict) -> str:
    """The demo-test vs other-render table of :func:`evaluate_generalisation`."""
    def row(name: str, n: int, before: float | None, after: float | None) -> str:
        ratio = f"{after / before:>7.2f}" if before and after is not None else f"{'–':>7}"
        cells = [f"{v:>11.4f}" if v is not None else f"{'–':>11}" for v in (before, after)]
        return f"{name:<16}{n:>5}{cells[0]}{cells[1]}{ratio}"

    demo, other = result["demo_test"], result["other_render"]
    lines = [f"MAP, cold start, on the {result['shared_tags']} tags the other render shares "
             f"({demo['n_tracks']} demo test tracks, {other['n_tracks']} other-render tracks)",
             f"{'scope':<16}{'tags':>5}{'demo test':>11}{'other':>11}{'ratio':>7}",
             row("overall", result["shared_tags"], result["demo_test_map"], result["other_render_map"])]
    lines += [row(f"  {c}", f["n_tags"], f["demo_test"], f["other_render"])
              for c, f in sorted(result["per_category"].items())]
    return "\n".join(lines)


def train_run(config: Config, out: str | Path, resume: bool = False, progress: bool = True,
              micro: int = 1) -> TrainState:
    """Train ``config`` into run folder ``out`` (``resume``: continue from ``out/checkpoints/last.ckpt``); a
    second process training into the same ``out`` is refused (:func:`retrieval.fileio.folder_lock`).

    On ``train.device`` in ``train.precision``, crops read by ``train.workers`` data-loader processes
    (:mod:`retrieval.training.batches`); under ``torchrun``, one rank of a data-parallel run
    (:mod:`retrieval.training.distributed`). ``micro``: forward passes per step (each with its own batch-norm
    statistics), what ``micro`` DDP processes compute — the reference the distributed test compares with.
    """
    import contextlib

    from retrieval.training.distributed import Distributed

    check_corpus_root(expand_path(config.data.root))  # before a run folder is made or anything trained
    # Under torchrun the ranks train one run together: rank 0 holds the lock for all of them.
    with folder_lock(out) if Distributed.from_env().main else contextlib.nullcontext():
        return _train_run(config, out, resume, progress, micro)


def _train_run(config: Config, out: str | Path, resume: bool, progress: bool, micro: int) -> TrainState:
    from retrieval.training.batches import RetrievalBatches, batch_stream, to_device
    from retrieval.training.distributed import Distributed
    from retrieval.training.mining import SAMPLERS

    group = Distributed.from_env()
    device = group.device(config.train.device)
    group.start(device)
    try:
        with group.main_first():
            folder = RunFolder.open(config, out, resume)
            text_encoder = text_encoder_for(config, folder.path / "text")
            modality = config.model.modality
            data, factors = prepare_data(
                config,
                text_encoder=text_encoder,
                progress=progress and group.main,
                need_audio=modality != "cultural",
                need_listening=True,
            )
            if factors is not None and group.main:
                factors.save(folder.path / "item_factors.npz")
        if config.data.unseen_tags:
            data.hold_out(config.data.unseen_tags)
        if config.train.augment != "none" and modality != "cultural":
            from retrieval.data.assembly import AugmentedCrops

            data.train_crops = AugmentedCrops(config, data.splits["train"].ids, progress and group.main)
        listening_dim = (
            data.splits["train"].listening.shape[1] if data.splits["train"].listening is not None else None
        )
        args = model_args(config, data.vocabulary.vectors.shape[1], listening_dim)
        torch.manual_seed(config.train.seed)
        model = place_model(build_model(args), device, config.train)
        freeze_features(data, model, progress and group.main)
        sampler = SAMPLERS[config.train.sampler](data.splits["train"].labels)
        optimizer = torch.optim.Adam(
            model.parameters(), lr=config.train.lr, weight_decay=config.train.weight_decay
        )
        generator = torch.Generator().manual_seed(config.train.seed)
        state = folder.restore(model, optimizer, generator) if resume else None

        def evaluate(m) -> float:
            with autocast(device, config.train.precision):
                return evaluate_split(m, data, "valid", config)["map"]

        steps = config.train.steps
        batches = batch_stream(
            RetrievalBatches(data, sampler, config.train.batch_size, config.train.seed, group.shard),
            (state.epoch if state else 0) * steps, config.train.epochs * steps,
            workers=config.train.workers, pin_memory=device.type == "cuda",
        )
        forward = group.wrap(TripletForward(model), device)
        vectors = data.vocabulary.vectors.to(device)
        labels = data.splits["train"].labels

        def step() -> dict:
            return training_step(forward, to_device(next(batches), device), vectors, labels, config.train,
                                 micro=micro, shard=group.rank * micro, gather=group.gather)

        save = folder.saver(args, model, optimizer, generator, data.vocabulary)
        return train(model, step, optimizer, config.train, evaluate, save, state, progress, main=group.main)
    finally:
        group.close()


def evaluate_run(run: str | Path, split: str = "test", progress: bool = True, device: str | None = None,
                 precision: str | None = None) -> dict:
    """Evaluate a trained run on ``split`` on ``device`` in ``precision`` (None: the run's ``train.device`` /
    ``train.precision``); writes RUN/metrics.json and RUN/category_map.png."""
    from retrieval.evaluation import plot_category_map, seen_unseen

    loaded = load_run(run)
    where, precision = loaded.placed(device, precision)
    modality = loaded.config.model.modality
    data, _ = prepare_data(
        loaded.config,
        vocabulary=loaded.vocabulary,
        progress=progress,
        need_audio=modality != "cultural",
        need_listening=True,
    )
    freeze_features(data, loaded.model, progress)
    with autocast(where, precision):
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
