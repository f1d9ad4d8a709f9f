"""The demo pipeline (`make demo`) on a tiny home: trains once, reuses a finished run, retrains when the config
changed — through the library and through `retrieval demo`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from retrieval.cli import main
from retrieval.demo import run_demo

pytestmark = pytest.mark.slow

TINY = ["--config", "demo/tiny", "--tracks", "48"]


def test_demo_trains_once_reuses_and_retrains_when_the_config_changes(tmp_path: Path, capsys) -> None:
    home = tmp_path / "home"
    lines: list[str] = []
    before = os.environ.get("RETRIEVAL_HOME")
    outcome = run_demo(home, "demo/tiny", tracks=48, overrides=["train.epochs=2"], progress=False,
                       report=lines.append)
    assert lines[0] == f"== demo corpus → {home / 'demo' / 'corpus'}"
    assert f"== training demo/tiny → {home / 'demo' / 'run'}" in lines
    assert lines[-2] == "== retrieval.search('dreamy')" and lines[-1] == str(outcome.search)
    assert (outcome.run, outcome.index) == (home / "demo" / "run", home / "demo" / "index")
    assert len(outcome.search) == 10 and "map" in outcome.evaluation
    assert os.environ.get("RETRIEVAL_HOME") == before  # the home is an argument, not an environment variable

    assert main(["-q", "demo", "--home", str(home), *TINY, "--set", "train.epochs=2"]) == 0
    printed = capsys.readouterr().out
    assert f"== demo model: already trained in {home / 'demo' / 'run'}" in printed and "== training" not in printed

    assert main(["-q", "demo", "--home", str(home), *TINY, "--set", "train.epochs=2", "--set", "train.lr=3e-3"]) == 0
    printed = capsys.readouterr().out
    assert "the demo config changed since" in printed and "retraining from scratch" in printed
    assert "== training demo/tiny" in printed and "== retrieval.search('dreamy')" in printed
