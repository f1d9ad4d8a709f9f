"""The run folder: what a trained (or training) run holds on disk, and the rules for reusing and resuming it.

    RUN/config.yaml            the resolved config
    RUN/text/word2vec/         the trained word tower's input encoder (retrieval runs with a domain word2vec)
    RUN/item_factors.npz       ALS factors of the corpus (listening models)
    RUN/checkpoints/last.ckpt  weights + optimizer + random states, for --resume
    RUN/checkpoints/best.ckpt  the weights with the best validation figure (what evaluation and search use)
    RUN/history.json           per-epoch loss, throughput, validation figure
    RUN/metrics.json           written by `retrieval evaluate`

Training holds a lock on the run folder (:func:`retrieval.fileio.folder_lock`: a second trainer is refused), and
opening a run sweeps the temporary checkpoint copies an interrupted save left.

:class:`RunFolder` is the writer's side (open, restore, save); :func:`retrieval.runs.load_run` the reader's.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from retrieval.config import Config, config_from_dict
from retrieval.errors import ConfigError, MissingFileError, RunExistsError
from retrieval.fileio import make_folder, sweep_stale_copies, write_text_atomic
from retrieval.runs.checkpoint import load_checkpoint, save_checkpoint, state_fingerprint

__all__ = ["RunFolder", "TrainState", "checkpoint_dir", "config_changes", "run_is_complete"]


def checkpoint_dir(run: str | Path) -> Path:
    """``RUN/checkpoints``."""
    return Path(run) / "checkpoints"


@dataclass
class TrainState:
    """Progress of a run; saved in ``last.ckpt``."""

    epoch: int = 0
    best_map: float = -math.inf
    best_epoch: int = -1
    history: list[dict] = field(default_factory=list)
    #: the fp16 loss scaler's state (:meth:`torch.amp.GradScaler.state_dict`; empty when no scaler runs), so a
    #: resumed fp16 run starts from the scale it had reached instead of 2**16 again
    loss_scale: dict = field(default_factory=dict)


#: Keys a resumed run may change: its length, and where and how it runs (a run started on a GPU may go on on a CPU).
RESUMABLE_CHANGES = frozenset({"train.epochs", "train.device", "train.precision", "train.channels_last",
                               "train.workers", "train.num_threads"})


def config_changes(old: Config, new: Config) -> list[str]:
    """Dotted keys whose values differ between two configs, except :data:`RESUMABLE_CHANGES`."""

    def flat(d: dict, prefix: str = "") -> dict:
        out = {}
        for key, value in d.items():
            out.update(flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
        return out

    a, b = flat(old.to_dict()), flat(new.to_dict())
    return sorted(k for k in a.keys() | b.keys() if k not in RESUMABLE_CHANGES and a.get(k) != b.get(k))


def run_is_complete(run: str | Path, config: Config) -> bool:
    """True when ``run`` finished training exactly ``config`` (so it can be reused instead of retrained)."""
    last = checkpoint_dir(run) / "last.ckpt"
    if not last.exists() or not (checkpoint_dir(run) / "best.ckpt").exists():
        return False
    payload = load_checkpoint(last)
    # through config_from_dict, so a key added to Config since (stored without it) compares at its default;
    # where it ran (device, precision, workers) does not make it another run
    saved = config_from_dict(payload["config"])
    return not config_changes(saved, config) and payload["train_state"]["epoch"] == config.train.epochs


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
            raise MissingFileError(last, "nothing to resume; start the run without --resume")
        if not resume and last.exists():
            raise RunExistsError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
        if config.train.num_threads:
            torch.set_num_threads(config.train.num_threads)
        make_folder(out, "--out")
        for name in ("last.ckpt", "best.ckpt"):  # temporary copies an interrupted save left behind
            sweep_stale_copies(checkpoint_dir(out) / name)
        write_text_atomic(out / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
        return cls(out, config)

    def restore(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                generator: torch.Generator) -> TrainState:
        payload = load_checkpoint(checkpoint_dir(self.path) / "last.ckpt")
        changed = config_changes(config_from_dict(payload["config"]), self.config)
        if changed:
            raise ConfigError(
                f"{self.path} was trained with a different config ({', '.join(changed)}); only train.epochs and "
                "where it runs (device, precision, workers, threads) may change when resuming: train into another --out"
            )
        model.load_state_dict(payload["model"])
        saved = payload["train_state"]
        optimizer.load_state_dict(saved["optimizer"])
        generator.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])
        return TrainState(saved["epoch"], saved["best_map"], saved["best_epoch"], json.loads(saved["history"]),
                          saved.get("loss_scale", {}))

    def saver(self, args: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
              generator: torch.Generator, vocabulary, extra: dict | None = None):
        """``save(name, state, with_train_state)`` writing ``checkpoints/<name>.ckpt`` and ``history.json``.

        ``vocabulary`` is the run's :class:`~retrieval.data.vocabulary.Vocabulary`; ``extra`` adds entries to
        every checkpoint (e.g. a tagger's teacher).
        """
        from retrieval.runs.build import plain_args

        def save(name: str, st: TrainState, with_train_state: bool) -> None:
            payload = {
                "config": self.config.to_dict(),
                "model_args": plain_args(args),
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
                    "loss_scale": st.loss_scale,
                }
            save_checkpoint(checkpoint_dir(self.path) / f"{name}.ckpt", payload)
            write_text_atomic(self.path / "history.json", json.dumps(st.history, indent=2))

        return save
