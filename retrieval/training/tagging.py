"""Train and evaluate a tagger (``task: tagging``), supervised or as a noisy student.

A tagging run folder holds what a retrieval run does (:mod:`retrieval.runs.folder`: ``config.yaml``,
``checkpoints/{last,best}.ckpt``, ``history.json``, ``metrics.json`` after evaluation); its checkpoint's
``model_args`` rebuild a :class:`~retrieval.tagging.model.TaggingModel` (``retrieval.runs.load_run(RUN,
task="tagging")``). Prediction and the metrics are :mod:`retrieval.tagging.predict`.

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
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from retrieval.config import Config, config_from_dict, expand_path
from retrieval.data.assembly import SPLITS, ExperimentData, config_corpus, feature_store, prepare_data
from retrieval.data.corpus import check_corpus_root
from retrieval.data.vocabulary import Vocabulary
from retrieval.devices import autocast, model_device, place_model, resolve_device
from retrieval.errors import ConfigError, DataError, InputError, MissingFileError
from retrieval.fileio import folder_lock, write_text_atomic
from retrieval.runs import RunFolder, TrainState, build_model, checkpoint_dir, load_run, run_is_complete, tagging_args
from retrieval.tagging.model import TaggingModel
from retrieval.tagging.predict import predict_files, split_probabilities, tagging_summary
from retrieval.training.batches import TaggingBatches, batch_stream, seed_dropout, step_generator, to_device
from retrieval.training.loop import train

log = logging.getLogger(__name__)

__all__ = ["evaluate_tagging_run", "noisy_student", "train_tagging_run"]

#: Tracks timed end to end (decode → features → model) for the audio-seconds-per-second figure.
SPEED_FILES = 8
UNLABELED = "unlabeled"


def _pseudo_labels(teacher_path: Path, student: Config, ids: list[str], vocabulary: Vocabulary,
                   progress: bool) -> torch.Tensor:
    """The teacher's whole-track probabilities for ``ids`` (clean input, its own front end) → (n, n_tags), on the
    student's ``train.device`` in its ``train.precision``."""
    teacher = load_run(teacher_path, task="tagging", device=student.train.device)
    if teacher.vocabulary.tags != vocabulary.tags:
        raise InputError(f"teacher {teacher_path} was trained on other tags than this corpus's; train the teacher "
                         "on the same corpus and splits")
    config = teacher.config
    if expand_path(config.data.root) != expand_path(student.data.root):
        config = config_from_dict({**config.to_dict(), "data": student.to_dict()["data"]})
    data, _ = prepare_data(config, vocabulary=teacher.vocabulary, progress=progress, need_listening=False,
                           splits=(UNLABELED,))
    with autocast(model_device(teacher.model), student.train.precision):
        probabilities = split_probabilities(teacher.model, data, UNLABELED, config.eval.n_crops,
                                            config.eval.batch_size)
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
            raise DataError(config.data.root, f"{len(missing)} tracks lost their audio between feature caches "
                            f"(e.g. {sorted(missing)[:3]}); rebuild the corpus")
        self.samples = model.backbone.input_samples
        self.augment = Augment(rate) if config.tagging.augment else None
        self.data = data
        self.pseudo = _pseudo_labels(expand_path(config.tagging.teacher), config, data.splits[UNLABELED].ids,
                                     data.vocabulary, progress)
        self.batch_size = config.train.batch_size
        self.n_unlabeled = round(config.tagging.unlabeled_share * self.batch_size)
        self.seed = config.train.seed

    def __call__(self, step: int) -> dict:
        """Step ``step``'s batch (:mod:`retrieval.training.batches`): {"step", "waves" (B, samples), "targets"
        (B, n_tags) in [0, 1]}."""
        generator = step_generator(self.seed, step, "batch")
        train, unlabeled = self.data.splits["train"], self.data.splits[UNLABELED]
        rows_l = torch.randint(len(train.ids), (self.batch_size - self.n_unlabeled,), generator=generator)
        rows_u = torch.randint(len(unlabeled.ids), (self.n_unlabeled,), generator=generator)
        ids = [train.ids[r] for r in rows_l.tolist()] + [unlabeled.ids[r] for r in rows_u.tolist()]
        waves = self.waves.random_crops(ids, self.samples, generator)[:, 0]  # (B, samples)
        if self.augment is not None:
            waves = self.augment(waves, generator)
        targets = torch.cat([train.labels[rows_l].float(), self.pseudo[rows_u]])
        return {"step": step, "waves": waves, "targets": targets}


