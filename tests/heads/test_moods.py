"""The AllMusic mood protocol: the layout loader's checks, the baked-in standardisation, learning the miniature."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from retrieval.errors import ConfigError, DataError
from retrieval.heads.moods import (
    FEATURE_SETS,
    MoodConfig,
    build_mood_model,
    evaluate_moods,
    load_mood_config,
    load_mood_dataset,
    write_miniature,
)
from retrieval.heads.probe import Tagger

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "moods"
TINY = MoodConfig(n_layers=2, hidden_dim=64, lr=1e-3, batch_size=32, epochs=25, patience=8)


@pytest.fixture(scope="module")
def mini(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("allmusic")
    write_miniature(root, n=300, n_moods=12, seed=0)
    return root


def copy_layout(src: Path, dst: Path) -> Path:
    """A writable copy of the miniature (tests that break a file must not touch the shared one)."""
    (dst / "data").mkdir(parents=True)
    for path in (src / "data").iterdir():
        (dst / "data" / path.name).write_bytes(path.read_bytes())
    return dst


# ---- 1. shapes --------------------------------------------------------------------------------------------------
def test_miniature_has_the_released_names_and_shapes(mini: Path) -> None:
    data = mini / "data"
    assert (data / "metadata.csv").read_text().startswith("msd_artist_id,msd_song_id,msd_track_id,album_id")
    assert len((data / "moods.txt").read_text().split()) == 12
    for name, dim in FEATURE_SETS.items():
        assert np.load(data / f"{name}_source.npy").shape == (300, dim)
    sizes = [len(np.load(data / f"{s}_idx.npy")) for s in ("train", "val", "test")]
    assert sum(sizes) == 300 and len(set(np.concatenate([np.load(data / f"{s}_idx.npy")
                                                         for s in ("train", "val", "test")]))) == 300
    targets = np.load(data / "mood_target.npy")
    assert targets.shape == (300, 12) and set(np.unique(targets)) == {0, 1}


def test_loader_finds_files_in_data_or_root(mini: Path, tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    for path in (mini / "data").iterdir():
        (flat / path.name).write_bytes(path.read_bytes())
    a = load_mood_dataset(mini, "tp")
    b = load_mood_dataset(flat, "mcn_msd_big", flat / "mood_target.npy")
    assert a.features.shape == (300, 200) and b.features.shape == (300, 500)
    assert a.moods == b.moods and all(np.array_equal(a.splits[s], b.splits[s]) for s in a.splits)


# ---- 2. errors name the file and what does not match -------------------------------------------------------------
def test_missing_file_is_named(mini: Path, tmp_path: Path) -> None:
    root = copy_layout(mini, tmp_path / "m")
    (root / "data" / "val_idx.npy").unlink()
    with pytest.raises(DataError, match="val_idx.npy: missing"):
        load_mood_dataset(root, "tp")
    with pytest.raises(DataError, match="nope_source.npy"):
        load_mood_dataset(mini, "nope")
    with pytest.raises(DataError, match="targets file not found"):
        load_mood_dataset(mini, "tp", tmp_path / "absent.npy")


@pytest.mark.parametrize(
    ("file_name", "array", "message"),
    [
        ("tp_source.npy", np.zeros((300, 199), np.float32), r"tp_source\.npy: shape \(300, 199\).*\(300, 200\)"),
        ("mcn_mtt_source.npy", np.zeros((299, 200), np.float32), r"mcn_mtt_source\.npy: shape \(299, 200\)"),
        ("mood_target.npy", np.zeros((300, 11), np.uint8), r"mood_target\.npy: shape \(300, 11\).*\(300, 12\)"),
        ("mood_target.npy", np.full((300, 12), 2, np.uint8), r"mood_target\.npy: values must be 0/1"),
        ("test_idx.npy", np.array([0, 1, 300]), r"test_idx\.npy: 1 index\(es\) outside 0\.\.299"),
        ("test_idx.npy", np.array([[0, 1]]), r"test_idx\.npy: expected a 1-D integer array"),
    ],
)
def test_bad_shape_or_value_names_the_file(mini: Path, tmp_path: Path, file_name: str, array: np.ndarray,
                                           message: str) -> None:
    root = copy_layout(mini, tmp_path / "m")
    np.save(root / "data" / file_name, array)
    feature = "mcn_mtt" if file_name.startswith("mcn_mtt") else "tp"
    with pytest.raises(DataError, match=message):
        load_mood_dataset(root, feature)


def test_overlapping_splits_and_duplicate_moods_are_named(mini: Path, tmp_path: Path) -> None:
    root = copy_layout(mini, tmp_path / "m")
    train = np.load(root / "data" / "train_idx.npy")
    np.save(root / "data" / "test_idx.npy", train[:3])
    with pytest.raises(DataError, match=r"test_idx\.npy: 3 row\(s\) also in train_idx\.npy"):
        load_mood_dataset(root, "tp")
    root = copy_layout(mini, tmp_path / "m2")
    moods = (root / "data" / "moods.txt").read_text().splitlines()
    (root / "data" / "moods.txt").write_text("\n".join([*moods[:-1], moods[0]]) + "\n")
    with pytest.raises(DataError, match=r"moods\.txt:12: mood 'aggressive' repeats line 1"):
        load_mood_dataset(root, "tp")


def test_config_files_are_the_papers_and_bad_keys_are_named(tmp_path: Path) -> None:
    listening, audio = load_mood_config(CONFIGS / "listening.yaml"), load_mood_config(CONFIGS / "audio.yaml")
    assert (listening.n_layers, listening.hidden_dim, listening.lr, listening.dropout) == (4, 3909, 4e-4, 0.25)
    assert (audio.n_layers, audio.hidden_dim, audio.lr, audio.weight_decay) == (4, 3933, 5e-5, 1e-6)
    assert listening.batch_size == audio.batch_size == 128 and listening.epochs == 100
    (tmp_path / "bad.yaml").write_text("n_units: 10\n")
    with pytest.raises(ConfigError, match="bad.yaml.*n_units.*hidden_dim"):
        load_mood_config(tmp_path / "bad.yaml")


# ---- 3. standardisation baked into the model ---------------------------------------------------------------------
def test_standardisation_baked_in_survives_save_and_load(mini: Path, tmp_path: Path) -> None:
    data = load_mood_dataset(mini, "mcn_msd_big")
    x_train, _ = data.split("train")
    model = build_mood_model(x_train, len(data.moods), dataclasses.replace(TINY, dropout=0.5), data.moods).eval()
    raw = torch.from_numpy(data.features)
    mean = torch.from_numpy(x_train.astype(np.float64).mean(0)).float()
    std = torch.from_numpy(x_train.astype(np.float64).std(0)).float()
    with torch.no_grad():
        torch.testing.assert_close(model(raw), model.network((raw - mean) / std), atol=1e-4, rtol=1e-4)
        # The statistics are the train split's, not the whole file's.
        assert not torch.allclose(model.standardize.mean, raw.mean(0), atol=1e-3)

    again = Tagger.load(model.save(tmp_path / "mood.pt"))
    np.testing.assert_array_equal(again.predict(data.features), model.predict(data.features))
    torch.testing.assert_close(again.standardize.std, model.standardize.std, atol=0, rtol=0)


# ---- 4. end to end ----------------------------------------------------------------------------------------------
def test_mlp_learns_the_miniature_well_above_chance(mini: Path, tmp_path: Path) -> None:
    result = evaluate_moods(mini, "tp", mini / "data" / "mood_target.npy", TINY, out=tmp_path / "tp.pt")
    chance = 0.2  # every mood is on for 20 % of tracks: a random ranking has AP ≈ 0.2
    assert result["test"]["pr_auc"] > chance + 0.4 and result["test"]["roc_auc"] > 0.85
    assert result["n_train"] + result["n_valid"] + result["n_test"] == 300 and result["n_moods"] == 12
    assert (tmp_path / "tp.pt").exists()


def test_run_comparison_gives_one_row_per_feature_kind(tiny_run: Path) -> None:
    from retrieval.heads.moods import compare_run_moods, format_mood_table

    results = compare_run_moods(tiny_run, config=dataclasses.replace(TINY, epochs=2))
    assert list(results) == ["listening", "audio", "shared"]
    assert len({(r["n_train"], r["n_test"], r["n_moods"]) for r in results.values()}) == 1  # same tracks, moods
    assert len(format_mood_table(results).splitlines()) == 4
