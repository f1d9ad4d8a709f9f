"""The reliability catalogue: bad inputs and faults thrown at ``index``, ``tag``, ``similar``, ``search``,
``train``, the data readers and the Python API, each with the outcome a user should see.

Each :class:`Case` prepares its fault in a :class:`~conftest.Sandbox` (fresh copies of a run, an index, a music
folder) and returns either the command line (run through ``retrieval.cli.main``) or a function of the Python API.
``test_catalogue.py`` runs every case and checks: the exit code (2 for a refused input, 0 when the fault is
handled silently), one ``error:`` line holding ``needle`` and no traceback, and no stale temporary copy left
anywhere in the sandbox. ``docs/RELIABILITY.md`` is rendered from this table (``render_markdown``), and a test
checks it is current: ``PYTHONPATH=. python tests/reliability/reliability_cases.py`` rewrites it.
"""

from __future__ import annotations

import errno
import pickle
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

#: The test that runs every case of this table.
TEST = "tests/reliability/test_catalogue.py::test_case"


@dataclass(frozen=True)
class Case:
    """One fault: ``prepare(sandbox)`` sets it up and returns argv (a CLI case) or a callable (an API case)."""

    id: str
    area: str
    fault: str
    command: str
    expect: str
    needle: str
    prepare: Callable
    code: int = 2
    #: "issue": named in issue 14's text; "reconstructed": a bad input of the kind the issue threw at that command
    #: (its 72 cases are described, not listed); "new": added here.
    source: str = "reconstructed"


CASES: list[Case] = []


def case(id: str, area: str, fault: str, command: str, expect: str, needle: str, code: int = 2,
         source: str = "reconstructed") -> Callable:
    def register(prepare: Callable) -> Callable:
        CASES.append(Case(id, area, fault, command, expect, needle, prepare, code, source))
        return prepare

    return register


# ---- helpers --------------------------------------------------------------------------------------------------
def _index(box, *extra: str, source: Path | None = None, out: Path | None = None) -> list[str]:
    return ["-q", "index", str(source or box.music), "--model", str(box.run), "--out", str(out or box.index),
            "--backend", "exact", "--cache-dir", str(box.cache), *extra]


def _search(box, *extra: str, index: Path | None = None) -> list[str]:
    return ["-q", "search", "piano", "--index", str(index or box.index), *extra]


def _first_audio(box) -> Path:
    return sorted(box.music.iterdir())[0]


def _cache_entries(box) -> list[Path]:
    return sorted(p for p in box.cache.rglob("*.npy") if not p.name.startswith("."))


def _raise_os(number: int) -> Callable:
    def fail(*args, **kwargs):
        raise OSError(number, __import__("os").strerror(number))

    return fail


def _train(box, *sets: str, out: Path | None = None) -> list[str]:
    config = Path(__file__).resolve().parents[2] / "configs" / "demo" / "tiny.yaml"
    argv = ["-q", "train", "--config", str(config), "--out", str(out or box.tmp / "new_run"),
            "--set", f"data.root={box.corpus}"]
    for item in sets:
        argv += ["--set", item]
    return argv


def _corpus_copy(box) -> Path:
    target = box.tmp / "corpus"
    shutil.copytree(box.corpus, target, ignore=shutil.ignore_patterns("cache", "audio"))
    return target


def _flip_tensor_bytes(checkpoint: Path, n: int = 400) -> None:
    """Flip ``n`` bytes inside the largest tensor of a (zip) checkpoint, leaving the archive readable."""
    import struct
    import zipfile

    with zipfile.ZipFile(checkpoint) as archive:
        info = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    data = bytearray(checkpoint.read_bytes())
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26: info.header_offset + 30])
    start = info.header_offset + 30 + name_length + extra_length
    rng = np.random.default_rng(0)
    for offset in rng.choice(info.file_size, size=n, replace=False):
        data[start + int(offset)] ^= 0xFF
    checkpoint.write_bytes(bytes(data))


def _lfs_pointer(path: Path) -> None:
    path.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:" + "0" * 64 + "\nsize 1234\n")


def _published(folder: Path, corpus: Path, *, tracks: bool = True) -> Path:
    """The authors' split files (``ROW//TRID`` strings) for the corpus' own splits, by track id."""
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    unique = pd.read_csv(corpus / "unique_tracks.txt", sep="<SEP>", engine="python", header=None,
                         names=["track", "song", "artist", "title"])
    track_of = dict(zip(unique["song"], unique["track"], strict=True))
    row = 0
    for name in ("train", "valid", "test"):
        songs = pd.read_csv(corpus / "splits" / f"{name}.tsv", sep="\t")["song_id"]
        ids = [f"{row + i}//{track_of[s] if tracks else s}" for i, s in enumerate(songs)]
        row += len(ids)
        np.save(folder / f"{name}_ids.npy", np.array(ids))
    tags = pd.read_csv(corpus / "splits" / "tags.tsv", sep="\t")["tag"]
    np.save(folder / "tags.npy", np.array(sorted(tags)))
    return folder


# ==== index ====================================================================================================
@case("index-out-music-folder", "index", "--out is a folder of the user's own files",
      "retrieval index MUSIC --model RUN --out ~/Music", "refused before embedding; the folder untouched",
      "not an index folder")
def _(box):
    (box.tmp / "mine").mkdir()
    (box.tmp / "mine" / "song.txt").write_text("keep me")
    return _index(box, out=box.tmp / "mine")


@case("index-out-is-file", "index", "--out is an existing file", "retrieval index MUSIC --model RUN --out FILE",
      "refused before embedding", "not an index folder")
def _(box):
    (box.tmp / "file").write_text("x")
    return _index(box, out=box.tmp / "file")


@case("index-out-under-file", "index", "--out lies under a file (FILE/index)",
      "retrieval index MUSIC --model RUN --out FILE/index", "one line: a part of the path is a file", "a file")
def _(box):
    (box.tmp / "file").write_text("x")
    return _index(box, out=box.tmp / "file" / "index")


@case("index-out-read-only", "index", "--out inside a read-only folder (EROFS)",
      "retrieval index MUSIC --model RUN --out /read-only/index", "one line naming the path: read-only file system",
      "read-only")
