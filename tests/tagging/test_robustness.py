"""Robustness table (SMC 2020): same protocol as `retrieval evaluate`, perturbations applied in that pipeline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from retrieval.errors import ConfigError
from retrieval.tagging.robustness import format_robustness_markdown, robustness_table

# Identities first (200 dB SNR adds noise ~1e-10 of the signal; a stretch by 1 copies), then a real perturbation.
PERTURBATIONS = ["white_noise=200,0", "time_stretch=1"]
CONDITIONS = [("white_noise", 200.0), ("white_noise", 0.0), ("time_stretch", 1.0)]


@pytest.fixture(scope="module")
def run_copy(tiny_tagging_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session's tagging run, so that evaluating it (which writes metrics.json) leaves it as is."""
    copy = tmp_path_factory.mktemp("robustness") / "cnnsa"
    shutil.copytree(tiny_tagging_run, copy)
    return copy


@pytest.fixture(scope="module")
def table(run_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """The whole test split under the identities and 0 dB white noise → (result, out folder)."""
    out = tmp_path_factory.mktemp("robustness_out")
    return robustness_table([run_copy], out, perturbations=PERTURBATIONS, progress=False), out


def test_one_row_per_condition_figures_in_unit_interval(table: tuple[dict, Path]) -> None:
    result, _ = table
    assert [(c["perturbation"], c["strength"]) for c in result["conditions"]] == CONDITIONS
    (run,) = result["runs"]
    assert run["backbone"] == "cnnsa" and run["n_tracks"] > 0
    assert [(p["perturbation"], p["strength"]) for p in run["perturbed"]] == CONDITIONS
    for figures in [run["clean"], *run["perturbed"]]:
        assert 0.0 <= figures["roc_auc"] <= 1.0 and 0.0 <= figures["pr_auc"] <= 1.0


def test_files_written_and_markdown_has_every_row(table: tuple[dict, Path]) -> None:
    result, out = table
    assert json.loads((out / "robustness.json").read_text()) == result
    markdown = (out / "robustness.md").read_text()
    assert markdown == format_robustness_markdown(result)
    figures_table, drop_table = markdown.split("## ")
    run = result["runs"][0]
    clean = run["clean"]
    assert f"| clean | {clean['roc_auc']:.3f} / {clean['pr_auc']:.3f} |" in figures_table
    for condition, perturbed in zip(result["conditions"], run["perturbed"], strict=True):
        assert f"| {condition['label']} | {perturbed['roc_auc']:.3f} / {perturbed['pr_auc']:.3f} |" in figures_table
        assert f"| {condition['label']} | {clean['roc_auc'] - perturbed['roc_auc']:+.3f} |" in drop_table
    assert "| white noise 0 dB SNR |" in figures_table and "| time stretch ×1 |" in drop_table


def test_clean_row_equals_evaluate(table: tuple[dict, Path], run_copy: Path) -> None:
    from retrieval.training.tagging import evaluate_tagging_run

    result, _ = table
    (run,) = result["runs"]
    evaluated = evaluate_tagging_run(run_copy, "test", progress=False)
    assert run["n_tracks"] == evaluated["n_tracks"]
    # evaluate reads float16 cached log-mels; the robustness pipeline computes float32 ones from the waveform.
    assert run["clean"]["roc_auc"] == pytest.approx(evaluated["roc_auc"], abs=2e-3)
    assert run["clean"]["pr_auc"] == pytest.approx(evaluated["pr_auc"], abs=2e-3)


def test_identity_perturbations_give_clean_figures_and_real_noise_does_not(table: tuple[dict, Path]) -> None:
    result, _ = table
    run = result["runs"][0]
    by_condition = {(p["perturbation"], p["strength"]): p for p in run["perturbed"]}
    for identity in [("white_noise", 200.0), ("time_stretch", 1.0)]:
        assert by_condition[identity]["roc_auc"] == pytest.approx(run["clean"]["roc_auc"], abs=1e-6)
        assert by_condition[identity]["pr_auc"] == pytest.approx(run["clean"]["pr_auc"], abs=1e-6)
    noisy = by_condition[("white_noise", 0.0)]
    assert (noisy["roc_auc"], noisy["pr_auc"]) != (run["clean"]["roc_auc"], run["clean"]["pr_auc"])


def test_deterministic_and_max_tracks(run_copy: Path, tmp_path: Path) -> None:
    first = robustness_table([run_copy], tmp_path / "a", perturbations=["white_noise=10"], max_tracks=3,
                             seed=3, progress=False)
    second = robustness_table([run_copy], tmp_path / "b", perturbations=["white_noise=10"], max_tracks=3,
                              seed=3, progress=False)
    assert first["runs"][0]["n_tracks"] == 3
    assert (tmp_path / "a" / "robustness.json").read_text() == (tmp_path / "b" / "robustness.json").read_text()
    assert first == second


def test_unknown_perturbation_lists_valid_names(run_copy: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="time_stretch.*white_noise"):
        robustness_table([run_copy], tmp_path, perturbations=["reverb"], progress=False)
    with pytest.raises(ConfigError, match="white_noise=loud"):
        robustness_table([run_copy], tmp_path, perturbations=["white_noise=loud"], progress=False)
    assert not (tmp_path / "robustness.json").exists()


def test_missing_run_is_named(run_copy: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no_such_run"
    with pytest.raises(FileNotFoundError, match="no_such_run"):
        robustness_table([run_copy, missing], tmp_path / "out", perturbations=["white_noise=10"], progress=False)
    assert not (tmp_path / "out" / "robustness.json").exists()


def test_clean_probabilities_match_the_feature_cache(run_copy: Path) -> None:
    """Track by track, the clean pipeline (decode → front end → crops → model) gives evaluate's probabilities."""
    import numpy as np
    import torch

    from retrieval.data.assembly import prepare_data
    from retrieval.runs import load_run
    from retrieval.tagging.predict import split_probabilities
    from retrieval.tagging.robustness import _run_probabilities, _split_tracks

    loaded = load_run(run_copy, task="tagging")
    ids, paths, _, _ = _split_tracks(loaded, "test", None)
    (clean,), kept = _run_probabilities(loaded, ids, paths, [None], 0, torch.device("cpu"), False)
    data, _ = prepare_data(loaded.config, vocabulary=loaded.vocabulary, progress=False, need_listening=False,
                           splits=("test",))
    cached = split_probabilities(loaded.model, data, "test", loaded.config.eval.n_crops, 8)
    assert data.splits["test"].ids == ids and kept == list(range(len(ids)))
    # float32 log-mels computed here, float16 ones read from the cache: equal up to that rounding.
    np.testing.assert_allclose(clean, cached, atol=1e-4)


def test_cli_writes_the_robustness_table(tiny_tagging_run: Path, tmp_path: Path, capsys) -> None:
    from retrieval.cli import main

    out = tmp_path / "robust"
    assert main(["--quiet", "robustness", str(tiny_tagging_run), "--out", str(out), "--perturbations",
                 "white_noise=20", "--max-tracks", "2"]) == 0
    printed = capsys.readouterr().out
    assert "clean" in printed and "white noise" in printed.lower()
    assert (out / "robustness.md").exists() and (out / "robustness.json").exists()
