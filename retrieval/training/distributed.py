"""Data-parallel training under ``torchrun``: one process per device, ``DistributedDataParallel``.

    torchrun --nproc_per_node 4 -m retrieval train --config msd500/audio_word2vec --out runs/a

``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; :meth:`Distributed.from_env` reads them (one
process without them). Then, per step:

- every rank draws the same global plan of ``train.batch_size`` (tag, track) rows from the step's generator
  (:mod:`retrieval.training.batches`) and reads and embeds only its own slice of ``batch_size / N`` rows —
  disjoint streams whose union is the batch one process would draw;
- :meth:`Distributed.gather` collects every rank's embeddings (differentiably), so negatives are mined among
  the whole global batch and every rank computes the same loss; ``DistributedDataParallel`` all-reduces the
  gradients; every rank takes the same Adam step;
- rank 0 alone validates and writes checkpoints; ``--resume`` restarts every rank from ``last.ckpt``.

Batch norm is per rank (as on one GPU per rank): N ranks compute exactly what one process computes when it cuts
the batch into N forward passes (``training_step(..., micro=N)``), which the tests check to float32 rounding.
Backend: NCCL on CUDA, gloo on the CPU.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from retrieval.devices import resolve_device
from retrieval.training.batches import Shard


class _GatherRows(torch.autograd.Function):
    """All-gather equal-sized row blocks along dim 0; the gradient of this rank's block is the sum over ranks of
    the gradient each computed for it (every rank computes the same loss, so DDP's average then gives the
    one-process gradient)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: D102 - torch.autograd.Function protocol
        ctx.rank, ctx.rows = dist.get_rank(), len(x)
        blocks = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(blocks, x.contiguous())
        return torch.cat(blocks)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: D102
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.rows: (ctx.rank + 1) * ctx.rows]


@dataclass(frozen=True)
class Distributed:
    """This process's place in a data-parallel run (``world`` 1: a plain single-process run)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> Distributed:
        """From ``torchrun``'s environment variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        return cls(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", os.environ["RANK"])))

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """Whether this process validates, checkpoints and reports (rank 0)."""
        return self.rank == 0

    @property
    def shard(self) -> Shard:
        return Shard(self.rank, self.world)

    def device(self, name: str) -> torch.device:
        """``train.device`` for this process: under torchrun a CUDA run puts rank ``LOCAL_RANK`` on its own GPU."""
        device = resolve_device(name)
        if self.active and device.type == "cuda":
            device = resolve_device(f"cuda:{self.local_rank}")
            torch.cuda.set_device(device)
        return device

    def start(self, device: torch.device) -> None:
        """Join the process group (NCCL on CUDA, gloo otherwise); a no-op for one process."""
        if self.active and not dist.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            dist.init_process_group(backend, rank=self.rank, world_size=self.world,
                                    timeout=datetime.timedelta(minutes=60))

    def close(self) -> None:
        if self.active and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block first (building caches, training the word vectors, writing the run folder);
        the others then run it and find everything built."""
        if self.active and not self.main:
            dist.barrier()
        yield
        if self.active and self.main:
            dist.barrier()

    def wrap(self, module: nn.Module, device: torch.device) -> nn.Module:
        """``DistributedDataParallel(module)`` (gradients all-reduced, averaged) for several processes."""
        if not self.active:
            return module
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)

    def gather(self, parts: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every rank's row blocks of ``parts``, concatenated in rank order; float tensors keep their gradient."""
        if not self.active:
            return parts
        out = {}
        for key, value in parts.items():
            if value.is_floating_point():
                out[key] = _GatherRows.apply(value)
            else:  # masks: gathered as bytes (gloo has no bool), no gradient
                blocks = [torch.empty_like(value, dtype=torch.uint8) for _ in range(self.world)]
                dist.all_gather(blocks, value.to(torch.uint8).contiguous())
                out[key] = torch.cat(blocks).to(value.dtype)
        return out