def _(box):
    import retrieval.fileio as fileio

    real = fileio.os.open
    box.monkeypatch.setattr(fileio.os, "open", lambda p, *a, **k: _raise_os(errno.EROFS)() if
                            str(p).endswith(".lock") else real(p, *a, **k))
    return _index(box, out=box.tmp / "ro" / "index")


@case("index-out-permission", "index", "--out inside a folder without write permission (EACCES)",
      "retrieval index MUSIC --model RUN --out /root-owned/index", "one line: permission denied, fix with chmod",
      "permission denied")
def _(box):
    import retrieval.fileio as fileio

    real = fileio.os.open
    box.monkeypatch.setattr(fileio.os, "open", lambda p, *a, **k: _raise_os(errno.EACCES)() if
                            str(p).endswith(".lock") else real(p, *a, **k))
    return _index(box, out=box.tmp / "noperm" / "index")


@case("index-cache-dir-file", "index", "--cache-dir is a file", "retrieval index MUSIC ... --cache-dir FILE",
      "one line: the --cache-dir path is a file", "--cache-dir path is a file")
def _(box):
    (box.tmp / "cachefile").write_text("x")
    return [*_index(box)[:-2], "--cache-dir", str(box.tmp / "cachefile")]


@case("index-cache-zero-byte", "index", "a 0-byte cache entry (a crash while caching)",
      "retrieval index MUSIC ... (cache entry truncated to 0 bytes)", "warning naming the entry; re-embedded; exit 0",
      "bad cache entry", code=0)
def _(box):
    _cache_entries(box)[0].write_bytes(b"")
    return _index(box)


@case("index-cache-truncated", "index", "a truncated cache entry", "retrieval index MUSIC ... (entry cut in half)",
      "warning naming the entry; re-embedded; exit 0", "bad cache entry", code=0)
def _(box):
    entry = _cache_entries(box)[0]
    entry.write_bytes(entry.read_bytes()[:100])
    return _index(box)


@case("index-cache-nan", "index", "a cache entry holding NaN", "retrieval index MUSIC ... (entry = NaN vector)",
      "warning naming the entry; re-embedded; exit 0", "non-finite", code=0)
def _(box):
    entry = _cache_entries(box)[0]
    np.save(entry, np.full(np.load(entry).shape, np.nan, np.float32))
    return _index(box)


@case("index-cache-wrong-dim", "index", "a cache entry of another dimension",
      "retrieval index MUSIC ... (entry of 3 values)", "warning naming the entry; re-embedded; exit 0",
      "expected (", code=0)
def _(box):
    np.save(_cache_entries(box)[0], np.zeros(3, np.float32))
    return _index(box)


@case("index-cache-pickle", "index", "a cache entry replaced by a pickle", "retrieval index MUSIC ...",
      "warning; never unpickled; re-embedded; exit 0", "bad cache entry", code=0, source="new")
def _(box):
    _cache_entries(box)[0].write_bytes(pickle.dumps({"x": 1}))
    return _index(box)


@case("index-newline-name", "index", "a file name with a newline", "retrieval index MUSIC ... ('bad\\nname.ogg')",
      "the folder is indexed; the file is in the skip report (escaped)", "bad\\nname.ogg", code=0)
def _(box):
    shutil.copy(_first_audio(box), box.music.parent / "unused")  # keep the shared folder intact
    music = box.copy(box.music, "music_nl")
    shutil.copy(sorted(music.iterdir())[0], music / "bad\nname.ogg")
    return _index(box, source=music)


@case("index-tab-name", "index", "a file name with a tab", "retrieval index MUSIC ... ('bad\\tname.ogg')",
      "indexed; the file is skipped and reported", "rename it", code=0, source="new")
def _(box):
    music = box.copy(box.music, "music_tab")
    shutil.copy(sorted(music.iterdir())[0], music / "bad\tname.ogg")
    return _index(box, source=music)


@case("index-corrupt-audio", "index", "a corrupt audio file among good ones", "retrieval index MUSIC ...",
      "indexed; the file skipped with 'cannot decode'", "cannot decode", code=0)
def _(box):
    music = box.copy(box.music, "music_bad")
    (music / "noise.ogg").write_bytes(np.random.default_rng(0).bytes(5000))
    return _index(box, source=music)


@case("index-empty-audio", "index", "a 0-byte audio file", "retrieval index MUSIC ...",
      "indexed; the file skipped as empty", "empty (0 bytes)", code=0)
def _(box):
    music = box.copy(box.music, "music_empty")
    (music / "empty.ogg").write_bytes(b"")
    return _index(box, source=music)


@case("index-unreadable-audio", "index", "an audio file without read permission (chmod 000)",
      "retrieval index MUSIC ...", "indexed; the file skipped: permission denied", "permission denied", code=0)
def _(box):
    import retrieval.index.build as build

    music = box.copy(box.music, "music_perm")
    locked = sorted(music.iterdir())[0]
    real = build.file_hash
    box.monkeypatch.setattr(build, "file_hash", lambda p: (_ for _ in ()).throw(PermissionError(13, "Permission "
                            "denied", str(p))) if Path(p) == locked else real(p))
    return _index(box, source=music)


@case("index-no-audio", "index", "a folder without audio files", "retrieval index EMPTY --model RUN --out I",
      "one line: no readable audio files", "no readable audio files")
def _(box):
    (box.tmp / "nothing").mkdir()
    return _index(box, source=box.tmp / "nothing")


@case("index-source-missing", "index", "the audio folder does not exist", "retrieval index NOPE --model RUN ...",
      "one line: not a folder of audio files", "not a folder of audio files")
def _(box):
    return _index(box, source=box.tmp / "nope")


@case("index-model-missing", "index", "--model names no run", "retrieval index MUSIC --model NOPE ...",
      "one line: checkpoint not found; train one", "checkpoint not found")
def _(box):
    argv = _index(box)
    argv[argv.index("--model") + 1] = str(box.tmp / "norun")
    return argv


@case("index-model-flipped", "index", "400 flipped bytes in the weights of best.ckpt",
      "retrieval index MUSIC --model RUN ...", "refused: weights do not match the fingerprint", "fingerprint")
