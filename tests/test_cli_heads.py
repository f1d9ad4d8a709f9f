"""The heads' commands end to end: `evaluate moods` on a generated AllMusic layout, `evaluate artist-factors`'
config check, `train-head` on a tiny run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrieval.cli import main
from retrieval.heads.moods import FEATURE_SETS, write_miniature


@pytest.fixture(scope="module")
def mini(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("allmusic")
    write_miniature(root, n=300, n_moods=12, seed=0)
    return root


def test_evaluate_moods_runs_every_feature_set_and_prints_json(mini: Path, capsys) -> None:
    # The config is a shipped name, so this works from any folder.
    assert main(["-q", "evaluate", "moods", "--data", str(mini), "--features", *FEATURE_SETS, "--config",
                 "moods/tiny", "--set", "epochs=3", "--json"]) == 0
    text = capsys.readouterr().out
    results = json.loads(text)
    assert list(results) == list(FEATURE_SETS)
    assert [results[name]["dim"] for name in FEATURE_SETS] == list(FEATURE_SETS.values())
    assert main(["-q", "evaluate", "moods", "--data", str(mini), "--features", "mcn_mtt", "--config",
                 "moods/tiny", "--set", "epochs=2"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split()[:3] == ["features", "dim", "AP"] and "mcn_mtt" in table


def test_evaluate_moods_names_a_bad_file_in_one_line(mini: Path, tmp_path: Path, capsys) -> None:
    assert main(["-q", "evaluate", "moods", "--data", str(mini), "--features", "tp", "--targets",
                 str(tmp_path / "absent.npy"), "--config", "moods/tiny"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "absent.npy" in err and "targets file not found" in err


def test_evaluate_artist_factors_checks_its_config_before_any_work(tmp_path: Path, capsys) -> None:
    assert main(["-q", "evaluate", "artist-factors", "--data", str(tmp_path / "corpus"), "--out",
                 str(tmp_path / "out"), "--config", "artist_factors/tiny", "--set", "epoch=2"]) == 2
    assert "unknown config key 'epoch'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_train_head_prints_the_test_figures(tiny_run: Path, tmp_path: Path, capsys) -> None:
    from retrieval.heads.probe import Tagger

    assert main(["-q", "train-head", "--run", str(tiny_run), "--task", "genre", "--out",
                 str(tmp_path / "genre.pt")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["kind"] == "linear" and result["features"] == "shared"
    assert Tagger.load(tmp_path / "genre.pt").tags == result["tags"]
    assert main(["-q", "train-head", "--run", str(tiny_run), "--task", "no-such-category", "--out",
                 str(tmp_path / "x.pt")]) == 2
    assert "no tag of category 'no-such-category'" in capsys.readouterr().err
