"""The Ray engine of ``retrieval index``: on a local 2-CPU Ray cluster it gives the local engine's vectors bit for
bit, resumes through the same per-file cache, reports unreadable files and leaves no shard behind."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from retrieval.cli import main
from retrieval.index import load_index
from retrieval.index.build import index_folder

ray = pytest.importorskip("ray", reason="the Ray engine needs the optional extra ray (`make install` installs it)")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_cluster():
    """A local 2-worker Ray cluster bound to 127.0.0.1 (shared by the tests of this module)."""
    ray.init(num_cpus=2, _node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory, tiny_corpus: Path) -> Path:
    """Seven good files of the tiny corpus in nested folders, and one that is not audio."""
    folder = tmp_path_factory.mktemp("music")
    for i, path in enumerate(sorted((tiny_corpus / "audio").rglob("*.ogg"))[:7]):
        target = folder / f"album{i % 2}" / f"song{i}.ogg"
        target.parent.mkdir(exist_ok=True)
        shutil.copy(path, target)
    (folder / "garbage.mp3").write_bytes(np.random.default_rng(0).bytes(5000))
    return folder


def _vectors(index_dir: Path) -> dict[str, np.ndarray]:
    index = load_index(index_dir)
    return dict(zip(index.ids.tolist(), index.vectors_of(index.ids.tolist()), strict=True))


def test_ray_engine_matches_the_local_engine_bit_for_bit_and_resumes(ray_cluster, music: Path, tiny_run: Path,
                                                                      tmp_path: Path) -> None:
    local = index_folder(tiny_run, music, tmp_path / "local", backend="exact", cache_dir=tmp_path / "local-cache",
                         batch_size=2, progress=False)
    assert local.indexed == 7 and list(local.skipped) == [str(music / "garbage.mp3")]

    # Two files already embedded (by the local engine) in the Ray run's cache: they must not be embedded again.
    local_cache = next((tmp_path / "local-cache").iterdir())
    ray_cache = tmp_path / "ray-cache" / local_cache.name
    ray_cache.mkdir(parents=True)
    for cached in sorted(local_cache.glob("*.npy"))[:2]:
        shutil.copy(cached, ray_cache / cached.name)

    report = index_folder(tiny_run, music, tmp_path / "ray", backend="exact", cache_dir=tmp_path / "ray-cache",
                          batch_size=2, progress=False, engine="ray", workers=2)
    assert (report.indexed, report.embedded, report.cached) == (7, 5, 2)
    assert list(report.skipped) == [str(music / "garbage.mp3")] and "garbage.mp3" in report.format()
    local_vectors, ray_vectors = _vectors(tmp_path / "local"), _vectors(tmp_path / "ray")
    assert sorted(ray_vectors) == sorted(local_vectors)
    for track, vector in local_vectors.items():
        np.testing.assert_array_equal(ray_vectors[track], vector)  # bit for bit
    # The actors wrote the same cache files as the local engine, and no shard is left behind.
    assert sorted(p.name for p in ray_cache.iterdir()) == sorted(p.name for p in local_cache.iterdir())
    for cached in local_cache.glob("*.npy"):
        np.testing.assert_array_equal(np.load(ray_cache / cached.name), np.load(cached))
    assert [p.name for p in (tmp_path / "ray-cache").iterdir()] == [local_cache.name]

    again = index_folder(tiny_run, music, tmp_path / "ray", backend="exact", cache_dir=tmp_path / "ray-cache",
                         progress=False, engine="ray")
    assert (again.embedded, again.cached) == (0, 7)


def test_cli_index_with_the_ray_engine(ray_cluster, music: Path, tiny_run: Path, tmp_path: Path, capsys) -> None:
    argv = ["-q", "index", str(music), "--model", str(tiny_run), "--out", str(tmp_path / "index"), "--engine", "ray",
            "--workers", "2", "--cache-dir", str(tmp_path / "cache"), "--backend", "exact"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "7 tracks (7 embedded now, 0 from cache)" in out and "garbage.mp3" in out
    assert main(["index", str(music), "--model", str(tiny_run), "--out", str(tmp_path / "i2"), "--workers", "2"]) == 2
    assert "--address and --workers are for --engine ray" in capsys.readouterr().err
