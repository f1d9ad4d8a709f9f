"""Peak memory and wall time of reading a long track: crops, streaming, mel, full decode, naive decode.

    python benchmarks/audio_memory.py                        # a 10-minute 44.1 kHz stereo FLAC
    python benchmarks/audio_memory.py --minutes 3 --format OGG

Generates the track (seeded tones + noise, written in blocks) in a temporary folder, then runs each case in
a fresh process so that one case's allocations cannot hide another's:

    (a) load_crops      8 crops of 173 frames (~4 s each), the paper's evaluation input
    (b) stream_audio    every 30-s block of the track, each dropped once received
    (c) mel_of_file     the whole track's log-mel, streamed in 30-s blocks
    (d) load_audio      the whole track, decoded in chunks into one output array
    (e) naive           soundfile.read of the whole file + one torchaudio resample (what (d) avoids)

Each process first runs its case on a 2-s file of the same format (so library loading, thread pools and
kernels are not counted), then resets the kernel's resident-memory high-water mark
(``/proc/self/clear_refs``; else falls back to ``ru_maxrss``), runs the case once and reports:

    peak RSS increase   = VmHWM after − VmRSS before           (all allocations: numpy, torch, libsndfile)
    tracemalloc peak    = peak of Python-tracked allocations     (numpy arrays; not torch tensors)
    ratio               = peak RSS increase / decoded mono size, with
    decoded mono size   = samples at 22,050 Hz × 4 bytes        (50.5 MiB for 10 minutes)

Prints a markdown table. Figures depend on the machine's allocator and load; on a busy machine pass
``--threads 1`` (torch's intra-op threads fighting over few cores can make each call several times slower).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

SAMPLE_RATE = 22050
SOURCE_RATE = 44100
CHANNELS = 2
CROP_FRAMES = 173
N_CROPS = 8
WRITE_BLOCK_S = 10.0
WARMUP_S = 2.0
SUBTYPES = {"FLAC": "PCM_16", "OGG": "VORBIS", "WAV": "PCM_16", "MP3": "MPEG_LAYER_III"}
CASES = ("load_crops", "stream_audio", "mel_of_file", "load_audio", "naive")


def write_track(path: Path, seconds: float, fmt: str, seed: int = 0) -> None:
    """A seeded stereo track (two slowly modulated tones + noise), written block by block."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    block = round(WRITE_BLOCK_S * SOURCE_RATE)
    total = round(seconds * SOURCE_RATE)
    with sf.SoundFile(path, "w", SOURCE_RATE, CHANNELS, format=fmt, subtype=SUBTYPES[fmt]) as out:
        for start in range(0, total, block):
            t = np.arange(start, min(start + block, total)) / SOURCE_RATE
            tones = [
                0.3 * np.sin(2 * np.pi * f * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.1 * t))
                for f in (220, 330)
            ]
            out.write(
                (np.stack(tones, axis=1) + 0.05 * rng.standard_normal((len(t), CHANNELS))).astype(np.float32)
            )


def run_case(case: str, path: str) -> None:
    """Run one case on ``path`` (results discarded)."""
    import soundfile as sf
    import torch
    import torchaudio

    from retrieval.audio import MelConfig, load_audio, load_crops, mel_of_file, stream_audio

    config = MelConfig(sample_rate=SAMPLE_RATE)
    if case == "load_crops":
        load_crops(path, SAMPLE_RATE, config.samples_for_frames(CROP_FRAMES), N_CROPS)
    elif case == "stream_audio":
        for _block in stream_audio(path, SAMPLE_RATE):
            pass
    elif case == "mel_of_file":
        mel_of_file(path, config)
    elif case == "load_audio":
        load_audio(path, SAMPLE_RATE)
    elif case == "naive":
        data, rate = sf.read(path, dtype="float32", always_2d=True)
        torchaudio.functional.resample(torch.from_numpy(data.mean(axis=1)), rate, SAMPLE_RATE)
    else:
        raise ValueError(f"unknown case {case!r}; choose from {CASES}")


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def measure(case: str, path: str, warmup_path: str, threads: int | None) -> dict[str, float]:
    """In a fresh process: warm up, reset the peak, run the case once; return MiB and seconds."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    run_case(case, warmup_path)
    before_kb = _status_kb("VmRSS") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # resets VmHWM to the current RSS
        hwm_field: str | None = "VmHWM"
    except OSError:
        hwm_field = None
    tracemalloc.start()
    started = time.perf_counter()
    run_case(case, path)
    seconds = time.perf_counter() - started
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak_kb = (_status_kb(hwm_field) if hwm_field else None) or resource.getrusage(
        resource.RUSAGE_SELF
    ).ru_maxrss
    return {"rss_mb": (peak_kb - before_kb) / 1024, "traced_mb": traced_peak / 2**20, "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the generated track")
    parser.add_argument("--format", default="FLAC", choices=sorted(SUBTYPES), help="container of the track")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per case (default: torch's; 1 on a busy machine)",
    )
    parser.add_argument("--smoke", action="store_true", help="a 0.2-minute track (make test)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.minutes = 0.2

    import soundfile as sf

    with tempfile.TemporaryDirectory(prefix="audio_memory_") as folder:
        suffix = "." + args.format.lower()
        path, warmup_path = Path(folder) / f"long{suffix}", Path(folder) / f"warmup{suffix}"
        started = time.perf_counter()
        write_track(path, args.minutes * 60, args.format)
        write_track(warmup_path, WARMUP_S, args.format, seed=1)
        info = sf.info(path)
        decoded_mb = -(-info.frames * SAMPLE_RATE // info.samplerate) * 4 / 2**20
        disk_mb, write_s = path.stat().st_size / 2**20, time.perf_counter() - started
        threads = args.threads or "torch default"
        print(
            f"track: {args.minutes:g} min, {info.samplerate} Hz, {info.channels} ch, {args.format}, "
            f"{disk_mb:.1f} MiB on disk (written in {write_s:.1f} s);\n"
            f"decoded mono at {SAMPLE_RATE} Hz = {decoded_mb:.1f} MiB; torch threads: {threads}\n"
        )
        print(
            "| case | peak RSS increase (MiB) | tracemalloc peak (MiB) | ratio to decoded mono | wall (s) |"
        )
        print("|---|---:|---:|---:|---:|")
        for case in CASES:
            with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
                result = pool.submit(measure, case, str(path), str(warmup_path), args.threads).result()
            print(
                f"| {case} | {result['rss_mb']:.1f} | {result['traced_mb']:.1f} | "
                f"{result['rss_mb'] / decoded_mb:.2f} | {result['seconds']:.2f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
