"""Trained runs: from a config to a model, to a checkpoint on disk, and back — the layer search stands on.

Modules:
    build       model_args / tagging_args (what a checkpoint stores to rebuild a model), build_model, the text
                encoder a config names.
    checkpoint  the checkpoint format: a plain dict loaded with ``weights_only``; the weights' fingerprint.
    folder      the run folder's layout, RunFolder (open / restore / save while training), TrainState,
                config_changes, run_is_complete.
    load        Run and load_run(path): one loader for every task.

Training (:mod:`retrieval.training`) writes runs through this package; search, indexing and the heads read them
through :func:`load_run` without importing the training code.
"""

from retrieval.runs.build import build_model, model_args, plain_args, tagging_args, text_encoder_for
from retrieval.runs.checkpoint import load_checkpoint, save_checkpoint, state_fingerprint
from retrieval.runs.folder import RunFolder, TrainState, checkpoint_dir, config_changes, run_is_complete
from retrieval.runs.load import TASKS, Run, load_run

__all__ = [
    "TASKS",
    "Run",
    "RunFolder",
    "TrainState",
    "build_model",
    "checkpoint_dir",
    "config_changes",
    "load_checkpoint",
    "load_run",
    "model_args",
    "plain_args",
    "run_is_complete",
    "save_checkpoint",
    "state_fingerprint",
    "tagging_args",
    "text_encoder_for",
]
