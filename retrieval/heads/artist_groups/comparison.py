"""The four training schemes of Kim et al. (WWW 2018) for genre classification, compared on one corpus.

Schemes (every network is a :class:`~retrieval.heads.artist_groups.networks.PatchClassifier` with the same
narrow trunk, trained on the ``train`` tracks' ~1-s patches; scores are on the ``test`` tracks)::

    direct                 trunk + genre head, trained on genres; track = argmax of the mean patch softmax
    single-task transfer   one network per factor predicts the track's artist group; its mean penultimate
                           features → genre head (standardisation + logistic regression, fit on train tracks)
    multi-task transfer    the single-task networks' features concatenated → genre head
    multi-task learning    one trunk with one head per factor, trained jointly; its features → genre head

Artist groups come from :func:`retrieval.heads.artist_factors.artist_group_targets`, fit on the training
artists only. :func:`run_artist_factor_comparison` runs it all on a corpus folder and writes the table.

Example:
    >>> config = load_artist_factor_config("artist_factors/demo")  # doctest: +SKIP
    >>> result = run_artist_factor_comparison("~/.cache/retrieval/demo/corpus", "runs/af", config)  # doctest: +SKIP
    >>> print(result["markdown"])  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from retrieval.audio import MelConfig
from retrieval.errors import ConfigError, InputError
from retrieval.fileio import write_text_atomic
from retrieval.heads.artist_factors import (
    FACTOR_NAMES,
    AudioStatistics,
    artist_group_targets,
    artist_means,
    tag_profiles,
)
from retrieval.heads.artist_groups.inputs import NO_GENRE, ArtistGroupInputs, demo_inputs
from retrieval.heads.artist_groups.networks import build_patch_classifier
from retrieval.heads.artist_groups.training import (
    classification_scores,
    fit_genre_head,
    track_outputs,
    train_patch_classifier,
)

__all__ = [
    "ArtistFactorConfig",
    "compare_schemes",
    "format_table",
    "load_artist_factor_config",
    "run_artist_factor_comparison",
]

FactorName = Literal["audio", "tags", "listening"]
TRAIN_SPLIT, TEST_SPLIT = "train", "test"
GENRE_TASK = "genre"
RESULTS_JSON, RESULTS_MARKDOWN = "artist_factors.json", "artist_factors.md"
#: Patches of ~1 s: 43 frames at 22,050 Hz with hop 512 (Kim et al.'s input length).
DEFAULT_PATCH_FRAMES = 43
DEMO_N_MELS = 64


@dataclass(frozen=True)
class ArtistFactorConfig:
    """Settings of the comparison (``configs/artist_factors/*.yaml``).

    Attributes:
        seed: seeds k-means, weight initialisation, patch order, ALS and the genre head.
        factors: which artist group factors to build (a factor whose data the corpus lacks is skipped, noted).
        n_groups: K, artist groups per factor (40 in Kim et al.; at most the number of training artists).
        mel: mel settings of the patches.
        patch_frames: frames per patch.
        n_patches: equally spaced patches kept per track.
        channels: trunk block widths (one 2×2 max-pool each).
        feature_dim: penultimate feature size of every network.
        epochs: passes over every training (track, patch) pair.
        batch_size: patches per step.
        lr: Adam learning rate.
        weight_decay: Adam weight decay.
        n_mfcc: MFCCs in the audio statistics.
        chroma_n_fft: FFT size of the chroma in the audio statistics.
        kmeans_n_init: k-means restarts.
        listening_factors: ALS vector size of the listening factor.
        listening_iterations: ALS sweeps.
        head_c: inverse regularisation of the logistic-regression genre head.
        device: where the networks train (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``).
        precision: ``fp32``, or ``bf16`` / ``fp16`` autocast (:mod:`retrieval.devices`).
    """

    seed: int = 0
    factors: tuple[FactorName, ...] = FACTOR_NAMES
    n_groups: int = 16
    mel: MelConfig = field(default_factory=lambda: MelConfig(n_mels=DEMO_N_MELS))
    patch_frames: int = DEFAULT_PATCH_FRAMES
    n_patches: int = 8
    channels: tuple[int, ...] = (16, 16, 32, 32, 64)
    feature_dim: int = 64
    epochs: int = 4
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-5
    n_mfcc: int = 20
    chroma_n_fft: int = 4096
    kmeans_n_init: int = 10
    listening_factors: int = 32
    listening_iterations: int = 15
    head_c: float = 1.0
    device: str = "cpu"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"

    def __post_init__(self) -> None:
        positive = ("n_groups", "patch_frames", "n_patches", "feature_dim", "epochs", "batch_size", "n_mfcc",
                    "chroma_n_fft", "kmeans_n_init", "listening_factors", "listening_iterations")
        for key in positive:
            if getattr(self, key) < 1:
                raise ConfigError(f"'{key}' must be a positive integer, got {getattr(self, key)!r}")
        for key in ("lr", "head_c"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"'{key}' must be > 0, got {getattr(self, key)!r}")
        if not self.factors or len(set(self.factors)) != len(self.factors):
            raise ConfigError(f"'factors' must be a non-empty list without repeats of {list(FACTOR_NAMES)}")
        if not self.channels or min(self.channels) < 1:
            raise ConfigError(f"'channels' must be a non-empty list of positive ints, got {self.channels}")


def load_artist_factor_config(path: str | os.PathLike[str] | None = None,
                              overrides: Sequence[str] = ()) -> ArtistFactorConfig:
    """Read a YAML config (a path or a shipped name such as ``"artist_factors/demo"``; None: defaults) and apply
    ``key=value`` overrides (e.g. ``"epochs=2"``). Read by :func:`retrieval.config.read_yaml_with_extends`.

    Raises:
        ConfigError: a missing file, invalid YAML, an unknown key or a bad value (named).
    """
    from retrieval.config import from_dict, merge, parse_overrides, read_yaml_with_extends, resolve_config

    raw = read_yaml_with_extends(resolve_config(path)) if path is not None else {}
    try:
        return from_dict(ArtistFactorConfig, merge(raw, parse_overrides(overrides)))
    except ConfigError as error:
        raise ConfigError(f"{path or 'config'}: {error}") from None


def _factor_features(inputs: ArtistGroupInputs, factors: Sequence[str]) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Artist features of each requested factor the inputs support; notes for the ones skipped."""
    features, notes = {}, []
    for name in factors:
        if name == "audio":
            features[name] = artist_means(inputs.artists, inputs.audio_stats)
        elif name == "tags" and inputs.tag_labels is not None and inputs.tag_labels.shape[1] > 0:
            features[name] = tag_profiles(inputs.artists, inputs.tag_labels, inputs.tag_names)
        elif name == "listening" and inputs.listening is not None:
            features[name] = artist_means(inputs.artists, inputs.listening, inputs.listening_valid)
        else:
            notes.append(f"factor {name!r} skipped: the corpus has no data for it")
    return features, notes


def compare_schemes(inputs: ArtistGroupInputs, config: ArtistFactorConfig, device: str | torch.device | None = None,
                    progress: bool = False) -> dict[str, Any]:
    """Train every scheme on ``inputs``' train tracks and score genre prediction on its test tracks, on
    ``device`` (None: ``config.device``) in ``config.precision``.

    Returns:
        ``{"rows": [{"scheme", "factors", "accuracy", "macro_f1", "train_s"}], "groups": {factor: K},
        "counts": {...}, "notes": [...]}``.

    Raises:
        InputError: no training or test track has a genre.
    """
    from tqdm.auto import tqdm

    device = config.device if device is None else device
    is_train = inputs.splits == TRAIN_SPLIT
    has_genre = inputs.genres != NO_GENRE
    genre_train = np.flatnonzero(is_train & has_genre)
    genre_test = np.flatnonzero((inputs.splits == TEST_SPLIT) & has_genre)
    if genre_train.size == 0 or genre_test.size == 0:
        raise InputError(f"need train and test tracks with a genre; got {genre_train.size} and {genre_test.size}")
    features, notes = _factor_features(inputs, config.factors)
    fit_artists = np.unique(inputs.artists[is_train])
    targets = artist_group_targets(inputs.artists, features, config.n_groups, config.seed,
                                   fit_artists=fit_artists, n_init=config.kmeans_n_init)
    patches = inputs.patches
    y_test = inputs.genres[genre_test]

    def train(n_classes: dict[str, int], task_targets: dict[str, np.ndarray], rows: np.ndarray):
        model = build_patch_classifier(config.mel, n_classes, config.channels, config.feature_dim,
                                       config.patch_frames, config.seed)
        started = time.perf_counter()
        train_patch_classifier(
            model, patches, {t: torch.tensor(y) for t, y in task_targets.items()}, torch.tensor(rows),
            epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, weight_decay=config.weight_decay,
            generator=torch.Generator().manual_seed(config.seed), device=device, precision=config.precision,
        )
        feats, probs = track_outputs(model, patches, config.batch_size, device, config.precision)
        return feats.numpy(), probs, time.perf_counter() - started

    def transfer(feats: np.ndarray) -> dict[str, float]:
        head = fit_genre_head(feats[genre_train], inputs.genres[genre_train], config.seed, config.head_c)
        return classification_scores(y_test, head.predict(feats[genre_test]))

    jobs = 1 + len(targets) + (len(targets) > 1)
    bar = tqdm(total=jobs, desc="artist factor schemes", disable=not progress)
    rows: list[dict[str, Any]] = []
    _, probs, seconds = train({GENRE_TASK: len(inputs.genre_names)}, {GENRE_TASK: inputs.genres}, genre_train)
    direct = classification_scores(y_test, probs[GENRE_TASK].numpy()[genre_test].argmax(axis=1))
    rows.append({"scheme": "direct", "factors": GENRE_TASK, **direct, "train_s": seconds})
    bar.update()
    train_rows = np.flatnonzero(is_train)
    single_features, single_seconds = [], 0.0
    for name, y in targets.items():
        feats, _, seconds = train({name: config.n_groups}, {name: y}, train_rows)
        single_features.append(feats)
        single_seconds += seconds
        rows.append({"scheme": "single-task transfer", "factors": name, **transfer(feats), "train_s": seconds})
        bar.update()
    if len(targets) > 1:
        rows.append({"scheme": "multi-task transfer", "factors": "+".join(targets),
                     **transfer(np.concatenate(single_features, axis=1)), "train_s": single_seconds})
        feats, _, seconds = train({name: config.n_groups for name in targets}, targets, train_rows)
        rows.append({"scheme": "multi-task learning", "factors": "+".join(targets), **transfer(feats),
                     "train_s": seconds})
        bar.update()
    bar.close()
    counts = {
        "tracks": int(len(inputs.track_ids)),
        "train_tracks": int(genre_train.size),
        "test_tracks": int(genre_test.size),
        "artists": int(np.unique(inputs.artists).size),
        "train_artists": int(fit_artists.size),
        "genres": {name: int((inputs.genres[genre_test] == i).sum()) for i, name in enumerate(inputs.genre_names)},
        "without_genre": int((~has_genre).sum()),
        "skipped_audio": len(inputs.skipped),
    }
    return {"rows": rows, "groups": {name: config.n_groups for name in targets}, "counts": counts, "notes": notes}


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The comparison as a markdown table (accuracy and macro F1 on the test tracks)."""
    lines = ["| scheme | factors | accuracy | macro F1 | train s |", "|---|---|---|---|---|"]
    lines += [f"| {r['scheme']} | {r['factors']} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} | {r['train_s']:.0f} |"
              for r in rows]
    return "\n".join(lines)


def run_artist_factor_comparison(
    corpus_root: str | Path,
    out_dir: str | Path,
    config: ArtistFactorConfig | str | Path | None = None,
    *,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Run the four schemes on a corpus folder (MSD500 layout, e.g. the demo corpus) and write the table.

    Writes ``out_dir/artist_factors.json`` (everything returned but the markdown) and
    ``out_dir/artist_factors.md`` (the table with counts), atomically.

    Args:
        corpus_root: the corpus folder (needs ``splits/`` and ``audio/``).
        out_dir: where the results go (created).
        config: an :class:`ArtistFactorConfig`, a YAML path, or None for the defaults.
        device: torch device of the networks (None: ``config.device``).
        progress: show progress bars.

    Returns:
        :func:`compare_schemes`' dict plus ``"config"``, ``"seconds"`` (wall time, all included) and
        ``"markdown"``.
    """
    started = time.perf_counter()
    if not isinstance(config, ArtistFactorConfig):
        config = load_artist_factor_config(config)
    statistics = AudioStatistics(config.mel, n_mfcc=config.n_mfcc, chroma_n_fft=config.chroma_n_fft)
    inputs = demo_inputs(Path(corpus_root).expanduser(), config.mel, config.patch_frames, config.n_patches,
                         statistics, config.listening_factors, config.listening_iterations, config.seed, progress)
    result = compare_schemes(inputs, config, device=device, progress=progress)
    result["config"] = asdict(config)
    result["seconds"] = time.perf_counter() - started
    counts = result["counts"]
    markdown = "\n".join([
        format_table(result["rows"]),
        "",
        f"{counts['train_tracks']} train / {counts['test_tracks']} test tracks with a genre, "
        f"{counts['artists']} artists ({counts['train_artists']} in train), K = {config.n_groups} groups per "
        f"factor, {len(inputs.genre_names)} genres; {result['seconds']:.0f} s in all.",
        *result["notes"],
    ])
    out_dir = Path(out_dir)
    write_text_atomic(out_dir / RESULTS_JSON, json.dumps(result, indent=2, default=str) + "\n")
    write_text_atomic(out_dir / RESULTS_MARKDOWN, markdown + "\n")
    return {**result, "markdown": markdown}
