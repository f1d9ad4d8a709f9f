"""Training batches through a torch ``DataLoader``: every random draw of step ``t`` comes from ``(seed, t)``.

A batch maker (:class:`RetrievalBatches`, :class:`TaggingBatches`, or any callable ``step → dict of tensors``)
turns a step number into that step's batch: it seeds a fresh ``torch.Generator`` with :func:`step_seed` ``(seed,
t)``, draws the rows and the crop positions, and reads the crops from the memory-mapped feature cache. Because a
batch depends on nothing but its step number:

- data-loader worker processes (``train.workers``) may prepare batches ahead in any order, and pinned memory
  (on CUDA) lets the copy to the device overlap the step, without changing a single draw;
- ``--resume`` at step ``t`` draws exactly what the uninterrupted run drew (bit-identical weights on the CPU);
- under ``torchrun`` every rank draws the same global plan of ``train.batch_size`` rows and reads and embeds
  only its own disjoint slice (:class:`Shard`), so N processes see the rows one process would.

Dropout draws from torch's global generator; :func:`seed_dropout` reseeds it from ``(seed, t, shard)`` before
each forward pass, so it too depends on the step alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from retrieval.data.assembly import ExperimentData
from retrieval.errors import ConfigError

#: The independent random streams of one step.
STREAMS = {"batch": 0, "mine": 1, "dropout": 2, "augment": 3}


def step_seed(seed: int, step: int, stream: str, shard: int = 0) -> int:
    """A 63-bit seed mixed from the run's seed, the step number, the stream and the shard (SeedSequence)."""
    entropy = [seed & 0xFFFFFFFF, seed >> 32 & 0xFFFFFFFF, step, STREAMS[stream], shard]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> np.uint64(1))


def step_generator(seed: int, step: int, stream: str, shard: int = 0) -> torch.Generator:
    """A CPU generator seeded with :func:`step_seed`."""
    return torch.Generator().manual_seed(step_seed(seed, step, stream, shard))


def seed_dropout(seed: int, step: int, shard: int) -> None:
    """Reseed torch's global generator (dropout's) for shard ``shard`` of step ``step``."""
    torch.manual_seed(step_seed(seed, step, "dropout", shard))


@dataclass(frozen=True)
class Shard:
    """Which rows of a global batch this process embeds: shard ``rank`` of ``world`` equal contiguous slices.

    A single process takes every row (``world`` 1); with ``shards`` > 1 it still reads every row but forwards
    them shard by shard (:func:`retrieval.training.loop.training_step`), computing exactly what ``shards``
    DDP processes compute.
    """

    rank: int = 0
    world: int = 1

    def rows(self, batch_size: int) -> slice:
        """The slice of the global batch's rows this process reads."""
        if batch_size % self.world:
            raise ConfigError(f"train.batch_size: {batch_size} rows do not split evenly over {self.world} "
                              "processes; choose a multiple of the process count")
        size = batch_size // self.world
        return slice(self.rank * size, (self.rank + 1) * size)


class RetrievalBatches:
    """Step → the retrieval batch: (tag, positive track) rows from the sampler, one random crop per track.

    Returns ``{"step", "tags" (B,), "positives" (B,), "features" (b, n_mels, frames) | absent, "listening"
    (b, f) | absent, "has_listening" (b,)}``: ``tags`` and ``positives`` cover the global batch (mining needs
    every row's labels), the track inputs only this process's ``b`` rows.
    """

    def __init__(self, data: ExperimentData, sampler, batch_size: int, seed: int, shard: Shard = Shard()):
        self.split = data.splits["train"]
        self.features = data.features
        self.augmented = data.train_crops  # train.augment: crops cut from the waveforms and augmented
        self.input_frames = data.input_frames
        self.sampler = sampler
        self.batch_size = batch_size
        self.seed = seed
        self.rows = shard.rows(batch_size)

    def __call__(self, step: int) -> dict:
        generator = step_generator(self.seed, step, "batch")
        tags, positives = self.sampler.sample(self.batch_size, generator)
        fractions = torch.rand(self.batch_size, generator=generator, dtype=torch.float64)
        mine = positives[self.rows]
        batch = {"step": step, "tags": tags, "positives": positives, "has_listening": self.split.has_listening[mine]}
        if self.features is not None:
            ids, at = [self.split.ids[i] for i in mine.tolist()], fractions[self.rows].tolist()
            batch["features"] = (
                self.features.crops_at(ids, self.input_frames, at) if self.augmented is None
                else self.augmented.crops_at(ids, at, step_generator(self.seed, step, "augment", self.rows.start)))
        if self.split.listening is not None:
            batch["listening"] = self.split.listening[mine]
        return batch


class TaggingBatches:
    """Step → a supervised tagging batch: ``batch_size`` random training tracks, one random crop each.

    Returns ``{"step", "features" (B, n_mels, frames), "targets" (B, n_tags) float}``.
    """

    def __init__(self, data: ExperimentData, batch_size: int, seed: int):
        self.split = data.splits["train"]
        self.features = data.features
        self.input_frames = data.input_frames
        self.batch_size = batch_size
        self.seed = seed

    def __call__(self, step: int) -> dict:
        generator = step_generator(self.seed, step, "batch")
        rows = torch.randint(len(self.split.ids), (self.batch_size,), generator=generator)
        fractions = torch.rand(self.batch_size, generator=generator, dtype=torch.float64)
        ids = [self.split.ids[i] for i in rows.tolist()]
        return {"step": step, "features": self.features.crops_at(ids, self.input_frames, fractions.tolist()),
                "targets": self.split.labels[rows].float()}


class _Steps(torch.utils.data.Dataset):
    """A map-style dataset whose item ``t`` is step ``t``'s batch."""

    def __init__(self, make: Callable[[int], dict]):
        self.make = make

    def __getitem__(self, step: int) -> dict:
        return self.make(step)


def _one_thread(_: int) -> None:
    # A worker only slices memory maps; torch's intra-op pool would fight the training process for the cores.
    torch.set_num_threads(1)


def batch_stream(make: Callable[[int], dict], start: int, stop: int, workers: int = 0,
                 pin_memory: bool = False) -> Iterator[dict]:
    """Batches of steps ``start .. stop - 1`` in order, through a ``DataLoader`` with ``workers`` processes.

    Args:
        make: step → batch (a picklable callable, e.g. :class:`RetrievalBatches`, so spawned workers get it).
        workers: data-loader processes (0 reads in this process); each prefetches two batches.
        pin_memory: page-locked batches, for asynchronous copies to a CUDA device.
    """
    loader = torch.utils.data.DataLoader(
        _Steps(make), batch_size=None, sampler=range(start, stop), num_workers=workers, pin_memory=pin_memory,
        worker_init_fn=_one_thread if workers else None, persistent_workers=False,
    )
    return iter(loader)


def to_device(batch: dict, device: torch.device) -> dict:
    """Every tensor of ``batch`` on ``device`` (non-blocking: pinned batches copy while the step runs)."""
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
