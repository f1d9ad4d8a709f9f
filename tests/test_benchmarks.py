"""Every benchmark's ``--smoke`` size runs (so none can rot); the figures themselves are in benchmarks/RESULTS.md."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from retrieval.index.build import index_corpus

pytestmark = pytest.mark.slow
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _benchmark(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory, tiny_run: Path, tiny_corpus: Path) -> Path:
    out = tmp_path_factory.mktemp("bench") / "index"
    index_corpus(tiny_run, out, corpus_root=tiny_corpus, backend="exact", progress=False)
    return out


def test_everyday_queries_smoke(tiny_index: Path, capsys) -> None:
    everyday = _benchmark("everyday_queries")
    assert len(everyday.QUERIES) >= 40 and {kind for _, kind, _ in everyday.QUERIES} == {
        "activity", "scene", "mood", "instrument", "era", "place", "misspelling", "sentence"}
    assert everyday.main(["--smoke", str(tiny_index)]) == 0
    out = capsys.readouterr()
    rows = [line.split(" | ")[0][2:] for line in out.out.splitlines()[2:]]
    assert sorted(rows[:-2]) == sorted(everyday.SMOKE) and rows[-2:] == ["**mean**", "errors"]
    assert "| errors | | | 0 |" in out.out and out.err.strip() == ""


def test_serve_latency_smoke(tiny_index: Path, capsys) -> None:
    assert _benchmark("serve_latency").main(["--smoke", str(tiny_index)]) == 0
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if line.startswith("| ")][1:]
    assert [row[0][2:] for row in rows] == ["warm server: search, server-side", "warm server: HTTP round trip",
                                           "CLI `retrieval search` (cold process)"]
    assert [int(row[1]) for row in rows] == [10, 10, 2] and all(float(row[2]) > 0 for row in rows)

def test_cold_start_smoke(tiny_index: Path, capsys) -> None:
    cold_start = _benchmark("cold_start")
    assert cold_start.main(["--smoke", str(tiny_index)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| this tree"))
    assert float(row.split(" | ")[1]) > 0 and row.endswith("| none |")  # a search imports nothing it needs not


def test_query_encoding_smoke(tiny_index: Path) -> None:
    # a subprocess: the benchmark starts one worker process per retriever (spawn re-imports the script)
    out = subprocess.run([sys.executable, str(BENCHMARKS / "query_encoding.py"), "--smoke", "--peer",
                          "--fp32", str(tiny_index)], capture_output=True, text=True, timeout=600, check=True).stdout
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith("| ") and "ms" not in line]
    assert [row[1] for row in rows] == ["fused"] * 3
    assert rows[1][0].endswith("[sentence-transformers]") and rows[2][0].endswith("[ONNX fp32]")
    assert all(float(row[5]) > 0 for row in rows)


@pytest.mark.parametrize("name", ["search_latency", "taste_profile_read", "audio_memory", "demo_build",
                                  "audio_embedding", "tagging_speed", "musicnn_fidelity",
                                  "pretrained_on_demo", "training_throughput"])
def test_self_contained_benchmarks_run_at_smoke_size(name: str, tmp_path: Path) -> None:
    root = BENCHMARKS.parent
    env = {**os.environ, "PYTHONPATH": str(root), "RETRIEVAL_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, str(BENCHMARKS / f"{name}.py"), "--smoke"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r"\d+\.\d+", done.stdout), done.stdout[-2000:]  # it printed its figures


def test_gpu_check_runs_its_cpu_path(tmp_path: Path) -> None:
    # No CUDA device in CI: the same code (train fp32 + bf16, embed files, search) at a tiny size on the CPU.
    root = BENCHMARKS.parent
    env = {**os.environ, "PYTHON": sys.executable, "RETRIEVAL_HOME": str(tmp_path)}
    done = subprocess.run(["bash", str(BENCHMARKS / "gpu_check.sh"), "--cpu"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert [row.split(" | ")[0] for row in rows[1:]] == [
        "| train", "| train", "| write 4 × 3 s WAV", "| embed 4 files", "| embed 4 files",
        "| bf16 vs fp32 embeddings", "| search 4 tracks"]
    for unit in ("triplets/s", "audio-s/s", "ms/query"):
        assert re.search(rf"\d+\.?\d* {unit}", done.stdout), unit
    assert float(re.search(r"cosine ≥ (\d\.\d+)", done.stdout).group(1)) >= 0.999


def test_every_benchmark_has_a_smoke_size() -> None:
    # A new benchmark without --smoke (or without a test running it) would rot unseen.
    scripts = sorted(path.stem for path in BENCHMARKS.glob("*.py"))
    tested = set(re.findall(r'"(\w+)(?:\.py|\.sh)?"', Path(__file__).read_text()))
    for name in scripts:
        assert '"--smoke"' in (BENCHMARKS / f"{name}.py").read_text(), f"benchmarks/{name}.py has no --smoke"
        assert name in tested, f"benchmarks/{name}.py has no smoke test here"
