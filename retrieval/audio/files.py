"""Whole files → model inputs: crops of a file's waveform, its whole-file features, its evaluation crops.

Each reads only what it needs through :class:`retrieval.audio.decode.RegionReader` (a crop of a 10-minute file
never decodes the whole file) and equals, up to float rounding, the same computation on the whole decoded
signal.

Example (the paper's evaluation input: 8 crops of 173 frames ≈ 4 s)::

    config = MelConfig()                                     # 22,050 Hz, n_fft 1024, hop 512, 128 mels
    crops = load_crops("song.mp3", config.sample_rate, config.samples_for_frames(173), n_crops=8)
    mel = MelSpectrogram(config)(torch.from_numpy(crops))    # (8, 128, 173)
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from retrieval.audio.crops import crop_starts, equally_spaced_crops
from retrieval.audio.decode import DEFAULT_BLOCK_S, RegionReader, load_audio
from retrieval.audio.frontend import FrontEndConfig, MelConfig, MelSpectrogram, WaveConfig
from retrieval.errors import AudioError


def load_crops(path: str | Path, sample_rate: int, crop_samples: int, n_crops: int) -> np.ndarray:
    """Equally spaced crops of a file, decoding only the crops (evaluation input for long files).

    Equal to ``equally_spaced_crops(load_audio(path, sample_rate), crop_samples, n_crops)`` up to float
    rounding; a file shorter than ``crop_samples`` is zero-padded. When the crops would cover the whole file
    anyway, it is decoded once. Memory: the output plus one crop of source audio.

    Returns:
        ``(n_crops, crop_samples)`` float32.

    Raises:
        AudioError: a missing, empty, corrupt, truncated or unsupported file.
    """
    if crop_samples < 1 or n_crops < 1:
        raise ValueError(f"crop_samples and n_crops must be >= 1, got {crop_samples} and {n_crops}")
    with RegionReader(path, sample_rate) as reader:
        total = reader.num_samples
        if total <= n_crops * crop_samples:
            return equally_spaced_crops(reader.read(0, total), crop_samples, n_crops)
        crops = np.empty((n_crops, crop_samples), dtype=np.float32)
        for i, start in enumerate(crop_starts(total, crop_samples, n_crops).tolist()):
            crops[i] = reader.read(start, start + crop_samples)
        return crops


@functools.lru_cache(maxsize=8)
def _mel_module(config: MelConfig, device: str) -> MelSpectrogram:
    """The mel front end of ``config`` on ``device``, built once (its filter bank and window), not per file.
    It holds no state that a forward pass changes, so files share it."""
    return MelSpectrogram(config).to(device)


def mel_of_file(
    path: str | Path,
    config: MelConfig,
    *,
    block_s: float = DEFAULT_BLOCK_S,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Log-mel spectrogram of a whole file, computed block by block with bounded memory.

    Equal, up to float rounding, to ``MelSpectrogram(config)(load_audio(path, sr)[None])[0]``. Blocks of
    ``block_s`` seconds overlap by ``n_fft // 2 // hop_length + 1`` hops of context on each side, so every
    kept frame sees the same samples as in the one-shot STFT (reflect padding only happens at the real ends
    of the file); ``top_db`` is applied once at the end against the whole file's maximum. Memory: the output
    plus one block.

    Args:
        path: the audio file.
        config: the front-end settings (the file is resampled to ``config.sample_rate``).
        block_s: seconds of audio per block.
        device: where the STFT runs.

    Returns:
        ``(n_mels, config.frames(n_samples))`` float32.

    Raises:
        AudioError: a bad file, or one shorter than ``n_fft // 2 + 1`` samples at ``config.sample_rate``.
    """
    if not block_s > 0:
        raise ValueError(f"block_s must be > 0 seconds, got {block_s}")
    hop, half = config.hop_length, config.n_fft // 2
    front_end = _mel_module(config, str(device))
    with RegionReader(path, config.sample_rate) as reader, torch.inference_mode():
        n = reader.num_samples
        if n <= half:
            raise AudioError(reader.path, f"too short for a mel spectrogram: {n} samples, need over {half}")
        total_frames = config.frames(n)
        out = np.empty((config.n_mels, total_frames), dtype=np.float32)
        frames_per_block = max(1, round(block_s * config.sample_rate) // hop)
        context = half // hop + 1  # hops of context: more than half a window, so the block is never too short
        for f0 in range(0, total_frames, frames_per_block):
            f1 = min(f0 + frames_per_block, total_frames)
            lo = max(0, f0 - context) * hop  # whole hops: block frame j is global frame lo / hop + j
            hi = (f1 - 1) * hop - half + config.n_fft  # the end of frame f1 - 1's window
            wave = torch.from_numpy(reader.read(lo, hi)).to(device)
            block = front_end.log_mel(wave)
            out[:, f0:f1] = block[:, f0 - lo // hop : f1 - lo // hop].cpu().numpy()
        if config.top_db is not None:
            out = front_end.apply_top_db(torch.from_numpy(out)).numpy()
        return out


def features_of_file(path: str | Path, config: FrontEndConfig) -> np.ndarray:
    """A whole file's input features: :func:`mel_of_file` for a :class:`MelConfig`, the decoded waveform
    ``(1, n_samples)`` for a :class:`WaveConfig`. Raises :class:`AudioError` on a bad file."""
    if isinstance(config, WaveConfig):
        return load_audio(path, config.sample_rate)[None]
    return mel_of_file(path, config)


def whole_track_crops(path: str | Path, config: FrontEndConfig, frames: int, n_crops: int) -> np.ndarray:
    """A file's evaluation input: ``n_crops`` equally spaced crops of ``frames`` frames of its whole-track
    features (:func:`features_of_file`) → ``(n_crops, n_mels, frames)`` float32. Raises :class:`AudioError`."""
    return equally_spaced_crops(features_of_file(path, config), frames, n_crops)
