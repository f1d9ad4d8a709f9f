"""Tagging throughput of every backbone: seconds of audio tagged per second, file → tag probabilities.

For each backbone of the registry, builds the tagger of `configs/tagging/<name>.yaml` (the demo sizes; random
weights: speed does not depend on them), writes `--files` synthetic OGG files of `--seconds` each (44.1 kHz stereo,
so decoding and resampling are included) and times `retrieval.tagging.predict.predict_files` (decode → resample →
the backbone's own features → 16 equally spaced crops → model → mean of sigmoids), then the model alone on ready
crops. Prints a markdown table with parameter counts.

    PYTHONPATH=. .venv/bin/python benchmarks/tagging_speed.py [--size paper] [--only fcn musicnn]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from retrieval.audio import whole_track_crops
from retrieval.config import load_config
from retrieval.encoders.backbones import AUDIO_BACKBONES
from retrieval.runs import tagging_args
from retrieval.tagging.model import build_tagging_model
from retrieval.tagging.predict import predict_files

N_TAGS = 92  # the demo corpus's vocabulary


def _write_files(folder: Path, n: int, seconds: float) -> list[str]:
    rng = np.random.default_rng(0)
    rate = 44100
    t = np.arange(int(seconds * rate)) / rate
    paths = []
    for i in range(n):
        tone = np.sin(2 * np.pi * (220 + 20 * i) * t) + 0.1 * rng.standard_normal(len(t))
        path = folder / f"track{i}.ogg"
        sf.write(path, np.stack([tone, tone], 1) * 0.2, rate)
        paths.append(str(path))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--size", default="demo", choices=["demo", "paper"])
    parser.add_argument("--only", nargs="+", default=None, help="backbone names (default: all)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--smoke", action="store_true", help="1 file of 3 s, FCN only (make test)")
    args = parser.parse_args()
    if args.smoke:
        args.files, args.seconds, args.only = 1, 3.0, args.only or ["fcn"]
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.only or list(AUDIO_BACKBONES)
    print(f"{args.files} files × {args.seconds:.0f} s (44.1 kHz stereo OGG); 16 crops per track; size {args.size}; "
          f"torch threads {torch.get_num_threads()}\n")
    print("| backbone | parameters | crop s | file → tags: audio s / s | model only: audio s / s |")
    print("|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        paths = _write_files(Path(tmp), args.files, args.seconds)
        for name in names:
            config = load_config(Path("configs/tagging") / f"{name}.yaml", [f"model.audio.size={args.size}"])
            torch.manual_seed(0)
            model = build_tagging_model(tagging_args(config, N_TAGS)).eval()
            predict_files(model, paths[:1], 16)  # warm-up
            started = time.perf_counter()
            predict_files(model, paths, 16)
            whole = time.perf_counter() - started
            crops = torch.stack([torch.from_numpy(whole_track_crops(p, model.mel, model.input_frames, 16))
                                 for p in paths])
            started = time.perf_counter()
            model.predict_crops(crops.float())
            model_only = time.perf_counter() - started
            audio = args.files * args.seconds
            crop_s = model.backbone.input_samples / model.mel.sample_rate
            params = sum(p.numel() for p in model.parameters())
            print(f"| {name} | {params:,} | {crop_s:.1f} | {audio / whole:.0f} | {audio / model_only:.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
