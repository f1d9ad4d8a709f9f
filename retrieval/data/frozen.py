"""A frozen audio tower's network outputs, computed once per track: training a head on a fixed backbone.

With ``model.audio: {backbone: musicnn, pretrained: mtt, freeze: true}`` only the tower's last Linear trains, so
running the published network on every training crop (~70 ms a 3-s patch on 2 cores: 45 min for the demo config)
repeats the same work over and over. :class:`FrozenFeatures` runs it once on :data:`PATCHES` equally spaced patches
of every track, caches the penultimate vectors under ``corpus/cache/frozen-<network>-p<PATCHES>/``, and then stands
in for the mel :class:`~retrieval.data.features.FeatureStore`:

    training crop   the cached patch nearest the drawn position    → (B, D, 1)
    whole track     all of its cached patches                          → (B, PATCHES, D, 1)

A ``(…, D, 1)`` input is what the frozen tower reads as its network's output
(:meth:`~retrieval.encoders.backbones.pretrained.PretrainedMusicnnTower.forward_features`), so the model, the loss
and the evaluation are unchanged. Search, indexing and ``search_by_audio`` still run the whole tower on mels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from retrieval.audio.crops import equally_spaced_crops
from retrieval.fileio import atomic_path

PATCHES = 3
"""Cached patches per track (3 s each; equally spaced, so they cover a 15-s demo track at 0, 6 and 12 s)."""
BATCH = 32


class FrozenFeatures:
    """The frozen tower's network output on :data:`PATCHES` patches of every track (see the module docstring).

    Args:
        store: the mel feature store of the tower's front end.
        tower: a frozen pretrained tower (its ``network`` and ``fingerprint`` are used).
        ids: the tracks to cache (computed now, where not cached yet).
        progress: a tqdm bar while computing.
    """

    def __init__(self, store, tower, ids: Sequence[str], progress: bool = True):
        self.store, self.network, self.frames = store, tower.network, tower.input_frames
        self.folder = Path(store.folder).parent.parent / f"frozen-{tower.fingerprint}-p{PATCHES}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._vectors: dict[str, np.ndarray] = {}
        self._compute([i for i in ids if not self._path(i).is_file()], progress)

    def _path(self, track_id: str) -> Path:
        return self.folder / f"{track_id}.npy"

    @torch.no_grad()
    def _compute(self, ids: list[str], progress: bool) -> None:
        from tqdm.auto import tqdm

        self.network.eval()
        device = next(self.network.parameters()).device
        for start in tqdm(range(0, len(ids), BATCH), desc="frozen tower", unit="batch", disable=not progress):
            chunk = ids[start:start + BATCH]
            patches = np.stack([equally_spaced_crops(np.asarray(self.store.load(i), dtype=np.float32), self.frames,
                                                     PATCHES) for i in chunk])  # (b, P, n_mels, frames)
            _, penultimate = self.network(torch.from_numpy(patches).flatten(0, 1).to(device))
            vectors = penultimate.unflatten(0, (len(chunk), PATCHES)).float().cpu().numpy()
            for track_id, v in zip(chunk, vectors, strict=True):
                with atomic_path(self._path(track_id)) as tmp, open(tmp, "wb") as f:
                    np.save(f, v)

    def load(self, track_id: str) -> np.ndarray:
        """(PATCHES, D) float32 penultimate vectors of one track."""
        if track_id not in self._vectors:
            self._vectors[track_id] = np.load(self._path(track_id))
        return self._vectors[track_id]

    def crops_at(self, ids: Sequence[str], frames: int, fractions: Sequence[float]) -> torch.Tensor:
        """The cached patch nearest ``fractions[i]`` of the way into track ``ids[i]`` → (B, D, 1) (training
        batches draw their crop positions before reading: :mod:`retrieval.training.batches`)."""
        picks = [min(int(f * PATCHES), PATCHES - 1) for f in fractions]
        return torch.from_numpy(np.stack([self.load(i)[p] for i, p in zip(ids, picks, strict=True)]))[..., None]

    def track_crops(self, ids: Sequence[str], frames: int, n_crops: int) -> torch.Tensor:
        """Every cached patch of each track (``n_crops`` is the tower's :data:`PATCHES`) → (B, PATCHES, D, 1)."""
        return torch.from_numpy(np.stack([self.load(i) for i in ids]))[..., None]


def freeze_features(data, model, progress: bool = True) -> None:
    """Swap ``data.features`` for :class:`FrozenFeatures` when ``model``'s audio tower is a frozen pretrained one."""
    tower = getattr(model, "audio", None)
    if data.features is None or not getattr(tower, "freeze", False) or not hasattr(tower, "fingerprint"):
        return
    ids = sorted({i for split in data.splits.values() for i in split.ids})
    data.features = FrozenFeatures(data.features, tower, ids, progress)
