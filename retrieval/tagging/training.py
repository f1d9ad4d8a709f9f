"""Train and evaluate a tagger (``task: tagging``), supervised or as a noisy student.

A tagging run folder holds what a retrieval run does (``config.yaml``, ``checkpoints/{last,best}.ckpt``,
``history.json``, ``metrics.json`` after evaluation); its checkpoint's ``model_args`` rebuild a
:class:`~retrieval.tagging.model.TaggingModel`.

Training (SMC 2020 / ISMIR 2021 protocol, REFERENCE §3–4): each step draws ``train.batch_size`` random tracks of
the train split, one random crop each, and minimises binary cross-entropy on the tag logits (Adam). After every
``train.eval_every`` epochs the validation split is tagged whole-track (``eval.n_crops`` equally spaced crops,
probabilities averaged) and the checkpoint with the best macro PR-AUC is kept.

Noisy student (``tagging.teacher`` set): the teacher run tags the ``unlabeled`` split once (clean input); each
student batch then mixes labelled crops (true tags) and pseudo-labelled crops (the teacher's probabilities), all
cut from cached waveforms and, with ``tagging.augment``, noised by :class:`retrieval.augment.Augment` before the
student's own front end. :func:`noisy_student` iterates: each student becomes the next one's teacher.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from retrieval.config import Config, config_from_dict, expand_path
from retrieval.encoders.backbones import backbone_arguments
from retrieval.fileio import write_text_atomic
from retrieval.tagging.model import TaggingModel, build_tagging_model
from retrieval.training.checkpoint import load_checkpoint
from retrieval.training.experiment import RunFolder
from retrieval.training.inputs import (
    SPLITS,
    ExperimentData,
    Vocabulary,
    config_corpus,
    feature_store,
    prepare_data,
)
from retrieval.training.loop import TrainState, checkpoint_dir, train

log = logging.getLogger(__name__)

__all__ = [
    "TaggingRun",
    "evaluate_tagging_run",
    "load_tagging_run",
    "noisy_student",
    "predict_files",
    "split_probabilities",
    "tagging_args",
    "tagging_summary",
    "train_tagging_run",
]

#: Tracks timed end to end (decode → features → model) for the audio-seconds-per-second figure.
SPEED_FILES = 8
UNLABELED = "unlabeled"


def tagging_args(config: Config, n_tags: int) -> dict:
    """Constructor arguments of the tagger: the backbone (``model.audio``, ``model.mel``; output
    ``model.embed_dim``), ``n_tags`` and the head's dropout ``model.dropout``."""
    m = config.model
    return {
        "audio": {"name": m.audio.backbone, "args": backbone_arguments(m.audio, m.mel, m.embed_dim)},
        "n_tags": n_tags,
        "dropout": m.dropout,
    }


