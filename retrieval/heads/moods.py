"""Mood classification from frozen embeddings: the protocol of Korzeniowski et al. (ISMIR 2020, REFERENCE §2).

**The AllMusic mood subset's released layout** (github.com/fdlm/listening-moods keeps everything in ``data/``;
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

**The model and training**: train-set standardisation baked into the model (mean / std buffers), then
``n_layers`` × (Linear → ReLU → Dropout) → Linear(n_moods) (:class:`~retrieval.heads.tagger.StackedMLP`); BCE;
Adam; batch 128; 100 epochs; learning rate warmed up linearly over 1 epoch then cosine-annealed to 0; the epoch
with the best validation AP is kept. Best settings (``configs/moods/``): listening 4 × 3909 units, lr 4e-4,
dropout 0.25; audio 4 × 3933 units, lr 5e-5, dropout 0.25, weight decay 1e-6.

**Metrics** on the test split (:func:`~retrieval.heads.tagger.tagging_metrics`): macro AP (``pr_auc``), macro
ROC-AUC, and precision / recall / F1 of ``p ≥ 0.5`` — macro over moods and micro over all (track, mood) pairs
(the authors' release logs the micro values).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from retrieval.errors import ConfigError, DataError
from retrieval.fileio import atomic_open, atomic_path
from retrieval.heads.tagger import Tagger, TrainSettings, fit_tagger, tagging_metrics

__all__ = [
    "FEATURE_SETS",
    "MoodConfig",
    "MoodDataset",
    "build_mood_model",
    "evaluate_moods",
    "evaluate_moods_command",
    "format_mood_table",
    "load_mood_config",
    "load_mood_dataset",
    "write_miniature",
]

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


# ---- configuration --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MoodConfig:
    """The mood MLP and its training (defaults: the paper's best listening-based setting).

    Attributes:
        n_layers: hidden layers. hidden_dim: units per hidden layer. dropout: after every hidden layer.
        lr: peak learning rate (Adam). weight_decay: Adam weight decay.
        batch_size, epochs, warmup_epochs: see :class:`~retrieval.heads.tagger.TrainSettings`.
        patience: early stopping on validation AP (None: train every epoch, as the paper does).
        threshold: decision threshold for P / R / F1. seed: seeds everything. device: "cpu", "cuda", ...
    """

    n_layers: int = 4
    hidden_dim: int = 3909
    dropout: float = 0.25
    lr: float = 4e-4
    weight_decay: float = 0.0
    batch_size: int = 128
    epochs: int = 100
    warmup_epochs: float = 1.0
    patience: int | None = None
    threshold: float = 0.5
    seed: int = 0
    device: str = "cpu"

    def train_settings(self) -> TrainSettings:
        return TrainSettings(lr=self.lr, weight_decay=self.weight_decay, batch_size=self.batch_size,
                             epochs=self.epochs, warmup_epochs=self.warmup_epochs, patience=self.patience,
                             seed=self.seed, device=self.device)


def load_mood_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> MoodConfig:
    """Read a flat YAML mood config (``configs/moods/*.yaml``; None → defaults) plus ``key=value`` overrides.

    Raises:
        ConfigError: missing file, bad YAML, unknown key or bad value (named, with the allowed keys).
    """
    import yaml

    from retrieval.config import from_dict, parse_overrides

    raw: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: mood config not found; see configs/moods/ for examples")
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML: {error}") from error
    raw = {**raw, **parse_overrides(overrides)}
    try:
        return from_dict(MoodConfig, raw)
    except ConfigError as error:
        raise ConfigError(f"{path or 'mood config'}: {error}") from None


# ---- the released layout --------------------------------------------------------------------------------------
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


def _load_npy(path: Path) -> np.ndarray:
    """Memory-mapped array (shape checks cost nothing); DataError if it is not a readable .npy file."""
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as error:
        raise DataError(path, f"not a readable .npy array ({error})") from error


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
        rows = np.asarray(_load_npy(path))
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
    x = _load_npy(feature_path)
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
    y = _load_npy(targets_path)
    if y.shape != (n, len(moods)):
        raise DataError(targets_path, f"shape {y.shape} does not match: expected ({n}, {len(moods)}) = "
                        f"({METADATA_FILE} rows, {MOODS_FILE} names)")
    y = np.asarray(y)
    if y.dtype != bool and not np.isin(y, (0, 1)).all():
        raise DataError(targets_path, "values must be 0/1 (or bool): a multi-hot matrix, 1 = the track has "
                        f"the mood; found {np.unique(y[~np.isin(y, (0, 1))])[:5].tolist()}")
    return MoodDataset(root, metadata, moods, splits, x, y.astype(bool), name, feature_path)


# ---- model, training, evaluation ------------------------------------------------------------------------------
def build_mood_model(train_features: np.ndarray, n_moods: int, config: MoodConfig,
                     moods: Sequence[str] | None = None) -> Tagger:
    """The paper's MLP with train-set standardisation baked in (untrained; seeded by ``config.seed``).

    Args:
        train_features: (n_train, d) training features: their mean / std become the model's buffers.
        n_moods: outputs. config: layers, width, dropout. moods: output names.
    """
    import torch

    from retrieval.heads.tagger import Standardize

    scaler = Standardize.fit(train_features)
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        return Tagger("stacked_mlp", {"in_dim": int(scaler.mean.shape[0]), "out_dim": n_moods,
                                      "n_layers": config.n_layers, "hidden_dim": config.hidden_dim,
                                      "dropout": config.dropout}, scaler.mean, scaler.std, moods)


def _as_config(config: MoodConfig | str | Path | None) -> MoodConfig:
    return config if isinstance(config, MoodConfig) else load_mood_config(config)


def evaluate_moods(data_dir: str | Path, features: str | Path, targets_path: str | Path | None = None,
                   config: MoodConfig | str | Path | None = None, out: str | Path | None = None) -> dict:
    """The protocol end to end: load, train on ``train``, select on ``val`` AP, score ``test``.

    Args:
        data_dir, features, targets_path: see :func:`load_mood_dataset`.
        config: a :class:`MoodConfig` or the path of its YAML (None: the paper's listening setting).
        out: optionally save the selected model there (:meth:`Tagger.save`).

    Returns:
        ``{"features", "feature_file", "dim", "n_moods", "n_train", "n_valid", "n_test", "best_epoch",
        "valid_ap", "config", "test": tagging_metrics(...)}``.
    """
    config = _as_config(config)
    data = load_mood_dataset(data_dir, features, targets_path)
    x_train, y_train = data.split("train")
    x_valid, y_valid = data.split("valid")
    x_test, y_test = data.split("test")
    model = build_mood_model(x_train, len(data.moods), config, data.moods)
    model.info["features"] = str(data.feature_path)
    fit_tagger(model, x_train, y_train, x_valid, y_valid, config.train_settings())
    if out is not None:
        model.save(out)
    training = model.info["training"]
    return {
        "features": data.feature_name,
        "feature_file": str(data.feature_path),
        "dim": int(data.features.shape[1]),
        "n_moods": len(data.moods),
        "n_train": len(x_train),
        "n_valid": len(x_valid),
        "n_test": len(x_test),
        "best_epoch": training["best_epoch"],
        "valid_ap": training["best_valid_pr_auc"],
        "config": asdict(config),
        "test": tagging_metrics(model.predict(x_test), y_test, data.moods, threshold=config.threshold),
    }


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def format_mood_table(results: Mapping[str, Mapping]) -> str:
    """A text table, one line per feature set: test AP, ROC-AUC, macro P / R / F1 and micro F1.

    Args:
        results: feature name → an :func:`evaluate_moods` result (or any dict with a ``"test"`` metrics dict).
    """
    header = f"{'features':<16}{'dim':>5}{'AP':>8}{'ROC-AUC':>9}{'P':>8}{'R':>8}{'F1':>8}{'microF1':>9}"
    rows = [header]
    for name, result in results.items():
        t = result["test"]
        rows.append(f"{name:<16}{result.get('dim', ''):>5}{_fmt(t['pr_auc']):>8}{_fmt(t['roc_auc']):>9}"
                    f"{_fmt(t['precision']):>8}{_fmt(t['recall']):>8}{_fmt(t['f1']):>8}{_fmt(t['micro_f1']):>9}")
    return "\n".join(rows)


def evaluate_moods_command(data: str | Path, features: Sequence[str] | str, targets: str | Path | None = None,
                           config: str | Path | None = None, overrides: Sequence[str] = (),
                           as_json: bool = False) -> str:
    """What ``retrieval evaluate moods --data DIR --features F [F ...] --targets FILE [--config C] [--json]`` prints.

    Args:
        data: the layout's root. features: one or more feature names / .npy paths, evaluated in turn.
        targets: the multi-hot targets (.npy). config: a ``configs/moods/*.yaml``; overrides: ``key=value``.
        as_json: return ``json.dumps`` of {feature: result} instead of the table.
    """
    cfg = load_mood_config(config, overrides)
    names = [features] if isinstance(features, str | Path) else list(features)
    results = {str(name): evaluate_moods(data, name, targets, cfg) for name in names}
    return json.dumps(results, indent=2) if as_json else format_mood_table(results)


# ---- the demo corpus: the same comparison on its mood tags ----------------------------------------------------
def compare_run_moods(run_dir: str | Path, kinds: Sequence[str] = ("listening", "audio", "shared"),
                      config: MoodConfig | str | Path | None = None, category: str = "mood") -> dict:
    """Audio vs listening vs shared-space features of a trained run on its ``category`` tags (demo table).

    Each kind gets the same MLP protocol (:func:`build_mood_model`, :func:`fit_tagger`) on the run's
    train / valid / test splits; results are on the test split.

    Returns:
        kind → ``{"dim", "n_moods", "n_train", "n_valid", "n_test", "best_epoch", "valid_ap", "test"}``
        (printable with :func:`format_mood_table`).
    """
    from retrieval.heads.features import load_frozen_feature_kinds

    config = _as_config(config)
    features = load_frozen_feature_kinds(run_dir, kinds)
    results = {}
    for kind in kinds:
        split_features = features[kind]
        (x_tr, (y_tr, moods)), (x_va, (y_va, _)), (x_te, (y_te, _)) = (
            (split_features[s].X, split_features[s].category(category)) for s in ("train", "valid", "test"))
        model = build_mood_model(x_tr, len(moods), config, moods)
        fit_tagger(model, x_tr, y_tr, x_va, y_va, config.train_settings())
        results[kind] = {"dim": int(x_tr.shape[1]), "n_moods": len(moods), "n_train": len(x_tr),
                         "n_valid": len(x_va), "n_test": len(x_te), "best_epoch": model.info["training"]["best_epoch"],
                         "valid_ap": model.info["training"]["best_valid_pr_auc"],
                         "test": tagging_metrics(model.predict(x_te), y_te, moods, threshold=config.threshold)}
    return results


# ---- a generated miniature of the layout ----------------------------------------------------------------------
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
        >>> evaluate_moods(tmp_path / "allmusic", "tp", targets, "configs/moods/tiny.yaml")  # doctest: +SKIP
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
