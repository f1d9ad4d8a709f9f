"""Formats libsndfile cannot read (AAC / M4A, WMA, ALAC in MP4, WebM, ...) decoded through PyAV's bundled FFmpeg.

:class:`FFmpegFile` offers the part of ``soundfile.SoundFile`` that :class:`~retrieval.audio.decode.RegionReader`
uses (``samplerate``, ``frames``, ``channels``, ``format``, ``seek``, ``read``, ``close``), so every reader of the
package — crops, streaming, whole-file mels — works on these files unchanged.

Compressed formats seek to packet boundaries only, and an AAC or Opus decoder needs pre-roll after a seek, so a
region read by seeking would differ from the whole file's decode there. Instead the file's first audio stream is
decoded **once, whole, on one thread**, mixed to mono float32 at its own rate (11.5 MB per minute at 48 kHz) and
kept in memory; every region is then an exact slice of it. FFmpeg's decoders are deterministic on one thread, so
the same file always decodes to the same samples (and embeds to the same vector, bit for bit: tested).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DECODER = "ffmpeg"
"""How :class:`~retrieval.audio.decode.AudioInfo` names this decoder (libsndfile is ``"libsndfile"``)."""


class FFmpegFile:
    """A whole audio file decoded by FFmpeg (PyAV) into mono float32 at its own rate.

    Args:
        path: the file.

    Attributes:
        samplerate, frames, channels: as in ``soundfile.SoundFile`` (``channels`` is the file's own count;
            reads return the mono mix ``mean over channels``).
        format: the codec, upper case (``"AAC"``, ``"OPUS"``, ...).

    Raises:
        ValueError: FFmpeg cannot open or decode the file, or it has no audio stream (the message says why).
    """

    def __init__(self, path: str | Path):
        import av

        try:
            with av.open(str(path)) as container:
                if not container.streams.audio:
                    raise ValueError("it has no audio stream")
                stream = container.streams.audio[0]
                stream.thread_count = 1  # one thread: the decoded samples are the same on every run
                self.format = stream.codec_context.name.upper()
                self.samplerate = int(stream.codec_context.sample_rate or stream.rate)
                self.channels = int(stream.codec_context.channels)
                # planar float32 at the file's own rate and layout: a format conversion, no resampling
                converter = av.AudioResampler(format="fltp")
                planes = [plane for frame in container.decode(stream) for plane in converter.resample(frame)]
                planes += converter.resample(None)  # flush
        except av.error.FFmpegError as error:
            raise ValueError(str(error)) from error
        if not planes:
            raise ValueError("FFmpeg decoded no audio frames")
        signal = np.concatenate([frame.to_ndarray() for frame in planes], axis=1)  # (channels, frames)
        self._mono = np.ascontiguousarray(signal.mean(axis=0, dtype=np.float32) if len(signal) > 1 else signal[0])
        self.frames = len(self._mono)
        self.extra_info = ""
        self._position = 0

    def seek(self, frame: int) -> int:
        self._position = min(max(0, int(frame)), self.frames)
        return self._position

    def read(self, frames: int, dtype: str = "float32", always_2d: bool = True) -> np.ndarray:
        """The next ``frames`` mono samples as ``(n, 1)`` float32 (fewer at the end of the file)."""
        out = self._mono[self._position : self._position + frames]
        self._position += len(out)
        return out[:, None].astype(dtype, copy=True)

    def close(self) -> None:
        self._mono = np.zeros(0, dtype=np.float32)

    def __enter__(self) -> FFmpegFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
