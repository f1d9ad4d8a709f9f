"""Decoding: any audio file (or any region of it) to mono float32 at the model's rate.

The data flow of this module::

    file ──soundfile──▶ (frames, channels) at the file's rate ──mean──▶ mono ──resample──▶ mono at rate sr
         (what libsndfile cannot open: ──FFmpeg, decoded whole (compressed.py)──▶ mono at the file's rate)

One idea carries every reader here: *the file's resampled signal*. ``load_audio(path, sr)`` is defined as
the whole file decoded, mixed to mono and resampled to ``sr`` in one go with
``torchaudio.functional.resample``. Every partial read (``load_audio`` with an offset, ``load_crops``,
``stream_audio``, ``mel_of_file``) returns exactly the matching slice of that signal (up to float rounding)
while decoding only the region it needs plus a few milliseconds of context, so a 4-s crop of a 10-minute
file never decodes the whole file and streaming has no clicks at block boundaries. How: the resampler maps
every ``o`` input samples to ``n`` output samples (``o / n`` = source rate / target rate in lowest terms)
with a finite windowed-sinc kernel, so a region that starts on an ``o``-sample boundary and carries enough
context on each side resamples to the very same numbers as the whole file does there.

:class:`RegionReader` does the work for every reader of the package (:func:`load_audio`, :func:`stream_audio`
here; :func:`retrieval.audio.files.load_crops` and :func:`retrieval.audio.files.mel_of_file`).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from retrieval.audio.compressed import DECODER as FFMPEG
from retrieval.audio.compressed import FFmpegFile
from retrieval.errors import AudioError

SUPPORTED_FORMATS = ("WAV", "FLAC", "OGG", "MP3", "OPUS", "M4A")
"""Formats the readers are tested on: libsndfile's, then FFmpeg's (PyAV, :mod:`retrieval.audio.compressed`) for
what libsndfile cannot open (AAC / M4A here; WMA, WebM, ALAC and the rest of FFmpeg's decoders alike)."""

DEFAULT_BLOCK_S = 30.0
"""Seconds per block yielded by ``stream_audio`` and per STFT block in ``mel_of_file``."""

DECODE_CHUNK_S = 5.0
"""Seconds of output decoded and resampled at a time inside every read. Bounds a read's transient memory
(source channels, mono mix, the resampler's padded copy and convolution buffers) to a few MB on top of its
output, whatever the length requested."""

# Resampler settings, passed explicitly so the context computed in ``_resample_geometry`` matches the kernel.
RESAMPLE_LOWPASS_WIDTH = 6
"""Zero crossings of the windowed-sinc kernel on each side (torchaudio's default)."""
RESAMPLE_ROLLOFF = 0.99
"""Low-pass cut-off as a fraction of the lower Nyquist frequency (torchaudio's default)."""

# libsndfile 1.2 decoder quirks, measured on files libsndfile itself wrote (tests/test_audio.py checks every
# reader against a one-shot decode, which is right: its MP3 error against the original signal is < 0.01):
# - MP3, after a seek: up to one frame of wrong samples → decode MP3_SEEK_PREROLL samples first and drop them.
# - MP3, a read that continues the previous read: wrong samples at ~90 % of split points (errors up to 0.35
#   full scale) → every MP3 region is decoded by one seek and one read (_NO_CONTINUE_FORMATS).
# - Ogg Vorbis, a forward seek after a read: wrong samples → seek to 0 first (_SEEK_RESET_FORMATS).
MP3_FRAME_SAMPLES = 1152
"""Samples per MPEG-1 Layer III frame."""
MP3_SEEK_PREROLL = 4 * MP3_FRAME_SAMPLES
"""Samples decoded and thrown away before an MP3 region: right after a seek, libsndfile's MP3 decoder returns
wrong samples for up to one frame (the MDCT overlap and the bit reservoir refer to earlier frames), measured
errors up to 0.3 full scale; one frame of pre-roll removes them, four leave a margin for low bit rates."""

MAX_RESAMPLE_KERNEL = 2**24
"""Largest resampling kernel (float elements, 64 MB) accepted. torchaudio's kernel has
``n * (o + 2 * width)`` elements for rates ``o : n`` in lowest terms: tiny for standard rates (44,100 →
22,050 is 2 : 1; 32,000 → 22,050 needs 0.3 M) but ~10⁹ for an odd rate such as 44,056 Hz, which would
exhaust memory and take minutes."""

LIBSNDFILE = "libsndfile"
"""How :class:`AudioInfo` names the first decoder tried."""

_NO_CONTINUE_FORMATS = ("MP3",)
"""Formats whose regions are each decoded by a fresh seek and a single read, never continued."""

_SEEK_RESET_FORMATS = ("OGG",)
"""Formats whose decoder is reset (``seek(0)``) before every seek: with libsndfile 1.2, a forward seek in an
Ogg Vorbis file after a read returns wrong samples (measured errors up to 0.87 full scale over the first
~1,000 samples in a third of random trials); a seek from the start is exact."""

# Truncation signatures in libsndfile's header log (``SoundFile.extra_info``); FLAC and MP3 cut short
# are caught only when the missing part is decoded. A WAV cut short logs
# "data : <declared bytes> (should be <bytes present>)".
_WAV_DATA_MISMATCH = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_WAV_SIZE_PLACEHOLDERS = (0, 0xFFFFFFFF)  # streaming writers leave these when they cannot seek back
# An Ogg stream must end with a page flagged end-of-stream; a cut-short file's last page is not.
_OGG_NO_END_OF_STREAM = "Last page lacks an end-of-stream bit"


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, at its own sample rate.

    Attributes:
        sample_rate: the file's rate, Hz.
        frames: samples per channel.
        channels: channel count.
        duration_s: ``frames / sample_rate``.
        decoder: ``"libsndfile"``, or ``"ffmpeg"`` for what libsndfile cannot open.
    """

    sample_rate: int
    frames: int
    channels: int
    duration_s: float
    decoder: str = LIBSNDFILE

    def num_samples(self, sample_rate: int) -> int:
        """Length once resampled to ``sample_rate``: ``ceil(frames * sample_rate / self.sample_rate)``."""
        return _resampled_length(self.frames, self.sample_rate, sample_rate)


def _resampled_length(frames: int, orig_rate: int, new_rate: int) -> int:
    """``ceil(frames * new_rate / orig_rate)`` in exact integers (the length torchaudio's resample gives)."""
    return -(-frames * new_rate // orig_rate)


def _check_rate(sample_rate: int) -> None:
    if not isinstance(sample_rate, int) or isinstance(sample_rate, bool) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")


def _open(path: Path) -> sf.SoundFile | FFmpegFile:
    """Open ``path`` for reading, turning every way it can be unreadable into an ``AudioError``."""
    if not path.is_file():
        raise AudioError(path, "no such audio file; check the path (or the folder given to AudioLocator)")
    if path.stat().st_size == 0:
        raise AudioError(path, "the file is empty (0 bytes); re-download or re-encode it")
    try:
        open(path, "rb").close()  # libsndfile would call an unreadable file "corrupt"
    except PermissionError as err:
        raise AudioError(path, "permission denied; make it readable (chmod u+r) and run again") from err
    try:
        handle = sf.SoundFile(path)
    except (sf.LibsndfileError, RuntimeError) as err:
        return _open_with_ffmpeg(path, getattr(err, "error_string", str(err)))
    problem = "holds no audio frames (empty or truncated)" if handle.frames <= 0 else _truncation(handle)
    if problem is not None:
        handle.close()
        raise AudioError(path, f"the file {problem}; re-download or re-encode it")
    return handle


def _open_with_ffmpeg(path: Path, libsndfile_reason: str) -> FFmpegFile:
    """The file decoded by FFmpeg, for what libsndfile cannot open (see :mod:`retrieval.audio.compressed`)."""
    try:
        return FFmpegFile(path)
    except ImportError as err:
        raise AudioError(path, f"libsndfile cannot decode it ({libsndfile_reason}) and FFmpeg (PyAV) is not "
                         "installed: `pip install 'retrieval[formats]'`, or re-encode it as FLAC") from err
    except ValueError as err:
        raise AudioError(
            path,
            f"cannot decode it (libsndfile: {libsndfile_reason}; FFmpeg: {err}); the file is corrupt or not "
            f"an audio format: re-encode it, e.g. `ffmpeg -i IN OUT.flac`",
        ) from err


def _truncation(handle: sf.SoundFile) -> str | None:
    """What libsndfile's header log says about a WAV or Ogg file cut short, or None if it looks whole."""
    log = handle.extra_info
    if handle.format in ("WAV", "WAVEX"):
        mismatch = _WAV_DATA_MISMATCH.search(log)
        if mismatch is not None:
            declared, present = int(mismatch.group(1)), int(mismatch.group(2))
            if declared not in _WAV_SIZE_PLACEHOLDERS and declared > present:
                return (
                    f"is truncated: its header declares {declared} bytes of audio, only {present} are present"
                )
    if handle.format == "OGG" and _OGG_NO_END_OF_STREAM in log:
        return "is truncated: its last Ogg page lacks the end-of-stream flag"
    return None


def audio_info(path: str | Path) -> AudioInfo:
    """Sample rate, length and channel count of an audio file, read from its header.

    Raises:
        AudioError: the file is missing, empty, corrupt, truncated (WAV, OGG) or not in a supported format.
            A FLAC or MP3 cut short is only detected when its missing part is decoded.
    """
    path = Path(path)
    with _open(path) as handle:
        decoder = FFMPEG if isinstance(handle, FFmpegFile) else LIBSNDFILE
        return AudioInfo(handle.samplerate, handle.frames, handle.channels, handle.frames / handle.samplerate,
                         decoder)


# numpy's float sums switch from a plain loop to pairwise summation at 8 terms.
_PAIRWISE_FROM = 8


def mix_to_mono(data: np.ndarray) -> np.ndarray:
    """The mean over channels of ``(frames, channels)`` float32 samples → ``(frames,)``, bit for bit
    ``data.mean(axis=1)``.

    Up to 7 channels: one pass per channel column instead of numpy's reduction along the short axis (8 ms instead
    of 165 ms for 30 s of 44.1 kHz stereo, the slowest step of decoding a file before this). numpy sums fewer
    than 8 terms in order and then divides, as here; from 8 on it sums pairwise, so those stay ``mean``.
    """
    if data.shape[1] == 1:
        return data[:, 0]
    if data.shape[1] >= _PAIRWISE_FROM:
        return data.mean(axis=1, dtype=np.float32)
    mono = data[:, 0] + data[:, 1]
    for channel in range(2, data.shape[1]):
        mono += data[:, channel]
    mono /= np.float32(data.shape[1])
    return mono


def _resample_geometry(orig_rate: int, new_rate: int) -> tuple[int, int, int, int]:
    """Block sizes, kernel size and context of torchaudio's sinc resampler from ``orig_rate`` to ``new_rate``.

    Returns:
        ``(o, n, kernel, context)``: every ``o`` input samples map to ``n`` output samples (the rates in
        lowest terms); the kernel reaches ``width = ceil(lowpass_width * o / (rolloff * min(o, n)))`` input
        samples each way and has ``kernel = n * (o + 2 * width)`` elements; ``context`` input samples (a
        multiple of ``o``: ``width`` plus one block for the kernel's phase offset within a block) on each
        side of a region are enough for the resampled region to equal the whole-file resample there.
    """
    gcd = math.gcd(orig_rate, new_rate)
    o, n = orig_rate // gcd, new_rate // gcd
    width = math.ceil(RESAMPLE_LOWPASS_WIDTH * o / (RESAMPLE_ROLLOFF * min(o, n)))
    return o, n, n * (o + 2 * width), (math.ceil(width / o) + 1) * o


@functools.lru_cache(maxsize=8)
def _resampler(orig_rate: int, new_rate: int) -> torch.nn.Module:
    """``torchaudio.functional.resample(x, orig_rate, new_rate)`` with its kernel computed once, not per call.

    The float32 kernel is the one ``functional.resample`` builds for float32 input, so results are identical;
    building it dominates the cost of resampling a short region (0.2 s for 8 kHz → 22,050 Hz on a busy CPU).
    """
    import torchaudio  # here, not at import: `retrieval.config` imports this package, and a search needs no audio

    return torchaudio.transforms.Resample(
        orig_rate,
        new_rate,
        lowpass_filter_width=RESAMPLE_LOWPASS_WIDTH,
        rolloff=RESAMPLE_ROLLOFF,
        dtype=torch.float32,
    )


class RegionReader:
    """Reads any slice ``[start, stop)`` of a file's mono signal resampled to ``sample_rate``.

    The slice equals ``resample(mean_over_channels(whole file))[start:stop]`` (up to float rounding), but
    only the region's source samples plus ``context`` on each side are decoded, ``DECODE_CHUNK_S`` at a
    time. The last decoded source chunk is kept, so consecutive reads (streaming, whole-file decoding)
    continue decoding where the previous one stopped, never seek, and decode each sample once. Use as a
    context manager.
    """

    def __init__(self, path: str | Path, sample_rate: int):
        _check_rate(sample_rate)
        self.path = Path(path)
        self.sample_rate = sample_rate
        self._file = _open(self.path)
        self.source_rate = self._file.samplerate
        self.frames = self._file.frames
        self.num_samples = _resampled_length(self.frames, self.source_rate, sample_rate)
        self._o, self._n, kernel, self._context = _resample_geometry(self.source_rate, sample_rate)
        # libsndfile's quirks (above); an FFmpegFile is decoded whole, so its seeks and reads are exact
        quirks = self._file.format if isinstance(self._file, sf.SoundFile) else None
        self._preroll = MP3_SEEK_PREROLL if quirks == "MP3" else 0
        self._reset_before_seek = quirks in _SEEK_RESET_FORMATS
        self._can_continue = quirks not in _NO_CONTINUE_FORMATS
        self._chunk = max(1, round(DECODE_CHUNK_S * sample_rate))
        # The last decoded source chunk (mono) and its first frame; the file is positioned at its end.
        self._last: np.ndarray | None = None
        self._last_start = 0
        if self.source_rate != sample_rate and kernel > MAX_RESAMPLE_KERNEL:
            self._file.close()
            raise AudioError(
                self.path,
                f"its sample rate {self.source_rate} Hz and {sample_rate} Hz share no large common factor, "
                f"so resampling would need a {kernel * 4 / 2**20:.0f} MB kernel; re-encode the file at a "
                "standard rate (e.g. 44,100 or 48,000 Hz)",
            )

    def __enter__(self) -> RegionReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._file.close()

    def _decode(self, first: int, stop: int) -> np.ndarray:
        """Decode frames ``[first, stop)`` from the current file position (which must be ``first``), mono."""
        try:
            data = self._file.read(stop - first, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as err:
            reason = getattr(err, "error_string", str(err))
            raise AudioError(
                self.path,
                f"decoding failed between frames {first} and {stop} ({reason}); the file is corrupt or "
                "truncated: re-download or re-encode it",
            ) from err
        if len(data) < stop - first:
            raise AudioError(
                self.path,
                f"the file ended after frame {first + len(data)} but its header announces {self.frames} "
                "frames; it is truncated (or its length header is wrong): re-download or re-encode it",
            )
        mono = mix_to_mono(data)
        if not np.isfinite(mono).all():
            raise AudioError(self.path, f"frames {first}..{stop} hold NaN or infinite samples; re-encode it")
        return mono

    def _read_source(self, lo: int, hi: int) -> np.ndarray:
        """Source frames ``[lo, hi)`` mixed to mono, float32 ``(hi - lo,)``."""
        last, last_start = self._last, self._last_start
        self._last = None  # invalid until this read succeeds
        if self._can_continue and last is not None and last_start <= lo <= last_start + len(last) <= hi:
            # Continue after the previous chunk: no seek, nothing decoded twice.
            mono = np.concatenate([last[lo - last_start :], self._decode(last_start + len(last), hi)])
        else:
            # Decoders need a clean state and some pre-roll after a seek (see the decoder quirks above).
            seek_to = max(0, lo - self._preroll)
            try:
                if self._reset_before_seek:
                    self._file.seek(0)
                self._file.seek(seek_to)
            except (sf.LibsndfileError, RuntimeError) as err:
                reason = getattr(err, "error_string", str(err))
                raise AudioError(
                    self.path, f"cannot seek to frame {seek_to} ({reason}); re-encode it"
                ) from err
            mono = self._decode(seek_to, hi)[lo - seek_to :]
        self._last, self._last_start = mono, lo
        return mono

    def _read_chunk(self, start: int, stop: int) -> np.ndarray:
        """``read`` for a span of at most a few chunks: one decode, one resample."""
        if self.source_rate == self.sample_rate:
            return self._read_source(start, stop)
        o, n = self._o, self._n
        # Align the decoded region on o-sample blocks so its output grid coincides with the whole file's.
        lo = max(0, (start // n) * o - self._context)
        hi = min(self.frames, -(-stop // n) * o + self._context)
        resampled = _resampler(self.source_rate, self.sample_rate)(
            torch.from_numpy(self._read_source(lo, hi))
        )
        first = (lo // o) * n  # index, in the whole-file output, of resampled[0]
        return resampled[start - first : stop - first].numpy()

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)`` of the resampled signal, clipped to ``[0, num_samples)``; float32."""
        start, stop = max(0, start), min(stop, self.num_samples)
        if stop - start <= self._chunk:
            return self._read_chunk(start, stop) if stop > start else np.zeros(0, dtype=np.float32)
        out = np.empty(stop - start, dtype=np.float32)
        for chunk_start in range(start, stop, self._chunk):
            chunk_stop = min(chunk_start + self._chunk, stop)
            out[chunk_start - start : chunk_stop - start] = self._read_chunk(chunk_start, chunk_stop)
        return out


def load_audio(
    path: str | Path, sample_rate: int, *, offset_s: float = 0.0, duration_s: float | None = None
) -> np.ndarray:
    """Decode a file (or a region of it) to mono float32 at ``sample_rate``.

    Channels are averaged, then the signal is resampled with ``torchaudio.functional.resample`` (windowed
    sinc). Only the requested region is decoded (plus a little context), ``DECODE_CHUNK_S`` at a time, so
    memory stays close to the size of the returned array (1.2× for a whole 10-minute track, against 25× for
    ``soundfile.read`` + one resample: ``benchmarks/audio_memory.py``).

    Args:
        path: a WAV, FLAC, OGG or MP3 file, any rate, any channel count.
        sample_rate: output rate, Hz.
        offset_s: where to start, seconds (rounded to the nearest output sample).
        duration_s: how much to read, seconds; ``None`` reads to the end. The result is shorter when the file
            ends first.

    Returns:
        ``(n,)`` float32: ``load_audio(path, sr)[round(offset_s * sr):][:round(duration_s * sr)]``.

    Raises:
        AudioError: the file is missing, empty, corrupt, truncated or unsupported, or ``offset_s`` is past
            its end.
        ValueError: a negative offset or duration, or a bad ``sample_rate``.
    """
    if offset_s < 0 or (duration_s is not None and duration_s < 0):
        raise ValueError(f"offset_s and duration_s must be >= 0, got {offset_s} and {duration_s}")
    with RegionReader(path, sample_rate) as reader:
        start, total = round(offset_s * sample_rate), reader.num_samples
        if start >= total:
            length_s = reader.frames / reader.source_rate
            raise AudioError(
                reader.path, f"offset {offset_s:.3f} s is past the file's end ({length_s:.3f} s)"
            )
        stop = total if duration_s is None else min(total, start + round(duration_s * sample_rate))
        return reader.read(start, stop)


def stream_audio(
    path: str | Path, sample_rate: int, block_s: float = DEFAULT_BLOCK_S
) -> Iterator[np.ndarray]:
    """Decode a file block by block: mono float32 at ``sample_rate``, ``round(block_s * sample_rate)`` each.

    The blocks concatenate to ``load_audio(path, sample_rate)`` (up to float rounding): each block is
    resampled with context from its neighbours, so there are no clicks or drift at block boundaries. Memory
    is one output block plus one decode chunk (``DECODE_CHUNK_S``). The file is opened (and checked) when
    this is called, before the first block is requested.

    Args:
        path: the audio file.
        sample_rate: output rate, Hz.
        block_s: block length, seconds; the last block is shorter.

    Yields:
        ``(block,)`` float32 arrays.

    Raises:
        AudioError: on a bad file (when called, or while iterating for damage further into the file).
    """
    if not block_s > 0:
        raise ValueError(f"block_s must be > 0 seconds, got {block_s}")
    reader = RegionReader(path, sample_rate)  # opens now so a bad file fails at the call, not at next()
    block = max(1, round(block_s * sample_rate))
    return _iterate_blocks(reader, block)


def _iterate_blocks(reader: RegionReader, block: int) -> Iterator[np.ndarray]:
    with reader:
        for start in range(0, reader.num_samples, block):
            yield reader.read(start, start + block)

