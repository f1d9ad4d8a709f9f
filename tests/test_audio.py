"""Tests of retrieval.audio: decoding, resampling, streaming, crops and the mel front end.

Every fixture is a few seconds of audio written to ``tmp_path`` with soundfile. The reference for all
partial readers is the one-shot definition: decode the whole file with soundfile, average the channels,
resample with ``torchaudio.functional.resample``.
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

import retrieval.audio.decode as audio_module
from retrieval.audio import (
    AudioInfo,
    MelConfig,
    MelSpectrogram,
    audio_info,
    crop_starts,
    equally_spaced_crops,
    load_audio,
    load_crops,
    mel_of_file,
    random_crop,
    stream_audio,
)
from retrieval.errors import AudioError, ConfigError, DataError

TARGET_RATE = 22050
SUBTYPES = {"WAV": "PCM_16", "FLAC": "PCM_16", "OGG": "VORBIS", "MP3": "MPEG_LAYER_III"}


def make_signal(
    sample_rate: int, seconds: float, channels: int, seed: int = 0, noise: float = 0.05
) -> np.ndarray:
    """(frames, channels) float32: a few tones (different per channel) plus white noise, peak below 0.6."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(sample_rate * seconds)) / sample_rate
    tones = [
        0.3 * np.sin(2 * np.pi * (220 * (c + 1)) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * t))
        for c in range(channels)
    ]
    return (np.stack(tones, axis=1) + noise * rng.standard_normal((len(t), channels))).astype(np.float32)


def write_audio(
    folder: Path,
    name: str,
    sample_rate: int = 44100,
    seconds: float = 2.0,
    channels: int = 2,
    seed: int = 0,
    noise: float = 0.05,
) -> Path:
    """Write make_signal(...) to folder/name; the format comes from the suffix."""
    path = folder / name
    fmt = path.suffix[1:].upper()
    sf.write(
        path,
        make_signal(sample_rate, seconds, channels, seed, noise),
        sample_rate,
        format=fmt,
        subtype=SUBTYPES[fmt],
    )
    return path


def reference_decode(path: Path, sample_rate: int = TARGET_RATE) -> np.ndarray:
    """The one-shot definition: whole file, mean of channels, torchaudio resample."""
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = torch.from_numpy(data.mean(axis=1, dtype=np.float32))
    return torchaudio.functional.resample(mono, rate, sample_rate).numpy()


# ------------------------------------------------------------------------------------------------------------
# 1. Shapes and dtypes
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "rate", "channels"),
    [
        ("stereo44k.wav", 44100, 2),
        ("mono8k.flac", 8000, 1),
        ("stereo48k.ogg", 48000, 2),
        ("mono.mp3", 44100, 1),
    ],
)
def test_load_audio_gives_mono_float32_of_the_resampled_length(tmp_path, name, rate, channels):
    path = write_audio(tmp_path, name, rate, seconds=1.5, channels=channels)
    wave = load_audio(path, TARGET_RATE)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert len(wave) == math.ceil(round(1.5 * rate) * TARGET_RATE / rate)
    info = audio_info(path)
    assert info == AudioInfo(rate, round(1.5 * rate), channels, round(1.5 * rate) / rate)
    assert info.num_samples(TARGET_RATE) == len(wave)


def test_mel_config_frame_arithmetic_matches_torchaudio():
    config = MelConfig()
    assert config.samples_for_frames(173) == 88064 and config.frames(88064) == 173
    mel = MelSpectrogram(config)
    for n in (513, 1000, 88063, 88064, 88575, 88576):
        assert mel(torch.zeros(1, n)).shape[-1] == config.frames(n)
    with pytest.raises(ValueError):
        config.samples_for_frames(1)  # the shortest valid input (513 samples) already gives 2 frames
    for odd in (config, MelConfig(n_fft=1023, hop_length=300)):
        shortest = odd.n_fft // 2 + 1  # reflect padding needs more samples than the pad
        for k in range(2, 40):
            n = odd.samples_for_frames(k)
            assert odd.frames(n) == k and (n == shortest or odd.frames(n - 1) == k - 1)  # the fewest samples
            assert MelSpectrogram(odd)(torch.zeros(1, n)).shape[-1] == k


@pytest.mark.parametrize("log", ["db", "log1p", "musicnn"])
def test_mel_spectrogram_shape_dtype(log):
    config = MelConfig(log=log)
    out = MelSpectrogram(config)(torch.randn(3, config.samples_for_frames(173)))
    assert out.shape == (3, 128, 173) and out.dtype == torch.float32
    assert not any(p.requires_grad for p in MelSpectrogram(config).parameters())


