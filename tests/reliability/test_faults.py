"""Fault injection: a real kill at each write step, a full disk, two writers at once, flipped checkpoint bytes.

After every fault the old data must be intact at its path, the error clear (one line, no traceback), and the next
run must leave no stale copy behind.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from reliability_cases import _flip_tensor_bytes
from test_catalogue import stale_files

from retrieval.errors import DataError, FileSystemError
from retrieval.fileio import FAULT_STEPS, FAULT_VARIABLE, atomic_folder, atomic_path, folder_lock
from retrieval.index import load_index

ROOT = Path(__file__).resolve().parents[2]


def _retrieval(*argv: str, fault: str | None = None, wait: bool = True):
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop(FAULT_VARIABLE, None)
    if fault is not None:
        env[FAULT_VARIABLE] = fault
    command = [sys.executable, "-m", "retrieval", "-q", *argv]
    if not wait:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def _index_argv(box, out: Path) -> list[str]:
    return ["index", str(box.music), "--model", str(box.run), "--out", str(out), "--backend", "exact",
            "--cache-dir", str(box.cache)]


#: Writes an ExactIndex of N random vectors to argv[1] (numpy only: a kill test in a second, not ten).
WRITE_INDEX = """
import sys
import numpy as np
from retrieval.index.exact import ExactIndex
n = int(sys.argv[2])
index = ExactIndex(dim=4, fingerprint="f")
index.add([f"t{i}" for i in range(n)], np.random.default_rng(n).normal(size=(n, 4)).astype(np.float32))
index.build()
index.save(sys.argv[1])
"""


@pytest.mark.parametrize("step", FAULT_STEPS)
def test_a_kill_at_each_write_step_leaves_a_complete_index(tmp_path: Path, step: str) -> None:
    out = tmp_path / "index"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", WRITE_INDEX, str(out), "5"], env=env, check=True)
    killed = subprocess.run([sys.executable, "-c", WRITE_INDEX, str(out), "7"], env={**env, FAULT_VARIABLE: step},
                            capture_output=True, text=True)
    if step == "file-before-rename":  # an index folder is written whole, never through per-file renames
        assert killed.returncode == 0, killed.stderr
        assert len(load_index(out).ids) == 7
        return
    assert killed.returncode == -9, killed.stderr
    # No moment without a complete index at the path: before the exchange the old one, after it the new one.
    assert len(load_index(out).ids) == (5 if step == "folder-before-exchange" else 7)
    assert stale_files(tmp_path) != []  # the kill left its copy ...
    subprocess.run([sys.executable, "-c", WRITE_INDEX, str(out), "9"], env=env, check=True)
    assert len(load_index(out).ids) == 9
    assert stale_files(tmp_path) == []  # ... and the next write swept it


def test_a_kill_while_the_cli_swaps_an_index_in(sandbox) -> None:
    """The whole command, killed between the exchange and the deletion of the old version."""
    from retrieval.index.build import index_folder

    killed = _retrieval(*_index_argv(sandbox, sandbox.index), fault="folder-after-exchange")
    assert killed.returncode == -9, killed.stderr
    assert len(load_index(sandbox.index).ids) == len(list(sandbox.music.iterdir()))
    index_folder(sandbox.run, sandbox.music, sandbox.index, backend="exact", cache_dir=sandbox.cache,
                 progress=False)
    assert stale_files(sandbox.tmp) == []


def test_a_cache_entry_left_by_a_kill_is_swept_an_hour_later(sandbox) -> None:
    from retrieval.index.build import index_folder

    folder = next(p for p in sandbox.cache.iterdir() if p.is_dir())
    leftover = folder / ".0123abcd.npy.x1y2z3.tmp.npy"
    leftover.write_bytes(b"\x93NUMPY")
    index_folder(sandbox.run, sandbox.music, sandbox.index, backend="exact", cache_dir=sandbox.cache,
                 progress=False)
    assert leftover.exists()  # it may be another indexer's write in progress
    old = time.time() - 7200
    os.utime(leftover, (old, old))
    index_folder(sandbox.run, sandbox.music, sandbox.index, backend="exact", cache_dir=sandbox.cache,
                 progress=False)
    assert not leftover.exists()


def test_a_kill_while_saving_a_file_keeps_the_old_one(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("old")
    code = ("import sys; from retrieval.fileio import write_text_atomic; write_text_atomic(sys.argv[1], 'new')")
    env = {**os.environ, FAULT_VARIABLE: "file-before-rename", "PYTHONPATH": str(ROOT)}
    killed = subprocess.run([sys.executable, "-c", code, str(path)], env=env, capture_output=True)
    assert killed.returncode == -9
    assert path.read_text() == "old"


def test_every_fault_step_is_reached() -> None:
    """The hook's steps are the ones the writers pass (a renamed step would make the kill tests vacuous)."""
    source = (ROOT / "retrieval" / "fileio.py").read_text()
    assert all(f'fault_point("{step}")' in source for step in FAULT_STEPS)


