"""Assemble and run an experiment from a config: build the objects, train, evaluate, reload.

A run folder holds::

    RUN/config.yaml            the resolved config
    RUN/text/                  the word tower's input encoder (the trained word2vec; nothing for sentence)
    RUN/item_factors.npz       ALS factors of the corpus (listening models)
    RUN/checkpoints/last.ckpt  for --resume;  RUN/checkpoints/best.ckpt  best validation MAP
    RUN/history.json           per-epoch loss, throughput, validation MAP
    RUN/metrics.json, RUN/category_map.png   written by `retrieval evaluate`
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from retrieval.config import Config, config_from_dict, expand_path
from retrieval.encoders.backbones import backbone_arguments, build_audio_encoder
from retrieval.fileio import write_text_atomic
from retrieval.model import JointModel
from retrieval.training.checkpoint import load_checkpoint, save_checkpoint, state_fingerprint
from retrieval.training.inputs import ExperimentData, Vocabulary, prepare_data
from retrieval.training.loop import TrainState, checkpoint_dir, train, training_step

log = logging.getLogger(__name__)


# ---- building --------------------------------------------------------------------------------------------------
def build_text_encoder(config: Config, folder: Path | None = None):
    """The word tower's input encoder: trained word2vec (saved to ``folder``), pretrained vectors, or MiniLM."""
    from retrieval.encoders import text

    settings = config.model.text
    if settings.kind == "sentence":
        return text.SentenceEncoder()
    if settings.pretrained:
        return text.Word2VecEncoder.from_keyed_vectors(expand_path(settings.pretrained))
    if folder is not None and (folder / "word2vec").exists():
        return text.Word2VecEncoder.load(folder / "word2vec")
    corpus_file = expand_path(config.data.root) / settings.corpus
    encoder = text.Word2VecEncoder.train(
        corpus_file,
        vector_size=settings.vector_size,
        epochs=settings.epochs,
        min_count=settings.min_count,
        phrase_min_count=settings.phrase_min_count,
        phrase_threshold=settings.phrase_threshold,
        seed=config.train.seed,
    )
    if folder is not None:
        encoder.save(folder / "word2vec")
    return encoder


def load_text_encoder(config: Config, run: Path):
    """The text encoder a trained run uses (never retrains)."""
    from retrieval.encoders import text

    if config.model.text.kind == "sentence":
        return text.SentenceEncoder()
    if config.model.text.pretrained:
        return text.Word2VecEncoder.from_keyed_vectors(expand_path(config.model.text.pretrained))
    return text.Word2VecEncoder.load(run / "text" / "word2vec")


def model_args(config: Config, text_dim: int, listening_dim: int | None) -> dict:
    """Constructor arguments of the joint model and its audio backbone (stored in checkpoints)."""
    m = config.model
    audio_dim = m.listening.factors if m.modality == "concat" else m.embed_dim
    return {
        "modality": m.modality,
        "text_dim": text_dim,
        "embed_dim": m.embed_dim,
        "hidden_dim": m.hidden_dim,
        "dropout": m.dropout,
        "listening_dim": listening_dim if m.modality != "audio" else None,
        "audio": None
        if m.modality == "cultural"
        else {"name": m.audio.backbone, "args": backbone_arguments(m.audio, m.mel, audio_dim)},
    }


def build_model(args: dict) -> JointModel:
    """Rebuild the joint model from :func:`model_args` output."""
    audio = None
    if args["audio"] is not None:
        audio = build_audio_encoder(args["audio"]["name"], **args["audio"]["args"])
    rest = {k: v for k, v in args.items() if k != "audio"}
    return JointModel(audio_encoder=audio, **rest)


def _plain_args(args: dict) -> dict:
    """Make model args checkpoint-safe (dataclasses → dicts)."""
    from dataclasses import asdict, is_dataclass

    out = json.loads(json.dumps(args, default=lambda o: asdict(o) if is_dataclass(o) else str(o)))
    return out


# ---- embedding and evaluation ------------------------------------------------------------------------------------
def embed_tracks(
    model: JointModel, data: ExperimentData, split: str, n_crops: int, batch_size: int
) -> torch.Tensor:
    """Index-space vectors of every track of ``split`` → (n, model.output_dim); bit-identical whatever the
    batch (see :mod:`retrieval.embedding`)."""
    from retrieval.embedding import embed_batches

    n = len(data.splits[split].ids)
    return embed_batches(model, n, lambda rows: data.track_inputs(split, rows, n_crops), batch_size)


@torch.no_grad()
def split_scores(
    model: JointModel, data: ExperimentData, split: str, n_crops: int, batch_size: int
) -> np.ndarray:
    """(n_tracks, n_tags) similarity of every track of ``split`` to every tag."""
    model.eval()
    tracks = embed_tracks(model, data, split, n_crops, batch_size)
    tags = model.encode_text(data.vocabulary.vectors)
    return (tracks @ tags.T).numpy()


def evaluate_split(model: JointModel, data: ExperimentData, split: str, config: Config) -> dict:
    """The paper's protocol on ``split``: per-tag AP, ROC-AUC, P@k; means; per-category MAP."""
    from retrieval.evaluation import retrieval_metrics, summarize

    scores = split_scores(model, data, split, config.eval.n_crops, config.eval.batch_size)
    labels = data.splits[split].labels.numpy()
    metrics = retrieval_metrics(scores, labels, k=config.eval.k)
    return summarize(metrics, data.vocabulary.tags, data.vocabulary.category_of)


