"""Note lists and what can be heard in them: key and mode, pace, register.

A score is reduced once to a :class:`NoteList` (parallel arrays of onsets, durations, MIDI pitches
and part indices, in quarter notes). Rendering takes excerpts of it; the mood rules of
:mod:`~retrieval.data.demo.tags` read the statistics computed here from the notes actually rendered,
never the key written in the score.

Mode estimation (Krumhansl & Kessler 1982; the Krumhansl–Schmuckler key-finding algorithm): build
a duration-weighted pitch-class histogram ``h`` (12,), correlate it with the 24 rotations of the
major and minor key profiles, and take the best:

    r(k) = corr(h, rotate(profile_mode(k), tonic(k)))    key = argmax_k r(k)

Example:
    >>> import numpy as np
    >>> c_major = np.array([60, 62, 64, 65, 67, 69, 71, 72])
    >>> estimate_key(c_major, np.array([4, 1, 2, 1, 2, 1, 1, 4.0])).mode
    'major'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from music21.stream import Score

PITCH_CLASSES = 12

# Krumhansl & Kessler (1982) probe-tone ratings, tonic first.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])

# Onsets closer than this (in quarter notes) count as one event when measuring pace (chords, voices).
_ONSET_RESOLUTION_Q = 1e-3


@dataclass(frozen=True)
class NoteList:
    """The notes of a piece as parallel arrays (times in quarter notes from the start of the piece).

    Attributes:
        onset: (n,) float64 onset times in quarter notes, sorted.
        duration: (n,) float64 durations in quarter notes (> 0).
        pitch: (n,) int64 MIDI note numbers.
        part: (n,) int64 index of the part (voice/instrument line) each note belongs to.
    """

    onset: np.ndarray
    duration: np.ndarray
    pitch: np.ndarray
    part: np.ndarray

    def __len__(self) -> int:
        return int(self.onset.shape[0])

    @property
    def length(self) -> float:
        """End of the last note, in quarter notes (0 for an empty list)."""
        return float((self.onset + self.duration).max()) if len(self) else 0.0

    @property
    def n_parts(self) -> int:
        return int(self.part.max()) + 1 if len(self) else 0

    def onsets_per_quarter(self) -> float:
        """Distinct onset times per quarter note over the whole list (chords count once)."""
        if not len(self) or self.length <= 0:
            return 0.0
        return distinct_onsets(self.onset) / self.length

    def excerpt(self, start: float, length: float) -> NoteList:
        """The notes sounding in ``[start, start + length)`` quarter notes, shifted to start at 0.

        A piece shorter than ``start + length`` is repeated end to end (folk tunes are played round
        several times), so the excerpt is always filled. Notes already sounding at ``start`` are kept
        from 0 with their remaining duration; notes running past the end are cut.

        Args:
            start: excerpt start in quarter notes (``0 <= start``).
            length: excerpt length in quarter notes (> 0).
        """
        if not len(self):
            return self
        period = self.length
        repeats = int(np.ceil((start + length) / period))
        shift = np.repeat(np.arange(repeats) * period, len(self))
        onset = np.tile(self.onset, repeats) + shift - start
        end = onset + np.tile(self.duration, repeats)
        keep = (end > 0) & (onset < length)
        onset, end = np.maximum(onset[keep], 0.0), np.minimum(end[keep], length)
        order = np.argsort(onset, kind="stable")
        return NoteList(
            onset[order],
            (end - onset)[order],
            np.tile(self.pitch, repeats)[keep][order],
            np.tile(self.part, repeats)[keep][order],
        )

    def next_onset(self, time: float) -> float:
        """The first onset at or after ``time`` (quarter notes), wrapping to the first onset of the piece."""
        after = self.onset[self.onset >= time]
        return float(after[0]) if after.size else float(self.onset[0])

    def transposed(self, semitones: int, low: int = 0, high: int = 127) -> NoteList:
        """Shift every pitch by ``semitones``, clipped to the MIDI range ``[low, high]``."""
        return NoteList(self.onset, self.duration, np.clip(self.pitch + semitones, low, high), self.part)


@dataclass(frozen=True)
class Key:
    """A key estimate.

    Attributes:
        tonic: pitch class of the tonic (0 = C … 11 = B).
        mode: ``"major"`` or ``"minor"``.
        correlation: Pearson correlation of the histogram with the winning profile (−1…1); how
            clearly tonal the notes are.
    """

    tonic: int
    mode: str
    correlation: float


def distinct_onsets(onset: np.ndarray) -> int:
    """Number of distinct onset times (within 1/1000 of a quarter note)."""
    if onset.size == 0:
        return 0
    return int(np.unique(np.round(onset / _ONSET_RESOLUTION_Q)).size)


def pitch_class_histogram(pitch: np.ndarray, duration: np.ndarray) -> np.ndarray:
    """Duration-weighted pitch-class histogram, shape (12,), summing to the total duration."""
    return np.bincount(np.asarray(pitch) % PITCH_CLASSES, weights=np.asarray(duration, float), minlength=PITCH_CLASSES)


def key_profiles() -> tuple[np.ndarray, list[tuple[int, str]]]:
    """The 24 rotated Krumhansl–Kessler profiles, shape (24, 12), and their (tonic, mode) labels."""
    shifts = (np.arange(PITCH_CLASSES)[None, :] - np.arange(PITCH_CLASSES)[:, None]) % PITCH_CLASSES
    profiles = np.concatenate([KK_MAJOR[shifts], KK_MINOR[shifts]])
    labels = [(t, "major") for t in range(PITCH_CLASSES)] + [(t, "minor") for t in range(PITCH_CLASSES)]
    return profiles, labels


def estimate_key(pitch: np.ndarray, duration: np.ndarray) -> Key:
    """Estimate key and mode from notes (Krumhansl–Schmuckler; the written key is ignored).

    Args:
        pitch: (n,) MIDI pitches.
        duration: (n,) durations (any unit; only proportions matter).

    Returns:
        The best-correlated of the 24 keys. With no notes or a flat histogram: C major with
        correlation 0.
    """
    hist = pitch_class_histogram(pitch, duration)
    centred = hist - hist.mean()
    if not np.any(centred):
        return Key(0, "major", 0.0)
    profiles, labels = key_profiles()
    prof = profiles - profiles.mean(axis=1, keepdims=True)
    corr = prof @ centred / (np.linalg.norm(prof, axis=1) * np.linalg.norm(centred))
    best = int(np.argmax(corr))
    tonic, mode = labels[best]
    return Key(tonic, mode, float(corr[best]))


def notes_from_score(score: Score) -> NoteList:
    """Flatten a music21 score into a :class:`NoteList` (ties merged, chord symbols and grace notes dropped).

    Each part (or the score itself when it has none) becomes one part index; every pitch of a chord
    is a note.
    """
    from music21 import harmony

    parts = list(score.parts) or [score]
    onsets: list[float] = []
    durations: list[float] = []
    pitches: list[int] = []
    part_ids: list[int] = []
    for index, part in enumerate(parts):
        for element in part.flatten().stripTies().notes:
            if isinstance(element, harmony.ChordSymbol):
                continue
            duration = float(element.duration.quarterLength)
            if duration <= 0:  # grace notes
                continue
            offset = float(element.offset)
            for p in element.pitches:
                onsets.append(offset)
                durations.append(duration)
                pitches.append(int(round(p.ps)))
                part_ids.append(index)
    onset = np.asarray(onsets, dtype=np.float64)
    order = np.argsort(onset, kind="stable")
    return NoteList(
        onset[order],
        np.asarray(durations, np.float64)[order],
        np.asarray(pitches, np.int64)[order],
        np.asarray(part_ids, np.int64)[order],
    )


def mean_pitch(notes: NoteList) -> float:
    """Duration-weighted mean MIDI pitch (the register; 60 = middle C). NaN for no notes."""
    if not len(notes):
        return float("nan")
    return float(np.average(notes.pitch, weights=notes.duration))