def train_tagging_run(config: Config, out: str | Path, resume: bool = False, progress: bool = True) -> TrainState:
    """Train the tagger of ``config`` (``task: tagging``) into run folder ``out`` (see the module docstring)."""
    if config.task != "tagging":
        raise ConfigError(f"task: the config's task is {config.task!r}; train it with "
                          "retrieval.training.experiment.train_run")
    noisy = config.tagging.teacher is not None
    if noisy and not expand_path(config.tagging.teacher).exists():
        raise MissingFileError(config.tagging.teacher, "does not exist; train the teacher first (retrieval train "
                               "--config tagging/<backbone> --out RUN)", key="tagging.teacher")
    check_corpus_root(expand_path(config.data.root))  # before a run folder is made or anything trained
    with folder_lock(out):  # a second process training into the same folder is refused
        return _train_tagging_run(config, out, resume, progress, noisy)


def _train_tagging_run(config: Config, out: str | Path, resume: bool, progress: bool, noisy: bool) -> TrainState:
    folder = RunFolder.open(config, out, resume)
    splits = (*SPLITS, UNLABELED) if noisy else SPLITS
    data, _ = prepare_data(config, progress=progress, need_listening=False, splits=splits)
    if noisy and not data.splits[UNLABELED].ids:
        raise DataError(config.data.root, f"the corpus has no '{UNLABELED}' split for the noisy student")
    args = tagging_args(config, len(data.vocabulary.tags))
    torch.manual_seed(config.train.seed)
    device = resolve_device(config.train.device)
    model = place_model(build_model(args, "tagging"), device, config.train)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr, weight_decay=config.train.weight_decay)
    generator = torch.Generator().manual_seed(config.train.seed)
    state = folder.restore(model, optimizer, generator) if resume else None
    make = (_NoisyBatches(config, data, model, progress) if noisy
            else TaggingBatches(data, config.train.batch_size, config.train.seed))
    steps = config.train.steps
    batches = batch_stream(make, (state.epoch if state else 0) * steps, config.train.epochs * steps,
                           workers=config.train.workers, pin_memory=device.type == "cuda")

    def step() -> dict:
        batch = to_device(next(batches), device)
        seed_dropout(config.train.seed, batch["step"], 0)
        logits = model(batch["waves"]) if "waves" in batch else model.forward_features(batch["features"])
        targets = batch["targets"]
        return {"loss": F.binary_cross_entropy_with_logits(logits.float(), targets), "clips": len(targets)}

    def evaluate(m) -> float:
        with autocast(device, config.train.precision):
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


def evaluate_tagging_run(run: str | Path, split: str = "test", progress: bool = True, device: str | None = None,
                         precision: str | None = None) -> dict:
    """Tag ``split`` whole-track on ``device`` in ``precision`` (None: the run's); macro ROC-AUC / PR-AUC, per
    category, parameters and speed → RUN/metrics.json."""
    loaded = load_run(run, task="tagging")
    where, precision = loaded.placed(device, precision)
    config = loaded.config
    data, _ = prepare_data(config, vocabulary=loaded.vocabulary, progress=progress, need_listening=False)
    with autocast(where, precision):
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
        "device": str(where), "precision": precision,
        **_audio_seconds_per_second(loaded.model, config, list(data.splits[split].ids), config.eval.n_crops),
    })
    write_text_atomic(loaded.folder / "metrics.json", json.dumps(summary, indent=2))
    return summary


def noisy_student(config: Config, teacher: str | Path, out: str | Path, iterations: int = 1,
                  progress: bool = True) -> list[Path]:
    """Iterate noisy-student training: ``teacher`` labels for student 1 (``OUT/student_1``), which labels for
    student 2, and so on. Finished students are reused, interrupted ones resumed. Returns the student runs."""
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

