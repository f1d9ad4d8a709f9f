"""A generated miniature of the AllMusic mood layout: the released file names and shapes, learnable moods.

The real AllMusic targets are not distributed, so this is the sample dataset of the mood protocol, as the demo
corpus is of the retrieval one: ``write_miniature(folder)`` writes the released file names and array shapes, and
``retrieval evaluate moods --data folder`` runs the whole comparison on it (the notebook ``downstream_heads`` and the
tests do). Its moods are a known function of its features, so a head that learns nothing scores at chance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from retrieval.fileio import atomic_open, atomic_path
from retrieval.heads.moods.layout import (
    DATA_SUBDIR,
    DEFAULT_TARGETS,
    FEATURE_SETS,
    METADATA_FILE,
    MOODS_FILE,
    SPLIT_FILES,
)

__all__ = ["write_miniature"]

#: Dimension of the hidden factors the miniature's features and moods are both generated from.
MINI_LATENT = 8
#: Fraction of tracks carrying each mood in the miniature.
MINI_PREVALENCE = 0.2
#: Noise added to the miniature's features, relative to their signal (unit variance per latent factor).
MINI_NOISE = 0.3
#: Fractions of train / val; test gets the rest (the release's split is about 80 / 10 / 10).
MINI_SPLIT = (0.7, 0.15)
MINI_MOODS = ("aggressive", "bittersweet", "calm", "cheerful", "dark", "dreamy", "energetic", "gloomy", "happy",
              "intense", "melancholy", "peaceful", "playful", "reflective", "romantic", "sad")


def write_miniature(directory: str | Path, n: int = 300, n_moods: int = 12, seed: int = 0) -> Path:
    """Write a small fake AllMusic mood layout (real file names and shapes) for tests and docs.

    Hidden factors ``z ~ N(0, I)`` (n, 8) generate both the features — ``z A + noise`` for each released
    feature set, with per-column offsets and scales so standardisation matters — and the moods: mood ``j`` is on
    for the 20 % of tracks with the largest ``z · b_j``. So the moods are learnable from every feature set.

    Files: ``DIR/data/{metadata.csv, moods.txt, train_idx.npy, val_idx.npy, test_idx.npy, tp_source.npy,
    mcn_msd_big_source.npy, mcn_mtt_source.npy, mood_target.npy}``.

    Returns:
        The targets file (``DIR/data/mood_target.npy``).

    Example:
        >>> targets = write_miniature(tmp_path / "allmusic")  # doctest: +SKIP
        >>> evaluate_moods(tmp_path / "allmusic", "tp", targets, "moods/tiny")  # doctest: +SKIP
    """
    import pandas as pd

    if n < 20 or n_moods < 1:
        raise ValueError(f"need n ≥ 20 tracks and n_moods ≥ 1, got n={n}, n_moods={n_moods}")
    rng = np.random.default_rng(seed)
    folder = Path(directory) / DATA_SUBDIR
    z = rng.standard_normal((n, MINI_LATENT))

    ids = np.arange(n)
    metadata = pd.DataFrame({
        "msd_artist_id": [f"AR{rng.integers(16 ** 8):08X}MINI{i % 40:04d}" for i in ids],
        "msd_song_id": [f"SOMINI{i:012d}" for i in ids],
        "msd_track_id": [f"TRMINI{i:012d}" for i in ids],
        "album_id": ids // 10,
        "artist_name": [f"Artist {i % 40}" for i in ids],
        "album_name": [f"Album {i // 10}" for i in ids],
        "track_name": [f"Track {i}" for i in ids],
    })
    with atomic_open(folder / METADATA_FILE) as handle:
        metadata.to_csv(handle, index=False)
    names = [MINI_MOODS[j] if j < len(MINI_MOODS) else f"mood_{j}" for j in range(n_moods)]
    with atomic_open(folder / MOODS_FILE) as handle:
        handle.write("\n".join(names) + "\n")

    order = rng.permutation(n)
    n_train, n_valid = int(MINI_SPLIT[0] * n), int(MINI_SPLIT[1] * n)
    parts = {"train": order[:n_train], "valid": order[n_train:n_train + n_valid], "test": order[n_train + n_valid:]}
    for split, file_name in SPLIT_FILES.items():
        with atomic_path(folder / file_name) as tmp:
            np.save(tmp, np.sort(parts[split]).astype(np.int64))

    for name, dim in FEATURE_SETS.items():
        mixing = rng.standard_normal((MINI_LATENT, dim))
        x = z @ mixing + MINI_NOISE * np.sqrt(MINI_LATENT) * rng.standard_normal((n, dim))
        x = x * np.exp(rng.standard_normal(dim)) + rng.normal(0.0, 5.0, dim)  # unequal scales and offsets
        with atomic_path(folder / f"{name}_source.npy") as tmp:
            np.save(tmp, x.astype(np.float32))

    logits = z @ rng.standard_normal((MINI_LATENT, n_moods))
    targets = logits >= np.quantile(logits, 1.0 - MINI_PREVALENCE, axis=0)
    targets_path = folder / DEFAULT_TARGETS
    with atomic_path(targets_path) as tmp:
        np.save(tmp, targets.astype(np.uint8))
    return targets_path
