"""One entry point per verb for every task a config can name (``task: retrieval | tagging``).

``retrieval train``, ``retrieval evaluate`` and ``retrieval compare`` call these, so a config decides what is
trained and a run folder decides how it is evaluated.
"""

from __future__ import annotations

from pathlib import Path

from retrieval.config import Config, load_config
from retrieval.errors import ConfigError, MissingFileError
from retrieval.runs import TrainState


def run_task(run: str | Path) -> str:
    """The task of a run folder, from its ``config.yaml``."""
    path = Path(run) / "config.yaml"
    if not path.exists():
        raise MissingFileError(path, "not a run folder (no config.yaml); train one with `retrieval train`")
    return load_config(path).task


def train_task(config: Config, out: str | Path, resume: bool = False, progress: bool = True) -> TrainState:
    """Train ``config`` into ``out`` with the trainer of its task (retrieval runs also under ``torchrun``)."""
    if config.task == "tagging":
        from retrieval.training.distributed import Distributed
        from retrieval.training.tagging import train_tagging_run

        if Distributed.from_env().active:
            raise ConfigError("task: tagging runs train in one process; torchrun (DDP) trains retrieval runs — "
                              "run `retrieval train` without torchrun")

        return train_tagging_run(config, out, resume=resume, progress=progress)
    from retrieval.training.experiment import train_run

    return train_run(config, out, resume=resume, progress=progress)


def evaluate_task(run: str | Path, split: str = "test", progress: bool = True, device: str | None = None,
                  precision: str | None = None) -> dict:
    """Evaluate a run folder with its task's protocol on ``device`` in ``precision`` (None: the run's
    ``train.device`` / ``train.precision``); writes ``RUN/metrics.json``."""
    if run_task(run) == "tagging":
        from retrieval.training.tagging import evaluate_tagging_run

        return evaluate_tagging_run(run, split, progress=progress, device=device, precision=precision)
    from retrieval.training.experiment import evaluate_run

    return evaluate_run(run, split, progress=progress, device=device, precision=precision)


def format_summary(summary: dict) -> str:
    """A plain-text table of an evaluation summary of either task."""
    from retrieval.evaluation import format_table

    if "pr_auc" not in summary:
        return format_table(summary)
    rows = [f"{'scope':<16}{'tags':>5}{'ROC-AUC':>9}{'PR-AUC':>8}",
            f"{'overall':<16}{summary['n_tags']:>5}{summary['roc_auc']:>9.4f}{summary['pr_auc']:>8.4f}"]
    for category, figures in sorted(summary["per_category"].items()):
        pr = "–" if figures["pr_auc"] is None else f"{figures['pr_auc']:.4f}"
        rows.append(f"  {category:<14}{figures['n_tags']:>5}{'':>9}{pr:>8}")
    speed = summary.get("audio_seconds_per_s")
    rows.append(f"{summary['backbone']}: {summary['parameters']:,} parameters"
                + (f"; {speed:.0f} s of audio tagged per second" if speed else ""))
    return "\n".join(rows)
