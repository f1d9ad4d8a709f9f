"""Every case of the reliability catalogue (``reliability_cases.py``): handled, one line, no traceback, nothing
stale left behind; and ``docs/RELIABILITY.md`` renders the same table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from reliability_cases import AFTER, CASES, DOC, Case, render_markdown

from retrieval.cli import main
from retrieval.errors import RetrievalError

#: Temporary or replaced copies (``.<name>.<random>.tmp…`` / ``.old``) and lock files an interrupted write leaves.
STALE = re.compile(r"\.[^/]+\.[A-Za-z0-9_]+\.(tmp.*|old)|\.[^/]+\.lock")


def stale_files(root: Path) -> list[str]:
    """Names under ``root`` that look like a temporary copy, a replaced copy or a lock."""
    return sorted(str(p.relative_to(root)) for p in root.rglob(".*") if STALE.fullmatch(p.name))


def _run(item: Case, prepared, capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    if callable(prepared):
        try:
            prepared()
            code, shown = 0, ""
        except RetrievalError as error:
            code, shown = 2, f"error: {error}\n"
        out, err = capsys.readouterr()
        return code, out, err + shown
    try:
        code = main(prepared)
    except SystemExit as exit_:  # argparse's usage errors
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("item", CASES, ids=[c.id for c in CASES])
def test_case(item: Case, sandbox, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture) -> None:
    prepared = item.prepare(sandbox)
    try:
        code, out, err = _run(item, prepared, capsys)
        err += caplog.text  # warnings (the CLI prints them on stderr; pytest captures them here)
    finally:
        cleanup = getattr(sandbox, "cleanup", None)
        if cleanup is not None:
            cleanup()
    assert "Traceback" not in out + err
    assert code == item.code, f"exit {code}, expected {item.code}\n{out}\n{err}"
    if item.code == 2:
        errors = [line for line in err.splitlines() if "error:" in line and not line.startswith("WARNING")]
        assert len(errors) == 1, err
        assert item.needle in errors[0], errors[0]
        assert "weights_only=False" not in errors[0]
    else:
        assert item.needle in out + err, out + err
    if item.id in AFTER:
        AFTER[item.id](sandbox)
    assert stale_files(sandbox.tmp) == []


def test_catalogue_size_and_ids() -> None:
    assert len(CASES) >= 80
    assert len({c.id for c in CASES}) == len(CASES)
    assert sum(c.source in ("issue", "reconstructed") for c in CASES) >= 72
    assert all(c.source in ("issue", "reconstructed", "new") for c in CASES)


def test_the_document_is_current() -> None:
    assert render_markdown() in DOC.read_text(), (
        "docs/RELIABILITY.md is out of date: run `PYTHONPATH=. python tests/reliability/reliability_cases.py`")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    """``--debug``: the same error, raised with its traceback instead of the one line."""
    argv = ["search", "piano", "--index", str(tmp_path / "nope")]
    assert main(["-q", *argv]) == 2
    with pytest.raises(RetrievalError, match="no retriever here"):
        main(["-q", "--debug", *argv])


def test_an_os_error_outside_the_library_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """An OSError no reader caught (here: the audio folder cannot be listed) still ends as one named line."""
    import errno
    import os

    import retrieval.index.build as build

    def denied(folder):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(folder))

    monkeypatch.setattr(build, "scan_folder", denied)
    assert main(["-q", "index", "/music", "--model", "RUN", "--out", "/tmp/x"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["error: /music: permission denied; fix its permissions (chmod / chown) "
                                        "or choose another path"]