# ---- runs ------------------------------------------------------------------------------------------------------
@dataclass
class Run:
    """A trained run loaded for evaluation or search."""

    folder: Path
    config: Config
    model: JointModel
    vocabulary: Vocabulary
    fingerprint: str
    checkpoint: dict


def config_changes(old: Config, new: Config) -> list[str]:
    """Dotted keys whose values differ between two configs, except ``train.epochs`` (a run may be extended)."""

    def flat(d: dict, prefix: str = "") -> dict:
        out = {}
        for key, value in d.items():
            out.update(flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
        return out

    a, b = flat(old.to_dict()), flat(new.to_dict())
    return sorted(k for k in a.keys() | b.keys() if k != "train.epochs" and a.get(k) != b.get(k))


def run_is_complete(run: str | Path, config: Config) -> bool:
    """True when ``run`` finished training exactly ``config`` (so it can be reused instead of retrained)."""
    last = checkpoint_dir(run) / "last.ckpt"
    if not last.exists() or not (checkpoint_dir(run) / "best.ckpt").exists():
        return False
    payload = load_checkpoint(last)
    return payload["config"] == config.to_dict() and payload["train_state"]["epoch"] >= config.train.epochs


@dataclass
class RunFolder:
    """A run folder being trained (any task): the resume rules, the saved config and the checkpoints.

    Use :meth:`open` (refuses to overwrite a run, or to resume none), :meth:`restore` (a resumed run's weights,
    optimizer and random states, after checking that only ``train.epochs`` changed) and :meth:`saver` (the
    ``save`` callback of :func:`retrieval.training.loop.train`).
    """

    path: Path
    config: Config

    @classmethod
    def open(cls, config: Config, out: str | Path, resume: bool) -> RunFolder:
        import yaml

        out = Path(out)
        last = checkpoint_dir(out) / "last.ckpt"
        if resume and not last.exists():
            raise FileNotFoundError(f"{last}: nothing to resume; start the run without --resume")
        if not resume and last.exists():
            raise FileExistsError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
        if config.train.num_threads:
            torch.set_num_threads(config.train.num_threads)
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
        return cls(out, config)

    def restore(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                generator: torch.Generator) -> TrainState:
        payload = load_checkpoint(checkpoint_dir(self.path) / "last.ckpt")
        changed = config_changes(config_from_dict(payload["config"]), self.config)
        if changed:
            raise ValueError(
                f"{self.path} was trained with a different config ({', '.join(changed)}); only train.epochs may "
                "change when resuming: train into another --out"
            )
        model.load_state_dict(payload["model"])
        saved = payload["train_state"]
        optimizer.load_state_dict(saved["optimizer"])
        generator.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])
        return TrainState(saved["epoch"], saved["best_map"], saved["best_epoch"], json.loads(saved["history"]))

    def saver(self, args: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
              generator: torch.Generator, vocabulary: Vocabulary, extra: dict | None = None):
        """``save(name, state, with_train_state)`` writing ``checkpoints/<name>.ckpt`` and ``history.json``."""

        def save(name: str, st: TrainState, with_train_state: bool) -> None:
            payload = {
                "config": self.config.to_dict(),
                "model_args": _plain_args(args),
                "model": model.state_dict(),
                "vocabulary": vocabulary.to_dict(),
                "fingerprint": state_fingerprint(model.state_dict(), "|".join(vocabulary.tags)),
                **(extra or {}),
            }
            if with_train_state:
                payload["train_state"] = {
                    "optimizer": optimizer.state_dict(),
                    "generator": generator.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "epoch": st.epoch,
                    "best_map": st.best_map,
                    "best_epoch": st.best_epoch,
                    "history": json.dumps(st.history),
                }
            save_checkpoint(checkpoint_dir(self.path) / f"{name}.ckpt", payload)
            write_text_atomic(self.path / "history.json", json.dumps(st.history, indent=2))

        return save


def train_run(config: Config, out: str | Path, resume: bool = False, progress: bool = True) -> TrainState:
    """Train ``config`` into run folder ``out`` (``resume``: continue from ``out/checkpoints/last.ckpt``)."""
    from retrieval.training.mining import SAMPLERS

    folder = RunFolder.open(config, out, resume)
    text_encoder = build_text_encoder(config, folder.path / "text")
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


def load_run(run: str | Path, which: str = "best") -> Run:
    """Load a trained run's model, vocabulary and config (``which``: "best" or "last")."""
    run = Path(run)
    payload = load_checkpoint(checkpoint_dir(run) / f"{which}.ckpt")
    config = config_from_dict(payload["config"])
    model = build_model(payload["model_args"])
    model.load_state_dict(payload["model"])
    model.eval()
    return Run(
        run, config, model, Vocabulary.from_dict(payload["vocabulary"]), payload["fingerprint"], payload
    )


def evaluate_run(run: str | Path, split: str = "test", progress: bool = True) -> dict:
    """Evaluate a trained run on ``split``; writes RUN/metrics.json and RUN/category_map.png."""
    from retrieval.evaluation import plot_category_map

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
    summary["split"] = split
    summary["n_tracks"] = len(data.splits[split].ids)
    summary["excluded_tracks"] = data.excluded
    summary["run"] = str(loaded.folder)
    write_text_atomic(loaded.folder / "metrics.json", json.dumps(summary, indent=2))
    plot_category_map({loaded.folder.name: summary}, loaded.folder / "category_map.png")
    return summary