def _(box):
    run = box.run_copy()
    _flip_tensor_bytes(run / "checkpoints" / "best.ckpt")
    argv = _index(box)
    argv[argv.index("--model") + 1] = str(run)
    return argv


@case("index-model-truncated", "index", "a truncated checkpoint", "retrieval index MUSIC --model RUN ...",
      "one line: corrupt or truncated", "not a readable checkpoint")
def _(box):
    run = box.run_copy()
    ckpt = run / "checkpoints" / "best.ckpt"
    ckpt.write_bytes(ckpt.read_bytes()[:5000])
    argv = _index(box)
    argv[argv.index("--model") + 1] = str(run)
    return argv


@case("index-model-pickle-attack", "index", "a checkpoint carrying a pickled os.system call",
      "retrieval index MUSIC --model RUN ...", "refused, without torch's weights_only=False advice", "refused:")
def _(box):
    import os

    import torch

    class Attack:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    run = box.run_copy()
    torch.save({"format": 1, "x": Attack()}, run / "checkpoints" / "best.ckpt")
    argv = _index(box)
    argv[argv.index("--model") + 1] = str(run)
    return argv


@case("index-enospc-cache", "index", "disk full while caching a vector (ENOSPC)", "retrieval index NEW ...",
      "one line naming the cache entry: no space left, free some", "no space left")
def _(box):
    import retrieval.index.build as build

    box.monkeypatch.setattr(build.np, "save", _raise_os(errno.ENOSPC))
    return [*_index(box)[:-2], "--cache-dir", str(box.tmp / "cold_cache")]


@case("index-enospc-index", "index", "disk full while writing the index (ENOSPC)", "retrieval index MUSIC ...",
      "one line: no space left; the old index intact, no temporary copy", "no space left")
def _(box):
    import retrieval.index.exact as exact

    box.monkeypatch.setattr(exact.np, "save", _raise_os(errno.ENOSPC))
    return _index(box)


@case("index-locked", "index", "another process is writing the same --out", "retrieval index MUSIC --out I (twice)",
      "the second is refused: another process is writing it", "another process is writing")
def _(box):
    import fcntl
    import os

    lock = box.index.parent / f".{box.index.name}.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    # The lock must belong to another open file: take it from a child that inherits and keeps it.
    import subprocess

    child = subprocess.Popen([sys.executable, "-c", "import sys,time; time.sleep(60)"], pass_fds=(fd,))
    os.close(fd)
    box.monkeypatch.setattr(box, "cleanup", lambda: (child.kill(), child.wait(), lock.unlink(missing_ok=True)),
                            raising=False)
    return _index(box)


@case("index-stale-copies", "index", "stale .tmp and .old copies of an earlier killed write",
      "retrieval index MUSIC --out I", "swept; a complete index; exit 0", "index", code=0)
def _(box):
    (box.index.parent / f".{box.index.name}.abc123.tmp").mkdir()
    (box.index.parent / f".{box.index.name}.def456.old").mkdir()
    return _index(box)


@case("index-replace", "index", "re-index over an existing index", "retrieval index MUSIC --out I (again)",
      "the new index replaces the old, from cache", "from cache", code=0)
def _(box):
    return _index(box)


@case("index-bad-backend", "index", "--backend unknown", "retrieval index MUSIC ... --backend faiss",
      "usage error naming the choices", "invalid choice")
def _(box):
    argv = _index(box)
    argv[argv.index("--backend") + 1] = "faiss"
    return argv


@case("index-corpus-out-music", "index", "--corpus with --out a non-index folder",
      "retrieval index CORPUS --corpus --model RUN --out ~/Music", "refused before embedding", "not an index folder",
      source="new")
def _(box):
    (box.tmp / "mine").mkdir()
    (box.tmp / "mine" / "a.txt").write_text("x")
    return ["-q", "index", str(box.corpus), "--corpus", "--model", str(box.run), "--out", str(box.tmp / "mine")]


@case("index-corpus-pretrained", "index", "--corpus with a pretrained tagger",
      "retrieval index CORPUS --corpus --model musicnn-mtt --out I", "one line: index the audio folder instead",
      "pretrained tagger", source="new")
def _(box):
    return ["-q", "index", str(box.corpus), "--corpus", "--model", "musicnn-mtt", "--out", str(box.tmp / "i")]


@case("index-cwd-relative", "index", "index run with a relative folder, then searched from elsewhere",
      "cd A; retrieval index music ...; cd B; retrieval search", "catalogue audio paths absolute", "index", code=0)
def _(box):
    box.monkeypatch.chdir(box.music.parent)
    return _index(box, source=Path(box.music.name))


# ==== search ===================================================================================================
@case("search-index-missing", "search", "--index names nothing", "retrieval search piano --index NOPE",
      "one line: build one with retrieval index", "no retriever here")
def _(box):
    return _search(box, index=box.tmp / "nope")


@case("search-not-index", "search", "--index is a folder that is neither index nor run",
      "retrieval search piano --index ~/Music", "one line: neither an index folder nor a run folder", "neither")
def _(box):
    (box.tmp / "plain").mkdir()
    return _search(box, index=box.tmp / "plain")


@case("search-model-json-corrupt", "search", "a corrupt model.json", "retrieval search piano --index I",
      "one line naming model.json", "model.json: unreadable")
def _(box):
    (box.index / "model.json").write_text("{bad")
    return _search(box)


@case("search-model-json-empty-object", "search", "model.json names neither run nor model",
      "retrieval search piano --index I", "one line: rebuild the index", "names neither")
def _(box):
    (box.index / "model.json").write_text("{}")
    return _search(box)


@case("search-moved-together", "search", "index and run moved together (a moved $RETRIEVAL_HOME)",
      "mv HOME HOME2; retrieval search piano --index HOME2/index", "found through the relative path", "1.", code=0)
def _(box):
    from retrieval.index.build import index_folder

    home = box.tmp / "home"
    shutil.copytree(box.run, home / "run")
    index_folder(home / "run", box.music, home / "index", backend="exact", cache_dir=box.cache, progress=False)
    shutil.move(home, box.tmp / "home2")
    return _search(box, index=box.tmp / "home2" / "index")


@case("search-run-deleted", "search", "the run an index names was deleted", "rm -r RUN; retrieval search piano",
      "one line: the run it names is not there", "is not there")
