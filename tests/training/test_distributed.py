"""torchrun DDP on the CPU (gloo): 2 processes train what one process trains with the same global batch, and a
resumed DDP run ends where an uninterrupted one does."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from retrieval.config import load_config
from retrieval.runs.checkpoint import load_checkpoint
from retrieval.training.experiment import train_run

pytestmark = pytest.mark.slow

# The gated hybrid (every tower, the gate, a mask gathered across ranks); batch 16 = 2 × 8 rows; 2 epochs × 3 steps.
TINY_DDP = ["model.modality=gated", "train.batch_size=16", "train.steps=3", "train.eval_every=100",
            "train.device=cpu", "train.workers=1"]
#: float32 rounding: the two sides add the same per-shard gradients in another order (DDP's all-reduce vs autograd)
TOLERANCE = 1e-6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(config: Path, out: Path, overrides: list[str], resume: bool = False) -> None:
    sets = [arg for item in overrides for arg in ("--set", item)]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
               "127.0.0.1", "--master_port", str(_free_port()), "-m", "retrieval", "-q", "train", "--config",
               str(config), "--out", str(out), *sets, *(["--resume"] if resume else [])]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    if Path("/sys/class/net/lo").exists():  # gloo's own sockets on the loopback interface too, not the LAN
        env["GLOO_SOCKET_IFNAME"] = "lo"
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]


def _parameters(run: Path, initial: bool = False) -> dict[str, torch.Tensor]:
    """The trained parameters (not the batch-norm buffers) of a run's last checkpoint, or (``initial``) the ones
    it started from (the seeded initialisation)."""
    from retrieval.runs import build_model

    payload = load_checkpoint(run / "checkpoints" / "last.ckpt")
    torch.manual_seed(payload["config"]["train"]["seed"])
    start = dict(build_model(payload["model_args"]).named_parameters())
    if initial:
        return {name: tensor.detach() for name, tensor in start.items()}
    return {name: tensor for name, tensor in payload["model"].items() if name in start}


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory, tiny_corpus: Path, tiny_config_path: Path) -> Path:
    out = tmp_path_factory.mktemp("ddp") / "whole"
    _torchrun(tiny_config_path, out, [f"data.root={tiny_corpus}", *TINY_DDP, "train.epochs=2"])
    return out


def test_two_gloo_processes_train_what_one_process_trains(ddp_run: Path, tmp_path, tiny_corpus,
                                                          tiny_config_path) -> None:
    # One process, the same global batch of 16, cut into the 2 forward passes the 2 ranks make (batch norm is
    # per rank): after 6 steps every parameter agrees to float32 rounding.
    config = load_config(tiny_config_path, [f"data.root={tiny_corpus}", *TINY_DDP, "train.epochs=2"])
    single = tmp_path / "single"
    train_run(config, single, progress=False, micro=2)
    ddp, one = _parameters(ddp_run), _parameters(single)
    assert ddp.keys() == one.keys() and len(ddp) > 20
    worst = max((ddp[name] - one[name]).abs().max().item() for name in ddp)
    print(f"DDP vs one process (2 passes), max |Δparameter| after 6 steps: {worst:.3g}")
    assert worst <= TOLERANCE, worst
    # ... and they moved: the comparison is not between two untrained models
    start = _parameters(single, initial=True)
    assert max((one[name] - start[name]).abs().max().item() for name in one) > 1e-3
    # one unsharded pass (batch-norm statistics over all 16 rows) is a different computation: not what DDP did
    whole = tmp_path / "unsharded"
    train_run(config, whole, progress=False)
    assert max((ddp[n] - _parameters(whole)[n]).abs().max().item() for n in ddp) > 100 * TOLERANCE


def test_resumed_ddp_run_equals_an_uninterrupted_one(ddp_run: Path, tmp_path, tiny_corpus,
                                                     tiny_config_path) -> None:
    interrupted = tmp_path / "interrupted"
    _torchrun(tiny_config_path, interrupted, [f"data.root={tiny_corpus}", *TINY_DDP, "train.epochs=1"])
    _torchrun(tiny_config_path, interrupted, [f"data.root={tiny_corpus}", *TINY_DDP, "train.epochs=2"],
              resume=True)
    whole, resumed = _parameters(ddp_run), _parameters(interrupted)
    assert whole.keys() == resumed.keys()
    for name in whole:
        assert torch.equal(whole[name], resumed[name]), name
    history = load_checkpoint(interrupted / "checkpoints" / "last.ckpt")["train_state"]["history"]
    assert '"epoch": 2' in history


def test_torchrun_refuses_a_tagging_run(tmp_path, monkeypatch, capsys) -> None:
    from retrieval.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert main(["train", "--config", "tagging/tiny", "--out", str(tmp_path / "run")]) == 2
    assert "tagging runs train in one process; torchrun (DDP) trains retrieval runs" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
