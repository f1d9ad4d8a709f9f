"""The command line: every flag documented, `evaluate` routing, configs by name from any folder, and only the
library's own errors as one-line messages (a bug keeps its traceback)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from retrieval import paths
from retrieval.cli import build_parser, main
from retrieval.cli.app import _route
from retrieval.config import CONFIG_DIR, load_config, resolve_config, shipped_configs
from retrieval.errors import ConfigError


def _parsers(parser: argparse.ArgumentParser, name: str = "retrieval"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


# ---- the parser -------------------------------------------------------------------------------------------------
def test_every_flag_and_argument_has_help() -> None:
    undocumented = [f"{name}: {action.dest}" for name, parser in _parsers(build_parser())
                    for action in parser._actions
                    if not isinstance(action, argparse._SubParsersAction) and not action.help]
    assert undocumented == []


def test_version(capsys) -> None:
    import retrieval

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out == f"retrieval {retrieval.__version__}\n"


def test_building_the_parser_imports_no_torch() -> None:
    import subprocess
    import sys

    code = "import sys; from retrieval.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("argv", "routed"),
    [
        (["evaluate", "runs/x"], ["evaluate", "run", "runs/x"]),
        (["-q", "evaluate", "runs/x", "--json"], ["-q", "evaluate", "run", "runs/x", "--json"]),
        (["evaluate", "--split", "valid", "runs/x"], ["evaluate", "run", "--split", "valid", "runs/x"]),
        (["evaluate", "moods", "--model", "r"], ["evaluate", "moods", "--model", "r"]),
        (["evaluate", "artist-factors", "-h"], ["evaluate", "artist-factors", "-h"]),
        (["evaluate", "--help"], ["evaluate", "--help"]),
        (["evaluate"], ["evaluate"]),
        (["train", "--config", "evaluate"], ["train", "--config", "evaluate"]),
    ],
)
def test_evaluate_run_is_routed_and_subcommands_are_kept(argv: list[str], routed: list[str]) -> None:
    assert _route(argv) == routed


def test_evaluate_subcommands_take_only_their_own_flags(capsys) -> None:
    parser = build_parser()
    args = parser.parse_args(_route(["evaluate", "runs/x", "--split", "valid", "--json"]))
    assert (args.run, args.split, args.json) == ("runs/x", "valid", True)
    args = parser.parse_args(["evaluate", "moods", "--model", "runs/x", "--set", "epochs=2"])
    assert (args.model, args.data, args.set) == ("runs/x", None, ["epochs=2"])
    for argv in (["evaluate", "runs/x", "--data", "d"],  # a moods flag on a run
                 ["evaluate", "moods", "--data", "d", "--model", "r"],  # one source only
                 ["evaluate", "moods", "--split", "test", "--model", "r"],  # a run flag on moods
                 ["evaluate", "artist-factors", "--data", "d"]):  # --out is required
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
    assert "usage: retrieval evaluate" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["search", "q", "-k", "0"], ["search", "q", "--blend", "1.5"],
                                  ["data", "demo", "--out", "x", "--tracks", "-3"]])
def test_bad_numbers_are_usage_errors(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and "error: argument" in capsys.readouterr().err


# ---- errors -----------------------------------------------------------------------------------------------------
def test_library_errors_are_one_line(tmp_path: Path, capsys) -> None:
    assert main(["-q", "evaluate", str(tmp_path / "no_run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not a run folder" in err and err.count("\n") == 1


def test_resume_without_a_run_and_training_over_a_run_are_one_line(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["-q", "train", "--config", "demo", "--out", str(out), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "last.ckpt").write_bytes(b"")
    assert main(["-q", "train", "--config", "demo", "--out", str(out)]) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_a_bug_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    import retrieval.training.tasks as tasks

    def broken(*args, **kwargs):
        raise KeyError("a bug, not bad input")

    monkeypatch.setattr(tasks, "evaluate_task", broken)
    with pytest.raises(KeyError, match="a bug"):
        main(["-q", "evaluate", "runs/x"])


# ---- configs by name, from any folder ---------------------------------------------------------------------------
def test_configs_resolve_by_name_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    by_path = load_config(CONFIG_DIR / "demo.yaml").to_dict()
    monkeypatch.chdir(tmp_path)
    assert load_config("demo").to_dict() == by_path  # the demo run is reused whichever way it is named
    assert resolve_config("tagging/fcn") == CONFIG_DIR / "tagging" / "fcn.yaml"
    assert resolve_config("msd500/hybrid_word2vec.yaml") == CONFIG_DIR / "msd500" / "hybrid_word2vec.yaml"
    assert resolve_config("configs/demo.yaml") == CONFIG_DIR / "demo.yaml"  # the README's spelling
    (tmp_path / "demo.yaml").write_text("train:\n  lr: 0.5\n")
    assert resolve_config("demo.yaml") == Path("demo.yaml")  # an existing file wins over a shipped name
    assert load_config("demo.yaml").train.lr == 0.5


def test_an_unknown_config_lists_the_shipped_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys) -> None:
    with pytest.raises(ConfigError, match=r"nope: config file not found.*shipped: .*demo, .*tagging/fcn"):
        resolve_config("nope")
    monkeypatch.chdir(tmp_path)
    assert main(["-q", "train", "--config", "nope", "--out", str(tmp_path / "r")]) == 2
    assert "moods/tiny" in capsys.readouterr().err


def test_shipped_configs_are_package_data() -> None:
    names = shipped_configs()
    assert {"demo", "base", "tagging/fcn", "moods/tiny", "artist_factors/demo", "demo/table"} <= set(names)
    assert CONFIG_DIR.parent.name == "retrieval" and all((CONFIG_DIR / f"{n}.yaml").is_file() for n in names)


def test_train_by_name_from_another_folder_checks_the_config_first(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["-q", "train", "--config", "demo", "--out", str(tmp_path / "x"), "--set", "train.epochs=0"]) == 2
    assert "train.epochs" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # nothing half-written


# ---- the demo command -------------------------------------------------------------------------------------------
def test_demo_command_calls_the_library_with_the_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import retrieval.demo

    calls = []
    monkeypatch.setattr(retrieval.demo, "run_demo", lambda *args, **kwargs: calls.append((args, kwargs)))
    before = os.environ.get("RETRIEVAL_HOME")
    assert main(["-q", "demo", "--home", str(tmp_path), "--set", "train.epochs=1"]) == 0
    assert os.environ.get("RETRIEVAL_HOME") == before  # the command sets no environment variable
    (args, kwargs), = calls
    assert args == (str(tmp_path), "demo")
    assert kwargs["tracks"] == 2000 and kwargs["overrides"] == ["train.epochs=1"] and kwargs["progress"] is False


def test_paths_take_an_explicit_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRIEVAL_HOME", str(tmp_path / "env"))
    assert paths.demo_run_dir() == tmp_path / "env" / "demo" / "run"
    assert paths.demo_corpus_dir(tmp_path) == tmp_path / "demo" / "corpus"
    assert paths.demo_index_path(tmp_path) == tmp_path / "demo" / "index"
