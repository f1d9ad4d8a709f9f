"""Fidelity of the converted musicnn weights against TensorFlow running the published checkpoints.

The library reads the four TensorFlow checkpoints of the ``musicnn`` package without TensorFlow
(``retrieval.pretrained``). This benchmark builds its own venv with TensorFlow (never ``.venv``), runs musicnn's
own graph (``musicnn.models.define_model`` + ``Saver.restore``, as ``musicnn.extractor`` does) on the same log-mel
patches, and prints, per model, the max |Δ| of the logits and of the penultimate features (the issue's bound:
1e-4) and the largest probability difference.

    PYTHONPATH=. .venv/bin/python benchmarks/musicnn_fidelity.py            # builds $RETRIEVAL_HOME/fidelity-venv once
    PYTHONPATH=. .venv/bin/python benchmarks/musicnn_fidelity.py --smoke    # make test: the library side only

Files: ``--files N`` clips of 30 s, 44.1 kHz stereo, written as WAV, OGG and MP3 from demo-corpus renders (so
both sides decode, resample and patch them: musicnn with librosa, the library with soundfile + torchaudio):
max |Δ| of the mean taggram (the issue's bound: 0.02) and whether the top-5 tags agree.

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

VENV_PACKAGES = ["tensorflow-cpu", "tf-keras", "librosa"]  # librosa: musicnn.extractor decodes with it
TOLERANCE = 1e-4
FILE_TOLERANCE = 0.02
#: Clip peak levels compared: quiet enough that musicnn's float16 arithmetic never overflows, and a normal master.
PEAKS = (0.05, 0.9)

# Runs inside the TensorFlow venv: the share of mel bins where musicnn's own front end (float16 mel, then
# 10000·mel in float16) overflows to inf, per file.
_OVERFLOW = r"""
import sys, numpy as np
from musicnn.extractor import batch_data
for path in sys.argv[1:]:
    print(float(np.isinf(batch_data(path, 187, 187)[1]).mean()))
"""

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
files = sys.argv[4].split(",") if len(sys.argv) > 4 and sys.argv[4] else []
if files:
    from musicnn.extractor import extractor
    for name in sys.argv[3].split(","):
        for i, path in enumerate(files):
            taggram, _ = extractor(path, model=name, extract_features=False)
            out[f"{name}/file{i}"] = taggram.mean(axis=0)
np.savez(sys.argv[2], **out)
"""


def build_venv(venv: Path) -> Path:
    """The TensorFlow venv (created once): tensorflow-cpu, tf-keras, librosa, and musicnn without its pinned
    deps."""
    python = venv / "bin" / "python"
    if python.is_file() and subprocess.run([str(python), "-c", "import tensorflow, musicnn, librosa"],
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


def clips(folder: Path, n: int, peak: float) -> list[Path]:
    """``n`` 30-s clips at 44.1 kHz stereo in WAV / OGG / MP3 peaking at ``peak``, made from demo-corpus renders
    (looped to 30 s; the two channels differ slightly) — or from synthetic tones when no demo corpus is there."""
    import soundfile as sf

    from retrieval.audio import load_audio
    from retrieval.paths import home

    rate, seconds = 44100, 30
    sources = sorted((home() / "demo" / "corpus" / "audio").rglob("*.ogg"))[:n]
    out = []
    for i in range(n):
        if i < len(sources):
            mono = load_audio(sources[i], rate)
        else:
            t = np.arange(rate * 5) / rate
            mono = (0.3 * np.sin(2 * np.pi * (220 + 40 * i) * t) * (1 + np.sin(2 * np.pi * 2 * t))).astype(np.float32)
        mono = np.resize(mono, rate * seconds)
        stereo = np.stack([mono, 0.9 * mono + 0.05 * np.roll(mono, 441)], axis=1)
        stereo = stereo * (peak / float(np.abs(stereo).max()))
        kind = ("wav", "ogg", "mp3")[i % 3]
        path = folder / f"clip{i}-peak{peak:g}.{kind}"
        sf.write(path, stereo, rate, **({"subtype": "PCM_16"} if kind == "wav" else {}))
        out.append(path)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--venv", type=Path, default=None,
                        help="TensorFlow venv (default $RETRIEVAL_HOME/fidelity-venv)")
    parser.add_argument("--patches", type=int, default=16, help="log-mel patches compared (default 16)")
    parser.add_argument("--files", type=int, default=6, help="30-s clips compared end to end (default 6)")
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
    from retrieval.pretrained.tagger import PRETRAINED, PretrainedTagger

    with tempfile.TemporaryDirectory() as folder:
        inputs, outputs, script = (Path(folder) / n for n in ("patches.npz", "tf.npz", "tf_side.py"))
        np.savez(inputs, patches=np.ascontiguousarray(x.transpose(0, 2, 1)))  # musicnn: (n, frames, mels)
        script.write_text(_TF_SIDE)
        levels = {peak: clips(Path(folder), args.files, peak) for peak in PEAKS}
        files = [path for paths in levels.values() for path in paths]
        env = {**os.environ, "PYTHONPATH": ""}
        subprocess.run([str(python), str(script), str(inputs), str(outputs), ",".join(CHECKPOINTS),
                        ",".join(map(str, files))], check=True, env=env)
        reference = dict(np.load(outputs))
        taggers = {checkpoint: PretrainedTagger(name) for name, checkpoint in PRETRAINED.items()}
        file_means = {name: taggers[name].embed_files(files)[0] for name in CHECKPOINTS}
        kinds = ", ".join(sorted({p.suffix for p in files}))
        overflow = subprocess.run([str(python), "-c", _OVERFLOW, *map(str, files)], check=True, env=env,
                                  capture_output=True, text=True).stdout.split()
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
    file_ok = True
    for level, peak in enumerate(PEAKS):
        rows = range(level * args.files, (level + 1) * args.files)
        share = np.mean([float(overflow[i]) for i in rows])
        print(f"\nfiles in: {args.files} clips of 30 s, 44.1 kHz stereo ({kinds}), peak {peak:g} "
              f"({20 * np.log10(peak):.0f} dBFS); musicnn's float16 log overflows to inf in {100 * share:.3f} % of "
              "its mel bins; mean taggram over 3-s patches")
        print("| model | max abs Δ mean taggram | clips with the same top-5 tags | within 0.02 |")
        print("|---|---:|---:|---|")
        for name in CHECKPOINTS:
            ours_mean = file_means[name][list(rows)]
            theirs = np.stack([reference[f"{name}/file{i}"] for i in rows])
            delta = float(np.abs(ours_mean - theirs).max())
            same = sum(set(np.argsort(-a)[:5]) == set(np.argsort(-b)[:5])
                       for a, b in zip(ours_mean, theirs, strict=True))
            file_ok &= delta <= FILE_TOLERANCE and same == args.files
            print(f"| {name} | {delta:.4f} | {same} of {args.files} | "
                  f"{'yes' if delta <= FILE_TOLERANCE else 'NO'} |")
    return 0 if worst <= TOLERANCE and file_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