def _(box):
    from retrieval.index.build import index_folder

    run = box.run_copy()
    index_folder(run, box.music, box.tmp / "idx2", backend="exact", cache_dir=box.cache, progress=False)
    shutil.rmtree(run)
    return _search(box, index=box.tmp / "idx2")


@case("search-meta-corrupt", "search", "meta.json is not JSON", "retrieval search piano --index I",
      "one line naming meta.json with the line", "not valid JSON")
def _(box):
    (box.index / "meta.json").write_text("{")
    return _search(box)


@case("search-meta-missing-key", "search", "meta.json lacks a key", "retrieval search piano --index I",
      "one line naming the key", "missing key")
def _(box):
    import json

    meta = json.loads((box.index / "meta.json").read_text())
    del meta["dim"]
    (box.index / "meta.json").write_text(json.dumps(meta))
    return _search(box)


@case("search-meta-version", "search", "an index of another format version", "retrieval search piano --index I",
      "one line: rebuild the index", "format version", source="new")
def _(box):
    import json

    meta = json.loads((box.index / "meta.json").read_text())
    meta["format_version"] = 99
    (box.index / "meta.json").write_text(json.dumps(meta))
    return _search(box)


@case("search-ids-truncated", "search", "ids.npy truncated", "retrieval search piano --index I",
      "one line naming ids.npy", "ids.npy")
def _(box):
    path = box.index / "ids.npy"
    path.write_bytes(path.read_bytes()[:60])
    return _search(box)


@case("search-ids-lfs", "search", "ids.npy is a git-lfs pointer", "retrieval search piano --index I",
      "one line: run git lfs pull", "git lfs pull")
def _(box):
    _lfs_pointer(box.index / "ids.npy")
    return _search(box)


@case("search-vectors-missing", "search", "the vectors file was deleted", "retrieval search piano --index I",
      "one line naming vectors.npy", "vectors.npy")
def _(box):
    (box.index / "vectors.npy").unlink()
    return _search(box)


@case("search-vectors-nan", "search", "the vectors file holds the wrong shape", "retrieval search piano --index I",
      "one line naming vectors.npy", "vectors.npy", source="new")
def _(box):
    np.save(box.index / "vectors.npy", np.zeros((2, 3), np.float32))
    return _search(box)


@case("search-catalogue-row-deleted", "search", "a catalogue.tsv row deleted", "retrieval search piano --index I",
      "one line: has no row for 1 indexed track", "has no row")
def _(box):
    path = box.index / "catalogue.tsv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:2] + lines[3:]))
    return _search(box)


@case("search-catalogue-duplicate", "search", "a catalogue.tsv row duplicated", "retrieval search piano --index I",
      "one line with the line number", "appears twice")
def _(box):
    path = box.index / "catalogue.tsv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines + [lines[1]]))
    return _search(box)


@case("search-catalogue-column", "search", "catalogue.tsv lacks a column", "retrieval search piano --index I",
      "one line naming the column", "missing column")
def _(box):
    (box.index / "catalogue.tsv").write_text("track_id\ttitle\nx\ty\n")
    return _search(box)


@case("search-other-model", "search", "an index made by another model", "retrieval search piano --index I",
      "one line: built from another model; rebuild", "built from model")
def _(box):
    import json

    meta = json.loads((box.index / "meta.json").read_text())
    meta["model_fingerprint"] = "0123456789abcdef"
    (box.index / "meta.json").write_text(json.dumps(meta))
    return _search(box)


@case("search-k-zero", "search", "-k 0", "retrieval search piano -k 0", "usage error naming -k", "argument -k")
def _(box):
    return _search(box, "-k", "0")


@case("search-blend-range", "search", "--blend 2", "retrieval search piano --blend 2", "usage error naming --blend",
      "argument --blend")
def _(box):
    return _search(box, "--blend", "2")


@case("search-near-unknown", "search", "--near an id without listening data", "retrieval search piano --near X",
      "one line naming the id", "no listening data", source="new")
def _(box):
    return _search(box, "--near", "NOT_A_TRACK", "--blend", "0.5")


@case("search-flipped-run", "search", "the run's checkpoint has flipped bytes", "retrieval search piano --index I",
      "refused: weights do not match the fingerprint", "fingerprint")
def _(box):
    from retrieval.index.build import index_folder

    run = box.run_copy()
    index_folder(run, box.music, box.tmp / "idx3", backend="exact", cache_dir=box.cache, progress=False)
    _flip_tensor_bytes(run / "checkpoints" / "best.ckpt")
    return _search(box, index=box.tmp / "idx3")


# ==== similar ==================================================================================================
@case("similar-unknown-id", "similar", "a track id the index lacks", "retrieval similar NOPE --index I",
      "one line naming the id", "not in this index")
def _(box):
    return ["-q", "similar", "NOPE", "--index", str(box.index)]


@case("similar-corrupt-file", "similar", "a corrupt audio file as the query", "retrieval similar bad.ogg --index I",
      "one line: cannot decode it", "cannot decode")
def _(box):
    (box.tmp / "bad.ogg").write_bytes(b"OggS" + bytes(3000))
    return ["-q", "similar", str(box.tmp / "bad.ogg"), "--index", str(box.index)]


@case("similar-k-negative", "similar", "-k -1", "retrieval similar ID -k -1", "usage error naming -k", "argument -k")
def _(box):
    return ["-q", "similar", "x", "--index", str(box.index), "-k", "-1"]


@case("similar-file-ok", "similar", "a catalogue file as the query", "retrieval similar FILE --index I",
      "its own track first", "1.", code=0, source="new")
def _(box):
    return ["-q", "similar", str(_first_audio(box)), "--index", str(box.index)]


# ==== tag ======================================================================================================
@case("tag-k-negative", "tag", "tag -k -1", "retrieval tag FILE -k -1", "usage error naming -k (not n−1 tags)",
      "argument -k")
def _(box):
    return ["-q", "tag", str(_first_audio(box)), "--model", str(box.run), "-k", "-1"]


@case("tag-missing-file", "tag", "the file does not exist", "retrieval tag nope.ogg --model RUN",
      "one line: no such audio file", "no such audio file")
