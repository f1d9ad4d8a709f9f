"""Whole-track embedding: N equally spaced crops per track → the model → mean → the shared space.

Used by evaluation (tracks of a split, from the feature cache), by indexing (files in a folder) and by search
(a query audio file), so all three produce the same vector for the same audio.

Every forward pass has the same batch shape — the last batch is zero-padded — so a track's vector is
bit-identical whatever batch it was computed in (CPU kernels may pick different code paths for different shapes).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from retrieval.audio import whole_track_crops
from retrieval.devices import model_device
from retrieval.errors import InputError
from retrieval.model import JointModel, TrackInputs

T = TypeVar("T")
R = TypeVar("R")
#: Batches decoded ahead of the model by :func:`ahead` (one decoding thread beside the model's threads).
DECODE_WORKERS = 1


def _pad(x: torch.Tensor | None, size: int) -> torch.Tensor | None:
    if x is None or len(x) == size:
        return x
    return torch.cat([x, torch.zeros((size - len(x), *x.shape[1:]), dtype=x.dtype)])


@torch.no_grad()
def embed_batches(
    model: JointModel, n: int, inputs_for: Callable[[list[int]], TrackInputs], batch_size: int
) -> torch.Tensor:
    """Index-space vectors of ``n`` tracks → (n, model.output_dim) float32 on the CPU, computed on the model's
    device (in the caller's autocast precision, if any).

    Args:
        inputs_for: rows → :class:`TrackInputs` of those tracks (features as (B, n_crops, n_mels, frames)).
        batch_size: tracks per forward pass (every pass padded to this size).
    """
    model.eval()
    device = model_device(model)
    out = []
    for start in range(0, n, batch_size):
        rows = list(range(start, min(start + batch_size, n)))
        inputs = inputs_for(rows)
        padded = TrackInputs(*(None if x is None else _pad(x, batch_size).to(device) for x in
                               (inputs.features, inputs.listening, inputs.has_listening)))
        # float32 on the CPU whatever the model's device and autocast precision
        out.append(model.encode_tracks(padded)[: len(rows)].float().cpu())
    return torch.cat(out) if out else torch.zeros(0, model.output_dim)


def file_crops(model: JointModel, paths: Sequence[str | Path], n_crops: int) -> torch.Tensor:
    """Decode audio files (any format and rate, streamed) into the audio tower's own input features →
    (len(paths), n_crops, n_mels, frames) (a raw-waveform tower: n_mels = 1, frames = samples). Raises
    :class:`~retrieval.errors.AudioError` on a bad file."""
    crops = [whole_track_crops(p, model.audio.mel, model.audio.input_frames, n_crops) for p in paths]
    return torch.from_numpy(np.stack(crops).astype(np.float32))


def fastest_layout(model: JointModel) -> JointModel:
    """Put the audio tower's weights in channels-last memory order when it runs on the CPU (in place).

    Measured with ``benchmarks/audio_embedding.py`` on this project's 2-core AVX2 CPU (no native bf16), two runs
    at load averages ~10 and ~6: the model alone on ready crops runs 1.3–1.7× faster for the paper-size
    Short-chunk CNN (9.2 → 12.0 audio-s/s) and 1.25–1.4× for the demo tower (430 → 539), with embeddings equal
    to the default layout's to cosine ≥ 0.99999 (1.000000 at six decimals); bf16 autocast is 3.5–5× slower
    there (2.6 and 83 audio-s/s) and is not used.
    """
    audio = model.audio
    if audio is not None and all(p.device.type == "cpu" for p in audio.parameters()):
        audio.to(memory_format=torch.channels_last)
    return model


def embed_crops(model: JointModel, crops: torch.Tensor, batch_size: int = 8) -> torch.Tensor:
    """Tracks given as mel crops (n, n_crops, n_mels, frames), without listening data → (n, output_dim).

    The gated model predicts the cultural part from audio (cold start); audio-only models need none.
    Cultural-only and concat models cannot embed bare audio (they need listening data for every track).
    The audio tower is put in its fastest layout first (:func:`fastest_layout`).
    """
    if model.audio is None:
        raise InputError("this model has no audio tower (modality 'cultural'): it cannot embed audio files")
    if model.modality == "concat":
        raise InputError("the concat hybrid needs listening data for every track; use an audio or gated model")
    fastest_layout(model)
    n = len(crops)
    listening = torch.zeros(n, model.listening_dim) if model.listening_dim else None
    has_listening = torch.zeros(n, dtype=torch.bool)

    def inputs_for(rows: list[int]) -> TrackInputs:
        return TrackInputs(
            features=crops[rows],
            listening=None if listening is None else listening[rows],
            has_listening=has_listening[rows],
        )

    return embed_batches(model, n, inputs_for, batch_size)


def ahead(function: Callable[[T], R], items: Sequence[T], workers: int = DECODE_WORKERS) -> Iterator[R]:
    """``function(item)`` for each item, in order, computed up to ``workers`` items ahead in a thread pool.

    What lets decoding overlap the model: while the caller runs the model on batch i, the pool decodes batches
    i + 1 … i + workers (soundfile, torchaudio and numpy release the GIL). An exception is raised when its item
    is reached, as in a plain loop.
    """
    if workers < 1 or len(items) <= 1:
        yield from map(function, items)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = deque(pool.submit(function, item) for item in items[:workers])
        for item in items[workers:]:
            result = pending.popleft().result()
            pending.append(pool.submit(function, item))
            yield result
        while pending:
            yield pending.popleft().result()


def embed_files(model: JointModel, paths: Sequence[str | Path], n_crops: int = 8, batch_size: int = 8) -> torch.Tensor:
    """Audio files → (len(paths), model.output_dim) index-space vectors (see :func:`embed_crops`); the next batch
    is decoded while the model embeds this one (:func:`ahead`).

    Raises:
        AudioError: a file cannot be decoded (named).
    """
    batches = [paths[start : start + batch_size] for start in range(0, len(paths), batch_size)]
    vectors = [embed_crops(model, crops, batch_size)
               for crops in ahead(lambda batch: file_crops(model, batch, n_crops), batches)]
    return torch.cat(vectors) if vectors else torch.zeros(0, model.output_dim)


def embed_split(model: JointModel, data, split: str, n_crops: int, batch_size: int) -> torch.Tensor:
    """Index-space vectors of every track of ``split`` of ``data`` (a
    :class:`~retrieval.data.assembly.ExperimentData`, crops from its feature cache) → (n, model.output_dim);
    bit-identical whatever the batch."""
    n = len(data.splits[split].ids)
    return embed_batches(model, n, lambda rows: data.track_inputs(split, rows, n_crops), batch_size)