def test_mel_scale_norm_padding_and_musicnn_log_are_honoured():
    import torchaudio

    wave = torch.randn(2, 16000) * 0.1
    config = MelConfig(sample_rate=16000, n_fft=512, hop_length=256, n_mels=96, log="musicnn", mel_scale="slaney",
                       norm="slaney", pad_mode="constant")
    power = torchaudio.transforms.MelSpectrogram(16000, n_fft=512, hop_length=256, n_mels=96, pad_mode="constant",
                                                 mel_scale="slaney", norm="slaney")(wave)
    expected = torch.log10(1 + 10000 * power.half().float())
    torch.testing.assert_close(MelSpectrogram(config)(wave), expected)
    htk = MelSpectrogram(MelConfig(sample_rate=16000, n_fft=512, hop_length=256, n_mels=96, log="log1p"))(wave)
    assert not torch.allclose(htk, torch.log1p(power))  # the default (HTK, unnormalised, reflect) differs


def test_crop_helpers_shapes_numpy_and_torch():
    mel = np.random.default_rng(0).standard_normal((128, 500)).astype(np.float32)
    crops = equally_spaced_crops(mel, 173, 8)
    assert crops.shape == (8, 128, 173) and crops.dtype == np.float32
    crops_t = equally_spaced_crops(torch.from_numpy(mel), 173, 8)
    assert isinstance(crops_t, torch.Tensor) and crops_t.shape == (8, 128, 173)
    np.testing.assert_array_equal(crops_t.numpy(), crops)
    g = torch.Generator().manual_seed(0)
    assert random_crop(mel, 173, g).shape == (128, 173)
    assert random_crop(torch.from_numpy(mel), 173, g).shape == (128, 173)


# ------------------------------------------------------------------------------------------------------------
# 2. Against a reference (the one-shot decode and the one-shot mel)
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "rate", "channels", "noise"),
    [
        ("a.flac", 44100, 2, 0.05),
        ("b.wav", 8000, 1, 0.05),
        ("c.ogg", 48000, 2, 0.05),
        ("d.mp3", 44100, 2, 0.0),  # pure tones: libsndfile's MP3 seeks go wrong on them without pre-roll
        ("e.wav", 22050, 1, 0.05),
    ],
)
def test_every_reader_matches_the_one_shot_decode(tmp_path, name, rate, channels, noise):
    path = write_audio(tmp_path, name, rate, seconds=3.0, channels=channels, noise=noise)
    reference = reference_decode(path)
    np.testing.assert_allclose(load_audio(path, TARGET_RATE), reference, atol=1e-6)

    blocks = list(stream_audio(path, TARGET_RATE, block_s=0.37))
    assert [len(b) for b in blocks[:-1]] == [round(0.37 * TARGET_RATE)] * (len(blocks) - 1)
    np.testing.assert_allclose(np.concatenate(blocks), reference, atol=1e-6)

    start = round(1.234 * TARGET_RATE)
    region = load_audio(path, TARGET_RATE, offset_s=1.234, duration_s=0.5)
    np.testing.assert_allclose(region, reference[start : start + round(0.5 * TARGET_RATE)], atol=1e-6)

    # 9 crops of 0.2 s leave gaps between them, so each one is sought and decoded on its own (for OGG and MP3
    # this is what exposes libsndfile's inexact seeks).
    crops = load_crops(path, TARGET_RATE, crop_samples=round(0.2 * TARGET_RATE), n_crops=9)
    np.testing.assert_allclose(crops, equally_spaced_crops(reference, round(0.2 * TARGET_RATE), 9), atol=1e-6)


@pytest.mark.parametrize(
    ("name", "rate", "channels", "noise"),
    [
        ("a.flac", 44100, 2, 0.05),
        ("b.wav", 8000, 1, 0.05),
        ("c.ogg", 48000, 2, 0.05),
        ("d.mp3", 44100, 2, 0.0),
    ],
)
def test_long_reads_decoded_in_chunks_match_the_one_shot_decode(
    tmp_path, monkeypatch, name, rate, channels, noise
):
    # Reads longer than DECODE_CHUNK_S are decoded chunk after chunk, each continuing the previous one
    # (except MP3, whose continued reads libsndfile gets wrong); shrink the chunk to exercise that path.
    monkeypatch.setattr(audio_module, "DECODE_CHUNK_S", 0.29)
    path = write_audio(tmp_path, name, rate, seconds=2.0, channels=channels, noise=noise)
    reference = reference_decode(path)
    np.testing.assert_allclose(load_audio(path, TARGET_RATE), reference, atol=1e-6)
    np.testing.assert_allclose(
        np.concatenate(list(stream_audio(path, TARGET_RATE, 0.7))), reference, atol=1e-6
    )


