"""Audio embedding throughput: seconds of audio embedded per second, file → vector, on this machine; with
``--vs-musicnn``, side by side with musicnn (TensorFlow, in its own venv) on the same 30-s files, interleaved.

    PYTHONPATH=. .venv/bin/python benchmarks/audio_embedding.py --vs-musicnn        # both towers vs musicnn
    PYTHONPATH=. .venv/bin/python benchmarks/audio_embedding.py --config configs/demo.yaml --files 16
    PYTHONPATH=. .venv/bin/python benchmarks/audio_embedding.py --smoke              # make test: no TensorFlow

Files: ``--files`` clips of ``--seconds`` at 44.1 kHz stereo (WAV, OGG and MP3 in turn: demo-corpus renders when
the demo corpus is there, else tones; ``musicnn_fidelity.clips``), so decoding and resampling are included.

Ours: ``retrieval.embedding.embed_files`` (decode → resample → streaming mel → 8 equally spaced crops → the
audio tower → mean; the next batch decodes while the model runs), for each ``--config`` (random weights: speed
does not depend on them; default: the paper-size Short-chunk CNN of ``configs/base.yaml`` and the demo tower of
``configs/demo.yaml``). Then the model alone on ready crops, in eager fp32 and in the other layouts and
precisions this CPU might be faster at (channels-last; bf16 autocast, kept only where the embeddings agree with
fp32 to cosine ≥ 0.99999; the library embeds in channels-last, ``retrieval.embedding.fastest_layout``).

musicnn: its own pipeline (``musicnn.extractor.batch_data``: librosa decode at 16 kHz, its mel, 3-s patches,
then ``MTT_musicnn``'s graph), run in the TensorFlow venv the fidelity benchmark builds
(``musicnn_fidelity.build_venv``), the graph built once (musicnn's ``extractor`` would rebuild it per file).

Rounds alternate ours and musicnn on the same files (``--rounds``), so both see the same machine load;
throughput is the audio seconds of all rounds over their time, and the ratios are ours / musicnn.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from musicnn_fidelity import build_venv, clips  # benchmarks/ is this script's folder, first on sys.path

from retrieval.config import load_config
from retrieval.embedding import embed_crops, embed_files, file_crops
from retrieval.paths import home
from retrieval.runs import build_model, model_args

DEFAULT_CONFIGS = ("configs/base.yaml", "configs/demo.yaml")
#: Embeddings in another layout or precision must agree with eager fp32 this well to be used.
COSINE_BAR = 0.99999
MUSICNN_MODEL = "MTT_musicnn"

# Runs inside the TensorFlow venv: build musicnn's graph once, then embed each line of files sent on stdin with
# musicnn's own front end; print the seconds each line took.
_MUSICNN_WORKER = r"""
import os, sys, time
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import tensorflow as tf
tf.compat.v1.disable_eager_execution()
from musicnn import configuration, models
from musicnn.extractor import batch_data
name = sys.argv[1]
frames = 187  # musicnn's 3-s patches
with tf.name_scope("model"):
    x = tf.compat.v1.placeholder(tf.float32, [None, frames, configuration.N_MELS])
    training = tf.compat.v1.placeholder(tf.bool)
    logits = models.define_model(x, training, name, 50)[0]
session = tf.compat.v1.Session()
session.run(tf.compat.v1.global_variables_initializer())
tf.compat.v1.train.Saver().restore(session, os.path.dirname(models.__file__) + "/" + name + "/")
print("ready", flush=True)
for line in sys.stdin:
    started = time.perf_counter()
    for path in line.split("\t"):
        batch, _ = batch_data(path.strip(), frames, frames)
        session.run(logits, {x: batch, training: False}).mean(axis=0)  # the taggram's mean, as top_tags
    print(time.perf_counter() - started, flush=True)
