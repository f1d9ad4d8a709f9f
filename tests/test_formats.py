"""Every common format: Opus, M4A/AAC, MP3 with ID3, FLAC decode (libsndfile, else FFmpeg through PyAV), their tags
reach the catalogue, and every file a folder index passes over is listed with the reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import retrieval
from retrieval.audio.decode import audio_info, load_audio
from retrieval.audio.metadata import FileTags, read_file_tags
from retrieval.cli import main
from retrieval.errors import AudioError

#: The decoder each test format goes through with the bundled libsndfile 1.2 (it reads Ogg Opus, not MP4).
DECODERS = {"opus.opus": "libsndfile", "m4a.m4a": "ffmpeg", "mp3.mp3": "libsndfile", "flac.flac": "libsndfile"}


def test_each_format_decodes_with_its_decoder_and_its_tags(tagged_formats: Path) -> None:
    for name, decoder in DECODERS.items():
        path = tagged_formats / name
        info = audio_info(path)
        assert info.decoder == decoder, name
        assert info.channels == 2 and 2.9 < info.duration_s < 3.1, (name, info)
        signal = load_audio(path, 22050)
        assert signal.dtype == np.float32 and abs(len(signal) - 3 * 22050) < 2048, name
        # the tone survived the codec: its spectrum peaks at the file's frequency (220 Hz × position)
        frequency = 220.0 * (list(DECODERS).index(name) + 1)
        spectrum = np.abs(np.fft.rfft(signal[4096:4096 + 32768]))
        assert abs(np.argmax(spectrum) * 22050 / 32768 - frequency) < 2, name
        extension = name.split(".")[0]
        assert read_file_tags(path) == FileTags(f"Song {extension}", f"Artist {extension}", "Album", "Folk", "1999")


def test_ffmpeg_regions_are_slices_of_the_whole_decode(tagged_formats: Path) -> None:
    from retrieval.audio.files import load_crops

    path = tagged_formats / "m4a.m4a"
    whole = load_audio(path, 16000)
    np.testing.assert_array_equal(load_audio(path, 16000, offset_s=1.0, duration_s=0.5), whole[16000:24000])
    crops = load_crops(path, 16000, 8000, n_crops=3)
    from retrieval.audio.crops import equally_spaced_crops

    np.testing.assert_allclose(crops, equally_spaced_crops(whole, 8000, 3), atol=1e-6)


def test_undecodable_files_name_both_decoders(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.m4a"
    garbage.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(AudioError, match="libsndfile: .*FFmpeg: "):
        audio_info(garbage)
    assert read_file_tags(garbage) == FileTags()


@pytest.mark.slow
def test_the_same_file_embeds_bit_for_bit_on_every_run_per_decoder(tagged_formats: Path, tiny_run: Path) -> None:
    from retrieval.embedding import embed_files
    from retrieval.runs import load_run

    model = load_run(tiny_run).model
    for name in DECODERS:
        first, again = (embed_files(model, [tagged_formats / name], n_crops=4).numpy() for _ in range(2))
        assert np.array_equal(first, again), name
        assert np.isfinite(first).all() and np.abs(first).sum() > 0, name


@pytest.mark.slow
def test_a_folder_of_every_format_indexes_with_its_tags_and_lists_what_it_skipped(
        tagged_formats: Path, tiny_run: Path, tmp_path: Path, capsys) -> None:
    music = tmp_path / "music"
    shutil.copytree(tagged_formats, music)
    (music / "cover.jpg").write_bytes(b"\xff\xd8 not music")
    (music / ".hidden.mp3").write_bytes(b"")
    (music / "broken.m4a").write_bytes(np.random.default_rng(1).bytes(3000))
    (music / "gone.flac").symlink_to(music / "deleted.flac")
    out = tmp_path / "index"
    assert main(["-q", "index", str(music), "--model", str(tiny_run), "--out", str(out),
                 "--backend", "exact", "--cache-dir", str(tmp_path / "cache")]) == 0
    printed = capsys.readouterr().out
    assert "4 tracks" in printed and "file tags (title, artist, album, genre, year) read from 4 of 4" in printed
    assert "skipped 4 file(s)" in printed
    lines = {line.strip().split(":")[0]: line for line in printed.splitlines() if line.startswith("  ")}
    assert "not an audio file extension (.jpg" in lines[str(music / "cover.jpg")]
    assert "hidden file" in lines[str(music / ".hidden.mp3")]
    assert "FFmpeg:" in lines[str(music / "broken.m4a")]
    assert "not a regular file" in lines[str(music / "gone.flac")]
    hits = retrieval.load(out).search("folk", k=10)
    assert {hit.track_id for hit in hits} == set(DECODERS)
    for hit in hits:
        extension = hit.track_id.split(".")[0]
        assert (hit.title, hit.artist, hit.album, hit.genre, hit.year) == (
            f"Song {extension}", f"Artist {extension}", "Album", "Folk", "1999")
    # the CLI shows them
    assert main(["search", "folk", "--index", str(out), "-k", "4"]) == 0
    printed = capsys.readouterr().out
    assert "Artist opus – Song opus · Album (1999) · Folk" in printed
