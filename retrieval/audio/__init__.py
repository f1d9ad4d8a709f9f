"""Audio in: decode any file to mono float32 at the model's rate, crop it, turn it into the model's features.

The data flow of the package::

    file ──decode──▶ mono at rate sr ──crops──▶ (random for training, equally spaced for evaluation)
         ──frontend──▶ features (n_mels, frames): a log-mel (MelConfig) or the samples (WaveConfig)

Modules:
    decode     ``load_audio``, ``stream_audio``, ``audio_info``: any region of a file, mixed to mono and
               resampled exactly as the whole file would be (``RegionReader``), with the decoder quirks handled.
    compressed ``FFmpegFile``: what libsndfile cannot open (AAC / M4A, WMA, ...) decoded by PyAV's FFmpeg.
    metadata   ``read_file_tags``: title, artist, album, genre, year from a file's own tags (mutagen).
    frontend   ``MelConfig`` / ``MelSpectrogram`` (log-mel), ``WaveConfig`` / ``WaveFrontEnd`` (raw waveform),
               ``front_end(config)``: the first layer of every audio encoder.
    crops      ``random_crop``, ``crop_at``, ``equally_spaced_crops``, ``crop_starts`` on arrays and tensors.
    files      whole files → model inputs: ``load_crops``, ``mel_of_file``, ``features_of_file``,
               ``whole_track_crops`` (bounded memory, only the needed regions decoded).

Example (the paper's evaluation input: 8 crops of 173 frames ≈ 4 s)::

    config = MelConfig()                                     # 22,050 Hz, n_fft 1024, hop 512, 128 mels
    crops = load_crops("song.mp3", config.sample_rate, config.samples_for_frames(173), n_crops=8)
    mel = MelSpectrogram(config)(torch.from_numpy(crops))    # (8, 128, 173)
"""

from retrieval.audio.crops import crop_at, crop_starts, equally_spaced_crops, random_crop
from retrieval.audio.decode import (
    DEFAULT_BLOCK_S,
    SUPPORTED_FORMATS,
    AudioInfo,
    audio_info,
    load_audio,
    stream_audio,
)
from retrieval.audio.files import features_of_file, load_crops, mel_of_file, whole_track_crops
from retrieval.audio.frontend import FrontEndConfig, MelConfig, MelSpectrogram, WaveConfig, WaveFrontEnd, front_end

__all__ = [
    "DEFAULT_BLOCK_S",
    "SUPPORTED_FORMATS",
    "AudioInfo",
    "FrontEndConfig",
    "MelConfig",
    "MelSpectrogram",
    "WaveConfig",
    "WaveFrontEnd",
    "audio_info",
    "crop_starts",
    "equally_spaced_crops",
    "features_of_file",
    "front_end",
    "load_audio",
    "load_crops",
    "mel_of_file",
    "crop_at",
    "random_crop",
    "stream_audio",
    "whole_track_crops",
]
