"""Fidelity of the converted musicnn weights against TensorFlow running the published checkpoints.

The library reads the four TensorFlow checkpoints of the ``musicnn`` package without TensorFlow
(``retrieval.pretrained``). This benchmark builds its own venv with TensorFlow (never ``.venv``), runs musicnn's
own graph (``musicnn.models.define_model`` + ``Saver.restore``, as ``musicnn.extractor`` does) on the same log-mel
patches, and prints, per model, the max |Δ| of the logits and of the penultimate features (the issue's bound:
1e-4) and the largest probability difference.

    PYTHONPATH=. .venv/bin/python benchmarks/musicnn_fidelity.py            # builds $RETRIEVAL_HOME/fidelity-venv once
    PYTHONPATH=. .venv/bin/python benchmarks/musicnn_fidelity.py --smoke    # make test: the library side only

Patches: 16 log-mel patches (96 × 187) — 8 from synthetic audio (harmonic tones with tremolo and noise,
through a 16 kHz / 512 / 256 power mel, log10(1 + 10000·mel)) and 8 uniform in [0, 4] (the range of real log-mels).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from retrieval.paths import home
from retrieval.pretrained.musicnn import CHECKPOINTS, N_MELS, PATCH_FRAMES, convert_checkpoint, musicnn_package_dir

VENV_PACKAGES = ["tensorflow-cpu", "tf-keras"]
TOLERANCE = 1e-4

# Runs inside the TensorFlow venv: musicnn's own graph on the patches → logits and penultimate features.
_TF_SIDE = r"""
import os, sys
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import tensorflow as tf
tf.compat.v1.disable_eager_execution()
from musicnn import models
patches = np.load(sys.argv[1])["patches"]  # (n, frames, mels): musicnn's layout
out = {}
for name in sys.argv[3].split(","):
    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, patches.shape[1], patches.shape[2]])
        training = tf.compat.v1.placeholder(tf.bool)
        outputs = models.define_model(x, training, name, 50)
    penultimate = tf.compat.v1.layers.flatten(outputs[5]) if "vgg" in name else outputs[-1]
    with tf.compat.v1.Session() as session:
        session.run(tf.compat.v1.global_variables_initializer())
        tf.compat.v1.train.Saver().restore(session, os.path.dirname(models.__file__) + "/" + name + "/")
        logits, features = session.run([outputs[0], penultimate], {x: patches, training: False})
    out[name + "/logits"], out[name + "/penultimate"] = logits, features
np.savez(sys.argv[2], **out)
"""


def build_venv(venv: Path) -> Path:
    """The TensorFlow venv (created once): tensorflow-cpu + tf-keras, and musicnn without its pinned deps."""
    python = venv / "bin" / "python"
    if python.is_file() and subprocess.run([str(python), "-c", "import tensorflow, musicnn"],
                                           capture_output=True).returncode == 0:
        return python
    print(f"building the TensorFlow venv at {venv} (once; a few minutes)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *VENV_PACKAGES], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "musicnn"], check=True)
    return python


def patches(n: int, seed: int = 0) -> np.ndarray:
    """(n, 96, 187) float32 log-mel patches: half from synthetic tones and noise through a 16 kHz, 512-point,
    hop-256 power mel, half uniform in [0, 4]."""
    import torchaudio

    generator = np.random.default_rng(seed)
    mel = torchaudio.transforms.MelSpectrogram(16000, n_fft=512, hop_length=256, n_mels=N_MELS, power=2.0)
    seconds = PATCH_FRAMES * 256 / 16000
    t = np.arange(int(seconds * 16000)) / 16000
    audio = []
    for _ in range(n - n // 2):
        pitches = generator.uniform(80, 1000, size=4)
        wave = sum(np.sin(2 * np.pi * f * k * t) / k for f in pitches for k in (1, 2, 3))
        wave = wave * (1 + np.sin(2 * np.pi * generator.uniform(0.5, 4) * t)) + generator.normal(0, 0.3, t.size)
        audio.append(wave / np.abs(wave).max() * 0.5)
    with torch.no_grad():
        mels = mel(torch.tensor(np.stack(audio), dtype=torch.float32))[..., :PATCH_FRAMES].numpy()
    tones = np.log10(1 + 10000 * mels)
    uniform = generator.uniform(0, 4, size=(n // 2, N_MELS, PATCH_FRAMES))
    return np.concatenate([tones, uniform]).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--venv", type=Path, default=None,
                        help="TensorFlow venv (default $RETRIEVAL_HOME/fidelity-venv)")
    parser.add_argument("--patches", type=int, default=16, help="log-mel patches compared (default 16)")
    parser.add_argument("--smoke", action="store_true",
                        help="make test: convert every checkpoint and run 2 patches, no TensorFlow")
    args = parser.parse_args(argv)
    x = patches(2 if args.smoke else args.patches)
    print(f"musicnn package: {musicnn_package_dir()}; {len(x)} patches of {N_MELS} × {PATCH_FRAMES}")
    ours = {}
    for name in CHECKPOINTS:
        started = time.perf_counter()
        model = convert_checkpoint(name)
        converted = time.perf_counter() - started
        with torch.no_grad():
            logits, features = model(torch.from_numpy(x))
        ours[name] = (logits.numpy(), features.numpy())
        print(f"{name}: converted in {converted:.2f} s; logits {tuple(logits.shape)}, penultimate "
              f"{tuple(features.shape)}")
    if args.smoke:
        print("smoke: no TensorFlow reference (the full run builds its venv and compares)")
        return 0
    python = build_venv(args.venv or home() / "fidelity-venv")
    with tempfile.TemporaryDirectory() as folder:
        inputs, outputs, script = (Path(folder) / n for n in ("patches.npz", "tf.npz", "tf_side.py"))
        np.savez(inputs, patches=np.ascontiguousarray(x.transpose(0, 2, 1)))  # musicnn: (n, frames, mels)
        script.write_text(_TF_SIDE)
        env = {**os.environ, "PYTHONPATH": ""}
        subprocess.run([str(python), str(script), str(inputs), str(outputs), ",".join(CHECKPOINTS)], check=True,
                       env=env)
        reference = dict(np.load(outputs))
    print("| model | max abs Δ logits | max abs Δ penultimate | max abs Δ probability | within 1e-4 |")
    print("|---|---:|---:|---:|---|")
    worst = 0.0
    for name, (logits, features) in ours.items():
        d_logits = float(np.abs(logits - reference[f"{name}/logits"]).max())
        d_features = float(np.abs(features - reference[f"{name}/penultimate"]).max())
        sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
        d_probability = float(np.abs(sigmoid(logits) - sigmoid(reference[f"{name}/logits"])).max())
        worst = max(worst, d_logits, d_features)
        print(f"| {name} | {d_logits:.2e} | {d_features:.2e} | {d_probability:.2e} | "
              f"{'yes' if max(d_logits, d_features) <= TOLERANCE else 'NO'} |")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    raise SystemExit(main())
