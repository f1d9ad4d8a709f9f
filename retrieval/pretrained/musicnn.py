"""The published musicnn models (Pons & Serra 2019; PyPI ``musicnn`` 0.1.0, ISC licence) in PyTorch, with their
TensorFlow weights converted exactly.

The four checkpoints the package installs (REFERENCE §9) and the networks they hold, on log-mel patches
x of shape (B, 96 mels, 187 frames) — 16 kHz, 512-point FFT, hop 256, x = log10(1 + 10000·mel), 3 s:

``musicnn`` (``MTT_musicnn``, ``MSD_musicnn``; its ``models.build_musicnn``)::

    BN(x) ─┬─ pad time 3|3 → conv (7 × 38 bands) → ReLU → BN → max over bands → (B, 204, T)   timbral
           ├─ pad time 3|3 → conv (7 × 67 bands) → ReLU → BN → max over bands → (B, 204, T)
           └─ conv (128 | 64 | 32 frames × 1 band, "same") → ReLU → BN → max over bands → 3 × (B, 51, T)  temporal
    front = concat (B, 561, T)
    m1 = BN(ReLU(conv1d_7(front)));  m2 = BN(ReLU(conv1d_7(m1))) + m1;  m3 = BN(ReLU(conv1d_7(m2))) + m2  (64 each)
    f = concat [front, m1, m2, m3] (B, 753, T);  pooled = [max_t f_c, mean_t f_c] interleaved per channel (1506)
    penultimate = BN(ReLU(dense_200(BN(pooled))));  logits = dense_50(penultimate)

``vgg`` (``MTT_vgg``, ``MSD_vgg``; its ``models.vgg``)::

    BN(x) → 5 × [conv 3×3 "same" (128) → ReLU → BN → max-pool (4,1)/(2,2), (2,2), (2,2), (2,2), (4,4)/(4,4)]
    → flatten (time 2 × band 1 × 128 = 256) → dense_50 = logits     (its penultimate features: the flattened pool5)

TensorFlow's layers are channels-last with time as height and bands as width; here tensors are (B, C, time, band)
and every kernel is transposed on conversion. Batch norms use TensorFlow's ε = 0.001; "same" padding of an even
kernel k puts ⌊(k−1)/2⌋ before and the rest after, as TensorFlow does. Dropout is inactive at inference, so it is
omitted. The conversion is checked against TensorFlow itself by ``benchmarks/musicnn_fidelity.py``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from retrieval.errors import DataError
from retrieval.pretrained.tf_checkpoint import read_checkpoint

__all__ = ["CHECKPOINTS", "LABELS", "PublishedMusicnn", "PublishedVGG", "convert_checkpoint", "musicnn_package_dir",
           "published_network"]

#: TensorFlow's batch-norm ε (tf.compat.v1.layers.batch_normalization's default).
TF_BN_EPS = 1e-3
N_MELS = 96
PATCH_FRAMES = 187
SAMPLE_RATE = 16000
N_FFT = 512
HOP = 256

MUSICNN_FILTERS = {"timbral": 204, "temporal": 51, "midend": 64, "backend": 200}  # int(1.6·128), int(1.6·32)
TIMBRAL_BANDS = (int(0.4 * N_MELS), int(0.7 * N_MELS))  # 38, 67
TIMBRAL_FRAMES = 7
TEMPORAL_FRAMES = (128, 64, 32)
MIDEND_KERNEL = 7
VGG_FILTERS = 128
VGG_POOLS = (((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4)))

MTT_LABELS = ("guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast", "piano",
              "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male", "singing",
              "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman", "male vocal", "no vocal",
              "pop", "soft", "sitar", "solo", "man", "classic", "choir", "voice", "new age", "dance", "male voice",
              "female vocal", "beats", "harp", "cello", "no voice", "weird", "country", "metal", "female voice",
              "choral")
MSD_LABELS = ("rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s",
              "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock", "soul",
              "indie rock", "Mellow", "electronica", "80s", "folk", "90s", "chill", "instrumental", "punk", "oldies",
              "blues", "hard rock", "ambient", "acoustic", "experimental", "female vocalist", "guitar", "Hip-Hop",
              "70s", "party", "country", "easy listening", "sexy", "catchy", "funk", "electro", "heavy metal",
              "Progressive rock", "60s", "rnb", "indie pop", "sad", "House", "happy")
#: checkpoint folder (inside the musicnn package) → (architecture, labels)
CHECKPOINTS = {"MTT_musicnn": ("musicnn", MTT_LABELS), "MSD_musicnn": ("musicnn", MSD_LABELS),
               "MTT_vgg": ("vgg", MTT_LABELS), "MSD_vgg": ("vgg", MSD_LABELS)}
LABELS = {name: labels for name, (_, labels) in CHECKPOINTS.items()}


def _bn(channels: int, dims: int) -> nn.Module:
    return (nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d)(channels, eps=TF_BN_EPS)


def _same(kernel: int) -> tuple[int, int]:
    """TensorFlow's "same" padding of a stride-1 kernel: (before, after)."""
    return (kernel - 1) // 2, kernel - 1 - (kernel - 1) // 2


