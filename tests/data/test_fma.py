"""FMA layout: tracks.csv in the released two-row-header format and a flat one; genres.csv; audio paths; errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrieval.data.fma import fma_audio_path, load_fma, locate_fma_audio, read_fma_genres, read_fma_tracks
from retrieval.errors import DataError

# The released file: (group, field) header rows, a "track_id,,," line, bios with quoted newlines.
RELEASED = """\
,artist,artist,set,set,track,track
,bio,id,split,subset,genre_top,title
track_id,,,,,,
2,"<p>A band
from two lines</p>",1,training,small,Hip-Hop,Food
3,,1,validation,medium,Hip-Hop,Electric Ave
5,,7,test,large,,Untitled
"""

FLAT = """\
track_id,artist_id,genre_top,split
10,4,Rock,training
11,4,Rock,test
12,9,Folk,validation
"""


def _write(tmp_path: Path, text: str, name: str = "tracks.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_released_format_columns_and_subsets(tmp_path):
    tracks = read_fma_tracks(_write(tmp_path, RELEASED))
    assert list(tracks.index) == [2, 3, 5]
    assert tracks.index.name == "track_id"
    assert list(tracks["artist_id"]) == [1, 1, 7]
    assert list(tracks["genre_top"]) == ["Hip-Hop", "Hip-Hop", ""]
    assert list(tracks["split"]) == ["training", "validation", "test"]
    # Subsets are nested: "medium" keeps small and medium tracks.
    assert list(read_fma_tracks(tmp_path / "tracks.csv", subset="small").index) == [2]
    assert list(read_fma_tracks(tmp_path / "tracks.csv", subset="medium").index) == [2, 3]
    assert list(read_fma_tracks(tmp_path / "tracks.csv", require_genre=True).index) == [2, 3]


def test_released_format_without_index_name_line(tmp_path):
    text = RELEASED.replace("track_id,,,,,,\n", "")
    assert list(read_fma_tracks(_write(tmp_path, text)).index) == [2, 3, 5]


def test_flat_format(tmp_path):
    tracks = read_fma_tracks(_write(tmp_path, FLAT))
    assert list(tracks.index) == [10, 11, 12]
    assert list(tracks["artist_id"]) == [4, 4, 9]
    assert list(tracks["genre_top"]) == ["Rock", "Rock", "Folk"]
    assert set(tracks["subset"]) == {""}
    with pytest.raises(DataError, match="no subset column"):
        read_fma_tracks(tmp_path / "tracks.csv", subset="small")


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        # The bad row comes after a record with a quoted newline: line numbers count physical lines.
        (RELEASED.replace("5,,7,test", "5,,x7,test"), 7, "artist_id"),
        (RELEASED.replace("3,,1,validation", "3,,1,valid"), 6, "split"),
        (RELEASED.replace("5,,7,test,large", "5,,7,test,huge"), 7, "subset"),
        (FLAT.replace("12,9", "11,9"), 4, "track_id"),
        (FLAT.replace("11,4", "abc,4"), 3, "track_id"),
    ],
)
def test_bad_rows_are_named(tmp_path, text, line, key):
    path = _write(tmp_path, text)
    with pytest.raises(DataError) as info:
        read_fma_tracks(path)
    assert info.value.path == path
    assert info.value.line == line
    assert info.value.key == key


def test_missing_columns_and_files(tmp_path):
    with pytest.raises(DataError, match="genre_top") as info:
        read_fma_tracks(_write(tmp_path, "track_id,artist_id,split\n1,2,test\n"))
    assert info.value.line == 1
    with pytest.raises(DataError, match="set.split"):
        read_fma_tracks(_write(tmp_path, ",artist,track\n,id,genre_top\n1,2,Rock\n"))
    with pytest.raises(DataError, match="file not found"):
        read_fma_tracks(tmp_path / "nope.csv")


def test_audio_paths_and_missing_audio(tmp_path):
    assert fma_audio_path(tmp_path, 2) == tmp_path / "000" / "000002.mp3"
    assert fma_audio_path(tmp_path, 123456) == tmp_path / "123" / "123456.mp3"
    (tmp_path / "fma_metadata").mkdir()
    _write(tmp_path / "fma_metadata", RELEASED)
    audio = tmp_path / "fma_medium" / "000"
    audio.mkdir(parents=True)
    (audio / "000002.mp3").write_bytes(b"x")
    fma = load_fma(tmp_path, subset="medium")
    assert list(fma.audio.found) == [2]
    assert fma.audio.missing == (3,)
    assert "1 without audio" in fma.summary()
    with pytest.raises(DataError, match="audio folder not found"):
        locate_fma_audio(tmp_path / "fma_small", [2])
    (audio / "000002.mp3").unlink()
    with pytest.raises(DataError, match="none of the 2 tracks"):
        load_fma(tmp_path, subset="medium")


# genres.csv as released (a few real rows: Experimental → Avant-Garde, Rock → Punk → Post-Punk; Electronic).
GENRES = """\
genre_id,#tracks,parent,title,top_level
1,8693,38,Avant-Garde,38
12,32923,0,Rock,12
15,34413,0,Electronic,15
25,9261,12,Punk,12
38,38154,0,Experimental,38
114,1207,25,Post-Punk,12
"""


def test_genres_hierarchy(tmp_path):
    genres = read_fma_genres(_write(tmp_path, GENRES, "genres.csv"))
    assert list(genres.index) == [1, 12, 15, 25, 38, 114]
    assert genres.loc[114, "path"] == ("Rock", "Punk", "Post-Punk")
    assert genres.loc[1, "path"] == ("Experimental", "Avant-Garde")
    assert genres.loc[15, "parent"] == 0 and genres.loc[15, "top_level"] == 15
    assert genres.loc[25, "n_tracks"] == 9261


@pytest.mark.parametrize(
    ("text", "line", "key", "fragment"),
    [
        (GENRES.replace("25,9261,12,Punk", "25,9261,99,Punk"), 5, "parent", "parent is not a genre"),
        (GENRES.replace("114,1207,25,Post-Punk,12", "114,1207,25,Post-Punk,38"), 7, "top_level", "root is 12"),
        (GENRES.replace("15,34413", "15,many"), 4, "#tracks", "not an integer"),
        (GENRES + "12,1,0,Rock again,12\n", 8, "genre_id", "listed twice"),
        (GENRES.replace("12,32923,0,Rock,12", "12,32923,25,Rock,12"), 3, "parent", "its own ancestor"),
        ("genre_id,title\n1,Rock\n", 1, "#tracks", "missing column"),
    ],
)
def test_genres_errors_name_line_and_column(tmp_path, text, line, key, fragment):
    with pytest.raises(DataError, match=fragment) as caught:
        read_fma_genres(_write(tmp_path, text, "genres.csv"))
    assert caught.value.line == line and caught.value.key == key


def test_load_fma_reads_genres_beside_tracks(tmp_path):
    (tmp_path / "fma_metadata").mkdir()
    _write(tmp_path / "fma_metadata", RELEASED)
    audio = tmp_path / "fma_small" / "000"
    audio.mkdir(parents=True)
    (audio / "000002.mp3").write_bytes(b"x")
    assert load_fma(tmp_path).genres is None
    _write(tmp_path / "fma_metadata", GENRES, "genres.csv")
    assert load_fma(tmp_path).genres.loc[114, "title"] == "Post-Punk"
