"""Corpus folder loading: a round trip through every writer, track-id keyed annotations, clear errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from retrieval.data.corpus import artist_mapping, load_corpus
from retrieval.data.msd500 import label_matrix, write_selected_tags, write_track_tags, write_unique_tracks
from retrieval.data.splits import Splits, write_splits
from retrieval.data.taste_profile import write_taste_profile
from retrieval.errors import DataError

SONGS = ["SOAAAAA12A8C13C480", "SOBBBBB12A8C13C481", "SOCCCCC12A8C13C482", "SODDDDD12A8C13C483"]
TRACKS = ["TRAAAAW128F429D538", "TRAAABD128F429CF47", "TRAAADZ128F9348C2E", "TRAAAEF128F4273421"]
ARTISTS = ["Casual", "Björk", "Sonny", "Adelitas"]


def make_corpus(root: Path, *, with_splits: bool = True, keyed_by_track: bool = False) -> Path:
    ids = TRACKS if keyed_by_track else SONGS
    track_tags = pd.DataFrame(
        {
            "song_id": [ids[0], ids[0], ids[1], ids[2], ids[3], ids[3]],
            "original_tag": ["Rock", "sad song", "rock", "jazz", "rock", "sad"],
            "cleaned_tag": ["rock", "sad", "rock", "jazz", "rock", "sad"],
            "category": ["genre", "mood", "genre", "genre", "genre", "mood"],
            "score": [100.0, 60.0, 40.0, 90.0, 55.0, 100.0],
        }
    )
    write_track_tags(track_tags, root / "track_tags.tsv")
    write_selected_tags(
        pd.DataFrame({"tag": ["rock", "sad", "jazz"], "category": ["genre", "mood", "genre"]}),
        root / "selected_tags.tsv",
    )
    unique = pd.DataFrame(
        {
            "track_id": [*TRACKS, "TRZZZZZ128F4273499"],
            "song_id": [*SONGS, SONGS[0]],  # a second MSD track of the first song
            "artist": [*ARTISTS, ARTISTS[0]],
            "title": ["a", "b", "c", "d", "a (duplicate)"],
        }
    )
    write_unique_tracks(unique, root / "unique_tracks.txt")
    write_taste_profile(
        ["u1", "u1", "u2", "u3"],
        [SONGS[0], SONGS[2], SONGS[0], "SONOTINCORPUS00000"],
        [3, 1, 2, 9],
        root / "train_triplets.txt",
    )
    if with_splits:
        splits = Splits(
            train=(ids[0], ids[1]),
            valid=(ids[2],),
            test=(ids[3],),
            tags=("rock", "sad"),
            artist_of=dict(zip(ids, ARTISTS, strict=True)),
        )
        write_splits(splits, root / "splits")  # empty categories: filled from selected_tags.tsv
    return root


def test_round_trip(tmp_path: Path) -> None:
    corpus = load_corpus(make_corpus(tmp_path))
    assert corpus.root == tmp_path
    assert corpus.tag_names == ("rock", "sad")
    assert corpus.categories == {"rock": "genre", "sad": "mood"}
    assert corpus.splits is not None and corpus.splits.train == (SONGS[0], SONGS[1])
    assert corpus.tracks.loc[SONGS[1], "artist"] == "Björk"
    assert corpus.tracks.loc[SONGS[0], "track_id"] == TRACKS[0]  # first MSD track of the song
    assert len(corpus.tracks) == len(SONGS)

    song_ids, labels = corpus.labels("train")
    assert song_ids == (SONGS[0], SONGS[1])
    assert labels.toarray().tolist() == [[True, True], [False, False]]  # score 40 < 50
    _, test_labels = corpus.labels("test")
    assert test_labels.toarray().tolist() == [[True, True]]

    plays = corpus.taste_profile()
    assert plays.items.tolist() == list(corpus.song_ids())
    assert plays.matrix.sum() == 6  # the play of a song outside the corpus is dropped
    assert plays.matrix[plays.user_index(["u1"])[0], plays.item_index([SONGS[2]])[0]] == 1


def test_audio_and_mel_locators_find_files_by_any_id(tmp_path: Path) -> None:
    corpus = load_corpus(make_corpus(tmp_path))
    with pytest.raises(DataError, match="no audio folder"):
        corpus.audio_locator()
    assert corpus.mel_locator() is None

    sharded = tmp_path / "audio" / "A" / "A" / "B" / f"{TRACKS[1]}.ogg"  # characters 3-5 of the id
    by_second_track = tmp_path / "audio" / "TRZZZZZ128F4273499.mp3"  # the 2nd MSD track of song 0
    by_song = tmp_path / "audio" / f"{SONGS[2]}.wav"
    mel = tmp_path / "mel" / f"{SONGS[3]}.npy"
    for path in (sharded, by_second_track, by_song, mel):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    audio = corpus.audio_locator()
    assert audio.find(SONGS[0]) == by_second_track
    assert audio.find(SONGS[1]) == sharded
    assert audio.find(SONGS[2]) == by_song
    assert audio.find(SONGS[3]) is None
    assert corpus.audio_locator(extensions=(".wav",)).find(SONGS[1]) is None  # kwargs reach the locator
    mels = corpus.mel_locator()
    assert mels is not None and mels.find(SONGS[3]) == mel


def test_annotations_keyed_by_track_id_are_mapped_to_songs(tmp_path: Path) -> None:
    by_song = load_corpus(make_corpus(tmp_path / "song", keyed_by_track=False))
    by_track = load_corpus(make_corpus(tmp_path / "track", keyed_by_track=True))
    pd.testing.assert_frame_equal(by_song.track_tags, by_track.track_tags)
    assert by_track.splits == by_song.splits
    for split in ("train", "valid", "test"):
        assert (by_song.labels(split)[1] != by_track.labels(split)[1]).nnz == 0


def test_without_splits_tags_come_from_selected_tags(tmp_path: Path) -> None:
    corpus = load_corpus(make_corpus(tmp_path, with_splits=False))
    assert corpus.splits is None
    assert corpus.tag_names == ("rock", "sad", "jazz")
    assert set(corpus.song_ids()) == set(SONGS)
    with pytest.raises(DataError, match="no splits"):
        corpus.labels("train")
    # the building blocks still work: build labels by hand
    labels = label_matrix(corpus.track_tags, list(corpus.song_ids()), corpus.tag_names)
    assert labels.shape == (4, 3)
    assert artist_mapping(corpus.tracks)[SONGS[2]] == "Sonny"


@pytest.mark.parametrize("missing", ["track_tags.tsv", "unique_tracks.txt"])
def test_missing_required_file_is_named_with_demo_hint(tmp_path: Path, missing: str) -> None:
    (make_corpus(tmp_path) / missing).unlink()
    with pytest.raises(DataError, match="retrieval data demo --out DIR") as caught:
        load_corpus(tmp_path)
    assert caught.value.path == tmp_path / missing


def test_missing_folder_and_taste_profile(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="corpus folder not found"):
        load_corpus(tmp_path / "nowhere")
    (make_corpus(tmp_path) / "train_triplets.txt").unlink()
    corpus = load_corpus(tmp_path)
    with pytest.raises(DataError, match="train_triplets.txt: file not found"):
        corpus.taste_profile()


def test_split_tag_without_annotations_is_an_error(tmp_path: Path) -> None:
    make_corpus(tmp_path)
    (tmp_path / "splits" / "tags.tsv").write_text("tag\tcategory\nrock\tgenre\nRock\tgenre\n")
    with pytest.raises(DataError, match="'Rock'") as caught:
        load_corpus(tmp_path)
    assert caught.value.path == tmp_path / "splits" / "tags.tsv"


def test_split_song_without_metadata_is_an_error(tmp_path: Path) -> None:
    make_corpus(tmp_path)
    (tmp_path / "splits" / "test.tsv").write_text(f"song_id\tartist\n{SONGS[3]}\tA\nSOUNKNOWN000000000\tX\n")
    with pytest.raises(DataError, match="SOUNKNOWN000000000") as caught:
        load_corpus(tmp_path)
    assert caught.value.path == tmp_path / "unique_tracks.txt"


def test_malformed_file_error_propagates_with_line(tmp_path: Path) -> None:
    make_corpus(tmp_path)
    with open(tmp_path / "track_tags.tsv", "a") as handle:
        handle.write("SOX\tx\ty\tgenre\n")
    with pytest.raises(DataError) as caught:
        load_corpus(tmp_path)
    assert caught.value.line == 7
