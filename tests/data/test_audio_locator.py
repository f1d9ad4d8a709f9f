"""Tests of retrieval.data.audio_locator: flat and sharded layouts, aliases, missing ids, duplicates."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from retrieval.data.audio_locator import AudioLocator, LocateResult, sharded_path

SONG_A, TRACK_A = "SOMZWCG12A8C13C480", "TRAAAAW128F429D538"
SONG_B, TRACK_B = "SOAAAQN12AB01856D3", "TRABRMJ128E0780E42"


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def random_ids(count: int, prefix: str, seed: int) -> list[str]:
    """MSD-looking ids: prefix + 16 characters from A-Z0-9."""
    alphabet = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))
    picks = np.random.default_rng(seed).integers(0, len(alphabet), size=(count, 16))
    return [prefix + "".join(row) for row in alphabet[picks]]


# 1. Shapes and types ----------------------------------------------------------------------------------------


def test_sharded_path_uses_characters_2_3_4_of_the_id(tmp_path):
    assert sharded_path(tmp_path, TRACK_B, ".mp3") == tmp_path / "A" / "B" / "R" / f"{TRACK_B}.mp3"
    assert sharded_path("mel", TRACK_A, "npy") == Path("mel/A/A/A") / f"{TRACK_A}.npy"
    with pytest.raises(ValueError):
        sharded_path(tmp_path, "TRAB", ".mp3")
    with pytest.raises(ValueError):
        sharded_path(tmp_path, "../../etc", ".mp3")


def test_locate_returns_paths_and_a_missing_list(tmp_path):
    touch(tmp_path / f"{TRACK_A}.ogg")
    result = AudioLocator(tmp_path).locate([TRACK_A, TRACK_B])
    assert isinstance(result, LocateResult)
    assert result.found == {TRACK_A: tmp_path / f"{TRACK_A}.ogg"} and result.missing == [TRACK_B]


# 2. Against a reference: the index agrees with stat-ing every candidate path -----------------------------


def test_index_agrees_with_checking_each_candidate_path(tmp_path):
    ids = random_ids(300, "TR", seed=0)
    extensions = (".wav", ".flac", ".ogg", ".mp3")
    rng = np.random.default_rng(1)
    for track_id in ids[:200]:  # the last 100 ids have no file
        ext = extensions[rng.integers(len(extensions))]
        flat = rng.random() < 0.5
        touch(tmp_path / f"{track_id}{ext}" if flat else sharded_path(tmp_path, track_id, ext))
    locator = AudioLocator(tmp_path)

    def brute_force(track_id: str) -> Path | None:
        for ext in extensions:
            for candidate in (tmp_path / f"{track_id}{ext}", sharded_path(tmp_path, track_id, ext)):
                if candidate.is_file():
                    return candidate
        return None

    expected = {track_id: brute_force(track_id) for track_id in ids}
    result = locator.locate(ids)
    assert result.found == {k: v for k, v in expected.items() if v is not None}
    assert result.missing == [k for k, v in expected.items() if v is None] == ids[200:]
    assert len(locator) == 200


# 3. Invariants ----------------------------------------------------------------------------------------------


def test_flat_and_sharded_files_are_both_found(tmp_path):
    flat = touch(tmp_path / f"{TRACK_A}.wav")
    sharded = touch(sharded_path(tmp_path, TRACK_B, ".mp3"))
    locator = AudioLocator(tmp_path)
    assert locator.find(TRACK_A) == flat and locator.find(TRACK_B) == sharded
    assert TRACK_A in locator and "TRNOTTHERE12345678" not in locator
    assert len(locator) == 2


def test_aliases_map_song_ids_to_track_id_files_and_own_name_wins(tmp_path):
    track_file = touch(sharded_path(tmp_path, TRACK_A, ".mp3"))
    locator = AudioLocator(tmp_path, aliases={SONG_A: ["TRMISSING123456789", TRACK_A], SONG_B: [TRACK_B]})
    assert locator.find(SONG_A) == track_file  # the first alias has no file, the second does
    assert locator.find(SONG_B) is None
    song_file = touch(tmp_path / f"{SONG_A}.flac")
    assert AudioLocator(tmp_path, aliases={SONG_A: [TRACK_A]}).find(SONG_A) == song_file
    result = locator.locate([SONG_B, SONG_A, SONG_B, SONG_A])
    assert result.found == {SONG_A: track_file} and result.missing == [SONG_B]  # once each, input order


def test_extension_preference_and_duplicates_are_reported(tmp_path):
    mp3 = touch(tmp_path / f"{TRACK_A}.MP3")  # suffixes are matched case-insensitively
    flac = touch(sharded_path(tmp_path, TRACK_A, ".flac"))
    assert AudioLocator(tmp_path).find(TRACK_A) == flac  # .flac comes before .mp3 in the default order
    locator = AudioLocator(tmp_path, extensions=("mp3", ".flac"))
    assert locator.find(TRACK_A) == mp3
    assert locator.duplicates == {TRACK_A: [flac]}


def test_mel_npy_files_hidden_files_other_suffixes_and_deep_files(tmp_path):
    mel = touch(sharded_path(tmp_path, TRACK_A, ".npy"))
    touch(tmp_path / f".{TRACK_B}.npy.abc123.tmp.npy")  # an interrupted atomic write
    touch(tmp_path / f"{TRACK_B}.txt")
    touch(tmp_path / "A" / "B" / "R" / "extra" / f"{TRACK_B}.npy")  # deeper than the three shard levels
    locator = AudioLocator(tmp_path, extensions=(".npy",))
    assert locator.find(TRACK_A) == mel
    assert locator.find(TRACK_B) is None and len(locator) == 1
    assert AudioLocator(tmp_path).find(TRACK_A) is None  # audio suffixes do not match .npy


def test_the_folder_is_scanned_once_at_construction(tmp_path, monkeypatch):
    for track_id in random_ids(50, "TR", seed=2):
        touch(sharded_path(tmp_path, track_id, ".ogg"))
    folders = {p for p, _, _ in os.walk(tmp_path)}
    scans = []
    real_scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda path: scans.append(path) or real_scandir(path))
    locator = AudioLocator(tmp_path)
    assert sorted(map(str, scans)) == sorted(folders)  # each folder listed exactly once

    def no_filesystem(*args, **kwargs):
        raise AssertionError("lookups must not touch the filesystem")

    monkeypatch.setattr(os, "scandir", no_filesystem)
    monkeypatch.setattr(os, "stat", no_filesystem)
    result = locator.locate(random_ids(50, "TR", seed=2) + ["TRNOTTHERE12345678"])
    assert len(result.found) == 50 and result.missing == ["TRNOTTHERE12345678"]


# 4. Bad input -----------------------------------------------------------------------------------------------


def test_missing_root_and_empty_extensions_are_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        AudioLocator(tmp_path / "nope")
    with pytest.raises(ValueError, match="extensions"):
        AudioLocator(tmp_path, extensions=())
