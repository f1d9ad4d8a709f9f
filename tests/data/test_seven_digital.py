"""The 7digital preview dump and its track → 7digital id map: the restricted unpickler, the TSV, the locator."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from retrieval.data.audio_locator import AudioLocator
from retrieval.data.seven_digital import find_id_map, read_id_map, write_id_map
from retrieval.errors import DataError

# What a Python 2 cPickle of {"TRAAAAW128F429D538": 8947470, "TRAAABD128F429CF47": "3406426"} holds (protocol 2:
# str keys as SHORT_BINSTRING, ints as BININT), written by hand so the test needs no Python 2.
PY2_PICKLE = (b"\x80\x02}q\x00(U\x12TRAAAAW128F429D538q\x01J\x0e\x87\x88\x00U\x12TRAAABD128F429CF47q\x02"
              b"U\x073406426q\x03u.")


def test_a_python2_pickle_is_read(tmp_path: Path) -> None:
    path = tmp_path / "MSD_id_to_7D_id.pkl"
    path.write_bytes(PY2_PICKLE)
    assert read_id_map(path) == {"TRAAAAW128F429D538": "8947470", "TRAAABD128F429CF47": "3406426"}


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_python3_pickles_of_every_protocol(tmp_path: Path, protocol: int) -> None:
    path = tmp_path / "map.pkl"
    path.write_bytes(pickle.dumps({"TRA": 1, "TRB": "22"}, protocol=protocol))
    assert read_id_map(path) == {"TRA": "1", "TRB": "22"}


class _Attack:
    def __reduce__(self):
        return (os.system, ("echo attacked > /dev/null",))


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({"TRA": _Attack()}, "refused to load"),
        ({"TRA": 1.5}, "not a string or integer"),
        ({"TRA": True}, "not a string or integer"),
        (["TRA", 1], "not a dict"),
        ({"TRA": {1, 2}}, "not a string or integer"),
    ],
)
def test_anything_but_a_dict_of_strings_and_ints_is_refused(tmp_path: Path, value, fragment: str) -> None:
    path = tmp_path / "map.pkl"
    path.write_bytes(pickle.dumps(value))
    with pytest.raises(DataError, match=fragment):
        read_id_map(path)


def test_a_truncated_pickle_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "map.pkl"
    path.write_bytes(pickle.dumps({"TRA": 1})[:-3])
    with pytest.raises(DataError, match="map.pkl"):
        read_id_map(path)


def test_tsv_round_trip_and_errors(tmp_path: Path) -> None:
    write_id_map({"TRA": "8947470", "TRB": "1"}, tmp_path / "7digital_ids.tsv")
    assert read_id_map(tmp_path / "7digital_ids.tsv") == {"TRA": "8947470", "TRB": "1"}
    assert find_id_map(tmp_path) == tmp_path / "7digital_ids.tsv"
    (tmp_path / "bad.tsv").write_text("TRA\t1\nTRA\t2\n")
    with pytest.raises(DataError, match="listed twice") as caught:
        read_id_map(tmp_path / "bad.tsv")
    assert caught.value.line == 2


def test_the_locator_reads_clip_names(tmp_path: Path) -> None:
    clip = tmp_path / "8" / "9" / "8947470.clip.mp3"
    clip.parent.mkdir(parents=True)
    clip.write_bytes(b"x")
    locator = AudioLocator(tmp_path, aliases={"SOSONG": ["TRA", "8947470"]})
    assert locator.find("8947470") == clip
    assert locator.locate(["SOSONG", "SONONE"]).found == {"SOSONG": clip}