class PublishedMusicnn(nn.Module):
    """musicnn exactly as published (see the module docstring): (B, 96, T) log-mels → (logits, penultimate).

    Args:
        n_classes: output tags (50 for both published models).
    """

    def __init__(self, n_classes: int = 50):
        super().__init__()
        f = MUSICNN_FILTERS
        self.input_bn = _bn(1, 2)
        self.timbral = nn.ModuleList(nn.Conv2d(1, f["timbral"], (TIMBRAL_FRAMES, bands)) for bands in TIMBRAL_BANDS)
        self.timbral_bn = nn.ModuleList(_bn(f["timbral"], 2) for _ in TIMBRAL_BANDS)
        self.temporal = nn.ModuleList(nn.Conv2d(1, f["temporal"], (frames, 1)) for frames in TEMPORAL_FRAMES)
        self.temporal_bn = nn.ModuleList(_bn(f["temporal"], 2) for _ in TEMPORAL_FRAMES)
        front = len(TIMBRAL_BANDS) * f["timbral"] + len(TEMPORAL_FRAMES) * f["temporal"]
        self.midend = nn.ModuleList(nn.Conv1d(front if i == 0 else f["midend"], f["midend"], MIDEND_KERNEL)
                                    for i in range(3))
        self.midend_bn = nn.ModuleList(_bn(f["midend"], 1) for _ in range(3))
        pooled = 2 * (front + 3 * f["midend"])
        self.pool_bn = _bn(pooled, 1)
        self.dense = nn.Linear(pooled, f["backend"])
        self.dense_bn = _bn(f["backend"], 1)
        self.output = nn.Linear(f["backend"], n_classes)
        self.penultimate_dim = f["backend"]

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, n_mels, frames) → logits (B, n_classes) and penultimate features (B, 200)."""
        x = self.input_bn(mel.transpose(1, 2).unsqueeze(1))  # (B, 1, T, bands)
        padded = F.pad(x, (0, 0, TIMBRAL_FRAMES // 2, TIMBRAL_FRAMES // 2))
        front = [bn(F.relu(conv(padded))).amax(dim=3) for conv, bn in zip(self.timbral, self.timbral_bn, strict=True)]
        for conv, bn in zip(self.temporal, self.temporal_bn, strict=True):
            front.append(bn(F.relu(conv(F.pad(x, (0, 0, *_same(conv.kernel_size[0])))))).amax(dim=3))
        h = torch.cat(front, dim=1)  # (B, 561, T)
        stages = [h]
        for i, (conv, bn) in enumerate(zip(self.midend, self.midend_bn, strict=True)):
            y = bn(F.relu(conv(F.pad(h, _same(MIDEND_KERNEL)))))
            h = y if i == 0 else y + h
            stages.append(h)
        features = torch.cat(stages, dim=1)  # (B, 753, T)
        pooled = torch.stack([features.amax(dim=2), features.mean(dim=2)], dim=2).flatten(1)  # max, mean per channel
        penultimate = self.dense_bn(F.relu(self.dense(self.pool_bn(pooled))))
        return self.output(penultimate), penultimate


class PublishedVGG(nn.Module):
    """musicnn's VGG baseline exactly as published: (B, 96, 187) log-mels → (logits, flattened pool5 (B, 256))."""

    def __init__(self, n_classes: int = 50, frames: int = PATCH_FRAMES, n_mels: int = N_MELS):
        super().__init__()
        self.input_bn = _bn(1, 2)
        self.convs = nn.ModuleList(nn.Conv2d(1 if i == 0 else VGG_FILTERS, VGG_FILTERS, 3, padding=1)
                                   for i in range(len(VGG_POOLS)))
        self.bns = nn.ModuleList(_bn(VGG_FILTERS, 2) for _ in VGG_POOLS)
        for (pool, stride) in VGG_POOLS:
            frames = (frames - pool[0]) // stride[0] + 1
            n_mels = (n_mels - pool[1]) // stride[1] + 1
        self.penultimate_dim = frames * n_mels * VGG_FILTERS
        self.output = nn.Linear(self.penultimate_dim, n_classes)

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, n_mels, frames) → logits (B, n_classes) and flattened pool5 (B, 256)."""
        x = self.input_bn(mel.transpose(1, 2).unsqueeze(1))  # (B, 1, T, bands)
        for conv, bn, (pool, stride) in zip(self.convs, self.bns, VGG_POOLS, strict=True):
            x = F.max_pool2d(bn(F.relu(conv(x))), pool, stride)
        flat = x.permute(0, 2, 3, 1).flatten(1)  # TensorFlow's channels-last flatten order
        return self.output(flat), flat


def musicnn_package_dir() -> Path:
    """The installed ``musicnn`` package folder (its checkpoints; the package itself is never imported)."""
    spec = importlib.util.find_spec("musicnn")
    if spec is None or spec.origin is None:
        raise ImportError("the published musicnn weights come from the pip package 'musicnn': "
                          "pip install --no-deps musicnn (its TensorFlow is not needed)")
    return Path(spec.origin).parent


def published_network(name: str) -> nn.Module:
    """The untrained PyTorch network of the checkpoint ``name`` (one of :data:`CHECKPOINTS`).

    Raises:
        KeyError: an unknown name (the valid ones listed).
    """
    if name not in CHECKPOINTS:
        raise KeyError(f"unknown musicnn checkpoint {name!r}; choose one of {sorted(CHECKPOINTS)}")
    architecture, labels = CHECKPOINTS[name]
    return PublishedMusicnn(len(labels)) if architecture == "musicnn" else PublishedVGG(len(labels))


def convert_checkpoint(name: str, folder: str | Path | None = None) -> nn.Module:
    """The PyTorch model of a musicnn checkpoint, in eval mode, every variable mapped (see the module docstring).

    Args:
        name: one of :data:`CHECKPOINTS`.
        folder: the checkpoint folder (default: the installed package's ``name`` folder).

    Raises:
        KeyError: an unknown name (the valid ones listed).
        DataError: a variable is missing or has another shape than the published architecture's.
    """
    model = published_network(name)
    folder = Path(folder) if folder is not None else musicnn_package_dir() / name
    tensors = {key: torch.from_numpy(value) for key, value in read_checkpoint(folder).items()}
    state = _musicnn_state(tensors) if isinstance(model, PublishedMusicnn) else _vgg_state(tensors)
    expected = model.state_dict()
    for key, value in expected.items():
        if key.endswith("num_batches_tracked"):
            state[key] = value
        elif key not in state or state[key].shape != value.shape:
            got = tuple(state[key].shape) if key in state else "missing"
            raise DataError(folder, f"{key}: expected shape {tuple(value.shape)}, got {got}; not the published "
                            f"{name} checkpoint")
    model.load_state_dict(state)
    return model.eval()


def _conv2d(kernel: torch.Tensor) -> torch.Tensor:
    """TensorFlow (kh, kw, in, out) → torch (out, in, kh, kw)."""
    return kernel.permute(3, 2, 0, 1).contiguous()


def _batch_norm(tensors: dict[str, torch.Tensor], tf_name: str, torch_name: str) -> dict[str, torch.Tensor]:
    return {f"{torch_name}.weight": tensors[f"{tf_name}/gamma"], f"{torch_name}.bias": tensors[f"{tf_name}/beta"],
            f"{torch_name}.running_mean": tensors[f"{tf_name}/moving_mean"],
            f"{torch_name}.running_var": tensors[f"{tf_name}/moving_variance"]}


def _tf_name(layer: str, index: int) -> str:
    """TensorFlow's automatic layer names: conv2d, conv2d_1, conv2d_2, …"""
    return layer if index == 0 else f"{layer}_{index}"


def _musicnn_state(t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """TensorFlow variables of ``build_musicnn`` → :class:`PublishedMusicnn` state (layers in creation order)."""
    state = _batch_norm(t, "batch_normalization", "input_bn")
    convs = ["timbral.0", "timbral.1", "temporal.0", "temporal.1", "temporal.2"]
    norms = ["timbral_bn.0", "timbral_bn.1", "temporal_bn.0", "temporal_bn.1", "temporal_bn.2"]
    for i, (conv, norm) in enumerate(zip(convs, norms, strict=True)):
        state[f"{conv}.weight"] = _conv2d(t[f"{_tf_name('conv2d', i)}/kernel"])
        state[f"{conv}.bias"] = t[f"{_tf_name('conv2d', i)}/bias"]
        state |= _batch_norm(t, _tf_name("batch_normalization", i + 1), norm)
    for j in range(3):  # mid-end: kernel (7, C_in, 1, 64) spans every channel → Conv1d (64, C_in, 7)
        kernel = t[f"conv2d_{len(convs) + j}/kernel"]
        state[f"midend.{j}.weight"] = kernel[:, :, 0, :].permute(2, 1, 0).contiguous()
        state[f"midend.{j}.bias"] = t[f"conv2d_{len(convs) + j}/bias"]
        state |= _batch_norm(t, f"batch_normalization_{len(convs) + 1 + j}", f"midend_bn.{j}")
    state |= _batch_norm(t, "batch_normalization_9", "pool_bn")
    state |= _batch_norm(t, "batch_normalization_10", "dense_bn")
    state |= {"dense.weight": t["dense/kernel"].T.contiguous(), "dense.bias": t["dense/bias"],
              "output.weight": t["dense_1/kernel"].T.contiguous(), "output.bias": t["dense_1/bias"]}
    return state


def _vgg_state(t: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """TensorFlow variables of ``vgg`` (layers named 1CNN … 5CNN) → :class:`PublishedVGG` state."""
    state = _batch_norm(t, "batch_normalization", "input_bn")
    for i in range(len(VGG_POOLS)):
        state[f"convs.{i}.weight"] = _conv2d(t[f"{i + 1}CNN/kernel"])
        state[f"convs.{i}.bias"] = t[f"{i + 1}CNN/bias"]
        state |= _batch_norm(t, f"batch_normalization_{i + 1}", f"bns.{i}")
    state |= {"output.weight": t["dense/kernel"].T.contiguous(), "output.bias": t["dense/bias"]}
    return state
