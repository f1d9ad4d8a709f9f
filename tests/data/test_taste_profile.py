"""Taste Profile: chunk-independent streaming, summed duplicates, catalogue restriction, errors by line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrieval.data.taste_profile import PlayMatrix, read_taste_profile, write_taste_profile
from retrieval.errors import DataError

TRIPLETS = (
    "b80344d063b5ccb3212f76538f3d9e43d87dca9e\tSOAKIMP12A8C130995\t1\n"
    "b80344d063b5ccb3212f76538f3d9e43d87dca9e\tSOAPDEY12A81C210A9\t2\n"
    "b80344d063b5ccb3212f76538f3d9e43d87dca9e\tSOAKIMP12A8C130995\t3\n"  # duplicate pair: summed
    "85c1f87fea955d09b4bec2e36aee110927aedf9a\tSOAPDEY12A81C210A9\t5\n"
    "\n"
    "007\t0042\t4\n"  # all-digit ids must stay strings
    "7\t42\t6\n"
    "85c1f87fea955d09b4bec2e36aee110927aedf9a\tSOBONKR12A58A7A7E0\t10\n"
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "train_triplets.txt"
    path.write_text(text)
    return path


def dense(plays: PlayMatrix) -> dict[tuple[str, str], float]:
    """Non-zero entries keyed by (user, song): independent of row/column order."""
    coo = plays.matrix.tocoo()
    return {
        (plays.users[u], plays.items[s]): float(v) for u, s, v in zip(coo.row, coo.col, coo.data, strict=True)
    }


def test_reads_counts_sums_duplicates_keeps_string_ids(tmp_path: Path) -> None:
    plays = read_taste_profile(write(tmp_path, TRIPLETS))
    assert plays.matrix.dtype == np.float32
    assert plays.matrix.shape == (len(plays.users), len(plays.items)) == (4, 5)
    assert plays.users.tolist() == [
        "b80344d063b5ccb3212f76538f3d9e43d87dca9e",
        "85c1f87fea955d09b4bec2e36aee110927aedf9a",
        "007",
        "7",
    ]
    assert plays.items.tolist() == [
        "SOAKIMP12A8C130995",
        "SOAPDEY12A81C210A9",
        "0042",
        "42",
        "SOBONKR12A58A7A7E0",
    ]
    assert dense(plays) == {
        ("b80344d063b5ccb3212f76538f3d9e43d87dca9e", "SOAKIMP12A8C130995"): 4.0,
        ("b80344d063b5ccb3212f76538f3d9e43d87dca9e", "SOAPDEY12A81C210A9"): 2.0,
        ("85c1f87fea955d09b4bec2e36aee110927aedf9a", "SOAPDEY12A81C210A9"): 5.0,
        ("007", "0042"): 4.0,
        ("7", "42"): 6.0,
        ("85c1f87fea955d09b4bec2e36aee110927aedf9a", "SOBONKR12A58A7A7E0"): 10.0,
    }


def test_chunking_does_not_change_the_matrix(tmp_path: Path) -> None:
    path = write(tmp_path, TRIPLETS)
    small = read_taste_profile(path, chunk_rows=3)
    large = read_taste_profile(path, chunk_rows=10**6)
    np.testing.assert_array_equal(small.users, large.users)
    np.testing.assert_array_equal(small.items, large.items)
    assert (small.matrix != large.matrix).nnz == 0
    assert small.matrix.has_canonical_format


def test_items_restrict_and_order_columns(tmp_path: Path) -> None:
    catalogue = ["SOBONKR12A58A7A7E0", "SONOTINFILE0000000", "SOAPDEY12A81C210A9"]
    plays = read_taste_profile(write(tmp_path, TRIPLETS), items=catalogue, chunk_rows=2)
    assert plays.items.tolist() == catalogue
    # only users with a kept line are rows
    assert plays.users.tolist() == [
        "b80344d063b5ccb3212f76538f3d9e43d87dca9e",
        "85c1f87fea955d09b4bec2e36aee110927aedf9a",
    ]
    assert plays.matrix.toarray().tolist() == [[0.0, 0.0, 2.0], [10.0, 0.0, 5.0]]
    assert plays.item_index(["SOAPDEY12A81C210A9", "SOAKIMP12A8C130995"]).tolist() == [2, -1]
    assert plays.user_index(["85c1f87fea955d09b4bec2e36aee110927aedf9a", "nobody"]).tolist() == [1, -1]


def test_items_must_be_unique(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unique"):
        read_taste_profile(write(tmp_path, TRIPLETS), items=["A", "A"])


@pytest.mark.parametrize("chunk_rows", [2, 10**6])
@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("u\ts\t1\nu\ts\tmany\n", 2, "play count 'many'"),
        ("u\ts\t1\nu\ts\n", 2, "missing or not a number"),
        ("u\ts\t1\nu\ts\t-3\n", 2, "negative play count"),
        ("u\ts\t1\nu\ts\tinf\n", 2, "not a number"),
        ("u\ts\t1\nu\ts\t1\nu\ts\t1\nu\ts\t1\n\nu\ts\t1\t9\n", 6, "found 4"),  # in a later chunk
        ("u\ts\t1\t9\nu\ts\t1\n", 1, "found 4"),
        ("u\ts\t1\n\ts\t1\n", 2, "empty user"),
        ("u\ts\t1\nu\t\t1\n", 2, "empty song_id"),
        ("user\tsong_id\tplay_count\nu\ts\t1\n", 1, "play count 'play_count'"),  # no header allowed
    ],
)
def test_malformed_lines_are_named(
    tmp_path: Path, chunk_rows: int, text: str, line: int, fragment: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DataError) as caught:
        read_taste_profile(path, chunk_rows=chunk_rows)
    assert caught.value.line == line
    assert caught.value.path == path
    assert fragment in str(caught.value)


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="empty"):
        read_taste_profile(write(tmp_path, "\n\n"))


def test_write_then_read_matches_reference(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 500
    users = np.array([f"user{i:02d}" for i in rng.integers(0, 30, n)], dtype=object)
    songs = np.array([f"SO{j:016d}" for j in rng.integers(0, 40, n)], dtype=object)
    counts = rng.integers(1, 20, n)
    path = tmp_path / "t.txt"
    write_taste_profile(users, songs, counts, path)
    assert path.read_text().splitlines()[0] == f"{users[0]}\t{songs[0]}\t{counts[0]}"

    plays = read_taste_profile(path, chunk_rows=64)
    reference = np.zeros((len(plays.users), len(plays.items)))
    np.add.at(reference, (plays.user_index(users), plays.item_index(songs)), counts)
    np.testing.assert_array_equal(plays.matrix.toarray(), reference)
    assert plays.user_index(users).min() >= 0


@pytest.mark.parametrize(
    ("users", "songs", "counts", "fragment"),
    [
        (["a", "b"], ["s"], [1, 2], "differ in length"),
        (["a"], ["s"], [-1], "finite number"),
        (["a\tb"], ["s"], [1], "tab/newline"),
        ([""], ["s"], [1], "empty"),
    ],
)
def test_write_rejects_bad_input(
    tmp_path: Path, users: list, songs: list, counts: list, fragment: str
) -> None:
    with pytest.raises(ValueError, match=fragment):
        write_taste_profile(users, songs, counts, tmp_path / "t.txt")
    assert not (tmp_path / "t.txt").exists()