"""


class MusicnnWorker:
    """musicnn in the TensorFlow venv as a long-lived process: :meth:`embed` times one pass over files."""

    def __init__(self, python: Path, folder: Path):
        script = folder / "musicnn_worker.py"
        script.write_text(_MUSICNN_WORKER)
        env = {**os.environ, "PYTHONPATH": ""}
        self.process = subprocess.Popen([str(python), str(script), MUSICNN_MODEL], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=env)
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the musicnn worker did not start; check the venv with benchmarks/musicnn_fidelity.py")

    def embed(self, paths: list[Path]) -> float:
        self.process.stdin.write("\t".join(map(str, paths)) + "\n")
        self.process.stdin.flush()
        return float(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


def build_tower(config_path: str):
    config = load_config(config_path, ["model.modality=audio"])
    return config, build_model(model_args(config, 300, None)).eval()


def model_variants(model, crops: torch.Tensor, batch: int) -> list[tuple[str, float, float]]:
    """(variant, seconds, min cosine vs eager fp32 in the default layout) of the model alone on ready crops."""
    model.audio.to(memory_format=torch.contiguous_format)
    with mock.patch("retrieval.embedding.fastest_layout", lambda m: m):  # the default layout, as before
        embed_crops(model, crops[:batch], batch_size=batch)
        started = time.perf_counter()
        reference = embed_crops(model, crops, batch_size=batch)
    rows = [("eager fp32, default layout", time.perf_counter() - started, 1.0)]
    for name, precision in (("channels-last fp32 (the library's)", None),
                            ("channels-last bf16 autocast", torch.bfloat16)):
        with torch.autocast("cpu", dtype=precision, enabled=precision is not None):
            embed_crops(model, crops[:batch], batch_size=batch)  # warm-up: oneDNN picks its kernels
            started = time.perf_counter()
            vectors = embed_crops(model, crops, batch_size=batch).float()
        seconds = time.perf_counter() - started
        cosine = torch.nn.functional.cosine_similarity(vectors, reference, dim=1).min().item()
        rows.append((name, seconds, cosine))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", nargs="+", default=list(DEFAULT_CONFIGS), help="towers to measure")
    parser.add_argument("--files", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (ours, musicnn) over the files")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--vs-musicnn", action="store_true", help="also run musicnn (builds its venv once)")
    parser.add_argument("--venv", type=Path, default=None,
                        help="TensorFlow venv (default $RETRIEVAL_HOME/fidelity-venv)")
    parser.add_argument("--smoke", action="store_true", help="2 files of 3 s, one round, no musicnn (make test)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.files, args.seconds, args.rounds, args.vs_musicnn = 2, 3.0, 1, False
    if args.threads:
        torch.set_num_threads(args.threads)
    towers = {path: build_tower(path) for path in args.config}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        paths = clips(Path(tmp), args.files, 0.9) if args.seconds == 30.0 else synthetic(Path(tmp), args)
        venv = args.venv or home() / "fidelity-venv"
        worker = MusicnnWorker(build_venv(venv), Path(tmp)) if args.vs_musicnn else None
        seconds = {path: 0.0 for path in towers} | ({"musicnn": 0.0} if worker else {})
        for config, model in towers.values():  # warm-up: kernels, caches, lazy imports
            embed_files(model, paths[:1], n_crops=config.eval.n_crops, batch_size=args.batch)
        if worker:
            worker.embed(paths[:1])
        for _ in range(args.rounds):
            for path, (config, model) in towers.items():
                started = time.perf_counter()
                embed_files(model, paths, n_crops=config.eval.n_crops, batch_size=args.batch)
                seconds[path] += time.perf_counter() - started
            if worker:
                seconds["musicnn"] += worker.embed(paths)
        if worker:
            worker.close()
        variants = {path: model_variants(model, file_crops(model, paths, config.eval.n_crops), args.batch)
                    for path, (config, model) in towers.items()}
    audio = args.rounds * args.files * args.seconds
    print(f"{args.files} files × {args.seconds:.0f} s (44.1 kHz stereo), {args.rounds} interleaved round(s); torch "
          f"threads {torch.get_num_threads()}; {os.cpu_count()} CPUs, 1-minute load average {load_before:.1f} "
          f"before, {os.getloadavg()[0]:.1f} after\n")
    print("| pipeline (file → vector) | audio seconds per second | × musicnn |")
    print("|---|---:|---:|")
    for name, total in seconds.items():
        label = name if name == "musicnn" else (f"{name} ({towers[name][0].model.audio.size} tower, "
                                                f"{towers[name][1].audio.input_frames}-frame crops)")
        ratio = f"{seconds['musicnn'] / total:.2f}×" if "musicnn" in seconds else "–"
        print(f"| {label} | {audio / total:.1f} | {ratio} |")
    print("\n| tower | model alone on ready crops | audio seconds per second | min cosine vs fp32 | usable |")
    print("|---|---|---:|---:|---|")
    crops_audio = args.files * args.seconds
    for path, rows in variants.items():
        for name, total, cosine in rows:
            print(f"| {path} | {name} | {crops_audio / total:.1f} | {cosine:.6f} | "
                  f"{'yes' if cosine >= COSINE_BAR else 'no'} |")
    return 0


def synthetic(folder: Path, args: argparse.Namespace) -> list[Path]:
    """``--files`` tone clips of ``--seconds`` (44.1 kHz stereo OGG) for sizes other than 30 s."""
    import soundfile as sf

    rate, rng = 44100, np.random.default_rng(0)
    t = np.arange(int(args.seconds * rate)) / rate
    paths = []
    for i in range(args.files):
        tone = np.sin(2 * np.pi * (220 + 20 * i) * t) + 0.1 * rng.standard_normal(len(t))
        paths.append(folder / f"track{i}.ogg")
        sf.write(paths[-1], np.stack([tone, 0.9 * tone], 1) * 0.2, rate)
    return paths


if __name__ == "__main__":
    sys.exit(main())
