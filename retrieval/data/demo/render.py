"""Note lists → audio: General MIDI synthesis with per-track variations, and the track audio files.

Synthesis runs in-process with ``tinysoundfont`` and the General MIDI SoundFont that ships inside
``pretty_midi`` (``pretty_midi/TimGM6mb.sf2``), at :data:`SAMPLE_RATE` Hz, mono. One piece gives
several different tracks: every render draws (from its own seeded generator, :func:`draw_settings`)

* the instrument (General MIDI program, :data:`INSTRUMENTS`), more often one that suits the source;
* the tempo, through a target pace in note onsets per second (``bpm = 60 · pace / onsets_per_quarter``);
* loudness: MIDI velocity and an output gain in dB;
* reverb: convolution with an exponentially decaying noise impulse response,
  ``h(t) = n(t) · exp(−6.91 t / RT60)`` (−60 dB after RT60 seconds), mixed ``(1 − wet)·x + wet·(h * x)``;
* register: transposition by whole octaves;
* where the excerpt of ``seconds`` starts within the piece.

Each track is written as OGG Vorbis, atomically, with a JSON Vorbis comment holding the hash of its
inputs and the features measured on it, so an interrupted build can reuse finished tracks.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from retrieval.data.demo.analysis import NoteList, distinct_onsets, estimate_key, mean_pitch
from retrieval.fileio import atomic_path

SAMPLE_RATE = 22_050
"""Hz, the corpus' audio rate (the rate of the models' mel front end)."""

INSTRUMENTS: dict[str, int] = {
    "piano": 0,
    "harpsichord": 6,
    "celesta": 8,
    "music box": 10,
    "organ": 19,
    "accordion": 21,
    "harmonica": 22,
    "guitar": 24,
    "violin": 40,
    "cello": 42,
    "harp": 46,
    "strings": 48,
    "choir": 52,
    "brass": 61,
    "clarinet": 71,
    "flute": 73,
    "recorder": 74,
    "pan flute": 75,
    "synth pad": 89,
    "banjo": 105,
    "bagpipes": 109,
}
"""Instrument tag → General MIDI program number (0-based)."""

# How often a render uses one of the source's typical instruments rather than any instrument.
TYPICAL_INSTRUMENT_PROBABILITY = 0.65
# Velocity (MIDI 1-127) and output gain ranges; per-note velocity jitter (standard deviation).
VELOCITY_RANGE = (35, 120)
VELOCITY_JITTER = 6.0
GAIN_DB_RANGE = (-14.0, 0.0)
# Reverb: probability of any reverb, wet-mix range and RT60 range (seconds).
REVERB_PROBABILITY = 0.7
REVERB_WET_RANGE = (0.1, 0.6)
REVERB_RT60_RANGE = (0.3, 3.0)
# Octave transpositions and their probabilities.
TRANSPOSE_OCTAVES = (-1, 0, 1)
TRANSPOSE_PROBABILITIES = (0.2, 0.6, 0.2)
# Tempo limits (quarter notes per minute) whatever the target pace asks for.
BPM_RANGE = (20.0, 400.0)
# Playable MIDI range after transposition, and the decibels of the −60 dB reverb decay.
MIDI_RANGE = (21, 108)
_DECAY_DB = 60.0
# Peak level the output is scaled down to if it would clip, and the floor of RMS level in dBFS.
PEAK_LIMIT = 0.99
SILENCE_DB = -120.0
# A short release after the excerpt so the last notes do not stop with a click.
RELEASE_SECONDS = 0.05
# Time to run the synthesiser after silencing it, so released voices are freed before the next render.
_FLUSH_SECONDS = 0.25
# Drum channel of General MIDI: never used for melodic parts.
_DRUM_CHANNEL = 9
_MIDI_CHANNELS = 16


@dataclass(frozen=True)
class RenderSettings:
    """Everything drawn for one render, before the piece is parsed.

    Attributes:
        instrument: instrument tag (key of :data:`INSTRUMENTS`).
        pace: target note onsets per second.
        velocity: MIDI velocity of the notes (before jitter).
        gain_db: output gain in dB.
        reverb_wet: wet share of the reverb mix (0 = dry).
        reverb_rt60: reverb decay time to −60 dB, seconds.
        transpose: octaves of transposition.
        start: excerpt start as a fraction of the piece's length (0…1).
        seconds: excerpt length in seconds.
        seed: seed of this render's note jitter and impulse response.
    """

    instrument: str
    pace: float
    velocity: int
    gain_db: float
    reverb_wet: float
    reverb_rt60: float
    transpose: int
    start: float
    seconds: float
    seed: int


def draw_settings(
    rng: np.random.Generator, typical: tuple[str, ...], pace: tuple[float, float], seconds: float
) -> RenderSettings:
    """Draw one render's settings.

    Args:
        rng: this render's generator (seeded per track by the caller).
        typical: instrument tags typical of the source (drawn with probability
            :data:`TYPICAL_INSTRUMENT_PROBABILITY`, otherwise any instrument).
        pace: (low, high) onsets per second; drawn log-uniformly.
        seconds: excerpt length.
    """
    names = sorted(INSTRUMENTS)
    pool = typical if typical and rng.random() < TYPICAL_INSTRUMENT_PROBABILITY else names
    instrument = str(pool[rng.integers(len(pool))])
    reverb = rng.random() < REVERB_PROBABILITY
    return RenderSettings(
        instrument=instrument,
        pace=round(float(np.exp(rng.uniform(np.log(pace[0]), np.log(pace[1])))), 4),
        velocity=int(rng.integers(VELOCITY_RANGE[0], VELOCITY_RANGE[1] + 1)),
        gain_db=round(float(rng.uniform(*GAIN_DB_RANGE)), 3),
        reverb_wet=round(float(rng.uniform(*REVERB_WET_RANGE)), 3) if reverb else 0.0,
        reverb_rt60=round(float(rng.uniform(*REVERB_RT60_RANGE)), 3) if reverb else 0.0,
        transpose=int(rng.choice(TRANSPOSE_OCTAVES, p=TRANSPOSE_PROBABILITIES)),
        start=round(float(rng.random()), 4),
        seconds=float(seconds),
        seed=int(rng.integers(2**31)),
    )


@dataclass(frozen=True)
class TrackFeatures:
    """What is measured on one rendered track (the inputs of the mood and activity rules).

    Attributes:
        instrument: the instrument tag played.
        bpm: tempo used, quarter notes per minute.
        pace: distinct note onsets per second in the excerpt.
        mode: ``"major"`` / ``"minor"`` estimated from the excerpt's notes.
        mode_correlation: correlation of the winning key profile (tonal clarity).
        tonic: estimated tonic pitch class.
        register: duration-weighted mean sounding MIDI pitch.
        loudness_db: RMS level of the written audio in dBFS.
        reverb_wet: reverb wet share.
        reverb_rt60: reverb decay time in seconds.
        n_parts: number of parts (voices) playing.
    """

    instrument: str
    bpm: float
    pace: float
    mode: str
    mode_correlation: float
    tonic: int
    register: float
    loudness_db: float
    reverb_wet: float
    reverb_rt60: float
    n_parts: int


def soundfont_path() -> Path:
    """The General MIDI SoundFont shipped inside ``pretty_midi`` (found without importing it)."""
    spec = importlib.util.find_spec("pretty_midi")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("pretty_midi is not installed; its TimGM6mb.sf2 SoundFont renders the demo corpus")
    return Path(next(iter(spec.submodule_search_locations))) / "TimGM6mb.sf2"


class Synthesizer:
    """A ``tinysoundfont`` synthesiser with the General MIDI SoundFont loaded (one per process).

    Example:
        >>> synth = Synthesizer()  # doctest: +SKIP
        >>> audio, features = synth.render(notes, settings)  # doctest: +SKIP
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE, soundfont: Path | None = None):
        import tinysoundfont

        self.sample_rate = sample_rate
        self._synth = tinysoundfont.Synth(samplerate=sample_rate)
        self._sfid = self._synth.sfload(str(soundfont or soundfont_path()))

    def render(
        self, notes: NoteList, settings: RenderSettings, studio: Studio | None = None
    ) -> tuple[np.ndarray, TrackFeatures]:
        """Render an excerpt of ``notes`` with ``settings``.

        Args:
            notes: the whole piece.
            settings: this render's settings.
            studio: the EQ and room of an other-render track (None: the demo corpus's plain reverb).

        Returns:
            ``(audio, features)``: audio is float32, shape ``(round(seconds · sample_rate),)``,
            peak ≤ :data:`PEAK_LIMIT`; features are measured on the excerpt and the audio.

        Raises:
            ValueError: the piece has no notes.
        """
        if not len(notes):
            raise ValueError("the piece has no notes")
        per_quarter = notes.onsets_per_quarter()
        bpm = float(np.clip(60.0 * settings.pace / per_quarter, *BPM_RANGE))
        seconds_per_quarter = 60.0 / bpm
        length_q = settings.seconds / seconds_per_quarter
        # Start on a note, anywhere in the first pass that leaves room for the excerpt (repeat if short).
        start_q = notes.next_onset(settings.start * max(notes.length - length_q, 0.0))
        excerpt = notes.excerpt(start_q, length_q).transposed(12 * settings.transpose, *MIDI_RANGE)
        rng = np.random.default_rng(settings.seed)
        n_samples = int(round(settings.seconds * self.sample_rate))
        dry = self._synthesize(excerpt, seconds_per_quarter, settings, rng, n_samples)
        if studio is None:
            audio = _reverb(dry, settings.reverb_wet, settings.reverb_rt60, self.sample_rate, rng)
        else:
            audio = studio.apply(dry, settings, self.sample_rate, rng)
        audio = audio * 10.0 ** (settings.gain_db / 20.0)
        peak = float(np.abs(audio).max()) if audio.size else 0.0
        if peak > PEAK_LIMIT:
            audio = audio * (PEAK_LIMIT / peak)
        audio = audio.astype(np.float32)
        key = estimate_key(excerpt.pitch, excerpt.duration)
        rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
        features = TrackFeatures(
            instrument=settings.instrument,
            bpm=round(bpm, 3),
            pace=round(distinct_onsets(excerpt.onset) / settings.seconds, 4),
            mode=key.mode,
            mode_correlation=round(key.correlation, 4),
            tonic=key.tonic,
            register=round(mean_pitch(excerpt), 3),
            loudness_db=round(max(20.0 * np.log10(rms), SILENCE_DB) if rms > 0 else SILENCE_DB, 3),
            reverb_wet=settings.reverb_wet,
            reverb_rt60=settings.reverb_rt60,
            n_parts=excerpt.n_parts,
        )
        return audio, features

    def _reset(self) -> None:
        """Silence every voice and let the quick releases finish, so each render starts from the same
        state whatever was rendered before (renders must not depend on their order)."""
        self._synth.sounds_off()
        flush = int(_FLUSH_SECONDS * self.sample_rate)
        if np.any(_generate(self._synth, flush)[-1]):
            raise RuntimeError("the synthesiser did not fall silent after sounds_off")

    def _synthesize(
        self,
        notes: NoteList,
        seconds_per_quarter: float,
        settings: RenderSettings,
        rng: np.random.Generator,
        n_samples: int,
    ) -> np.ndarray:
        """Play the excerpt's note events through the synthesiser; mono float32 of ``n_samples``."""
        synth = self._synth
        self._reset()
        channels = [c for c in range(_MIDI_CHANNELS) if c != _DRUM_CHANNEL]
        program = INSTRUMENTS[settings.instrument]
        for channel in channels:
            synth.program_select(channel, self._sfid, 0, program)
        channel_of = np.asarray(channels)[notes.part % len(channels)]
        # Parts sum in the synthesiser: scale velocity down a little for dense textures.
        velocity = settings.velocity - 4 * np.log2(max(notes.n_parts, 1)) + rng.normal(0, VELOCITY_JITTER, len(notes))
        velocity = np.clip(np.round(velocity), 1, 127).astype(int)
        start = np.round(notes.onset * seconds_per_quarter * self.sample_rate).astype(np.int64)
        stop = np.round((notes.onset + notes.duration) * seconds_per_quarter * self.sample_rate).astype(np.int64)
        stop = np.minimum(np.maximum(stop, start + 1), n_samples)
        # Events: (sample, kind, note index); offs (kind 0) before ons (kind 1) at the same sample.
        times = np.concatenate([stop, start])
        kinds = np.concatenate([np.zeros(len(notes), int), np.ones(len(notes), int)])
        index = np.concatenate([np.arange(len(notes)), np.arange(len(notes))])
        order = np.lexsort((index, kinds, times))
        out = np.zeros((n_samples, 2), dtype=np.float32)
        position = 0
        for t, kind, i in zip(times[order], kinds[order], index[order], strict=True):
            if t > position:
                out[position:t] = _generate(synth, t - position)
                position = int(t)
            if kind:
                synth.noteon(int(channel_of[i]), int(notes.pitch[i]), int(velocity[i]))
            else:
                synth.noteoff(int(channel_of[i]), int(notes.pitch[i]))
        if position < n_samples:
            out[position:] = _generate(synth, n_samples - position)
        fade = min(int(RELEASE_SECONDS * self.sample_rate), n_samples)
        mono = out.mean(axis=1)
        if fade:
            mono[n_samples - fade :] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
        return mono


