"""Split builder invariants, determinism, impossible requests, and the on-disk / published formats."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrieval.data.splits import (
    Splits,
    build_splits,
    check_splits,
    read_published_splits,
    read_split_tags,
    read_splits,
    select_annotations,
    write_splits,
)
from retrieval.errors import ConfigError, DataError

N_ARTISTS = 60
TRACKS_PER_ARTIST = 10
TAGS = ("rock", "jazz", "sad", "piano", "80s")
TAG_PROBABILITY = (0.5, 0.4, 0.35, 0.3, 0.3)
MIN_PER_SPLIT = 8


def synthetic_corpus(seed: int = 0) -> tuple[pd.DataFrame, dict[str, str]]:
    """600 songs by 60 artists, each song carrying each tag with a fixed probability (score ≥ 50),
    plus sub-threshold noise annotations."""
    rng = np.random.default_rng(seed)
    songs = np.array([f"SO{i:016d}" for i in range(N_ARTISTS * TRACKS_PER_ARTIST)], dtype=object)
    artist_of = {song: f"artist {i // TRACKS_PER_ARTIST}" for i, song in enumerate(songs)}
    has = rng.random((len(songs), len(TAGS))) < np.array(TAG_PROBABILITY)
    rows, cols = np.nonzero(has)
    noise_rows = rng.integers(0, len(songs), 300)
    track_tags = pd.DataFrame(
        {
            "song_id": np.concatenate([songs[rows], songs[noise_rows]]),
            "original_tag": "x",
            "cleaned_tag": np.concatenate([np.array(TAGS)[cols], np.full(300, "noise")]),
            "category": "genre",
            "score": np.concatenate([rng.integers(50, 101, len(rows)), rng.integers(0, 50, 300)]).astype(
                float
            ),
        }
    )
    return track_tags, artist_of


def test_build_splits_invariants() -> None:
    track_tags, artist_of = synthetic_corpus()
    splits = build_splits(track_tags, artist_of, min_per_split=MIN_PER_SPLIT)
    assert splits.tags == tuple(sorted(TAGS))  # the sub-threshold "noise" tag is not chosen

    # no artist in two splits (checked independently of check_splits)
    artists = {name: {artist_of[s] for s in splits.ids(name)} for name in ("train", "valid", "test")}
    assert not artists["train"] & artists["valid"]
    assert not artists["train"] & artists["test"]
    assert not artists["valid"] & artists["test"]

    # every tag ≥ MIN_PER_SPLIT tracks with score ≥ 50 in every split
    positive = track_tags[track_tags["score"] >= 50]
    for name in ("train", "valid", "test"):
        counts = (
            positive[positive["song_id"].isin(splits.ids(name))].groupby("cleaned_tag")["song_id"].nunique()
        )
        assert counts.reindex(list(TAGS), fill_value=0).min() >= MIN_PER_SPLIT, name

    # roughly 70/15/15 of the tracks
    sizes = np.array([len(splits.train), len(splits.valid), len(splits.test)]) / len(splits.all_ids())
    np.testing.assert_allclose(sizes, [0.7, 0.15, 0.15], atol=0.05)
    assert check_splits(splits, track_tags, min_per_split=MIN_PER_SPLIT) == []


def test_build_splits_is_deterministic_for_a_seed() -> None:
    track_tags, artist_of = synthetic_corpus()
    first = build_splits(track_tags, artist_of, min_per_split=MIN_PER_SPLIT, seed=3)
    again = build_splits(
        track_tags.sample(frac=1.0, random_state=1),
        dict(reversed(artist_of.items())),
        min_per_split=MIN_PER_SPLIT,
        seed=3,
    )
    other = build_splits(track_tags, artist_of, min_per_split=MIN_PER_SPLIT, seed=4)
    assert first == again  # input order does not matter
    assert first.test != other.test


def test_top_n_and_max_tags_per_track() -> None:
    track_tags, artist_of = synthetic_corpus()
    annotations, tags = select_annotations(track_tags, top_n=2)
    assert tags == ("jazz", "rock")  # the two most frequent (probabilities 0.5 and 0.4)
    assert set(annotations["cleaned_tag"]) == {"jazz", "rock"}

    annotations, _ = select_annotations(track_tags, max_tags_per_track=2)
    assert annotations.groupby("song_id").size().max() <= 2
    full, _ = select_annotations(track_tags, max_tags_per_track=None)
    assert full.groupby("song_id").size().max() > 2
    dropped = set(full["song_id"]) - set(annotations["song_id"])
    assert dropped and (full[full["song_id"].isin(dropped)].groupby("song_id").size() > 2).all()

    splits = build_splits(track_tags, artist_of, top_n=2, min_per_split=MIN_PER_SPLIT)
    assert splits.tags == ("jazz", "rock")


def test_impossible_threshold_names_the_tag() -> None:
    track_tags, artist_of = synthetic_corpus()
    with pytest.raises(ConfigError, match="tag '80s' has only"):
        build_splits(track_tags, artist_of, min_per_split=200)


def test_exhausted_draws_name_the_worst_tag() -> None:
    track_tags, artist_of = synthetic_corpus()
    # "solo" is carried by 40 songs of one artist: it can never be in three artist-disjoint splits
    solo = [song for song, artist in artist_of.items() if artist == "artist 0"] * 4
    extra = pd.DataFrame(
        {
            "song_id": solo[:40],
            "original_tag": "x",
            "cleaned_tag": "solo",
            "category": "genre",
            "score": 100.0,
        }
    )
    extra = extra.drop_duplicates("song_id")
    # 10 songs only, so raise the threshold check bar: 3 × 3 = 9 ≤ 10 passes the quick check
    with pytest.raises(
        ConfigError, match=r"tag 'solo' failed in 5 draws, its best smallest-split count was 0"
    ):
        build_splits(pd.concat([track_tags, extra]), artist_of, min_per_split=3, max_draws=5)


def test_missing_artist_is_a_data_error() -> None:
    track_tags, artist_of = synthetic_corpus()
    del artist_of["SO0000000000000007"]
    with pytest.raises(DataError, match="SO0000000000000007") as caught:
        build_splits(track_tags, artist_of, min_per_split=MIN_PER_SPLIT, artist_source="unique_tracks.txt")
    assert caught.value.path.name == "unique_tracks.txt"


@pytest.mark.parametrize(
    "kwargs",
    [{"fractions": (0.5, 0.5)}, {"fractions": (0.8, 0.15, 0.15)}, {"top_n": 0}, {"max_draws": 0}],
)
def test_bad_arguments(kwargs: dict) -> None:
    track_tags, artist_of = synthetic_corpus()
    with pytest.raises(ConfigError):
        build_splits(track_tags, artist_of, **kwargs)


def test_check_splits_reports_shared_artists_and_short_tags() -> None:
    track_tags, artist_of = synthetic_corpus()
    splits = build_splits(track_tags, artist_of, min_per_split=MIN_PER_SPLIT)
    moved = splits.valid[0]
    broken = dataclasses.replace(splits, train=splits.train + (moved,), valid=splits.valid[1:])
    problems = check_splits(broken, track_tags, min_per_split=MIN_PER_SPLIT)
    assert any("more than one split" in p and artist_of[moved] in p for p in problems)
    assert any(
        "fewer than 1000 songs in train" in p for p in check_splits(splits, track_tags, min_per_split=1000)
    )


def test_splits_reject_overlap_and_unknown_names() -> None:
    with pytest.raises(ValueError, match="appears twice"):
        Splits(train=("a", "b"), valid=("b",), test=(), tags=("rock",))
    splits = Splits(train=("a",), valid=("b",), test=("c",), tags=("rock",))
    assert splits.ids("test") == ("c",)
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        splits.ids("dev")


# --- files -------------------------------------------------------------------------------------------


def test_write_read_round_trip(tmp_path: Path) -> None:
    splits = Splits(
        train=("SOA", "SOB"),
        valid=("SOC",),
        test=("SOD",),
        unlabeled=("SOE",),
        tags=("rock", "sad"),
        artist_of={"SOA": "Tab\tArtist", "SOB": "B", "SOC": "C", "SOD": "D", "SOE": "E"},
    )
    write_splits(splits, tmp_path, categories={"rock": "genre", "sad": "mood/character"})
    assert (tmp_path / "train.tsv").read_text() == "song_id\tartist\nSOA\tTab Artist\nSOB\tB\n"
    assert (tmp_path / "tags.tsv").read_text() == "tag\tcategory\nrock\tgenre\nsad\tmood/character\n"
    again = read_splits(tmp_path)
    assert again == dataclasses.replace(splits, artist_of={**splits.artist_of, "SOA": "Tab Artist"})
    tags = read_split_tags(tmp_path)
    assert tags.to_dict("list") == {"tag": ["rock", "sad"], "category": ["genre", "mood"]}
    tags.loc[0, "category"] = "mood"  # writable, not a read-only view


def test_write_without_unlabeled_or_categories(tmp_path: Path) -> None:
    splits = Splits(train=("SOA",), valid=("SOC",), test=("SOD",), tags=("rock",))
    write_splits(splits, tmp_path)
    assert not (tmp_path / "unlabeled.tsv").exists()
    assert read_split_tags(tmp_path)["category"].tolist() == [""]
    assert read_splits(tmp_path) == splits
    with pytest.raises(ValueError, match="lacks"):
        write_splits(splits, tmp_path, categories={"jazz": "genre"})


def test_read_splits_errors_name_file_and_line(tmp_path: Path) -> None:
    write_splits(Splits(train=("SOA", "SOB"), valid=("SOC",), test=("SOD",), tags=("rock",)), tmp_path)
    (tmp_path / "test.tsv").write_text("song_id\tartist\nSOD\tD\nSOB\tB\n")
    with pytest.raises(DataError, match="already listed in train.tsv line 3") as caught:
        read_splits(tmp_path)
    assert caught.value.path.name == "test.tsv" and caught.value.line == 3

    (tmp_path / "test.tsv").write_text("song\tartist\nSOD\tD\n")
    with pytest.raises(DataError, match="expected the header line") as caught:
        read_splits(tmp_path)
    assert caught.value.line == 1

    (tmp_path / "valid.tsv").unlink()
    with pytest.raises(DataError, match="missing split file") as caught:
        read_splits(tmp_path)
    assert caught.value.path.name == "valid.tsv"


def save_strings(path: Path, values: list[str]) -> None:
    np.save(path, np.array(values))


@pytest.mark.parametrize("prefix", ["", "sub_"])
def test_read_published_splits(tmp_path: Path, prefix: str) -> None:
    save_strings(tmp_path / f"{prefix}train_ids.npy", ["0//SOA", "3//SOB"])
    save_strings(tmp_path / f"{prefix}valid_ids.npy", ["1//SOC"])
    save_strings(tmp_path / f"{prefix}test_ids.npy", ["2//SOD"])
    save_strings(tmp_path / f"{prefix}tags.npy", ["jazz", "rock"])
    splits = read_published_splits(tmp_path, prefix=prefix, artist_of={"SOA": "A", "SOZ": "Z"})
    assert (splits.train, splits.valid, splits.test) == (("SOA", "SOB"), ("SOC",), ("SOD",))
    assert splits.tags == ("jazz", "rock")
    assert dict(splits.artist_of) == {"SOA": "A"}


def test_read_published_splits_errors(tmp_path: Path) -> None:
    save_strings(tmp_path / "train_ids.npy", ["0//SOA", "SOB"])
    save_strings(tmp_path / "valid_ids.npy", ["1//SOC"])
    save_strings(tmp_path / "test_ids.npy", ["2//SOD"])
    with pytest.raises(DataError, match="'SOB' is not of the form") as caught:
        read_published_splits(tmp_path)
    assert caught.value.key == "entry 1"
    save_strings(tmp_path / "train_ids.npy", ["0//SOA"])
    with pytest.raises(DataError, match="tags.npy: file not found"):
        read_published_splits(tmp_path)
    np.save(tmp_path / "tags.npy", np.array([{"not": "strings"}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="pickled"):
        read_published_splits(tmp_path)