def test_load_crops_of_a_file_shorter_than_one_crop_is_zero_padded(tmp_path):
    path = write_audio(tmp_path, "short.wav", 44100, seconds=0.5)
    reference = reference_decode(path)
    crops = load_crops(path, TARGET_RATE, crop_samples=TARGET_RATE, n_crops=3)
    assert crops.shape == (3, TARGET_RATE)
    for crop in crops:
        np.testing.assert_allclose(crop[: len(reference)], reference, atol=1e-6)
        assert not crop[len(reference) :].any()


@pytest.mark.parametrize("config", [MelConfig(), MelConfig(top_db=60.0), MelConfig(log="log1p", n_mels=64)])
def test_mel_of_file_streams_to_the_one_shot_mel(tmp_path, config):
    path = write_audio(tmp_path, "song.flac", 44100, seconds=3.1)
    one_shot = MelSpectrogram(config)(torch.from_numpy(reference_decode(path))[None])[0].numpy()
    streamed = mel_of_file(path, config, block_s=0.4)  # 8 blocks, including a short last one
    assert streamed.shape == one_shot.shape and streamed.dtype == np.float32
    np.testing.assert_allclose(streamed, one_shot, atol=1e-3, rtol=1e-5)


def test_mel_spectrogram_is_batch_independent_and_deterministic():
    config = MelConfig(top_db=80.0)
    mel = MelSpectrogram(config)
    generator = torch.Generator().manual_seed(0)
    # Very different levels: a batch-wide top_db (torchaudio's AmplitudeToDB on 3-D input) would floor the
    # quiet example at the loud one's max - 80 dB.
    wave = torch.randn(3, 20000, generator=generator) * torch.tensor([[1.0], [1e-3], [1e-6]])
    batch = mel(wave)
    for i in range(3):
        torch.testing.assert_close(batch[i], mel(wave[i : i + 1])[0], atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(mel(wave), batch, atol=0, rtol=0)


def test_log_scales_agree_with_their_formulas():
    wave = torch.randn(1, 10000, generator=torch.Generator().manual_seed(1))
    db = MelSpectrogram(MelConfig(log="db"))(wave)
    log1p = MelSpectrogram(MelConfig(log="log1p"))(wave)
    power = torch.expm1(log1p.double())
    expected_db = 10 * torch.log10(power.clamp(min=1e-10))
    torch.testing.assert_close(db.double(), expected_db, atol=1e-3, rtol=1e-4)


# ------------------------------------------------------------------------------------------------------------
# 3. Invariants
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "length", "n_crops"), [(1000, 173, 8), (174, 173, 8), (5000, 1, 3), (97, 10, 97)]
)
def test_crop_starts_cover_the_input_equally(total, length, n_crops):
    starts = crop_starts(total, length, n_crops)
    assert starts.dtype == np.int64 and starts.shape == (n_crops,)
    assert starts[0] == 0 and starts[-1] == total - length
    steps = np.diff(starts)
    assert (steps >= 0).all() and steps.max() - steps.min() <= 1


def test_crop_starts_degenerate_cases():
    assert crop_starts(100, 173, 4).tolist() == [0, 0, 0, 0]
    assert crop_starts(1000, 173, 1).tolist() == [0]
    with pytest.raises(ValueError):
        crop_starts(1000, 0, 4)


def test_equally_spaced_crops_are_windows_of_the_input_and_pad_short_input():
    x = np.arange(2 * 50, dtype=np.float32).reshape(2, 50)
    crops = equally_spaced_crops(x, 10, 5)
    for crop, start in zip(crops, crop_starts(50, 10, 5), strict=True):
        np.testing.assert_array_equal(crop, x[:, start : start + 10])
    short = equally_spaced_crops(torch.ones(3, 4), 6, 2)
    assert short.shape == (2, 3, 6)
    assert short[..., :4].eq(1).all() and short[..., 4:].eq(0).all()


def test_random_crop_is_a_seeded_window_and_pads_when_short():
    x = torch.arange(1000.0)
    crops = [random_crop(x, 100, torch.Generator().manual_seed(seed)) for seed in range(20)]
    starts = [int(c[0]) for c in crops]
    for crop, start in zip(crops, starts, strict=True):
        torch.testing.assert_close(crop, x[start : start + 100])
    assert len(set(starts)) > 10  # the start moves with the seed
    again = random_crop(x, 100, torch.Generator().manual_seed(3))
    torch.testing.assert_close(again, crops[3])
    padded = random_crop(np.ones(30, dtype=np.float32), 100, torch.Generator().manual_seed(0))
    assert padded.shape == (100,) and padded[:30].all() and not padded[30:].any()


# ------------------------------------------------------------------------------------------------------------
# 4. Bad input: every failure is an AudioError (a DataError) that names the file
# ------------------------------------------------------------------------------------------------------------


