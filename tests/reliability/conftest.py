"""Fixtures of the reliability suite: a small music folder, a built index and a sandbox per case."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

#: Audio files in the music folder the index cases use (enough for an index, few enough to embed in seconds).
N_FILES = 6


@pytest.fixture(scope="session")
def music(tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A flat folder of ``N_FILES`` audio files from the tiny corpus."""
    folder = tmp_path_factory.mktemp("music")
    for path in sorted(tiny_corpus.joinpath("audio").rglob("*.ogg"))[:N_FILES]:
        shutil.copy(path, folder / path.name)
    return folder


@pytest.fixture(scope="session")
def built_index(tiny_run: Path, music: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(index folder, its embedding cache) of ``music`` made by the tiny run (exact backend)."""
    from retrieval.index.build import index_folder

    root = tmp_path_factory.mktemp("built")
    index_folder(tiny_run, music, root / "index", backend="exact", cache_dir=root / "cache", progress=False)
    return root / "index", root / "cache"


@dataclass
class Sandbox:
    """What a case works on: fresh copies it may break, the shared read-only run, and ``monkeypatch``."""

    tmp: Path
    run: Path
    corpus: Path
    music: Path
    index: Path
    cache: Path
    monkeypatch: pytest.MonkeyPatch

    def copy(self, source: Path, name: str) -> Path:
        target = self.tmp / name
        shutil.copytree(source, target, symlinks=True)
        return target

    def run_copy(self) -> Path:
        return self.copy(self.run, "run_copy")


@pytest.fixture
def sandbox(tmp_path: Path, tiny_run: Path, tiny_corpus: Path, music: Path, built_index: tuple[Path, Path],
            monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    box = Sandbox(tmp_path, tiny_run, tiny_corpus, music, built_index[0], built_index[1], monkeypatch)
    box.index = box.copy(built_index[0], "index")
    box.cache = box.copy(built_index[1], "cache")
    return box
