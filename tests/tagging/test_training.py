"""Tagging runs (task: tagging): training, whole-track evaluation, resume, noisy student, the CLI, and any
backbone as the retrieval model's audio tower."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from retrieval.cli import main
from retrieval.config import load_config
from retrieval.data.assembly import prepare_data
from retrieval.runs import load_run
from retrieval.runs.checkpoint import load_checkpoint
from retrieval.tagging.predict import predict_files, split_probabilities
from retrieval.training.tagging import _pseudo_labels, evaluate_tagging_run, train_tagging_run


def _config(path: Path, corpus: Path, *extra: str):
    return load_config(path, [f"data.root={corpus}", *extra])


def test_a_tagging_run_trains_evaluates_and_reloads(tiny_tagging_run: Path, chance_map, train_fit):
    run = load_run(tiny_tagging_run, task="tagging")
    assert run.config.task == "tagging" and type(run.model.backbone).__name__ == "CNNSA"
    assert run.model.n_tags == len(run.vocabulary.tags)
    summary = evaluate_tagging_run(tiny_tagging_run)
    assert 0 <= summary["roc_auc"] <= 1 and 0 <= summary["pr_auc"] <= 1
    # The 4 test tracks cannot tell a tagger from chance; its 30 train tracks can (random: PR-AUC 0.21 ± 0.02, best
    # of 2000 0.28; ROC-AUC 0.50). Measured: 0.41 / 0.75.
    fit = train_fit(tiny_tagging_run)
    assert fit["map"] >= 1.6 * chance_map(fit) and fit["roc_auc"] >= 0.65, (fit["map"], fit["roc_auc"])
    assert summary["parameters"] == sum(p.numel() for p in run.model.parameters())
    assert summary["audio_seconds_per_s"] > 0 and summary["n_crops"] == run.config.eval.n_crops
    written = json.loads((tiny_tagging_run / "metrics.json").read_text())
    assert written["pr_auc"] == summary["pr_auc"]
    history = json.loads((tiny_tagging_run / "history.json").read_text())
    assert len(history) == run.config.train.epochs and "valid_pr_auc" in history[-1]


def test_whole_track_prediction_averages_the_crops_probabilities(tiny_tagging_run: Path):
    run = load_run(tiny_tagging_run, task="tagging")
    data, _ = prepare_data(run.config, vocabulary=run.vocabulary, progress=False, need_listening=False)
    n_crops = 3
    probabilities = split_probabilities(run.model, data, "test", n_crops=n_crops, batch_size=2)
    crops = data.track_inputs("test", [0], n_crops).features[0]  # (n_crops, n_mels, frames)
    with torch.no_grad():
        by_hand = torch.sigmoid(run.model.forward_features(crops)).mean(dim=0)
    torch.testing.assert_close(torch.from_numpy(probabilities[0]), by_hand)
    assert probabilities.shape == (len(data.splits["test"].ids), len(run.vocabulary.tags))


def test_files_are_tagged_like_the_cached_features(tiny_tagging_run: Path, tiny_corpus: Path):
    run = load_run(tiny_tagging_run, task="tagging")
    data, _ = prepare_data(run.config, vocabulary=run.vocabulary, progress=False, need_listening=False)
    from retrieval.data.corpus import load_corpus

    track = data.splits["test"].ids[0]
    path = load_corpus(tiny_corpus).audio_locator().locate([track]).found[track]
    from_file = predict_files(run.model, [path], n_crops=4)
    cached = split_probabilities(run.model, data, "test", n_crops=4, batch_size=4)[0]
    np.testing.assert_allclose(from_file[0].numpy(), cached, atol=2e-3)  # the cache stores float16 mels


def test_resuming_gives_the_uninterrupted_weights(tmp_path: Path, tiny_corpus: Path, tiny_tagging_config_path):
    whole = _config(tiny_tagging_config_path, tiny_corpus)
    train_tagging_run(whole, tmp_path / "whole", progress=False)
    half = _config(tiny_tagging_config_path, tiny_corpus, "train.epochs=1")
    train_tagging_run(half, tmp_path / "split", progress=False)
    train_tagging_run(whole, tmp_path / "split", resume=True, progress=False)
    a = load_checkpoint(tmp_path / "whole" / "checkpoints" / "last.ckpt")["model"]
    b = load_checkpoint(tmp_path / "split" / "checkpoints" / "last.ckpt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_noisy_student_learns_from_the_teachers_labels(tmp_path: Path, tiny_corpus: Path, tiny_tagging_run: Path,
                                                       tiny_tagging_config_path):
    student = _config(tiny_tagging_config_path, tiny_corpus, f"tagging.teacher={tiny_tagging_run}",
                      "tagging.augment=true", "tagging.unlabeled_share=0.5")
    state = train_tagging_run(student, tmp_path / "student", progress=False)
    assert state.epoch == student.train.epochs
    # the pseudo-labels are the teacher's whole-track probabilities on the unlabeled split (clean input)
    teacher = load_run(tiny_tagging_run, task="tagging")
    data, _ = prepare_data(teacher.config, vocabulary=teacher.vocabulary, progress=False, need_listening=False,
                           splits=("unlabeled",))
    ids = data.splits["unlabeled"].ids
    assert ids, "the tiny corpus needs an unlabeled split"
    pseudo = _pseudo_labels(tiny_tagging_run, student, list(ids), teacher.vocabulary, progress=False)
    expected = split_probabilities(teacher.model, data, "unlabeled", teacher.config.eval.n_crops, 4)
    np.testing.assert_allclose(pseudo.numpy(), expected, atol=1e-6)
    assert evaluate_tagging_run(tmp_path / "student")["backbone"] == "short_chunk_cnn"


def test_a_missing_teacher_is_named(tmp_path: Path, tiny_corpus: Path, tiny_tagging_config_path):
    config = _config(tiny_tagging_config_path, tiny_corpus, f"tagging.teacher={tmp_path / 'nope'}")
    with pytest.raises(FileNotFoundError, match="tagging.teacher"):
        train_tagging_run(config, tmp_path / "student", progress=False)


def test_cli_trains_and_evaluates_a_tagger(tmp_path: Path, tiny_corpus: Path, tiny_tagging_config_path, capsys):
    run = tmp_path / "run"
    assert main(["--quiet", "train", "--config", str(tiny_tagging_config_path), "--out", str(run), "--set",
                 f"data.root={tiny_corpus}", "--set", "train.epochs=1"]) == 0
    assert "best validation PR-AUC" in capsys.readouterr().out
    assert main(["--quiet", "evaluate", str(run)]) == 0
    printed = capsys.readouterr().out
    assert "ROC-AUC" in printed and "PR-AUC" in printed and "parameters" in printed


@pytest.mark.parametrize("backbone, extra", [
    ("sample_cnn", ["model.audio.channels=[4, 4, 4, 4, 8]", "model.audio.input_frames=243"]),
    ("musicnn", ["model.audio.channels=[8]", "model.audio.options={timbral_channels: 4, temporal_channels: 2}"]),
])
def test_any_backbone_is_the_retrieval_audio_tower_with_one_line(tmp_path: Path, tiny_corpus: Path,
                                                                  tiny_config_path, backbone, extra):
    from retrieval.embedding import embed_files
    from retrieval.training.experiment import evaluate_run, train_run

    config = load_config(tiny_config_path, [f"data.root={tiny_corpus}", f"model.audio.backbone={backbone}",
                                            "train.epochs=1", *extra])
    train_run(config, tmp_path / "run", progress=False)
    summary = evaluate_run(tmp_path / "run", progress=False)
    assert 0 <= summary["map"] <= 1
    run = load_run(tmp_path / "run")
    assert run.model.audio.name == backbone
    files = sorted(tiny_corpus.glob("audio/**/*.ogg"))[:2]
    vectors = embed_files(run.model, files, n_crops=2)
    assert vectors.shape == (2, run.model.output_dim) and torch.isfinite(vectors).all()


def test_noisy_student_iterates_each_student_teaching_the_next(tmp_path: Path, tiny_corpus: Path,
                                                               tiny_tagging_run: Path, tiny_tagging_config_path):
    from retrieval.training.tagging import noisy_student

    config = _config(tiny_tagging_config_path, tiny_corpus, "train.epochs=1", "tagging.augment=true")
    runs = noisy_student(config, tiny_tagging_run, tmp_path / "ns", iterations=2, progress=False)
    assert runs == [tmp_path / "ns" / "student_1", tmp_path / "ns" / "student_2"]
    teachers = [load_run(r, task="tagging").config.tagging.teacher for r in runs]
    assert teachers == [str(tiny_tagging_run), str(runs[0])]
    again = noisy_student(config, tiny_tagging_run, tmp_path / "ns", iterations=2, progress=False)
    assert again == runs  # finished students are reused, not retrained
