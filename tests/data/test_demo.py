"""The demo corpus generator: layout and formats, audio, tags, listeners, determinism, cache, resume, skips.

Builds are tiny (24 tracks of 2 s, one process) and happen once per module where possible.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from retrieval.data import msd500, splits, taste_profile
from retrieval.data.audio_locator import sharded_path
from retrieval.data.demo import GENERATOR_VERSION, build_demo_corpus, ids, listeners, tags
from retrieval.data.demo.analysis import NoteList, estimate_key
from retrieval.data.demo.render import SAMPLE_RATE
from retrieval.data.demo.sources import COLLECTIONS, assign_artists, catalogue
from retrieval.errors import ConfigError

N_TRACKS = 24
SECONDS = 2.0
SEED = 0
TABLES = (
    "track_tags.tsv",
    "selected_tags.tsv",
    "unique_tracks.txt",
    "train_triplets.txt",
    "text/descriptions.txt",
    "splits/train.tsv",
    "splits/valid.tsv",
    "splits/test.tsv",
    "splits/tags.tsv",
)


def _build(out: Path, n_tracks: int = N_TRACKS, seed: int = SEED):
    return build_demo_corpus(out, n_tracks, seed, seconds=SECONDS, workers=1, progress=False)


def _audio(root: Path, track_id: str) -> Path:
    return Path(sharded_path(root / "audio", track_id, ".ogg"))


def _decode(path: Path) -> np.ndarray:
    audio, rate = sf.read(path, dtype="float32")
    assert rate == SAMPLE_RATE
    return audio


def _mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("demo") / "corpus"
    return out, _build(out)


# --- layout and formats ---------------------------------------------------------------------------


def test_layout_files_exist_and_load_with_the_format_readers(corpus):
    out, summary = corpus
    for name in (*TABLES, "manifest.json"):
        assert (out / name).is_file(), name
    track_tags = msd500.read_track_tags(out / "track_tags.tsv")
    selected = msd500.read_selected_tags(out / "selected_tags.tsv")
    tracks = msd500.read_unique_tracks(out / "unique_tracks.txt")
    assert len(tracks) == summary.n_tracks == N_TRACKS
    assert tracks["song_id"].is_unique and tracks["track_id"].is_unique
    assert tracks["song_id"].str.fullmatch(r"SO[A-Z0-9]{16}").all()
    assert tracks["track_id"].str.fullmatch(r"TR[A-Z0-9]{16}").all()
    assert set(track_tags["song_id"]) <= set(tracks["song_id"])
    assert set(track_tags["cleaned_tag"]) == set(selected["tag"])
    assert (track_tags["cleaned_tag"] == track_tags["cleaned_tag"].str.lower()).all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["generator_version"] == GENERATOR_VERSION
    assert manifest["taste_profile"]["simulated"] is True
    assert set(manifest["tags"]) == set(selected["tag"])
    assert all(entry["source"] for entry in manifest["tags"].values())


def test_every_audio_file_decodes_at_22050_hz_with_the_excerpt_length(corpus):
    out, _ = corpus
    tracks = msd500.read_unique_tracks(out / "unique_tracks.txt")
    for track_id in tracks["track_id"]:
        path = _audio(out, track_id)
        assert path.parent.name == track_id[4] and path.parent.parent.name == track_id[3]
        audio = _decode(path)
        assert audio.ndim == 1 and audio.shape[0] == round(SECONDS * SAMPLE_RATE)
        assert np.abs(audio).max() > 1e-3, f"{track_id} is silent"
    assert not [p for p in (out / "audio").rglob(".*")], "temporary files left behind"


def test_all_seven_categories_have_annotations_above_threshold(corpus):
    out, _ = corpus
    track_tags = msd500.read_track_tags(out / "track_tags.tsv")
    kept = track_tags[track_tags["score"] >= 50]
    assert set(kept["category"]) == set(msd500.CATEGORIES)
    assert (track_tags["score"] < 50).any(), "no noisy low-score annotations"
    assert set(track_tags["category"]) <= set(msd500.CATEGORIES)


def test_splits_are_artist_disjoint_with_an_unlabeled_split(corpus):
    out, summary = corpus
    split = splits.read_splits(out / "splits")
    track_tags = msd500.read_track_tags(out / "track_tags.tsv")
    assert split.unlabeled and split.train and split.valid and split.test
    assert splits.check_splits(split, track_tags, min_per_split=0) == []
    assert summary.split_sizes["unlabeled"] == len(split.unlabeled)


def test_taste_profile_parses_and_some_tracks_are_never_played(corpus):
    out, summary = corpus
    tracks = msd500.read_unique_tracks(out / "unique_tracks.txt")
    plays = taste_profile.read_taste_profile(out / "train_triplets.txt", items=tracks["song_id"].tolist())
    per_song = np.asarray(plays.matrix.sum(axis=0)).ravel()
    assert (per_song == 0).any() and (per_song > 0).sum() > N_TRACKS // 2
    assert plays.matrix.shape[0] == summary.n_listeners
    assert all(re.fullmatch(r"[0-9a-f]{40}", u) for u in plays.users)
    raw = pd.read_csv(out / "train_triplets.txt", sep="\t", header=None, names=["user", "song", "count"])
    assert (raw["count"] >= 1).all() and raw.duplicated(["user", "song"]).sum() == 0


def test_text_corpus_has_one_document_per_track_and_collection(corpus):
    out, summary = corpus
    lines = (out / "text/descriptions.txt").read_text().splitlines()
    tracks = msd500.read_unique_tracks(out / "unique_tracks.txt")
    assert len(lines) >= summary.n_tracks
    assert all(title in "\n".join(lines) for title in tracks["title"])


# --- determinism, cache, rebuild, resume ----------------------------------------------------------


def test_same_seed_gives_identical_tables_and_audio(corpus, tmp_path):
    out, _ = corpus
    other = tmp_path / "again"
    _build(other)
    for name in TABLES:
        assert (other / name).read_bytes() == (out / name).read_bytes(), name
    for track_id in msd500.read_unique_tracks(out / "unique_tracks.txt")["track_id"]:
        np.testing.assert_array_equal(_decode(_audio(other, track_id)), _decode(_audio(out, track_id)))


def test_second_call_is_a_cache_hit_that_touches_nothing(corpus):
    out, summary = corpus
    before = _mtimes(out)
    again = _build(out)
    assert again.cached and not summary.cached
    assert again.n_tracks == summary.n_tracks and again.tags_per_category == summary.tags_per_category
    assert _mtimes(out) == before


def test_changed_arguments_rebuild_and_remove_stale_audio(corpus, tmp_path):
    out, _ = corpus
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    old_ids = set(msd500.read_unique_tracks(copy / "unique_tracks.txt")["track_id"])
    summary = _build(copy, n_tracks=12, seed=SEED + 1)
    assert not summary.cached and summary.n_tracks == 12
    new_ids = set(msd500.read_unique_tracks(copy / "unique_tracks.txt")["track_id"])
    assert new_ids.isdisjoint(old_ids)
    on_disk = {p.stem for p in (copy / "audio").rglob("*.ogg")}
    assert on_disk == new_ids
    assert json.loads((copy / "manifest.json").read_text())["arguments"]["seed"] == SEED + 1


def test_interrupted_build_is_not_cached_and_resumes_with_finished_audio(corpus, tmp_path):
    out, _ = corpus
    copy = tmp_path / "interrupted"
    shutil.copytree(out, copy)
    (copy / "manifest.json").unlink()  # a build killed before its last step
    track_ids = msd500.read_unique_tracks(copy / "unique_tracks.txt")["track_id"].tolist()
    _audio(copy, track_ids[0]).unlink()
    kept = {t: _audio(copy, t).stat().st_mtime_ns for t in track_ids[1:]}
    summary = _build(copy)
    assert not summary.cached
    assert {t: _audio(copy, t).stat().st_mtime_ns for t in track_ids[1:]} == kept, "finished audio re-rendered"
    np.testing.assert_array_equal(_decode(_audio(copy, track_ids[0])), _decode(_audio(out, track_ids[0])))
    assert (copy / "track_tags.tsv").read_bytes() == (out / "track_tags.tsv").read_bytes()


def test_a_piece_that_fails_to_parse_is_skipped_with_a_warning(tmp_path, monkeypatch, caplog):
    from retrieval.data.demo import sources

    real_parse = sources.parse_piece
    failed: list[str] = []

    def flaky_parse(piece, root=None):
        if not failed:
            failed.append(piece.key)
            raise ValueError("corrupt score")
        return real_parse(piece, root)

    monkeypatch.setattr(sources, "parse_piece", flaky_parse)
    with caplog.at_level(logging.WARNING, logger="retrieval.data.demo"):
        summary = _build(tmp_path / "skip", n_tracks=12)
    assert failed and any(failed[0] in s for s in summary.skipped)
    assert any(failed[0] in record.getMessage() for record in caplog.records)
    assert summary.n_tracks == 12, "the skipped piece's tracks were not replaced"


def test_refuses_a_non_empty_folder_it_did_not_make(tmp_path):
    foreign = tmp_path / "msd500"
    foreign.mkdir()
    (foreign / "track_tags.tsv").write_text("precious\n")
    with pytest.raises(ConfigError, match="not empty"):
        _build(foreign, n_tracks=4)
    assert (foreign / "track_tags.tsv").read_text() == "precious\n"


@pytest.mark.parametrize("kwargs", [{"n_tracks": 0}, {"seconds": 0.0}, {"seconds": float("nan")}, {"workers": 0}])
def test_bad_arguments_are_config_errors(tmp_path, kwargs):
    arguments = {"n_tracks": 4, "seconds": 1.0, "workers": 1, **kwargs}
    with pytest.raises(ConfigError):
        build_demo_corpus(tmp_path / "bad", arguments.pop("n_tracks"), progress=False, **arguments)


# --- building blocks ----------------------------------------------------------------------------------


def test_mode_estimator_tells_c_major_from_a_minor():
    c_major = np.array([60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60])
    a_minor = np.array([57, 59, 60, 62, 64, 65, 67, 69, 64, 60, 57])
    durations = np.array([2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 4.0])
    major, minor = estimate_key(c_major, durations), estimate_key(a_minor, durations)
    assert (major.tonic, major.mode) == (0, "major")
    assert (minor.tonic, minor.mode) == (9, "minor")
    assert estimate_key(np.array([], int), np.array([])).correlation == 0.0


def test_excerpt_repeats_a_short_piece_and_cuts_notes_at_the_end():
    notes = NoteList(np.array([0.0, 1.0]), np.array([1.0, 1.0]), np.array([60, 62]), np.array([0, 0]))
    excerpt = notes.excerpt(0.5, 3.0)  # piece length 2, covers 0.5 … 3.5: the note at 0 is still sounding
    np.testing.assert_allclose(excerpt.onset, [0.0, 0.5, 1.5, 2.5])
    np.testing.assert_array_equal(excerpt.pitch, [60, 62, 60, 62])
    np.testing.assert_allclose(excerpt.duration, [0.5, 1.0, 1.0, 0.5])
    assert notes.next_onset(0.5) == 1.0 and notes.next_onset(1.5) == 0.0


def test_audible_rules_follow_their_thresholds():
    features = pd.DataFrame(
        {
            "track_index": [0, 1],
            "instrument": ["organ", "violin"],
            "pace": [tags.SLOW_PACE - 1, tags.FAST_PACE + 1],
            "loudness_db": [tags.SOFT_DB - 5, tags.LOUD_DB + 5],
            "mode": ["minor", "major"],
            "mode_correlation": [0.9, 0.9],
            "register": [50.0, 80.0],
            "reverb_wet": [0.5, 0.0],
            "reverb_rt60": [2.0, 0.0],
        }
    )
    given = tags.rule_tags(features).groupby("track_index")["tag"].agg(set)
    assert {"sad", "calm", "dark", "solemn", "sleep", "organ"} <= given[0]
    assert {"happy", "energetic", "bright", "party", "violin"} <= given[1]
    assert not {"happy", "energetic"} & given[0] and not {"sad", "calm"} & given[1]


def test_decades_and_dances_from_catalogue_metadata():
    assert tags.decade_tag(1570) == "1500s" and tags.decade_tag(1883) == "1880s"
    ryans = next(c for c in COLLECTIONS if c.key == "ryans")
    pieces = catalogue(ryans)
    reel = next(p for p in pieces if p.rhythm == "reel")
    assert tags.dance_of(reel) == "reel"
    assert {
        ("reel", "activity"),
        ("dance", "activity"),
        ("fiddle tune", "genre"),
        ("usa", "location"),
        ("1880s", "decade"),
        ("instrumental", "language"),
    } <= set(tags.catalogue_tags(reel, ryans))


def test_catalogue_lists_every_collection_and_artists_are_volumes_of_about_six_tracks():
    for collection in COLLECTIONS:
        pieces = catalogue(collection)
        assert pieces, collection.key
        assert len({p.key for p in pieces}) == len(pieces)
    ryans = catalogue(next(c for c in COLLECTIONS if c.key == "ryans"))[:9]  # 3 renders each
    artists = assign_artists(ryans)
    assert list(artists.values()) == [f"Ryan's Mammoth Collection, vol. {v}" for v in (1, 1, 2, 2, 3, 3, 4, 4, 5)]


def test_ids_are_msd_shaped_deterministic_and_seed_dependent():
    a = [ids.msd_id(ids.SONG_PREFIX, 0, key) for key in ("x", "y")]
    assert a == [ids.msd_id(ids.SONG_PREFIX, 0, key) for key in ("x", "y")]
    assert a != [ids.msd_id(ids.SONG_PREFIX, 1, key) for key in ("x", "y")]
    assert all(re.fullmatch(r"SO[A-Z0-9]{16}", i) for i in a) and len(set(a)) == 2
    assert re.fullmatch(r"TR[A-Z0-9]{16}", ids.msd_id(ids.TRACK_PREFIX, 0, "x"))


def test_listeners_prefer_tracks_that_share_their_non_audible_attributes():
    n = 200
    rng = np.random.default_rng(0)
    region = np.where(np.arange(n) < n // 2, "north", "south")
    attributes = pd.DataFrame({family: "" for family in listeners.FAMILY_WEIGHTS}, index=range(n))
    attributes["location"] = region
    songs = np.array([f"S{i}" for i in range(n)], dtype=object)
    profile = listeners.simulate_taste_profile(attributes, songs, 300, rng)
    assert len(profile.unplayed) == round(listeners.UNPLAYED_SHARE * n)
    assert not set(profile.unplayed) & set(profile.songs)
    played = pd.DataFrame({"user": profile.users, "region": region[[int(s[1:]) for s in profile.songs]]})
    purity = played.groupby("user")["region"].agg(lambda r: r.value_counts(normalize=True).iloc[0])
    assert purity.mean() > 0.75, "listening does not follow the non-audible attribute"
    assert np.mean(profile.counts <= 3) > 0.7 and profile.counts.max() > 10