# ---- whole-track prediction and metrics ---------------------------------------------------------------------
@torch.no_grad()
def split_probabilities(model: TaggingModel, data: ExperimentData, split: str, n_crops: int,
                        batch_size: int) -> np.ndarray:
    """(n_tracks, n_tags) whole-track probabilities of every track of ``split`` (from the feature cache)."""
    model.eval()
    n = len(data.splits[split].ids)
    out = [model.predict_crops(data.track_inputs(split, range(s, min(s + batch_size, n)), n_crops).mel)
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
    return model.predict_crops(torch.stack(crops).float())


# ---- runs ---------------------------------------------------------------------------------------------------
@dataclass
class TaggingRun:
    """A trained tagging run loaded for evaluation or prediction."""

    folder: Path
    config: Config
    model: TaggingModel
    vocabulary: Vocabulary
    checkpoint: dict


def load_tagging_run(run: str | Path, which: str = "best") -> TaggingRun:
    """Load a trained tagging run (``which``: "best" or "last").

    Raises:
        FileNotFoundError: no checkpoint. ValueError: the run is a retrieval run.
    """
    run = Path(run)
    path = checkpoint_dir(run) / f"{which}.ckpt"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no checkpoint; train it with `retrieval train --config ... --out {run}`")
    payload = load_checkpoint(path)
    config = config_from_dict(payload["config"])
    if config.task != "tagging":
        raise ValueError(f"{run} is a {config.task} run, not a tagging run (task: tagging)")
    model = build_tagging_model(payload["model_args"])
    model.load_state_dict(payload["model"])
    model.eval()
    return TaggingRun(run, config, model, Vocabulary.from_dict(payload["vocabulary"]), payload)


def _pseudo_labels(teacher_path: Path, student: Config, ids: list[str], vocabulary: Vocabulary,
                   progress: bool) -> torch.Tensor:
    """The teacher's whole-track probabilities for ``ids`` (clean input, its own front end) → (n, n_tags)."""
    teacher = load_tagging_run(teacher_path)
    if teacher.vocabulary.tags != vocabulary.tags:
        raise ValueError(f"teacher {teacher_path} was trained on other tags than this corpus's; train the teacher "
                         "on the same corpus and splits")
    config = teacher.config
    if expand_path(config.data.root) != expand_path(student.data.root):
        config = config_from_dict({**config.to_dict(), "data": student.to_dict()["data"]})
    data, _ = prepare_data(config, vocabulary=teacher.vocabulary, progress=progress, need_listening=False,
                           splits=(UNLABELED,))
    probabilities = split_probabilities(teacher.model, data, UNLABELED, config.eval.n_crops, config.eval.batch_size)
    by_id = dict(zip(data.splits[UNLABELED].ids, probabilities, strict=True))
    return torch.from_numpy(np.stack([by_id[i] for i in ids]).astype(np.float32))


class _NoisyBatches:
    """Student batches: labelled and pseudo-labelled crops cut from cached waveforms, optionally augmented."""

    def __init__(self, config: Config, data: ExperimentData, model: TaggingModel, progress: bool):
        from retrieval.audio import WaveConfig
        from retrieval.augment import Augment

        rate = model.mel.sample_rate
        ids = [*data.splits["train"].ids, *data.splits[UNLABELED].ids]
        self.waves, missing = feature_store(config_corpus(config), ids, WaveConfig(rate), progress)
        if missing:
            raise ValueError(f"{len(missing)} tracks lost their audio between feature caches (e.g. "
                             f"{sorted(missing)[:3]}); rebuild the corpus")
        self.samples = model.backbone.input_samples
        self.augment = Augment(rate) if config.tagging.augment else None
        self.data = data
        self.pseudo = _pseudo_labels(expand_path(config.tagging.teacher), config, data.splits[UNLABELED].ids,
                                     data.vocabulary, progress)
        self.n_unlabeled = round(config.tagging.unlabeled_share * config.train.batch_size)

    def __call__(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """→ waves (B, samples) and targets (B, n_tags) in [0, 1]."""
        train, unlabeled = self.data.splits["train"], self.data.splits[UNLABELED]
        rows_l = torch.randint(len(train.ids), (batch_size - self.n_unlabeled,), generator=generator)
        rows_u = torch.randint(len(unlabeled.ids), (self.n_unlabeled,), generator=generator)
        ids = [train.ids[r] for r in rows_l.tolist()] + [unlabeled.ids[r] for r in rows_u.tolist()]
        waves = self.waves.random_crops(ids, self.samples, generator)[:, 0]  # (B, samples)
        if self.augment is not None:
            waves = self.augment(waves, generator)
        targets = torch.cat([train.labels[rows_l].float(), self.pseudo[rows_u]])
        return waves, targets


def train_tagging_run(config: Config, out: str | Path, resume: bool = False, progress: bool = True) -> TrainState:
    """Train the tagger of ``config`` (``task: tagging``) into run folder ``out`` (see the module docstring)."""
    if config.task != "tagging":
        raise ValueError(f"config task is {config.task!r}; train it with retrieval.training.experiment.train_run")
    noisy = config.tagging.teacher is not None
    if noisy and not expand_path(config.tagging.teacher).exists():
        raise FileNotFoundError(f"tagging.teacher: {config.tagging.teacher} does not exist; train the teacher "
                                "first (retrieval train --config configs/tagging/<backbone>.yaml --out RUN)")
    folder = RunFolder.open(config, out, resume)
    splits = (*SPLITS, UNLABELED) if noisy else SPLITS
    data, _ = prepare_data(config, progress=progress, need_listening=False, splits=splits)
    if noisy and not data.splits[UNLABELED].ids:
        raise ValueError(f"{config.data.root}: the corpus has no '{UNLABELED}' split for the noisy student")
    args = tagging_args(config, len(data.vocabulary.tags))
    torch.manual_seed(config.train.seed)
    model = build_tagging_model(args)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr, weight_decay=config.train.weight_decay)
    generator = torch.Generator().manual_seed(config.train.seed)
    state = folder.restore(model, optimizer, generator) if resume else None
    labels = data.splits["train"].labels
    batches = _NoisyBatches(config, data, model, progress) if noisy else None

    def step() -> dict:
        if batches is not None:
            waves, targets = batches(config.train.batch_size, generator)
            logits = model(waves)
        else:
            rows = torch.randint(len(data.splits["train"].ids), (config.train.batch_size,), generator=generator)
            logits = model.forward_features(data.random_inputs("train", rows, generator).mel)
            targets = labels[rows].float()
        return {"loss": F.binary_cross_entropy_with_logits(logits, targets), "clips": len(targets)}

    def evaluate(m) -> float:
        probabilities = split_probabilities(m, data, "valid", config.eval.n_crops, config.eval.batch_size)
        return tagging_summary(probabilities, data.splits["valid"].labels.numpy(), data.vocabulary)["pr_auc"]

    save = folder.saver(args, model, optimizer, generator, data.vocabulary)
    return train(model, step, optimizer, config.train, evaluate, save, state, progress, unit="clips",
                 metric="valid_pr_auc")


def _audio_seconds_per_second(model: TaggingModel, config: Config, ids: list[str], n_crops: int) -> dict:
    """Time :func:`predict_files` (decode → features → model, whole tracks) on up to SPEED_FILES tracks."""
    from retrieval.audio import audio_info

    found = config_corpus(config).audio_locator().locate(ids[:SPEED_FILES]).found
    paths = list(found.values())
    if not paths:
        return {}
    seconds = sum(audio_info(p).duration_s for p in paths)
    predict_files(model, paths[:1], n_crops)  # warm-up: first-call allocations
    started = time.perf_counter()
    predict_files(model, paths, n_crops)
    elapsed = time.perf_counter() - started
    return {"audio_seconds_per_s": seconds / elapsed, "speed_files": len(paths), "speed_threads":
            torch.get_num_threads()}


def evaluate_tagging_run(run: str | Path, split: str = "test", progress: bool = True) -> dict:
    """Tag ``split`` whole-track; macro ROC-AUC / PR-AUC, per category, parameters and speed → RUN/metrics.json."""
    loaded = load_tagging_run(run)
    config = loaded.config
    data, _ = prepare_data(config, vocabulary=loaded.vocabulary, progress=progress, need_listening=False)
    probabilities = split_probabilities(loaded.model, data, split, config.eval.n_crops, config.eval.batch_size)
    summary = tagging_summary(probabilities, data.splits[split].labels.numpy(), loaded.vocabulary)
    summary.update({
        "split": split,
        "n_tracks": len(data.splits[split].ids),
        "run": str(loaded.folder),
        "backbone": config.model.audio.backbone,
        "parameters": sum(p.numel() for p in loaded.model.parameters()),
        "input_seconds": loaded.model.backbone.input_samples / loaded.model.mel.sample_rate,
        "n_crops": config.eval.n_crops,
        **_audio_seconds_per_second(loaded.model, config, list(data.splits[split].ids), config.eval.n_crops),
    })
    write_text_atomic(loaded.folder / "metrics.json", json.dumps(summary, indent=2))
    return summary


def noisy_student(config: Config, teacher: str | Path, out: str | Path, iterations: int = 1,
                  progress: bool = True) -> list[Path]:
    """Iterate noisy-student training: ``teacher`` labels for student 1 (``OUT/student_1``), which labels for
    student 2, and so on. Finished students are reused, interrupted ones resumed. Returns the student runs."""
    from retrieval.training.experiment import run_is_complete

    out = Path(out)
    runs = []
    for i in range(1, iterations + 1):
        student = config_from_dict({**config.to_dict(), "tagging": {**config.to_dict()["tagging"],
                                                                     "teacher": str(teacher)}})
        folder = out / f"student_{i}"
        if not run_is_complete(folder, student):
            train_tagging_run(student, folder, resume=(checkpoint_dir(folder) / "last.ckpt").exists(),
                              progress=progress)
        runs.append(folder)
        teacher = folder
    return runs

