"""Audio embedding throughput: seconds of audio embedded per second, file → vector, on this machine.

Writes `--files` synthetic OGG files of `--seconds` each (44.1 kHz stereo, so decoding and resampling are
included), builds the model of `--config` (random weights: speed does not depend on them) and times
`retrieval.embedding.embed_files` (decode → resample → streaming mel → N equally spaced crops → model → mean),
then the model alone on ready crops.

    PYTHONPATH=. .venv/bin/python benchmarks/audio_embedding.py --config configs/demo.yaml
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from retrieval.config import load_config
from retrieval.embedding import embed_crops, embed_files, file_crops
from retrieval.runs import build_model, model_args


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--smoke", action="store_true", help="2 files of 3 s (make test)")
    args = parser.parse_args()
    if args.smoke:
        args.files, args.seconds = 2, 3.0
    if args.threads:
        torch.set_num_threads(args.threads)
    config = load_config(args.config, ["model.modality=audio"])
    model = build_model(model_args(config, 300, None)).eval()
    n_crops = config.eval.n_crops
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        rate = 44100
        t = np.arange(int(args.seconds * rate)) / rate
        for i in range(args.files):
            tone = np.sin(2 * np.pi * (220 + 20 * i) * t) + 0.1 * rng.standard_normal(len(t))
            path = Path(tmp) / f"track{i}.ogg"
            sf.write(path, np.stack([tone, tone], 1) * 0.2, rate)
            paths.append(str(path))
        audio_seconds = args.files * args.seconds
        started = time.perf_counter()
        embed_files(model, paths, n_crops=n_crops, batch_size=args.batch)
        whole = time.perf_counter() - started
        crops = file_crops(model, paths, n_crops)
        started = time.perf_counter()
        embed_crops(model, crops, batch_size=args.batch)
        model_only = time.perf_counter() - started
    print(f"config {args.config} ({config.model.audio.backbone}, channels {list(model.audio.channels)}); "
          f"{args.files} files × {args.seconds:.0f} s; {n_crops} crops of {model.audio.input_frames} frames; "
          f"torch threads {torch.get_num_threads()}\n")
    print("| stage | wall s | audio seconds per second | files/s |")
    print("|---|---:|---:|---:|")
    print(f"| file → vector (decode, resample, mel, model) | {whole:.2f} | {audio_seconds / whole:.0f} | "
          f"{args.files / whole:.1f} |")
    print(f"| model only (ready crops) | {model_only:.2f} | {audio_seconds / model_only:.0f} | "
          f"{args.files / model_only:.1f} |")


if __name__ == "__main__":
    main()