def _(box):
    return ["-q", "tag", str(box.tmp / "nope.ogg"), "--model", str(box.run)]


@case("tag-empty-file", "tag", "a 0-byte file", "retrieval tag empty.ogg --model RUN", "one line: the file is empty",
      "empty (0 bytes)")
def _(box):
    (box.tmp / "empty.ogg").write_bytes(b"")
    return ["-q", "tag", str(box.tmp / "empty.ogg"), "--model", str(box.run)]


@case("tag-permission", "tag", "chmod 000 on the file", "chmod 000 f.ogg; retrieval tag f.ogg --model RUN",
      "one line: permission denied (not 'corrupt, re-encode')", "permission denied")
def _(box):
    import builtins

    import retrieval.audio.decode as decode

    target = box.tmp / "locked.ogg"
    shutil.copy(_first_audio(box), target)
    real = builtins.open
    box.monkeypatch.setattr(decode, "open", lambda p, *a, **k: (_ for _ in ()).throw(
        PermissionError(13, "Permission denied", str(p))) if Path(p) == target else real(p, *a, **k), raising=False)
    return ["-q", "tag", str(target), "--model", str(box.run)]


@case("tag-corrupt", "tag", "a corrupt file", "retrieval tag bad.mp3 --model RUN", "one line: cannot decode it",
      "cannot decode")
def _(box):
    (box.tmp / "bad.mp3").write_bytes(np.random.default_rng(1).bytes(4000))
    return ["-q", "tag", str(box.tmp / "bad.mp3"), "--model", str(box.run)]


@case("tag-text-file", "tag", "a text file named .wav", "retrieval tag notes.wav --model RUN",
      "one line: cannot decode it", "cannot decode", source="new")
def _(box):
    (box.tmp / "notes.wav").write_text("these are notes, not audio\n" * 50)
    return ["-q", "tag", str(box.tmp / "notes.wav"), "--model", str(box.run)]


@case("tag-head-missing", "tag", "--head names no file", "retrieval tag FILE --model RUN --head nope.pt",
      "one line naming the head file", "nope.pt", source="new")
def _(box):
    return ["-q", "tag", str(_first_audio(box)), "--model", str(box.run), "--head", str(box.tmp / "nope.pt")]


@case("tag-model-unknown", "tag", "--model neither a run nor a pretrained name", "retrieval tag FILE --model nope",
      "one line listing what to use", "no retriever here")
def _(box):
    return ["-q", "tag", str(_first_audio(box)), "--model", str(box.tmp / "nope")]


@case("tag-flipped", "tag", "the run's weights have flipped bytes", "retrieval tag FILE --model RUN",
      "refused: weights do not match the fingerprint (was exit 0 with garbage)", "fingerprint")
def _(box):
    run = box.run_copy()
    _flip_tensor_bytes(run / "checkpoints" / "best.ckpt")
    return ["-q", "tag", str(_first_audio(box)), "--model", str(run)]


@case("tag-ok", "tag", "an ordinary file (control)", "retrieval tag FILE --model RUN -k 3", "3 tags", "3.", code=0,
      source="new")
def _(box):
    return ["-q", "tag", str(_first_audio(box)), "--model", str(box.run), "-k", "3"]


# ==== train ====================================================================================================
@case("train-lr-negative", "train", "train.lr=-1", "retrieval train --config demo/tiny --set train.lr=-1",
      "refused before any data is read, naming train.lr", "train.lr")
def _(box):
    return _train(box, "train.lr=-1")


@case("train-epochs-zero", "train", "train.epochs=0", "retrieval train ... --set train.epochs=0",
      "refused naming train.epochs (was exit 0, no checkpoint)", "train.epochs")
def _(box):
    return _train(box, "train.epochs=0")


@case("train-unknown-key", "train", "an unknown key", "retrieval train ... --set train.lrr=1",
      "one line listing the allowed keys", "unknown config key")
def _(box):
    return _train(box, "train.lrr=1")


@case("train-bad-override", "train", "an override without '='", "retrieval train ... --set train.lr",
      "one line: must look like section.key=value", "must look like")
def _(box):
    return _train(box, "train.lr")


@case("train-wrong-type", "train", "a value of the wrong type", "retrieval train ... --set train.batch_size=big",
      "one line naming the key and the type", "train.batch_size", source="new")
def _(box):
    return _train(box, "train.batch_size=big")


@case("train-config-missing", "train", "--config names no file", "retrieval train --config nope.yaml --out R",
      "one line listing the shipped configs", "config file not found")
def _(box):
    return ["-q", "train", "--config", str(box.tmp / "nope.yaml"), "--out", str(box.tmp / "r")]


@case("train-config-yaml", "train", "--config is not YAML", "retrieval train --config bad.yaml --out R",
      "one line: not valid YAML", "not valid YAML")
def _(box):
    (box.tmp / "bad.yaml").write_text("train: [unclosed\n")
    return ["-q", "train", "--config", str(box.tmp / "bad.yaml"), "--out", str(box.tmp / "r")]


@case("train-out-exists", "train", "--out already holds a run", "retrieval train ... --out RUN",
      "one line: pass --resume or choose another --out", "already holds a run")
def _(box):
    return _train(box, out=box.run_copy())


@case("train-resume-nothing", "train", "--resume with no run", "retrieval train ... --out NEW --resume",
      "one line: nothing to resume", "nothing to resume")
def _(box):
    return [*_train(box), "--resume"]


@case("train-out-is-file", "train", "--out is a file", "retrieval train ... --out FILE",
      "one line: the --out path is a file", "is a file", source="new")
def _(box):
    (box.tmp / "runfile").write_text("x")
    return _train(box, out=box.tmp / "runfile")


@case("train-locked", "train", "another trainer holds --out", "retrieval train ... --out R (twice at once)",
      "the second is refused: another process is writing it", "another process is writing")
def _(box):
    import fcntl
    import os
    import subprocess

    out = box.tmp / "busy_run"
    lock = box.tmp / ".busy_run.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], pass_fds=(fd,))
    os.close(fd)
    box.monkeypatch.setattr(box, "cleanup", lambda: (child.kill(), child.wait(), lock.unlink(missing_ok=True)),
                            raising=False)
    return _train(box, out=out)


