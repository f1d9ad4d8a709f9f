"""Crops: fixed-length windows along the last axis of a waveform or a spectrogram.

Training takes one window at a uniformly random start (:func:`random_crop`); evaluation takes ``n_crops``
equally spaced windows that cover the whole track (:func:`equally_spaced_crops`, starts from
:func:`crop_starts`). An input shorter than the window is zero-padded at its end.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def crop_starts(total: int, length: int, n_crops: int) -> np.ndarray:
    """Start offsets of ``n_crops`` equally spaced crops of ``length`` covering ``[0, total)``.

    ``starts[i] = i * (total - length) // (n_crops - 1)``: the first crop starts at 0 and the last ends at
    ``total``. A single crop starts at 0. When ``total < length`` every start is 0 (the caller pads).

    Returns:
        ``(n_crops,)`` int64.

    Example:
        >>> crop_starts(100, 10, 4).tolist()
        [0, 30, 60, 90]
    """
    if total < 0 or length < 1 or n_crops < 1:
        raise ValueError(f"need total >= 0, length >= 1, n_crops >= 1; got {total}, {length}, {n_crops}")
    if total <= length or n_crops == 1:
        return np.zeros(n_crops, dtype=np.int64)
    return np.arange(n_crops, dtype=np.int64) * (total - length) // (n_crops - 1)


def _pad_last(x: ArrayT, length: int) -> ArrayT:
    """Zero-pad the last axis of ``x`` at its end up to ``length`` (no-op when already long enough)."""
    missing = length - x.shape[-1]
    if missing <= 0:
        return x
    if isinstance(x, torch.Tensor):
        return torch.nn.functional.pad(x, (0, missing))
    return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, missing)])


def equally_spaced_crops(x: ArrayT, length: int, n_crops: int) -> ArrayT:
    """Cut ``n_crops`` equally spaced windows of ``length`` along the last axis (evaluation crops).

    Starts come from ``crop_starts``. An input shorter than ``length`` is zero-padded at its end to ``length``
    first, so every crop is that padded input.

    Args:
        x: ``(..., T)`` numpy array or tensor (a waveform ``(T,)`` or a mel ``(n_mels, frames)``).
        length: crop length along the last axis.
        n_crops: number of crops.

    Returns:
        ``(n_crops, ..., length)``, same type, dtype and device as ``x`` (a copy).

    Example:
        >>> equally_spaced_crops(np.arange(10), 4, 3).tolist()
        [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    """
    starts = crop_starts(x.shape[-1], length, n_crops)
    x = _pad_last(x, length)
    index = starts[:, None] + np.arange(length)  # (n_crops, length)
    if isinstance(x, torch.Tensor):
        return x[..., torch.from_numpy(index).to(x.device)].movedim(-2, 0).contiguous()
    return np.ascontiguousarray(np.moveaxis(x[..., index], -2, 0))


def random_crop(x: ArrayT, length: int, generator: torch.Generator) -> ArrayT:
    """One window of ``length`` along the last axis at a uniformly random start (training crops).

    ``start ~ U{0, ..., T - length}`` drawn from ``generator``; an input shorter than ``length`` is
    zero-padded at its end instead.

    Args:
        x: ``(..., T)`` numpy array or tensor.
        length: crop length along the last axis.
        generator: the seeded source of randomness (CPU ``torch.Generator``).

    Returns:
        ``x[..., start:start + length]``: same type as ``x`` (a view when no padding is needed).
    """
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    total = x.shape[-1]
    if total <= length:
        return _pad_last(x, length)
    start = int(torch.randint(total - length + 1, (1,), generator=generator))
    return x[..., start : start + length]


def crop_at(x: ArrayT, length: int, fraction: float) -> ArrayT:
    """The window of ``length`` along the last axis starting ``fraction`` ∈ [0, 1) of the way into the valid
    starts: ``start = ⌊fraction · (T − length + 1)⌋`` (a uniform ``fraction`` gives :func:`random_crop`'s
    distribution). Lets a batch's crop positions be drawn before the tracks are read (data-loader workers,
    :mod:`retrieval.training.batches`). An input shorter than ``length`` is zero-padded at its end.

    Example:
        >>> crop_at(np.arange(10), 4, 0.5).tolist()
        [3, 4, 5, 6]
    """
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    total = x.shape[-1]
    if total <= length:
        return _pad_last(x, length)
    start = min(int(fraction * (total - length + 1)), total - length)
    return x[..., start : start + length]
