"""MSD500 / MSD metadata formats: exact parsing, line-numbered errors, writer round trips, labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrieval.data.msd500 import (
    CATEGORIES,
    _split_unique_tracks_exact,
    _split_unique_tracks_fast,
    canonical_category,
    label_matrix,
    read_selected_tags,
    read_track_tags,
    read_unique_tracks,
    write_selected_tags,
    write_track_tags,
    write_unique_tracks,
)
from retrieval.errors import DataError

TRACK_TAGS = (
    "SOAAAAA12A8C13C480\tRock music\trock\tgenre\t100\n"
    "SOAAAAA12A8C13C480\tsad songs\tsad\tmood/character\t55.5\n"
    "SOBBBBB12A8C13C481\tgerman\tgerman\tLanguage/Origin\t12\n"
    "SOBBBBB12A8C13C481\t80s\t80s\tera\t0\n"
)
HEADER = "song_id\toriginal_tag\tcleaned_tag\tcategory\tscore\n"


def write(tmp_path: Path, text: str, name: str = "file.tsv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


# --- categories --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("genre", "genre"),
        (" Mood/Character ", "mood"),
        ("language/origin", "language"),
        ("era", "decade"),
        ("instruments", "instrument"),
        ("activity/theme", "activity"),
        ("tempo", None),
        ("", None),
    ],
)
def test_canonical_category(spelling: str, expected: str | None) -> None:
    assert canonical_category(spelling) == expected


# --- track_tags.tsv ----------------------------------------------------------------------------------


def test_read_track_tags_parses_columns_and_maps_aliases(tmp_path: Path) -> None:
    tags = read_track_tags(write(tmp_path, TRACK_TAGS))
    assert list(tags.columns) == ["song_id", "original_tag", "cleaned_tag", "category", "score"]
    assert tags["category"].tolist() == ["genre", "mood", "language", "decade"]
    assert tags["score"].dtype == np.float64
    assert tags["score"].tolist() == [100.0, 55.5, 12.0, 0.0]
    assert tags["original_tag"].tolist() == ["Rock music", "sad songs", "german", "80s"]
    assert set(tags["category"]) <= set(CATEGORIES)


def test_read_track_tags_tolerates_header_and_blank_lines(tmp_path: Path) -> None:
    plain = read_track_tags(write(tmp_path, TRACK_TAGS, "plain.tsv"))
    with_header = read_track_tags(write(tmp_path, HEADER + TRACK_TAGS.replace("\n", "\n\n", 1), "header.tsv"))
    pd.testing.assert_frame_equal(plain, with_header)


def test_read_track_tags_keeps_quotes_literally(tmp_path: Path) -> None:
    tags = read_track_tags(write(tmp_path, 'SOA\t"80\'s" hits\t80s\tdecade\t60\n'))
    assert tags["original_tag"].tolist() == ['"80\'s" hits']


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("SOA\tx\ty\tgenre\t1\nSOB\tx\ty\tgenre\tlots\n", 2, "score 'lots' is not a number"),
        ("SOA\tx\ty\tgenre\t1\nSOB\tx\ty\tgenre\t1\textra\n", 2, "found 6"),
        ("SOA\tx\ty\tgenre\t1\textra\nSOB\tx\ty\tgenre\t1\n", 1, "found 6"),
        ("SOA\tx\ty\tgenre\t1\nSOB\tx\ty\tgenre\n", 2, "is not a number"),
        ("SOA\tx\ty\tgenre\t1\n\tx\ty\tgenre\t1\n", 2, "empty song_id"),
        ("SOA\tx\ty\tgenre\t1\nSOB\tx\t\tgenre\t1\n", 2, "empty cleaned_tag"),
        ("SOA\tx\ty\tgenre\t1\nSOB\tx\ty\ttempo\t1\n", 2, "unknown category 'tempo'; allowed: genre, mood"),
        ("SOA\tx\ty\tgenre\t101\n", 1, "outside the Last.fm range"),
        ("SOA\tx\ty\tgenre\t-1\n", 1, "outside the Last.fm range"),
        # blank lines count: the bad line is the 4th physical line
        ("SOA\tx\ty\tgenre\t1\n\n\nSOB\tx\ty\tgenre\tnan?\n", 4, "is not a number"),
        # the first error in file order wins, whatever the kind of check
        ("SOA\tx\ty\ttempo\t1\nSOB\tx\ty\tgenre\tbad\n", 1, "unknown category"),
        ("SOA\tx\ty\tgenre\tbad\nSOB\tx\ty\ttempo\t1\n", 1, "is not a number"),
    ],
)
def test_read_track_tags_names_first_bad_line(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DataError) as caught:
        read_track_tags(path)
    assert caught.value.line == line
    assert caught.value.path == path
    assert fragment in str(caught.value)


def test_read_track_tags_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="track_tags.tsv: file not found"):
        read_track_tags(tmp_path / "track_tags.tsv")


def test_track_tags_round_trip(tmp_path: Path) -> None:
    tags = read_track_tags(write(tmp_path, TRACK_TAGS))
    out = tmp_path / "out.tsv"
    write_track_tags(tags, out)
    first_line = out.read_text().splitlines()[0]
    assert first_line.split("\t")[0] == "SOAAAAA12A8C13C480"  # no header
    pd.testing.assert_frame_equal(read_track_tags(out), tags)


def test_write_track_tags_writes_integral_scores_without_decimals(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "song_id": ["SOA"],
            "original_tag": ["r"],
            "cleaned_tag": ["rock"],
            "category": ["genre"],
            "score": [100.0],
        }
    )
    write_track_tags(frame, tmp_path / "t.tsv")
    assert (tmp_path / "t.tsv").read_text() == "SOA\tr\trock\tgenre\t100\n"


@pytest.mark.parametrize(
    ("column", "value", "fragment"),
    [
        ("score", 101.0, "score outside"),
        ("score", float("nan"), "score outside"),
        ("category", "tempo", "unknown category"),
        ("song_id", "", "empty song_id"),
    ],
)
def test_write_track_tags_refuses_what_the_reader_rejects(
    tmp_path: Path, column: str, value: object, fragment: str
) -> None:
    frame = read_track_tags(write(tmp_path, TRACK_TAGS))
    frame.loc[2, column] = value
    with pytest.raises(ValueError, match=fragment) as caught:
        write_track_tags(frame, tmp_path / "out.tsv")
    assert "in row 2" in str(caught.value)
    assert not (tmp_path / "out.tsv").exists()


def test_write_track_tags_refuses_separators_and_leaves_old_file(tmp_path: Path) -> None:
    path = write(tmp_path, TRACK_TAGS)
    frame = pd.DataFrame(
        {
            "song_id": ["SOA"],
            "original_tag": ["a\tb"],
            "cleaned_tag": ["x"],
            "category": ["genre"],
            "score": [1.0],
        }
    )
    with pytest.raises(ValueError, match="original_tag"):
        write_track_tags(frame, path)
    assert path.read_text() == TRACK_TAGS
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


# --- selected_tags.tsv -------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["", "tag\tcategory\n", "Tag\tCategory\n"])
def test_read_selected_tags_with_or_without_header(tmp_path: Path, header: str) -> None:
    tags = read_selected_tags(write(tmp_path, header + "rock\tgenre\nsad\tmood/character\n"))
    assert tags.to_dict("list") == {"tag": ["rock", "sad"], "category": ["genre", "mood"]}


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("rock\tgenre\nrock\tgenre\n", 2, "tag listed twice"),
        ("tag\tcategory\nrock\tgenres\nsad\tfeeling\n", 3, "unknown category 'feeling'"),
        ("rock\tgenre\npop\n", 2, "unknown category ''"),
        ("rock\n", 1, "found 1"),
    ],
)
def test_read_selected_tags_errors(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    with pytest.raises(DataError) as caught:
        read_selected_tags(write(tmp_path, text))
    assert caught.value.line == line
    assert fragment in str(caught.value)


def test_selected_tags_round_trip(tmp_path: Path) -> None:
    frame = pd.DataFrame({"tag": ["rock", "piano"], "category": ["genre", "instrument"]})
    write_selected_tags(frame, tmp_path / "s.tsv")
    assert (tmp_path / "s.tsv").read_text().startswith("tag\tcategory\n")
    pd.testing.assert_frame_equal(read_selected_tags(tmp_path / "s.tsv"), frame.astype(str))


# --- unique_tracks.txt -------------------------------------------------------------------------------


def test_unique_tracks_round_trip_with_odd_titles(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "track_id": ["TRAAAAW128F429D538", "TRAAABD128F429CF47", "TRAAADZ128F9348C2E"],
            "song_id": ["SOMZWCG12A8C13C480", "SOMZWCG12A8C13C480", "SOXVLOJ12AB0189215"],
            "artist": ["Casual", "Casual", "Björk"],
            "title": ["I Didn't Mean To", "tab\there, \x0b vertical, \u2028 line sep, <SEP> inside", ""],
        }
    )
    path = tmp_path / "unique_tracks.txt"
    write_unique_tracks(frame, path)
    assert path.read_text(encoding="utf-8").splitlines()[0] == (
        "TRAAAAW128F429D538<SEP>SOMZWCG12A8C13C480<SEP>Casual<SEP>I Didn't Mean To"
    )
    pd.testing.assert_frame_equal(read_unique_tracks(path), frame.astype(str))


def test_read_unique_tracks_accepts_crlf_and_bad_bytes(tmp_path: Path) -> None:
    path = tmp_path / "u.txt"
    path.write_bytes(b"TRA<SEP>SOA<SEP>Art\xff<SEP>Title\r\n\r\nTRB<SEP>SOB<SEP>B<SEP>T2\r\n")
    tracks = read_unique_tracks(path)
    assert tracks["title"].tolist() == ["Title", "T2"]
    assert tracks["artist"].iloc[0] == "Art\ufffd"


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("TRA<SEP>SOA<SEP>A<SEP>T\nTRB<SEP>SOB<SEP>B\n", 2, "fewer than 4 fields"),
        ("TRA<SEP>SOA<SEP>A<SEP>T\n\nTRB\tSOB\tB\tT\n", 3, "fewer than 4 fields"),
        ("TRA<SEP>SOA<SEP>A<SEP>T\n<SEP>SOB<SEP>B<SEP>T\n", 2, "empty track_id"),
        ("TRA<SEP><SEP>A<SEP>T\n", 1, "empty song_id"),
    ],
)
def test_read_unique_tracks_errors(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    with pytest.raises(DataError) as caught:
        read_unique_tracks(write(tmp_path, text, "unique_tracks.txt"))
    assert caught.value.line == line
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("text", "fast"),
    [
        ("TRA<SEP>SOA<SEP>A<SEP>T\nTRB<SEP>SOB<SEP>B<SEP>\n", True),
        ("TRA<SEP>SOA<SEP>A<SEP>T\r\n\r\nTRB<SEP>SOB<SEP>B<SEP>T2\r\n", True),
        ("TRA<SEP>SOA<SEP>A<SEP>carriage\rreturn\tand tab\n", True),
        ("TRA<SEP>SOA<SEP>A<SEP>T\n\n\nTRB<SEP>SOB<SEP>B<SEP>T", True),
        ("TRA<SEP>SOA<SEP>A<SEP>title <SEP> inside\nTRB<SEP>SOB<SEP>B<SEP>T\n", False),
        ("TRB<SEP>SOB<SEP>B<SEP>T\nTRA<SEP>SOA<SEP>A<SEP>title <SEP> inside\n", False),
        ("TRA<SEP>SOA<SEP>A\nTRB<SEP>SOB<SEP>B<SEP>T<SEP>x\n", False),  # 2 + 4 separators
        ("TRA<SEP>SOA<SEP>A<SEP>T\nTRB<SEP>SOB<SEP>B\n", False),
        ("TRA<SEP>SOA<SEP>A<SEP>unit\x1fseparator\n", False),
    ],
)
def test_fast_unique_tracks_split_agrees_with_exact_split(text: str, fast: bool) -> None:
    quick = _split_unique_tracks_fast(text)
    assert (quick is not None) == fast
    if quick is not None:
        pd.testing.assert_frame_equal(quick, _split_unique_tracks_exact(text))


def test_write_unique_tracks_refuses_sep_in_artist(tmp_path: Path) -> None:
    frame = pd.DataFrame({"track_id": ["TRA"], "song_id": ["SOA"], "artist": ["A<SEP>B"], "title": ["t"]})
    with pytest.raises(ValueError, match="artist"):
        write_unique_tracks(frame, tmp_path / "u.txt")


@pytest.mark.parametrize(
    ("reader", "text"),
    [
        (read_track_tags, TRACK_TAGS),
        (read_selected_tags, "rock\tgenre\n"),
        (read_unique_tracks, "TRA<SEP>SOA<SEP>A<SEP>T\n"),  # fast path
        (read_unique_tracks, "TRA<SEP>SOA<SEP>A<SEP>T<SEP>x\n"),  # exact path
    ],
)
def test_returned_frames_are_writable(tmp_path: Path, reader, text: str) -> None:
    frame = reader(write(tmp_path, text))
    for column in frame.columns:
        frame.loc[0, column] = frame.loc[0, column]  # raises on read-only (copy-on-write view) arrays


# --- label matrix ------------------------------------------------------------------------------------


def naive_labels(track_tags: pd.DataFrame, songs: list[str], tags: list[str], min_score: float) -> np.ndarray:
    out = np.zeros((len(songs), len(tags)), dtype=bool)
    for song, tag, score in zip(
        track_tags["song_id"], track_tags["cleaned_tag"], track_tags["score"], strict=True
    ):
        if score >= min_score and song in songs and tag in tags:
            out[songs.index(song), tags.index(tag)] = True
    return out


def test_label_matrix_matches_naive_loop() -> None:
    rng = np.random.default_rng(0)
    n = 400
    track_tags = pd.DataFrame(
        {
            "song_id": rng.choice([f"SO{i:03d}" for i in range(40)], n),
            "original_tag": "x",
            "cleaned_tag": rng.choice([f"t{j}" for j in range(12)], n),
            "category": "genre",
            "score": rng.integers(0, 101, n).astype(float),
        }
    )
    songs = [f"SO{i:03d}" for i in range(0, 45, 2)]  # some absent from the annotations
    tags = ["t3", "t0", "t11", "unused"]
    labels = label_matrix(track_tags, songs, tags, min_score=50)
    assert labels.shape == (len(songs), len(tags))
    assert labels.dtype == bool
    np.testing.assert_array_equal(labels.toarray(), naive_labels(track_tags, songs, tags, 50))
    assert labels.toarray().any()


def test_label_matrix_threshold_is_inclusive_and_duplicates_count_once() -> None:
    track_tags = pd.DataFrame(
        {
            "song_id": ["A", "A", "B"],
            "original_tag": "x",
            "cleaned_tag": ["rock", "rock", "rock"],
            "category": "genre",
            "score": [50.0, 50.0, 49.9],
        }
    )
    labels = label_matrix(track_tags, ["A", "B"], ["rock"])
    assert labels.toarray().tolist() == [[True], [False]]
    assert labels.nnz == 1


def test_label_matrix_rejects_duplicate_song_ids() -> None:
    frame = pd.DataFrame(columns=["song_id", "original_tag", "cleaned_tag", "category", "score"])
    with pytest.raises(ValueError, match="unique"):
        label_matrix(frame, ["A", "A"], ["rock"])