def _generate(synth, n: int) -> np.ndarray:
    """``n`` stereo frames from the synthesiser, shape (n, 2)."""
    return np.frombuffer(synth.generate_simple(int(n)), dtype=np.float32).reshape(-1, 2)


def impulse_response(
    rt60: float, sample_rate: int, rng: np.random.Generator, predelay: float = 0.0, damping: float = 0.0
) -> np.ndarray:
    """A seeded exponentially decaying noise impulse response, unit energy, ``predelay + rt60`` seconds long.

    ``h(t) = n(t − d) · 10^(−3 (t − d) / RT60)`` for ``t ≥ d`` (−60 dB at ``t = d + RT60``), ``n`` standard normal
    noise, low-passed by the one-pole ``y[i] = (1 − a)·n[i] + a·y[i − 1]`` with ``a = damping`` (a darker room;
    0 = white noise), ``d = predelay`` seconds of silence.
    """
    n = max(int(rt60 * sample_rate), 1)
    t = np.arange(n) / sample_rate
    noise = rng.standard_normal(n)
    if damping > 0:
        from scipy.signal import lfilter

        noise = lfilter([1.0 - damping], [1.0, -damping], noise)
    h = noise * 10.0 ** (-(_DECAY_DB / 20.0) * t / rt60)
    if predelay > 0:
        h = np.concatenate([np.zeros(int(predelay * sample_rate)), h])
    return h / np.linalg.norm(h)


