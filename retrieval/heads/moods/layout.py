"""The AllMusic mood subset's released layout (Korzeniowski et al., ISMIR 2020), loaded and checked.

**The layout** (github.com/fdlm/listening-moods keeps everything in ``data/``;
this loader looks for each file in ``DIR/data/`` first, then in ``DIR/``)::

    DIR/data/metadata.csv              one row per track (MSD artist / song / track ids, album id, names);
                                       every .npy row below follows this order
    DIR/data/moods.txt                 the mood names, one per line (188 in the release)
    DIR/data/{train,val,test}_idx.npy  1-D integer row indices of each split (disjoint)
    DIR/data/tp_source.npy             (N, 200) WALS listening embeddings (Taste Profile)
    DIR/data/mcn_msd_big_source.npy    (N, 500) Musicnn trained on MSD (audio)
    DIR/data/mcn_mtt_source.npy        (N, 200) Musicnn trained on MagnaTagATune (audio)
    DIR/data/<name>_source.npy         your own features, selected as ``features="<name>"``
    targets                            (N, n_moods) multi-hot, bool or 0/1: NOT distributed; you collect them
                                       (the authors' scripts expect ``data/mood_target.npy``, the default here)

``features`` may also be the path of any ``(N, d)`` ``.npy`` file whose rows follow ``metadata.csv``.
Every check failure is a :class:`~retrieval.errors.DataError` naming the file and what does not match.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.errors import DataError
from retrieval.fileio import load_npy

__all__ = ["DATA_SUBDIR", "DEFAULT_TARGETS", "FEATURE_SETS", "METADATA_FILE", "MOODS_FILE", "SPLIT_FILES",
           "MoodDataset", "load_mood_dataset"]

#: The released feature sets → their dimension (file ``<name>_source.npy``).
FEATURE_SETS: dict[str, int] = {"tp": 200, "mcn_msd_big": 500, "mcn_mtt": 200}

#: Split name → index file, in the release's naming.
SPLIT_FILES: dict[str, str] = {"train": "train_idx.npy", "valid": "val_idx.npy", "test": "test_idx.npy"}

METADATA_FILE = "metadata.csv"
MOODS_FILE = "moods.txt"
#: Where the authors' scripts expect the user-collected targets.
DEFAULT_TARGETS = "mood_target.npy"
#: Sub-folder of the release that holds the files (searched before the data root itself).
DATA_SUBDIR = "data"


@dataclass(frozen=True)
class MoodDataset:
    """The AllMusic mood subset (or a layout like it), checked.

    Attributes:
        root: the data folder given. metadata: pandas DataFrame, N rows. moods: the n_moods names.
        splits: {"train", "valid", "test"} → 1-D int64 row indices.
        features: (N, d) float32. targets: (N, n_moods) bool.
        feature_name: what was asked for. feature_path: the file read.
    """

    root: Path
    metadata: object
    moods: list[str]
    splits: dict[str, np.ndarray]
    features: np.ndarray
    targets: np.ndarray
    feature_name: str
    feature_path: Path

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(features, targets) of one split: ((n, d) float32, (n, n_moods) bool)."""
        rows = self.splits[name]
        return self.features[rows], self.targets[rows]


def _locate(root: Path, name: str) -> Path:
    """``root/data/name`` if it exists, else ``root/name``; DataError naming both places if neither does."""
    for candidate in (root / DATA_SUBDIR / name, root / name):
        if candidate.is_file():
            return candidate
    raise DataError(root / DATA_SUBDIR / name, f"missing (also looked for {root / name}); the AllMusic mood "
                    "layout needs metadata.csv, moods.txt, {train,val,test}_idx.npy and <features>_source.npy")


