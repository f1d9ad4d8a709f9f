"""Precomputed input features (log-mels, or waveforms) for a catalogue, cached on disk and read by memory map.

Training crops ~4 s windows from every track thousands of times; decoding audio for each would dominate the step.
So each track's whole log-mel spectrogram is computed once, by the model's own front end
(:class:`retrieval.audio.MelSpectrogram` via :func:`retrieval.audio.mel_of_file`, streaming so long files stay
bounded in memory), and stored as ``float16`` ``.npy`` under ``<cache>/<mel-config-hash>/A/B/C/ID.npy``.
The folder hash covers every mel setting and each file name carries a key of its audio file's size and modification
time (``ID-<key>.npy``), so a cache is reused only when its inputs match (a rebuilt corpus or an edited file is
recomputed); files are written atomically.
Crops are read through ``np.load(mmap_mode="r")``: only the crop's frames are touched.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from retrieval.audio import (
    FrontEndConfig,
    WaveConfig,
    crop_at,
    equally_spaced_crops,
    features_of_file,
    random_crop,
)
from retrieval.data.audio_locator import sharded_path
from retrieval.errors import AudioError
from retrieval.fileio import atomic_path

CACHE_DTYPE = np.float16

logger = logging.getLogger(__name__)


def mel_config_hash(config: FrontEndConfig) -> str:
    """Short stable hash of every front-end setting (the cache folder name)."""
    settings = asdict(config)
    if isinstance(config, WaveConfig):
        settings["kind"] = "wave"
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _source_key(audio_path: str | os.PathLike[str]) -> str:
    """A short key of an audio file's identity (size, modification time): changes when the file changes."""
    stat = os.stat(audio_path)
    return hashlib.sha1(f"{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:8]


def _compute_one(job: tuple[str, str, FrontEndConfig]) -> tuple[str, str | None]:
    audio_path, out_path, config = job
    torch.set_num_threads(1)
    try:
        mel = features_of_file(audio_path, config)
    except AudioError as error:
        return out_path, str(error)
    with atomic_path(out_path) as tmp:
        with open(tmp, "wb") as handle:
            np.save(handle, mel.astype(CACHE_DTYPE))
    return out_path, None


class _Inline:
    """A stand-in for a process pool that runs jobs in this process (workers=1: no start-up cost)."""

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def map(self, fn, jobs, chunksize: int = 1):  # noqa: ARG002 - same signature as Executor.map
        return map(fn, jobs)


class FeatureStore:
    """Whole-track input features (the front end's: log-mels, or waveforms) for a set of tracks, computed once
    and cached.

    Args:
        cache_root: folder for caches (e.g. ``corpus/cache/mel``); one sub-folder per mel configuration.
        config: the model's front-end settings (a :class:`WaveConfig` caches the waveform itself, (1, samples)).

    Example:
        >>> store = FeatureStore(corpus.root / "cache" / "mel", MelConfig())  # doctest: +SKIP
        >>> skipped = store.build(audio_paths)                    # {id: error} for unreadable files
        >>> crops = store.random_crops(["SO..."], frames=173, generator=g)  # (1, 128, 173)
    """

    def __init__(self, cache_root: str | os.PathLike[str], config: FrontEndConfig):
        self.config = config
        self.folder = Path(cache_root) / mel_config_hash(config)
        self._paths: dict[str, Path] = {}

    def path(self, track_id: str) -> Path:
        """The cache file of a track registered by :meth:`build`."""
        try:
            return self._paths[track_id]
        except KeyError:
            raise KeyError(f"track {track_id!r} has no features: pass its audio to FeatureStore.build first") from None

    def build(
        self,
        audio_paths: Mapping[str, str | os.PathLike[str]],
        workers: int | None = None,
        progress: bool = True,
    ) -> dict[str, str]:
        """Compute the features that are not cached yet. Returns {track_id: error message} for unreadable audio."""
        from tqdm.auto import tqdm

        for track_id, audio in audio_paths.items():
            self._paths[track_id] = sharded_path(self.folder, f"{track_id}-{_source_key(audio)}", ".npy")
        missing = [i for i in audio_paths if not self._usable(self.path(i))]
        todo = [(str(audio_paths[i]), str(self.path(i)), self.config) for i in missing]
        ids_of = {job[1]: i for i, job in zip(missing, todo, strict=True)}
        errors: dict[str, str] = {}
        if not todo:
            return errors
        workers = workers or os.cpu_count() or 1
        bar = tqdm(total=len(todo), desc="mel features", unit="track", disable=not progress)
        with ProcessPoolExecutor(max_workers=workers) if workers > 1 else _Inline() as pool:
            for out, error in pool.map(_compute_one, todo, chunksize=8):
                bar.update()
                if error:
                    errors[ids_of[out]] = error
        bar.close()
        return errors

    def _usable(self, path: Path) -> bool:
        """True when ``path`` holds a cached (n_mels, frames) array; a bad entry (empty or truncated by a crash,
        not an array) is logged, deleted and computed again, so it never blocks training."""
        if not path.exists():
            return False
        try:
            cached = np.load(path, mmap_mode="r", allow_pickle=False)
            if cached.ndim == 2 and cached.shape[0] == self.config.n_mels:
                return True
            problem = f"shape {cached.shape}"
        except (OSError, ValueError, EOFError) as error:
            problem = f"unreadable ({error})"
        logger.warning("%s: bad cache entry, %s; computing it again", path, problem)
        path.unlink(missing_ok=True)
        return False

    def load(self, track_id: str) -> np.ndarray:
        """The whole-track features (n_mels, frames), memory-mapped, float16."""
        return np.load(self.path(track_id), mmap_mode="r")

    def random_crops(self, ids: Sequence[str], frames: int, generator: torch.Generator) -> torch.Tensor:
        """One random crop of ``frames`` frames per track → (B, n_mels, frames) float32 (zero-padded if short)."""
        crops = [random_crop(self.load(i), frames, generator) for i in ids]
        if not crops:
            return torch.zeros(0, self.config.n_mels, frames)
        return torch.from_numpy(np.stack(crops).astype(np.float32))

    def crops_at(self, ids: Sequence[str], frames: int, fractions: Sequence[float]) -> torch.Tensor:
        """The crop of ``frames`` frames starting ``fractions[i]`` of the way into track ``ids[i]``
        (:func:`retrieval.audio.crop_at`) → (B, n_mels, frames) float32: random crops whose positions were drawn
        before the tracks are read."""
        crops = [crop_at(self.load(i), frames, float(f)) for i, f in zip(ids, fractions, strict=True)]
        if not crops:
            return torch.zeros(0, self.config.n_mels, frames)
        return torch.from_numpy(np.stack(crops).astype(np.float32))

    def track_crops(self, ids: Sequence[str], frames: int, n_crops: int) -> torch.Tensor:
        """``n_crops`` equally spaced crops covering each whole track → (B, n_crops, n_mels, frames) float32."""
        crops = [
            equally_spaced_crops(np.asarray(self.load(i), dtype=np.float32), frames, n_crops) for i in ids
        ]
        return (
            torch.from_numpy(np.stack(crops))
            if crops
            else torch.zeros(0, n_crops, self.config.n_mels, frames)
        )