def _reverb(
    dry: np.ndarray,
    wet: float,
    rt60: float,
    sample_rate: int,
    rng: np.random.Generator,
    predelay: float = 0.0,
    damping: float = 0.0,
) -> np.ndarray:
    """``(1 − wet)·x + wet·(h * x)`` truncated to the input length; ``x`` unchanged when ``wet = 0``."""
    if wet <= 0 or rt60 <= 0:
        return dry.astype(np.float64)
    from scipy.signal import fftconvolve

    h = impulse_response(rt60, sample_rate, rng, predelay, damping)
    reverberant = fftconvolve(dry.astype(np.float64), h)[: dry.shape[0]]
    # Match the reverberant signal's level to the dry one so the mix changes colour, not loudness.
    dry_rms = np.sqrt(np.mean(np.square(dry, dtype=np.float64)))
    wet_rms = np.sqrt(np.mean(np.square(reverberant)))
    if wet_rms > 0:
        reverberant *= dry_rms / wet_rms
    return (1.0 - wet) * dry + wet * reverberant


@dataclass(frozen=True)
class Studio:
    """What an other-render track goes through besides its :class:`RenderSettings`: an EQ and another room.

    The generalisation set (:mod:`retrieval.data.demo.other_render`) plays held-out pieces through another
    SoundFont and then through this chain: three RBJ-cookbook biquads (a low shelf at :data:`LOW_SHELF_HZ`, a
    peaking band, a high shelf at :data:`HIGH_SHELF_HZ`), then :func:`_reverb` with a pre-delay and a damped
    (low-passed) tail where the demo corpus's room is a plain noise tail.

    Attributes:
        soundfont: path of the SoundFont played.
        sample_rate: Hz the track is synthesised and written at.
        low_shelf_db, high_shelf_db: shelf gains in dB.
        peak_db, peak_hz: the peaking band's gain (dB) and centre (Hz), Q = 1.
        predelay: seconds of silence before the reverb tail.
        damping: the tail's one-pole low-pass coefficient (0…1).
    """

    soundfont: str
    sample_rate: int
    low_shelf_db: float
    high_shelf_db: float
    peak_db: float
    peak_hz: float
    predelay: float
    damping: float

    def apply(
        self, dry: np.ndarray, settings: RenderSettings, sample_rate: int, rng: np.random.Generator
    ) -> np.ndarray:
        """EQ then room: float64 of ``dry``'s length."""
        from scipy.signal import sosfilt

        sos = np.stack([
            _biquad("lowshelf", LOW_SHELF_HZ, self.low_shelf_db, sample_rate),
            _biquad("peak", self.peak_hz, self.peak_db, sample_rate),
            _biquad("highshelf", HIGH_SHELF_HZ, self.high_shelf_db, sample_rate),
        ])
        coloured = sosfilt(sos, dry.astype(np.float64))
        return _reverb(coloured, settings.reverb_wet, settings.reverb_rt60, sample_rate, rng, self.predelay,
                       self.damping)


