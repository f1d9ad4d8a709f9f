"""End to end on a tiny generated corpus: train → checkpoint → load → evaluate; resume; the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from retrieval.cli import main
from retrieval.config import load_config
from retrieval.data.assembly import prepare_data
from retrieval.embedding import embed_split
from retrieval.runs import load_run
from retrieval.runs.checkpoint import load_checkpoint
from retrieval.training.experiment import evaluate_run, train_run

pytestmark = pytest.mark.slow


def _config(tiny_config_path: Path, corpus: Path, *extra: str):
    return load_config(tiny_config_path, [f"data.root={corpus}", *extra])


@pytest.fixture(scope="module")
def trained(tiny_run) -> Path:
    return tiny_run


def test_save_load_round_trip_gives_identical_embeddings(trained: Path) -> None:
    loaded = load_run(trained, "last")
    payload = load_checkpoint(trained / "checkpoints" / "last.ckpt")
    assert payload["versions"]["torch"] == torch.__version__
    data, _ = prepare_data(loaded.config, vocabulary=loaded.vocabulary, progress=False)
    first = embed_split(loaded.model, data, "test", n_crops=2, batch_size=4)
    again = load_run(trained, "last")
    second = embed_split(again.model, data, "test", n_crops=2, batch_size=4)
    assert first.shape == (len(data.splits["test"].ids), loaded.model.output_dim)
    assert torch.equal(first, second)
    norms = first.norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)


def test_track_embedding_does_not_depend_on_batch_size(trained: Path) -> None:
    loaded = load_run(trained)
    data, _ = prepare_data(loaded.config, vocabulary=loaded.vocabulary, progress=False)
    by_one = embed_split(loaded.model, data, "train", n_crops=2, batch_size=1)
    by_five = embed_split(loaded.model, data, "train", n_crops=2, batch_size=5)
    # Every forward pass has a fixed batch shape, so each track's vector is bit-identical.
    assert torch.equal(by_one, embed_split(loaded.model, data, "train", n_crops=2, batch_size=1))
    assert torch.allclose(by_one, by_five, atol=1e-6)


def test_resume_gives_the_same_final_weights(tmp_path, tiny_corpus, tiny_config_path) -> None:
    config = _config(tiny_config_path, tiny_corpus, "train.epochs=3", "model.modality=audio")
    whole = tmp_path / "whole"
    train_run(config, whole, progress=False)

    interrupted = tmp_path / "interrupted"
    train_run(
        _config(tiny_config_path, tiny_corpus, "train.epochs=2", "model.modality=audio"),
        interrupted,
        progress=False,
    )
    # Continue the same run to 3 epochs, as `--resume` does after an interruption at epoch 2.
    train_run(config, interrupted, resume=True, progress=False)

    a = load_checkpoint(whole / "checkpoints" / "last.ckpt")["model"]
    b = load_checkpoint(interrupted / "checkpoints" / "last.ckpt")["model"]
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_existing_run_is_not_overwritten(trained: Path, tiny_corpus, tiny_config_path) -> None:
    with pytest.raises(FileExistsError):
        train_run(_config(tiny_config_path, tiny_corpus), trained, progress=False)


def test_evaluate_writes_metrics_and_chart(trained: Path) -> None:
    summary = evaluate_run(trained, "test", progress=False)
    assert 0.0 <= summary["map"] <= 1.0
    assert set(summary["per_category"]) <= {
        "genre",
        "mood",
        "instrument",
        "activity",
        "language",
        "location",
        "decade",
    }
    assert json.loads((trained / "metrics.json").read_text())["map"] == pytest.approx(summary["map"])
    assert (trained / "category_map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("modality", ["cultural", "concat"])
def test_cli_train_then_evaluate(tmp_path, tiny_corpus, tiny_config_path, modality, capsys) -> None:
    run = tmp_path / modality
    code = main(
        [
            "-q",
            "train",
            "--config",
            str(tiny_config_path),
            "--out",
            str(run),
            "--set",
            f"data.root={tiny_corpus}",
            "--set",
            f"model.modality={modality}",
        ]
    )
    assert code == 0
    assert main(["-q", "evaluate", str(run), "--json"]) == 0
    out = capsys.readouterr().out
    metrics = json.loads(out[out.index("{") :])
    assert metrics["split"] == "test" and "per_category" in metrics


def test_cli_reports_unknown_config_key(tmp_path, tiny_config_path, capsys) -> None:
    code = main(
        ["train", "--config", str(tiny_config_path), "--out", str(tmp_path / "r"), "--set", "train.lrr=1"]
    )
    assert code == 2
    assert "train.lrr" in capsys.readouterr().err