@case("train-root-missing", "train", "data.root does not exist", "retrieval train ... --set data.root=/nope",
      "one line: corpus folder not found", "corpus folder not found")
def _(box):
    return [*_train(box), "--set", f"data.root={box.tmp / 'nope'}"]


@case("train-enospc-checkpoint", "train", "disk full while saving a checkpoint (torch's enforce-fail RuntimeError)",
      "retrieval train ... (disk full)", "one line naming the checkpoint: no space left; the old one intact",
      "no space left")
def _(box):
    from retrieval.runs.checkpoint import load_checkpoint, save_checkpoint

    run = box.run_copy()
    ckpt = run / "checkpoints" / "best.ckpt"
    before = ckpt.read_bytes()

    def call():
        import retrieval.runs.checkpoint as checkpoint

        def full(*args, **kwargs):
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 123 vs 456")

        box.monkeypatch.setattr(checkpoint.torch, "save", full)
        box.monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10, 10, 0))
        try:
            save_checkpoint(ckpt, load_checkpoint(ckpt))
        finally:
            assert ckpt.read_bytes() == before, "the old checkpoint was changed"

    return call


# ==== data =====================================================================================================
def _summary(box, corpus: Path) -> list[str]:
    return ["-q", "data", "summary", str(corpus)]


def _summary_with_line(box, name: str, line: str) -> list[str]:
    """``data summary`` of a corpus copy whose file ``name`` ends with ``line`` (``SONG``: the file's first song)."""
    corpus = _corpus_copy(box)
    song = (corpus / name).read_text().split("\t")[1]  # a song of the corpus, so the line is not filtered out
    with open(corpus / name, "a") as handle:
        handle.write(line.replace("SONG", song))
    return _summary(box, corpus)


for _id, _fault, _count, _needle in [
    ("data-play-count-huge", "a play count of 1e40 in train_triplets.txt", "1e40", "too large"),
    ("data-play-count-negative", "a negative play count", "-3", "negative play count"),
    ("data-play-count-text", "a play count that is not a number", "many", "not a number"),
]:
    case(_id, "data", _fault, "retrieval data summary DIR", "one line naming the line" + (
        " (was OverflowError: the reader had stored inf)" if _count == "1e40" else ""), _needle)(
        lambda box, count=_count: _summary_with_line(box, "train_triplets.txt", f"u1\tSONG\t{count}\n"))


@case("data-track-tags-missing", "data", "track_tags.tsv missing", "retrieval data summary DIR",
      "one line: file not found, how to get it", "track_tags.tsv: file not found")
def _(box):
    corpus = _corpus_copy(box)
    (corpus / "track_tags.tsv").unlink()
    return _summary(box, corpus)


@case("data-track-tags-fields", "data", "track_tags.tsv with a short line", "retrieval data summary DIR",
      "one line naming the line", "tab-separated fields")
def _(box):
    return _summary_with_line(box, "track_tags.tsv", "SOX\trock\n")


@case("data-selected-tags-empty", "data", "an empty selected_tags.tsv (and no splits)", "retrieval data summary DIR",
      "one line: holds no tags (was a 0-tag corpus)", "holds no tags")
def _(box):
    corpus = _corpus_copy(box)
    shutil.rmtree(corpus / "splits")
    (corpus / "selected_tags.tsv").write_text("")
    return _summary(box, corpus)


@case("data-selected-tags-extra", "data", "selected_tags.tsv with extra columns", "retrieval data summary DIR",
      "read; the extra columns ignored", "tags:", code=0)
def _(box):
    corpus = _corpus_copy(box)
    shutil.rmtree(corpus / "splits")
    lines = (corpus / "selected_tags.tsv").read_text().splitlines()
    (corpus / "selected_tags.tsv").write_text("".join(f"{line}\t123\tnote\n" for line in lines))
    return _summary(box, corpus)


@case("data-unique-tracks-missing", "data", "unique_tracks.txt missing", "retrieval data summary DIR",
      "one line: file not found", "unique_tracks.txt: file not found")
def _(box):
    corpus = _corpus_copy(box)
    (corpus / "unique_tracks.txt").unlink()
    return _summary(box, corpus)


@case("data-permission", "data", "track_tags.tsv without read permission", "retrieval data summary DIR",
      "one line naming the file: permission denied", "permission denied")
def _(box):
    import builtins

    corpus = _corpus_copy(box)
    target = corpus / "track_tags.tsv"
    real = builtins.open
    box.monkeypatch.setattr(builtins, "open", lambda p, *a, **k: (_ for _ in ()).throw(
        PermissionError(13, "Permission denied", str(p))) if str(p) == str(target) else real(p, *a, **k))
    return _summary(box, corpus)


@case("data-root-missing", "data", "the corpus folder does not exist", "retrieval data summary NOPE",
      "one line: corpus folder not found", "corpus folder not found", source="new")
def _(box):
    return _summary(box, box.tmp / "nope")


@case("data-import-splits-track-ids", "data", "the authors' split files with ROW//TRID track ids",
      "retrieval data import-splits DIR PUBLISHED --out S", "artists present for every track; disjointness checked",
      "artist-disjoint: yes", code=0)
def _(box):
    published = _published(box.tmp / "published", box.corpus)
    return ["-q", "data", "import-splits", str(box.corpus), str(published), "--out", str(box.tmp / "splits")]


@case("data-import-splits-lfs", "data", "a split file that is a git-lfs pointer",
      "retrieval data import-splits DIR PUBLISHED --out S", "one line: run git lfs pull", "git lfs pull")
def _(box):
    published = _published(box.tmp / "published", box.corpus)
    _lfs_pointer(published / "train_ids.npy")
    return ["-q", "data", "import-splits", str(box.corpus), str(published), "--out", str(box.tmp / "splits")]


@case("data-import-splits-malformed", "data", "a split entry without ROW//", "retrieval data import-splits ...",
      "one line naming the entry", "is not of the form")
def _(box):
    published = _published(box.tmp / "published", box.corpus)
    np.save(published / "valid_ids.npy", np.array(["TRX"]))
    return ["-q", "data", "import-splits", str(box.corpus), str(published), "--out", str(box.tmp / "splits")]