def assert_audio_error(call, path: Path, *fragments: str) -> None:
    with pytest.raises(AudioError) as caught:
        call()
    assert isinstance(caught.value, DataError) and caught.value.path == path
    message = str(caught.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message


def test_corrupt_empty_and_missing_files(tmp_path):
    corrupt = tmp_path / "corrupt.ogg"
    corrupt.write_bytes(np.random.default_rng(0).bytes(4000))
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    missing = tmp_path / "missing.flac"
    for reader in (
        audio_info,
        lambda p: load_audio(p, TARGET_RATE),
        lambda p: load_crops(p, TARGET_RATE, 100, 2),
    ):
        assert_audio_error(partial(reader, corrupt), corrupt, "cannot decode")
        assert_audio_error(partial(reader, empty), empty, "empty")
        assert_audio_error(partial(reader, missing), missing, "no such audio file")


def test_stream_audio_and_mel_of_file_fail_at_the_call_on_a_bad_file(tmp_path):
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    assert_audio_error(lambda: stream_audio(empty, TARGET_RATE), empty, "empty")  # not lazily at next()
    assert_audio_error(lambda: mel_of_file(empty, MelConfig()), empty, "empty")


@pytest.mark.parametrize("name", ["cut.flac", "cut.ogg", "cut.wav", "cut.mp3"])
def test_truncated_files_are_reported(tmp_path, name):
    whole = write_audio(tmp_path, "whole" + Path(name).suffix, 44100, seconds=2.0)
    cut = tmp_path / name
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    assert_audio_error(lambda: load_audio(cut, TARGET_RATE), cut, "truncated")
    assert_audio_error(lambda: mel_of_file(cut, MelConfig()), cut, "truncated")


def test_non_finite_samples_and_unusual_rates_are_reported(tmp_path):
    nan_file = tmp_path / "nan.wav"
    samples = np.zeros(4000, dtype=np.float32)
    samples[1234] = np.nan
    sf.write(nan_file, samples, 8000, subtype="FLOAT")
    assert_audio_error(lambda: load_audio(nan_file, TARGET_RATE), nan_file, "NaN")
    odd_rate = tmp_path / "odd_rate.wav"
    sf.write(odd_rate, np.zeros(4000, dtype=np.float32), 44056)  # 44,056 : 22,050 = 22,028 : 11,025
    assert_audio_error(lambda: load_audio(odd_rate, TARGET_RATE), odd_rate, "standard rate")


def test_offsets_past_the_end_and_too_short_files(tmp_path):
    path = write_audio(tmp_path, "one_second.wav", 22050, seconds=1.0, channels=1)
    assert_audio_error(lambda: load_audio(path, TARGET_RATE, offset_s=1.5), path, "past the file's end")
    with pytest.raises(ValueError):
        load_audio(path, TARGET_RATE, offset_s=-1.0)
    tiny = tmp_path / "tiny.wav"
    sf.write(tiny, np.zeros(100, dtype=np.float32), 22050)
    assert_audio_error(lambda: mel_of_file(tiny, MelConfig()), tiny, "too short")
    with pytest.raises(ValueError, match="at least 513 samples"):
        MelSpectrogram(MelConfig())(torch.zeros(1, 100))


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"log": "ln"}, "log"),
        ({"top_db": 80.0, "log": "log1p"}, "top_db"),
        ({"f_max": 20000.0}, "f_max"),
        ({"n_fft": 0}, "n_fft"),
        ({"window": "boxcar"}, "window"),
        ({"top_db": -5.0}, "top_db"),
        ({"mel_scale": "mel"}, "mel_scale"),
        ({"norm": "area"}, "norm"),
        ({"pad_mode": "wrap"}, "pad_mode"),
    ],
)
def test_mel_config_rejects_bad_values_naming_the_key(kwargs, key):
    with pytest.raises(ConfigError, match=f"MelConfig.{key}"):
        MelConfig(**kwargs)


@pytest.mark.parametrize("channels", range(1, 10))
def test_mix_to_mono_is_the_channel_mean_bit_for_bit(channels: int) -> None:
    from retrieval.audio.decode import mix_to_mono

    data = np.random.default_rng(channels).standard_normal((10_001, channels)).astype(np.float32)
    np.testing.assert_array_equal(mix_to_mono(data), data.mean(axis=1, dtype=np.float32))


def test_ahead_keeps_order_overlaps_and_raises_at_the_failing_item() -> None:
    import threading

    from retrieval.embedding import ahead

    seen: list[str] = []

    def work(item: int) -> int:
        seen.append(threading.current_thread().name)
        if item == 3:
            raise ValueError("item 3")
        return item * item

    results = ahead(work, list(range(6)), workers=2)
    assert [next(results) for _ in range(3)] == [0, 1, 4]
    with pytest.raises(ValueError, match="item 3"):
        next(results)
    assert threading.current_thread().name not in seen  # the work ran in the pool, beside the caller
    assert list(ahead(work, [5], workers=2)) == [25]
