"""The demo pipeline (``make demo``): demo corpus → train the demo config → evaluate → index → search.

Each step reuses finished work: the corpus build skips files that are there, a run trained with the same config
is kept (a run trained with another config is retrained from scratch), an interrupted run resumes, and the index
build reuses its cache. Everything goes under ``home`` (see :mod:`retrieval.paths`).

Example:
    >>> outcome = run_demo("~/.cache/retrieval", report=print)  # doctest: +SKIP
    >>> outcome.evaluation["map"]  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_DEMO_CONFIG", "DEFAULT_DEMO_TRACKS", "DemoOutcome", "run_demo"]

#: The shipped config the demo trains (``retrieval/configs/demo.yaml``).
DEFAULT_DEMO_CONFIG = "demo"
#: Tracks in the demo corpus.
DEFAULT_DEMO_TRACKS = 2000


@dataclass(frozen=True)
class DemoOutcome:
    """What :func:`run_demo` made.

    Attributes:
        corpus: the demo corpus folder. run: the trained run folder. index: the index folder.
        evaluation: the test-split summary (:func:`retrieval.training.experiment.evaluate_run`).
        search: ``retrieval.load(index).search("dreamy", k=10)``.
    """

    corpus: Path
    run: Path
    index: Path
    evaluation: dict[str, Any]
    search: Any


def run_demo(home: str | os.PathLike[str] | None = None, config: str | os.PathLike[str] = DEFAULT_DEMO_CONFIG, *,
             tracks: int = DEFAULT_DEMO_TRACKS, overrides: Sequence[str] = (), progress: bool = True,
             report: Callable[[str], None] | None = None) -> DemoOutcome:
    """Build the demo corpus, train ``config`` on it, evaluate on the test split, index it and search "dreamy".

    Args:
        home: the library home the demo lives under (``HOME/demo/{corpus,run,index}``); None:
            :func:`retrieval.paths.home`.
        config: a config name or path (:func:`retrieval.config.resolve_config`); ``data.root`` is set to the corpus.
        tracks: tracks in the demo corpus.
        overrides: ``key=value`` config overrides (applied after ``data.root``).
        progress: show progress bars.
        report: called with each line of the demo's account (headings, summaries, tables); None: silent.

    Returns:
        A :class:`DemoOutcome`.
    """
    import shutil

    from retrieval import paths
    from retrieval.config import load_config
    from retrieval.data.demo import build_demo_corpus
    from retrieval.evaluation import format_table
    from retrieval.index.build import index_corpus
    from retrieval.runs import config_changes, load_run, run_is_complete
    from retrieval.training.experiment import evaluate_run, train_run

    say = report or (lambda line: None)
    corpus, run, index = paths.demo_corpus_dir(home), paths.demo_run_dir(home), paths.demo_index_path(home)
    say(f"== demo corpus → {corpus}")
    summary = build_demo_corpus(corpus, n_tracks=tracks, progress=progress)
    say(summary.format())
    settings = load_config(config, [f"data.root={corpus}", *overrides])
    last = run / "checkpoints" / "last.ckpt"
    if last.exists() and config_changes(load_run(run, "last").config, settings):
        say(f"== the demo config changed since {run} was trained: retraining from scratch")
        shutil.rmtree(run)
    if run_is_complete(run, settings):
        say(f"== demo model: already trained in {run}")
    else:
        say(f"== training {config} → {run}")
        train_run(settings, run, resume=last.exists(), progress=progress)
    say("== evaluation on the test split (the paper's protocol)")
    evaluation = evaluate_run(run, "test", progress=progress)
    say(format_table(evaluation))
    say(f"== indexing the demo catalogue → {index}")
    say(index_corpus(run, index, corpus_root=corpus, progress=progress).format())
    from retrieval.api import load

    say("== retrieval.search('dreamy')")
    result = load(index).search("dreamy", k=10)
    say(str(result))
    return DemoOutcome(corpus, run, index, evaluation, result)
