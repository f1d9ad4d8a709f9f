"""Trained runs: one loader for every task, the weights checked against their fingerprint, and a serving path
that never imports the training code."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from retrieval.errors import DataError, MissingFileError
from retrieval.runs import checkpoint_dir, load_checkpoint, load_run, save_checkpoint

pytestmark = pytest.mark.slow


def test_one_loader_for_both_tasks(tiny_run: Path, tiny_tagging_run: Path) -> None:
    from retrieval.model import JointModel
    from retrieval.tagging.model import TaggingModel

    assert isinstance(load_run(tiny_run).model, JointModel)
    assert isinstance(load_run(tiny_tagging_run, task="tagging").model, TaggingModel)
    assert load_run(tiny_tagging_run).task == "tagging"
    with pytest.raises(DataError, match="tagging run, not a retrieval run"):
        load_run(tiny_tagging_run, task="retrieval")


def test_missing_checkpoint_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="retrieval train"):
        load_run(tmp_path / "nothing")


def test_corrupt_weights_are_refused(tiny_run: Path, tmp_path: Path) -> None:
    """A checkpoint whose weights changed after saving (bit rot, a bad copy) fails its fingerprint check."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    path = checkpoint_dir(run) / "best.ckpt"
    payload = load_checkpoint(path)
    name = next(iter(payload["model"]))
    payload["model"][name] = payload["model"][name] + 1e-3
    payload = {k: v for k, v in payload.items() if k not in ("format", "versions")}
    save_checkpoint(path, payload)
    with pytest.raises(DataError, match="fingerprint"):
        load_run(run)


def test_round_trip_gives_identical_vectors(tiny_run: Path) -> None:
    first, second = load_run(tiny_run), load_run(tiny_run)
    vectors = first.vocabulary.vectors
    assert torch.equal(first.model.encode_text(vectors), second.model.encode_text(vectors))
    assert first.fingerprint == second.fingerprint


def test_serving_path_does_not_import_training(tiny_run: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    """Indexing, loading and searching never import retrieval.training nor pytorch-metric-learning."""
    index = tmp_path / "index"
    code = f"""
import sys
from retrieval.cli import main
assert main(["-q", "index", {str(tiny_corpus)!r}, "--corpus", "--model", {str(tiny_run)!r},
             "--out", {str(index)!r}, "--backend", "exact"]) == 0
import retrieval
retriever = retrieval.load({str(index)!r})
tag = retriever.run.vocabulary.tags[0]
hits = retriever.search(tag, k=5)
assert len(hits) == 5, hits
print(sorted(m for m in sys.modules if m.startswith(("retrieval.training", "pytorch_metric_learning"))))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
