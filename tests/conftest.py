"""Shared fixtures: a tiny demo corpus generated once per test session (seconds, not minutes)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> None:
    # The CI machine has 2 cores; tiny tensors are faster on one thread and results stay reproducible.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 48-track demo corpus with 5-second previews, in the MSD500 layout."""
    from retrieval.data.demo import build_demo_corpus

    root = tmp_path_factory.mktemp("corpus") / "demo"
    build_demo_corpus(root, n_tracks=48, seed=0, seconds=5.0, workers=1, progress=False)
    return root


@pytest.fixture(scope="session")
def tiny_config_path() -> Path:
    return Path(__file__).resolve().parents[1] / "configs" / "demo" / "tiny.yaml"


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, tiny_corpus: Path, tiny_config_path: Path) -> Path:
    """A gated model trained for seconds on the tiny corpus (session-wide: tests must not modify it)."""
    from retrieval.config import load_config
    from retrieval.training.experiment import train_run

    run = tmp_path_factory.mktemp("runs") / "gated"
    train_run(load_config(tiny_config_path, [f"data.root={tiny_corpus}"]), run, progress=False)
    return run


#: A tiny self-attention tagger (CNNSA): small enough for seconds of training, and it has attention maps.
TINY_CNNSA = [
    "model.audio.backbone=cnnsa",
    "model.audio.channels=[4, 4, 8]",
    "model.audio.input_frames=64",
    "model.audio.options={pools: [[2, 2], [2, 2], [2, 1]], width: 16, heads: 2, layers: 1}",
]


@pytest.fixture(scope="session")
def tiny_tagging_config_path() -> Path:
    return Path(__file__).resolve().parents[1] / "configs" / "tagging" / "tiny.yaml"


@pytest.fixture(scope="session")
def tiny_tagging_run(tmp_path_factory: pytest.TempPathFactory, tiny_corpus: Path,
                     tiny_tagging_config_path: Path) -> Path:
    """A tagging run (task: tagging) of a tiny CNNSA on the tiny corpus, trained once per session."""
    from retrieval.config import load_config
    from retrieval.training.tagging import train_tagging_run

    run = tmp_path_factory.mktemp("tagging") / "cnnsa"
    config = load_config(tiny_tagging_config_path, [f"data.root={tiny_corpus}", *TINY_CNNSA])
    train_tagging_run(config, run, progress=False)
    return run