LOW_SHELF_HZ = 250.0
HIGH_SHELF_HZ = 4000.0


def _biquad(kind: str, frequency: float, gain_db: float, sample_rate: int) -> np.ndarray:
    """One second-order section ``[b0, b1, b2, 1, a1, a2]`` (:func:`retrieval.augment.signal.rbj_biquad`)."""
    from retrieval.augment.signal import rbj_biquad

    return np.concatenate(rbj_biquad(kind, frequency, gain_db, sample_rate))


def write_track(path: Path, audio: np.ndarray, comment: dict, sample_rate: int = SAMPLE_RATE) -> None:
    """Write mono ``audio`` as OGG Vorbis at ``path``, atomically, with ``comment`` as JSON metadata."""
    import soundfile as sf

    with atomic_path(path) as tmp:
        with sf.SoundFile(tmp, "w", samplerate=sample_rate, channels=1, format="OGG", subtype="VORBIS") as f:
            f.comment = json.dumps(comment, sort_keys=True)
            f.write(audio)


def read_track_comment(path: Path) -> dict | None:
    """The JSON comment of a track written by :func:`write_track`; None if missing or unreadable."""
    import soundfile as sf

    try:
        with sf.SoundFile(path) as f:
            return json.loads(f.comment)
    except (OSError, RuntimeError, ValueError, sf.LibsndfileError):
        return None


def features_to_dict(features: TrackFeatures) -> dict:
    """Plain-dict form of :class:`TrackFeatures` (JSON-ready)."""
    return asdict(features)
