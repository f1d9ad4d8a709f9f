"""``load_run(path)``: one loader for a trained run of any task (retrieval or tagging).

It reads ``RUN/checkpoints/{best,last}.ckpt`` with ``weights_only``, rebuilds the model from the checkpoint's own
``model_args`` (never from the current config files) and checks the weights against the stored fingerprint, so a
corrupted file is refused instead of serving garbage. Nothing here imports :mod:`retrieval.training`: search,
indexing and the heads load runs without the training code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from retrieval.config import Config, config_from_dict
from retrieval.data.vocabulary import Vocabulary
from retrieval.errors import DataError
from retrieval.runs.build import build_model, text_encoder_for
from retrieval.runs.checkpoint import load_checkpoint, state_fingerprint
from retrieval.runs.folder import checkpoint_dir

__all__ = ["TASKS", "Run", "load_run"]

#: The tasks a config can name (``task:``); each has its own model class (see :func:`retrieval.runs.build_model`).
TASKS = ("retrieval", "tagging")


@dataclass
class Run:
    """A trained run loaded for evaluation, search or prediction.

    Attributes:
        folder: the run folder. config: its config (from the checkpoint). model: the model in eval mode
        (:class:`~retrieval.model.JointModel` or :class:`~retrieval.tagging.model.TaggingModel`).
        vocabulary: the tags it was trained on. fingerprint: hash of weights + tags (an index records it).
        checkpoint: the whole checkpoint payload.
    """

    folder: Path
    config: Config
    model: torch.nn.Module
    vocabulary: Vocabulary
    fingerprint: str
    checkpoint: dict

    @property
    def task(self) -> str:
        return self.config.task

    def placed(self, device: str | None = None, precision: str | None = None) -> tuple[torch.device, str]:
        """Move the model to ``device`` (None: the run's ``train.device``) → (that device, ``precision`` or the
        run's ``train.precision``), for evaluation where it was trained (:mod:`retrieval.devices`)."""
        from retrieval.devices import check_precision, resolve_device

        where = resolve_device(device or self.config.train.device, key="--device" if device else "train.device")
        self.model.to(where)
        return where, check_precision(precision or self.config.train.precision, key="--precision")

    def text_encoder(self):
        """The word tower's input encoder this run was trained with (never retrains), reading words it lacks
        through the run's tags when ``model.text.backoff`` is ``sentence``."""
        return text_encoder_for(self.config, self.folder / "text", train=False, tags=self.vocabulary.tags)


def load_run(run: str | Path, which: str = "best", task: str | None = None,
             device: str | torch.device = "cpu") -> Run:
    """Load a trained run (``which``: "best" or "last"); ``task`` refuses a run of another task; the model is
    put on ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``: :func:`retrieval.devices.resolve_device`).

    Raises:
        DataError: no or unreadable checkpoint, weights that do not match their fingerprint (a corrupt file), or a
        run of another ``task`` than asked for.
    """
    run = Path(run)
    path = checkpoint_dir(run) / f"{which}.ckpt"
    payload = load_checkpoint(path)
    config = config_from_dict(payload["config"])
    if task is not None and config.task != task:
        raise DataError(run / "config.yaml", f"this is a {config.task} run, not a {task} run", key="task")
    model = build_model(payload["model_args"], config.task)
    model.load_state_dict(payload["model"])
    model.eval()
    vocabulary = Vocabulary.from_dict(payload["vocabulary"])
    fingerprint = state_fingerprint(model.state_dict(), "|".join(vocabulary.tags))
    if fingerprint != payload["fingerprint"]:
        raise DataError(path, "the weights do not match the checkpoint's fingerprint (the file is corrupt); "
                        "restore it or train the run again")
    from retrieval.devices import resolve_device

    model.to(resolve_device(device, key="device"))
    return Run(run, config, model, vocabulary, fingerprint, payload)
