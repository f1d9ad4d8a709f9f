"""The protocol: the paper's MLP trained on ``train``, selected on ``val`` AP, scored on ``test``.

On the AllMusic layout (:func:`evaluate_moods`, :func:`compare_mood_features`) or on a trained run's mood tags
with its audio, listening and shared-space features (:func:`compare_run_moods`, the demo table).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from retrieval.heads.moods.config import MoodConfig, load_mood_config
from retrieval.heads.moods.layout import load_mood_dataset
from retrieval.heads.probe import Standardize, Tagger, fit_tagger, tagging_metrics

__all__ = ["build_mood_model", "compare_mood_features", "compare_run_moods", "evaluate_moods", "format_mood_table"]


def build_mood_model(train_features: np.ndarray, n_moods: int, config: MoodConfig,
                     moods: Sequence[str] | None = None) -> Tagger:
    """The paper's MLP with train-set standardisation baked in (untrained; seeded by ``config.seed``).

    Args:
        train_features: (n_train, d) training features: their mean / std become the model's buffers.
        n_moods: outputs. config: layers, width, dropout. moods: output names.
    """
    import torch

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


def compare_mood_features(data_dir: str | Path, features: Sequence[str | Path] | str | Path,
                          targets_path: str | Path | None = None,
                          config: MoodConfig | str | Path | None = None) -> dict[str, dict]:
    """:func:`evaluate_moods` for each feature set in turn, on the same layout, targets and config.

    Args:
        data_dir, targets_path: see :func:`~retrieval.heads.moods.layout.load_mood_dataset`.
        features: one or more feature names / .npy paths.
        config: a :class:`MoodConfig`, a config name or path, or None (the paper's listening setting).

    Returns:
        feature name → its :func:`evaluate_moods` result (printable with :func:`format_mood_table`).
    """
    config = _as_config(config)
    names = [features] if isinstance(features, str | Path) else list(features)
    return {str(name): evaluate_moods(data_dir, name, targets_path, config) for name in names}


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

