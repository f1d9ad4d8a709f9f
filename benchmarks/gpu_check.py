"""The GPU check (run by ``benchmarks/gpu_check.sh``): train, embed and search on one device, print the figures.

1. trains the paper-size MSD500 audio model (``msd500/audio_word2vec``: Short-chunk CNN, 128 mels, 173-frame
   crops, batch 128) for ``--steps`` steps in fp32, bf16 and fp16 (loss-scaled) on synthetic crops, through the
   real training loop and data loader (``benchmarks/training_throughput.py``'s :class:`Trainer`): triplets/s,
   peak GPU memory;
2. writes ``--files`` WAV files of ``--seconds`` s of synthetic audio (tones + noise) and embeds them with the
   trained model (decode → mel → 8 crops → network, :func:`retrieval.embedding.embed_files`): audio-s/s;
3. builds an exact index of those vectors and times ``--queries`` text queries (word tower → top 10): ms/query.

It needs only what the library's training and audio path import (torch, numpy, pyyaml, soundfile; see
``REQUIRED``): missing packages are listed first and the check stops, naming the pip command. ``--cpu`` (or no CUDA
device) runs the same code at a tiny size (make test runs it).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
import wave
from pathlib import Path

#: import name → pip name, of every package the check's code path imports.
REQUIRED = {"torch": "torch", "numpy": "numpy", "yaml": "pyyaml", "soundfile": "soundfile", "tqdm": "tqdm",
            "torchaudio": "torchaudio", "scipy": "scipy", "pytorch_metric_learning": "pytorch-metric-learning"}
PAPER_CONFIG, TINY_CONFIG = "msd500/audio_word2vec", "demo/tiny"
SAMPLE_RATE = 22_050


def missing_packages() -> list[str]:
    return [pip for module, pip in REQUIRED.items() if importlib.util.find_spec(module) is None]


def write_files(folder: Path, n: int, seconds: float, seed: int = 0) -> list[Path]:
    """``n`` 16-bit mono WAV files of ``seconds`` s: a few random tones under noise (demo-like, not silence)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    paths = []
    for i in range(n):
        tones = sum(np.sin(2 * np.pi * f * t) for f in rng.uniform(80, 2000, size=3))
        signal = 0.2 * tones / 3 + 0.02 * rng.standard_normal(len(t))
        path = folder / f"track{i:04d}.wav"
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(SAMPLE_RATE)
            out.writeframes((np.clip(signal, -1, 1) * 32767).astype("<i2").tobytes())
        paths.append(path)
    return paths


def _memory(device) -> str:
    import torch

    if device.type != "cuda":
        return "–"
    peak = torch.cuda.max_memory_allocated(device) / 2**30
    torch.cuda.reset_peak_memory_stats(device)
    return f"{peak:.2f} GiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cpu", "--smoke", action="store_true",
                        help="the CPU at a tiny size, as without a CUDA device (make test)")
    parser.add_argument("--steps", type=int, default=300, help="timed training steps per precision (GPU)")
    parser.add_argument("--files", type=int, default=500, help="audio files to embed (GPU)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each file (GPU)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--workers", type=int, default=4, help="data-loader processes (GPU)")
    args = parser.parse_args(argv)

    missing = missing_packages()
    print(f"python {sys.version.split()[0]} ({sys.executable})")
    if missing:
        print(f"MISSING python packages: {', '.join(missing)}\n  install: {sys.executable} -m pip install "
              f"{' '.join(missing)}   (torch: the CUDA build for this machine)")
        return 2
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from training_throughput import Trainer, variant

    from retrieval.config import load_config
    from retrieval.devices import autocast
    from retrieval.embedding import embed_files
    from retrieval.index import ExactIndex

    gpu = torch.cuda.is_available() and not args.cpu
    device = "cuda" if gpu else "cpu"
    if gpu:
        print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}, "
              f"{torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB")
        name, steps, files, seconds, workers = PAPER_CONFIG, args.steps, args.files, args.seconds, args.workers
    else:
        print(f"torch {torch.__version__}; " + ("--cpu" if args.cpu else "no CUDA device") +
              ": the CPU path at a tiny size (figures are not the GPU's)")
        name, steps, files, seconds, workers = TINY_CONFIG, 2, 4, 3.0, 0
    config = load_config(name, ["model.modality=audio", f"train.workers={workers}"]
                         + ([] if gpu else ["train.batch_size=8"]))
    print(f"config {name}: batch {config.train.batch_size}, {steps} timed steps per precision\n")

    print("| phase | precision | figure | peak GPU memory |")
    print("|---|---|---:|---:|")
    trained = None
    for precision in ("fp32", "bf16", "fp16") if gpu else ("fp32", "bf16"):
        trainer = Trainer(variant(config, precision, None, device))
        trainer.rate(min(10, steps))  # warm-up: cuDNN / oneDNN kernel choice, allocator
        _memory(trainer.device)
        rate = trainer.rate(steps)
        print(f"| train | {precision} | {rate:.1f} triplets/s | {_memory(trainer.device)} |", flush=True)
        trained = trained or trainer
    model, dev = trained.model.eval(), trained.device

    with tempfile.TemporaryDirectory(prefix="gpu_check_") as folder:
        started = time.perf_counter()
        paths = write_files(Path(folder), files, seconds)
        print(f"| write {files} × {seconds:g} s WAV | – | {time.perf_counter() - started:.1f} s | – |", flush=True)
        vectors = None
        for precision in ("fp32", "bf16"):
            embed_files(model, paths[:2], batch_size=32)  # warm-up
            started = time.perf_counter()
            with autocast(dev, precision):
                out = embed_files(model, paths, n_crops=config.eval.n_crops, batch_size=32)
            rate = files * seconds / (time.perf_counter() - started)
            print(f"| embed {files} files | {precision} | {rate:.0f} audio-s/s | {_memory(dev)} |", flush=True)
            if vectors is None:
                vectors = out
            else:
                cosine = torch.nn.functional.cosine_similarity(out, vectors).min().item()
                print(f"| bf16 vs fp32 embeddings | – | cosine ≥ {cosine:.5f} | – |")

    index = ExactIndex(vectors.shape[1])
    index.add([p.stem for p in paths], vectors.numpy())
    index.build()
    words = torch.randn(args.queries, trained.vectors.shape[1], generator=torch.Generator().manual_seed(0))
    timings = []
    with torch.no_grad():
        for row in words:
            started = time.perf_counter()
            query = model.encode_text(row[None].to(dev)).float().cpu().numpy()
            index.search(query, k=min(10, files))
            timings.append(time.perf_counter() - started)
    print(f"| search {len(index)} tracks | fp32 | {1000 * statistics.median(timings):.2f} ms/query (p50) | – |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
