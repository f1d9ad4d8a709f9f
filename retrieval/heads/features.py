"""Frozen features of a corpus split, for training heads: what a trained run "sees" of each track.

Three kinds, all read through the run's own config (same corpus, same tracks, same mel settings):

- ``shared``: the run's index-space track vectors (:func:`retrieval.embedding.embed_split`), i.e. the
  shared space, ``(n, model.output_dim)`` — 256-d, or 512-d for the gated hybrid ([x_a, x_c] / √2).
- ``audio``: the audio tower's backbone output *before* projection / normalisation, averaged over ``n_crops``
  equally spaced crops (``eval.n_crops``), ``(n, backbone.output_dim)``. Needs a run with an audio tower.
- ``listening``: the ALS item factors the run was trained with, ``(n, listening.factors)``. Needs a corpus with a
  Taste Profile (``train_triplets.txt``).

Every kind keeps exactly the tracks the run's evaluation keeps (tracks lacking an input the corpus offers are
excluded for all kinds alike), so heads trained on different kinds are compared on the same tracks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from retrieval.errors import ConfigError, DataError

__all__ = ["KINDS", "FrozenFeatures", "frozen_features", "load_frozen_feature_kinds", "load_frozen_features"]

#: The feature kinds :func:`frozen_features` offers.
KINDS = ("shared", "audio", "listening")


@dataclass(frozen=True)
class FrozenFeatures:
    """One split's frozen features and tag labels.

    Unpacks as ``ids, X, labels = frozen_features(...)``.

    Attributes:
        ids: the ``n`` song ids, in row order.
        X: ``(n, d)`` float32 features.
        labels: ``(n, n_tags)`` bool multi-hot tag labels, columns in ``tags`` order.
        tags: the run's ``n_tags`` tag names. categories: each tag's category ("genre", "mood", ...).
    """

    ids: list[str]
    X: np.ndarray
    labels: np.ndarray
    tags: list[str]
    categories: list[str]

    def __iter__(self) -> Iterator:
        return iter((self.ids, self.X, self.labels))

    def category(self, name: str) -> tuple[np.ndarray, list[str]]:
        """The label columns of one category: ``((n, n_tags_in_category) bool, their tag names)``."""
        columns = [j for j, c in enumerate(self.categories) if c == name]
        if not columns:
            known = ", ".join(sorted(set(self.categories)))
            raise ConfigError(f"no tag of category '{name}'; categories here: {known}")
        return self.labels[:, columns], [self.tags[j] for j in columns]


@torch.no_grad()
def _audio_features(model, data, split: str, n_crops: int, batch_size: int) -> np.ndarray:
    """Backbone output averaged over ``n_crops`` crops per track → (n, backbone.output_dim)."""
    model.eval()
    n = len(data.splits[split].ids)
    out = [
        model.audio_features(data.track_inputs(split, list(range(start, min(start + batch_size, n))), n_crops).features)
        for start in range(0, n, batch_size)
    ]
    return (torch.cat(out) if out else torch.zeros(0, model.audio.output_dim)).numpy()


def load_frozen_feature_kinds(run_dir: str | Path, kinds: Sequence[str] = KINDS,
                              splits: Sequence[str] = ("train", "valid", "test"),
                              progress: bool = False) -> dict[str, dict[str, FrozenFeatures]]:
    """Frozen features of several kinds and splits; the run and its corpus inputs are loaded once.

    Args:
        run_dir: a trained run folder (see :mod:`retrieval.runs.folder`).
        kinds: some of :data:`KINDS`.
        splits: which splits to return.
        progress: show progress bars while the corpus inputs are prepared.

    Returns:
        kind → split name → :class:`FrozenFeatures` (every kind has the same ids, labels and tags).

    Raises:
        ConfigError: unknown kind or split. DataError: the run cannot give a kind (no audio tower / no listening
        data).
    """
    from retrieval.config import expand_path
    from retrieval.data.assembly import prepare_data
    from retrieval.embedding import embed_split
    from retrieval.runs import load_run

    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown:
        raise ConfigError(f"unknown feature kind '{unknown[0]}'; choose one of: {', '.join(KINDS)}")
    run = load_run(run_dir)
    model = run.model
    if "audio" in kinds and model.audio is None:
        raise DataError(Path(run_dir) / "config.yaml", "this run has no audio tower (modality 'cultural'); use "
                        "kind 'shared' or 'listening', or a run with audio", key="model.modality")
    # Same tracks for every kind: mels are prepared whenever the model has an audio tower.
    data, _ = prepare_data(run.config, vocabulary=run.vocabulary, progress=progress,
                           need_audio=model.needs_audio, need_listening=True)
    unknown = [split for split in splits if split not in data.splits]
    if unknown:
        raise ConfigError(f"unknown split '{unknown[0]}'; choose from: {', '.join(data.splits)}")
    n_crops, batch_size = run.config.eval.n_crops, run.config.eval.batch_size
    out: dict[str, dict[str, FrozenFeatures]] = {kind: {} for kind in kinds}
    for split in splits:
        part = data.splits[split]
        for kind in kinds:
            if kind == "shared":
                x = embed_split(model, data, split, n_crops, batch_size).numpy()
            elif kind == "audio":
                x = _audio_features(model, data, split, n_crops, batch_size)
            elif part.listening is None:
                raise DataError(expand_path(run.config.data.root) / "train_triplets.txt",
                                "this corpus has no listening data (Taste Profile play counts); kind "
                                "'listening' needs it")
            else:
                x = part.listening.numpy()
            out[kind][split] = FrozenFeatures(list(part.ids), np.ascontiguousarray(x, dtype=np.float32),
                                              part.labels.numpy().astype(bool), list(run.vocabulary.tags),
                                              list(run.vocabulary.categories))
    return out


def load_frozen_features(run_dir: str | Path, kind: str, splits: Sequence[str] = ("train", "valid", "test"),
                         progress: bool = False) -> dict[str, FrozenFeatures]:
    """Frozen features of one kind for several splits: split name → :class:`FrozenFeatures`.

    See :func:`load_frozen_feature_kinds` (arguments, errors).
    """
    return load_frozen_feature_kinds(run_dir, (kind,), splits, progress)[kind]


def frozen_features(run_dir: str | Path, split: str, kind: str) -> FrozenFeatures:
    """Frozen features of one split: ``ids, X, labels = frozen_features(RUN, "train", "shared")``.

    Args:
        run_dir: a trained run folder.
        split: "train", "valid" or "test".
        kind: "shared" | "audio" | "listening" (see the module docstring).

    Returns:
        :class:`FrozenFeatures` (ids, X (n, d) float32, labels (n, n_tags) bool, plus tag names and categories).
        Loading several splits? :func:`load_frozen_features` prepares the corpus once.
    """
    return load_frozen_features(run_dir, kind, (split,))[split]