def _read_moods(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    moods: list[str] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        name = line.strip()
        if not name:
            continue
        if name in seen:
            raise DataError(path, f"mood '{name}' repeats line {seen[name]}; one distinct name per line", line=number)
        seen[name] = number
        moods.append(name)
    if not moods:
        raise DataError(path, "no mood names; expected one name per line")
    return moods


def _read_metadata(path: Path):
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DataError(path, f"not a readable CSV ({error})") from error
    if frame.empty:
        raise DataError(path, "no rows; expected one row per track")
    for column in (c for c in frame.columns if "track_id" in str(c).lower()):
        duplicated = frame[column].duplicated()
        if duplicated.any():
            row = int(np.flatnonzero(duplicated.to_numpy())[0])
            raise DataError(path, f"track id {frame[column].iloc[row]!r} appears twice; rows must be distinct "
                            "tracks", line=row + 2, key=str(column))  # +1 header, +1 one-based
    return frame


def _read_splits(root: Path, n: int) -> dict[str, np.ndarray]:
    splits: dict[str, np.ndarray] = {}
    owner = np.full(n, -1)
    for k, (split, file_name) in enumerate(SPLIT_FILES.items()):
        path = _locate(root, file_name)
        rows = np.asarray(load_npy(path, mmap=True))
        if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer):
            raise DataError(path, f"expected a 1-D integer array of row indices, got {rows.dtype} {rows.shape}")
        if rows.size == 0:
            raise DataError(path, f"the {split} split is empty")
        if rows.min() < 0 or rows.max() >= n:
            bad = rows[(rows < 0) | (rows >= n)]
            raise DataError(path, f"{bad.size} index(es) outside 0..{n - 1} (metadata.csv has {n} rows), "
                            f"e.g. {bad[:3].tolist()}")
        unique, counts = np.unique(rows, return_counts=True)
        if (counts > 1).any():
            repeated = unique[counts > 1]
            raise DataError(path, f"{repeated.size} row index(es) repeat, e.g. {repeated[:3].tolist()}")
        clash = owner[rows] >= 0
        if clash.any():
            other = list(SPLIT_FILES.values())[int(owner[rows][clash][0])]
            raise DataError(path, f"{int(clash.sum())} row(s) also in {other}, e.g. {rows[clash][:3].tolist()}; "
                            "splits must be disjoint")
        owner[rows] = k
        splits[split] = rows.astype(np.int64)
    return splits


def _feature_path(root: Path, features: str | Path) -> tuple[str, Path]:
    """(name, file) of a feature set: a released name, ``<name>_source.npy`` in the layout, or an .npy path."""
    as_path = Path(features)
    if as_path.suffix == ".npy":
        if not as_path.is_file():
            raise DataError(as_path, "feature file not found")
        return as_path.stem, as_path
    name = str(features)
    try:
        return name, _locate(root, f"{name}_source.npy")
    except DataError as error:
        known = ", ".join(FEATURE_SETS)
        raise DataError(error.path, f"missing (also looked in {root}); features are one of {known}, a name whose "
                        "<name>_source.npy is in the layout, or the path of an (N, d) .npy file") from None


def load_mood_dataset(data_dir: str | Path, features: str | Path,
                      targets_path: str | Path | None = None) -> MoodDataset:
    """Load and check the AllMusic mood layout with one feature set and the user's targets.

    Args:
        data_dir: the layout's root (the folder holding ``data/``, or ``data/`` itself).
        features: "tp" | "mcn_msd_big" | "mcn_mtt" | another ``<name>`` with ``<name>_source.npy`` | an .npy path.
        targets_path: (N, n_moods) multi-hot .npy; None → ``mood_target.npy`` in the layout.

    Returns:
        A checked :class:`MoodDataset`.

    Raises:
        DataError: a missing file, or a shape / index / value that does not match (file, and what, named).
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(root, "no such folder; point --data at the AllMusic mood layout")
    metadata_path = _locate(root, METADATA_FILE)
    metadata = _read_metadata(metadata_path)
    n = len(metadata)
    moods = _read_moods(_locate(root, MOODS_FILE))
    splits = _read_splits(root, n)

    name, feature_path = _feature_path(root, features)
    x = load_npy(feature_path, mmap=True)  # memory-mapped: the shape check reads nothing
    expected_dim = FEATURE_SETS.get(name) if Path(features).suffix != ".npy" else None
    if x.ndim != 2 or x.shape[0] != n or (expected_dim is not None and x.shape[1] != expected_dim):
        want = f"({n}, {expected_dim})" if expected_dim else f"({n}, d)"
        raise DataError(feature_path, f"shape {x.shape} does not match: expected {want} — one row per row of "
                        f"{metadata_path.name} ({n} rows)" + (f", {expected_dim} dims for '{name}'" if expected_dim
                                                              else ""))
    x = np.array(x, dtype=np.float32)  # a writable in-memory copy of the memory map
    if not np.isfinite(x).all():
        row = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
        raise DataError(feature_path, f"NaN or infinite values, first in row {row}")

    targets_path = _locate(root, DEFAULT_TARGETS) if targets_path is None else Path(targets_path)
    if not targets_path.is_file():
        raise DataError(targets_path, "targets file not found; the mood labels are not distributed: collect them "
                        f"as an ({n}, {len(moods)}) multi-hot .npy")
    y = load_npy(targets_path, mmap=True)
    if y.shape != (n, len(moods)):
        raise DataError(targets_path, f"shape {y.shape} does not match: expected ({n}, {len(moods)}) = "
                        f"({METADATA_FILE} rows, {MOODS_FILE} names)")
    y = np.asarray(y)
    if y.dtype != bool and not np.isin(y, (0, 1)).all():
        raise DataError(targets_path, "values must be 0/1 (or bool): a multi-hot matrix, 1 = the track has "
                        f"the mood; found {np.unique(y[~np.isin(y, (0, 1))])[:5].tolist()}")
    return MoodDataset(root, metadata, moods, splits, x, y.astype(bool), name, feature_path)