@case("data-import-splits-pickled", "data", "a split file holding pickled objects", "retrieval data import-splits ...",
      "refused without unpickling", "pickled objects are refused")
def _(box):
    published = _published(box.tmp / "published", box.corpus)
    np.save(published / "test_ids.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return ["-q", "data", "import-splits", str(box.corpus), str(published), "--out", str(box.tmp / "splits")]


@case("data-id-map-attack", "data", "a pickled id map carrying os.system", "retrieval data convert-id-map evil.pkl",
      "refused: only dicts of strings and integers are read", "refused to load")
def _(box):
    import os

    class Attack:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    (box.tmp / "evil.pkl").write_bytes(pickle.dumps({"TR1": Attack()}))
    return ["-q", "data", "convert-id-map", str(box.tmp / "evil.pkl"), "--out", str(box.tmp / "map.tsv")]


@case("data-id-map-convert", "data", "the pickled MSD_id_to_7D_id.pkl (protocol 2, as shared)",
      "retrieval data convert-id-map MSD_id_to_7D_id.pkl --out DIR/7digital_ids.tsv", "written once as TSV",
      "2 track", code=0)
def _(box):
    (box.tmp / "MSD_id_to_7D_id.pkl").write_bytes(pickle.dumps({"TRA": 8947470, "TRB": "123"}, protocol=2))
    return ["-q", "data", "convert-id-map", str(box.tmp / "MSD_id_to_7D_id.pkl"), "--out", str(box.tmp / "m.tsv")]


@case("data-id-map-not-dict", "data", "a pickled id map that is a list", "retrieval data convert-id-map list.pkl",
      "one line: not a dict", "not a dict", source="new")
def _(box):
    (box.tmp / "list.pkl").write_bytes(pickle.dumps(["TRA", 1]))
    return ["-q", "data", "convert-id-map", str(box.tmp / "list.pkl"), "--out", str(box.tmp / "m.tsv")]


# ==== Python API ===============================================================================================
def _api_error(function: Callable) -> Callable:
    return lambda box: (lambda: function(box))


@case("api-load-missing", "api", "retrieval.load of a missing path", "retrieval.load('nope')",
      "DataError: build one with retrieval index", "no retriever here")
@_api_error
def _(box):
    import retrieval

    retrieval.load(box.tmp / "nope")


@case("api-tag-k-negative", "api", "Retriever.tag(k=-1)", "retrieval.load(I).tag(f, k=-1)",
      "InputError: k must be ≥ 1 (was n−1 tags)", "k must be an integer")
@_api_error
def _(box):
    import retrieval

    retrieval.load(box.index).tag(_first_audio(box), k=-1)


@case("api-search-k-zero", "api", "Retriever.search(k=0)", "retrieval.load(I).search('piano', k=0)",
      "InputError naming k", "k must be an integer", source="new")
@_api_error
def _(box):
    import retrieval

    retrieval.load(box.index).search("piano", k=0)


@case("api-load-run-flipped", "api", "load_run of a checkpoint with flipped weights", "retrieval.runs.load_run(RUN)",
      "DataError: weights do not match the fingerprint", "fingerprint")
@_api_error
def _(box):
    from retrieval.runs import load_run

    run = box.run_copy()
    _flip_tensor_bytes(run / "checkpoints" / "best.ckpt")
    load_run(run)


@case("api-locator-7digital", "api", "the 7digital preview dump with its id map",
      "load_corpus(DIR).audio_locator().locate(ids)", "every song found (was found 0 missing 3)", "found", code=0)
def _(box):
    def call():
        from retrieval.data.corpus import load_corpus

        corpus_dir = _corpus_copy(box)
        corpus = load_corpus(corpus_dir)
        songs = list(corpus.song_ids())[:3]
        tracks = corpus.tracks.loc[songs, "track_id"]
        files = {p.stem: p for p in box.corpus.joinpath("audio").rglob("*.ogg")}
        mapping = {}
        for n, (song, track) in enumerate(tracks.items()):
            seven = str(8947470 + n)
            target = corpus_dir / "audio" / seven[0] / seven[1] / f"{seven}.clip.ogg"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(files.get(track) or files[song], target)
            mapping[track] = int(seven)
        (corpus_dir / "MSD_id_to_7D_id.pkl").write_bytes(pickle.dumps(mapping, protocol=2))
        located = load_corpus(corpus_dir).audio_locator().locate(songs)
        assert len(located.found) == 3 and not located.missing, located
        print(f"found {len(located.found)} missing {len(located.missing)}")

    return call


@case("api-fma-genres", "api", "FMA genres.csv with a parent that is not a genre", "read_fma_genres(genres.csv)",
      "DataError naming the line and column", "parent is not a genre")
@_api_error
def _(box):
    from retrieval.data.fma import read_fma_genres

    (box.tmp / "genres.csv").write_text("genre_id,#tracks,parent,title,top_level\n12,3,0,Rock,12\n25,2,99,Punk,12\n")
    read_fma_genres(box.tmp / "genres.csv")


@case("api-fma-genres-ok", "api", "FMA genres.csv, the released header", "read_fma_genres(genres.csv)",
      "the hierarchy: Punk's path is (Rock, Punk)", "Rock/Punk", code=0)
def _(box):
    def call():
        from retrieval.data.fma import read_fma_genres

        (box.tmp / "genres.csv").write_text("genre_id,#tracks,parent,title,top_level\n"
                                            "12,32923,0,Rock,12\n25,9261,12,Punk,12\n")
        genres = read_fma_genres(box.tmp / "genres.csv")
        print("/".join(genres.loc[25, "path"]))

    return call


@case("api-npy-lfs", "api", "load_npy of a git-lfs pointer", "retrieval.fileio.load_npy(x.npy)",
      "DataError: run git lfs pull (was a pickle error)", "git lfs pull")
@_api_error
def _(box):
    from retrieval.fileio import load_npy

    _lfs_pointer(box.tmp / "x.npy")
    load_npy(box.tmp / "x.npy")


@case("api-index-folder-cache-file", "api", "index_folder with cache_dir a file",
      "index_folder(RUN, M, I, cache_dir=F)",
      "FileSystemError naming the path", "is a file")
@_api_error
def _(box):
    from retrieval.index.build import index_folder

    (box.tmp / "cf").write_text("x")
    index_folder(box.run, box.music, box.tmp / "i", cache_dir=box.tmp / "cf", progress=False)


@case("api-write-enospc", "api", "write_text_atomic on a full disk", "retrieval.fileio.write_text_atomic(p, text)",
      "FileSystemError naming p; the old file intact", "no space left", source="new")
@_api_error
def _(box):
    import retrieval.fileio as fileio

    path = box.tmp / "notes.txt"
    path.write_text("old")
    box.monkeypatch.setattr(fileio.os, "fsync", _raise_os(errno.ENOSPC))
    try:
        fileio.write_text_atomic(path, "new")
    finally:
        assert path.read_text() == "old"


@case("api-mel-cache-zero-byte", "api", "a 0-byte entry in the training mel cache (a crash while caching)",
      "FeatureStore(cache, mel).build(paths)", "warning naming the entry; recomputed", "bad cache entry", code=0,
      source="new")
def _(box):
    def call():
        from retrieval.audio import MelConfig
        from retrieval.data.features import FeatureStore

        paths = {p.stem: p for p in sorted(box.music.iterdir())[:2]}
        store = FeatureStore(box.tmp / "mel", MelConfig())
        assert store.build(paths, workers=1, progress=False) == {}
        entry = store.path(next(iter(paths)))
        entry.write_bytes(b"")
        assert store.build(paths, workers=1, progress=False) == {}
        assert store.load(next(iter(paths))).shape[0] == MelConfig().n_mels

    return call


#: The cases issue 14's text names (its failures, and the faults it saw handled: atomic writes, the pickle attack).
ISSUE_NAMED = {
    "index-model-flipped", "tag-flipped", "search-flipped-run", "api-load-run-flipped", "index-enospc-cache",
    "index-enospc-index", "train-enospc-checkpoint", "index-cache-dir-file", "index-out-read-only",
    "index-cache-zero-byte", "data-play-count-huge", "index-newline-name", "index-cache-truncated", "index-cache-nan",
    "index-cache-wrong-dim", "search-moved-together", "search-model-json-corrupt", "index-cwd-relative",
    "index-stale-copies", "index-locked", "tag-permission", "tag-k-negative", "api-tag-k-negative",
    "train-lr-negative", "train-epochs-zero", "search-catalogue-row-deleted", "data-selected-tags-empty",
    "index-model-pickle-attack", "data-import-splits-track-ids", "api-locator-7digital", "data-selected-tags-extra",
    "api-fma-genres-ok", "search-ids-lfs", "api-npy-lfs", "data-import-splits-lfs", "index-replace",
}
CASES[:] = [replace(c, source="issue") if c.id in ISSUE_NAMED else c for c in CASES]


# ---- what must hold after a case (beyond its exit code and message) -----------------------------------------
#: Case id → a check of the sandbox after the command ran.
AFTER: dict[str, Callable] = {}


def after(case_id: str) -> Callable:
    def register(check: Callable) -> Callable:
        AFTER[case_id] = check
        return check

    return register


def _index_intact(box) -> None:
    from retrieval.index import load_index

    index = load_index(box.index)
    assert len(index.ids) == len(list(box.music.iterdir())), "the old index was damaged"


for _id in ("index-enospc-index", "index-locked", "index-stale-copies", "index-replace", "index-cache-zero-byte",
            "index-cache-truncated", "index-cache-nan", "index-cache-wrong-dim", "index-cache-pickle"):
    AFTER[_id] = _index_intact


@after("index-out-music-folder")
def _(box):
    assert (box.tmp / "mine" / "song.txt").read_text() == "keep me"


@after("index-cwd-relative")
def _(box):
    import pandas as pd

    paths = pd.read_csv(box.index / "catalogue.tsv", sep="\t")["audio_path"]
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in paths), paths.tolist()