def test_a_full_disk_while_writing_an_index_keeps_the_old_one(sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    import retrieval.index.exact as exact
    from retrieval.index.build import index_folder

    before = load_index(sandbox.index).ids.tolist()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(exact.np, "save", full)
    with pytest.raises(FileSystemError) as caught:
        index_folder(sandbox.run, sandbox.music, sandbox.index, backend="exact", cache_dir=sandbox.cache,
                     progress=False)
    assert str(sandbox.index) in str(caught.value) and "no space left" in str(caught.value)
    assert load_index(sandbox.index).ids.tolist() == before
    assert stale_files(sandbox.tmp) == []


def test_two_writers_on_one_out(sandbox) -> None:
    """Two `retrieval index` processes on one --out: never a race ("Directory not empty"); each either writes
    the index or is refused with one clear line, and a complete index is there after."""
    out = sandbox.tmp / "shared"
    first, second = (_retrieval(*_index_argv(sandbox, out), wait=False) for _ in range(2))
    results = [(p.wait(timeout=300), *p.communicate()) for p in (first, second)]
    for code, _, err in results:
        assert code in (0, 2), err
        assert "Traceback" not in err
        if code == 2:
            assert "another process is writing it" in err and len(err.strip().splitlines()) == 1
    assert 0 in [code for code, _, _ in results]
    assert len(load_index(out).ids) == len(list(sandbox.music.iterdir()))
    assert stale_files(sandbox.tmp) == []


def test_a_held_lock_refuses_a_second_writer_and_frees_on_death(tmp_path: Path) -> None:
    target = tmp_path / "index"
    code = ("import sys, time; from retrieval.fileio import folder_lock\n"
            "with folder_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(FileSystemError, match="another process is writing it"), atomic_folder(target):
        pass
    holder.kill()  # a killed holder: the kernel drops its lock
    holder.wait()
    with atomic_folder(target) as tmp:
        (tmp / "a").write_text("1")
    assert (target / "a").read_text() == "1"


def test_the_lock_is_reentrant_and_leaves_nothing(tmp_path: Path) -> None:
    with folder_lock(tmp_path / "x"), folder_lock(tmp_path / "x"), atomic_path(tmp_path / "x") as tmp:
        tmp.write_text("1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]


def test_the_symlink_flip_where_the_os_cannot_exchange(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import retrieval.fileio as fileio

    monkeypatch.setattr(fileio, "exchange", lambda a, b: False)
    target = tmp_path / "index"
    for version in ("1", "2", "3"):
        with atomic_folder(target) as tmp:
            (tmp / "v").write_text(version)
        assert (target / "v").read_text() == version
    assert target.is_symlink()
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert len(kept) == 2 and kept[0].endswith(".data")  # the link and its one data folder, nothing stale


@pytest.mark.parametrize("where", ["weights", "anywhere"])
def test_flipped_checkpoint_bytes_are_refused(sandbox, where: str, capsys: pytest.CaptureFixture) -> None:
    from retrieval.runs import load_run

    run = sandbox.run_copy()
    checkpoint = run / "checkpoints" / "best.ckpt"
    if where == "weights":
        _flip_tensor_bytes(checkpoint)
        with pytest.raises(DataError, match="fingerprint"):
            load_run(run)
    else:
        data = bytearray(checkpoint.read_bytes())
        for offset in np.random.default_rng(3).choice(len(data), size=400, replace=False):
            data[int(offset)] ^= 0xFF
        checkpoint.write_bytes(bytes(data))
        with pytest.raises(DataError):
            load_run(run)
    from retrieval.cli import main

    assert main(["-q", "tag", str(sorted(sandbox.music.iterdir())[0]), "--model", str(run)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