@after("index-cache-nan")
def _(box):
    assert all(np.isfinite(np.load(p)).all() for p in _cache_entries(box)), "the NaN entry was not re-embedded"


@after("data-import-splits-track-ids")
def _(box):
    import pandas as pd

    for name in ("train", "valid", "test"):
        frame = pd.read_csv(box.tmp / "splits" / f"{name}.tsv", sep="\t", keep_default_na=False)
        assert len(frame) and (frame["artist"] != "").all(), f"{name}.tsv has tracks without an artist"
        assert frame["song_id"].str.startswith("TR").all()


@after("data-id-map-convert")
def _(box):
    from retrieval.data.seven_digital import read_id_map

    assert read_id_map(box.tmp / "m.tsv") == {"TRA": "8947470", "TRB": "123"}


@after("train-enospc-checkpoint")
def _(box):
    from retrieval.runs import load_run

    load_run(box.tmp / "run_copy")  # the old checkpoint still loads


# ---- the document -------------------------------------------------------------------------------------------
DOC = Path(__file__).resolve().parents[2] / "docs" / "RELIABILITY.md"
BEGIN, END = "<!-- catalogue: begin -->", "<!-- catalogue: end -->"


def render_markdown() -> str:
    """The catalogue table of ``docs/RELIABILITY.md``."""
    rows = ["| # | case | area | fault | command | expected | exit | from |", "|---|---|---|---|---|---|---|---|"]
    for number, item in enumerate(CASES, 1):
        cells = [str(number), f"`{item.id}`", item.area, item.fault, f"`{item.command}`", item.expect,
                 str(item.code), item.source]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    areas = {}
    for item in CASES:
        areas[item.area] = areas.get(item.area, 0) + 1
    count = {source: sum(c.source == source for c in CASES) for source in ("issue", "reconstructed", "new")}
    summary = (f"{len(CASES)} cases ({', '.join(f'{a} {n}' for a, n in areas.items())}): {count['issue']} named "
               f"in issue 14's text, {count['reconstructed']} reconstructed from it (the kinds of bad input it threw "
               f"at each command; its 72 are described, not listed), {count['new']} new. Each runs as "
               f"`{TEST}[<case>]`.")
    return "\n".join([BEGIN, summary, "", *rows, END])


if __name__ == "__main__":
    text = DOC.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    DOC.write_text(text[:start] + render_markdown() + text[end:])
    print(f"wrote {DOC}: {len(CASES)} cases")
