"""The tag rules of the demo corpus: every tag, its category and its documented source.

Tags cover the seven MSD500 categories and come from three kinds of source, recorded per tag in
``manifest.json``:

* ``"catalogue metadata"`` — facts about the source piece (:mod:`~retrieval.data.demo.sources`):
  genre from the collection, era and song type; location from its region; language from its text;
  decade from the date of the collection or work; activity from the dance type in the tune's
  ``R:`` field or title (jig, reel, hornpipe, strathspey, march, waltz, polka, ...) and from song
  types (lullaby → sleep, religious song or sacred vocal source → worship, drinking song → drinking,
  work song → work, wedding song → wedding).
* ``"render settings"`` — the instrument (General MIDI program) the track was rendered with.
* ``"mood rule: ..."`` / ``"activity rule: ..."`` — rules over what can be heard, measured on the
  rendered excerpt (:class:`~retrieval.data.demo.render.TrackFeatures`): pace (note onsets per
  second), loudness (RMS dBFS), mode estimated from the notes, register (mean MIDI pitch),
  instrument and reverb. :data:`RULES` lists them with their thresholds.

Scores imitate Last.fm's 0–100 tag scores: a true tag scores uniformly in [50, 100], except a share
:data:`WEAK_SHARE` of them that score below 50 (weak annotations); each track also receives about
:data:`NOISE_TAGS_PER_TRACK` wrong tags scoring below 50 (noisy annotations), so the usual
``score ≥ 50`` filter matters. ``original_tag`` spells the tag as a Last.fm user might (title case,
hyphens, capitals); ``cleaned_tag`` is the canonical lowercase tag.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from retrieval.data.demo.sources import Collection, Piece, piece_language, piece_location, piece_year

CATALOGUE = "catalogue metadata"
RENDER = "render settings"

# --- thresholds of the audible rules -------------------------------------------------------------
SLOW_PACE = 2.2
"""Note onsets per second below which an excerpt counts as slow."""
FAST_PACE = 4.8
"""Note onsets per second above which an excerpt counts as fast."""
SOFT_DB = -39.0
"""RMS level (dBFS) below which a track counts as soft."""
LOUD_DB = -29.5
"""RMS level (dBFS) above which a track counts as loud."""
LOW_REGISTER = 58.0
"""Mean MIDI pitch below which the register counts as low (58 = B♭3)."""
HIGH_REGISTER = 76.0
"""Mean MIDI pitch above which the register counts as high (76 = E5)."""
MODE_CONFIDENCE = 0.6
"""Minimum key-profile correlation for the major/minor estimate to be used by a rule."""
REVERB_WET = 0.3
"""Wet share from which a track counts as reverberant (together with :data:`REVERB_RT60`)."""
REVERB_RT60 = 1.2
"""Reverb decay time (s) from which a track counts as reverberant."""

DREAMY_INSTRUMENTS = frozenset({"synth pad", "harp", "celesta", "strings", "music box"})
SOLEMN_INSTRUMENTS = frozenset({"organ", "choir", "brass"})
LIGHT_INSTRUMENTS = frozenset(
    {"piano", "celesta", "music box", "flute", "clarinet", "recorder", "banjo", "harpsichord", "pan flute"}
)

# --- scores -------------------------------------------------------------------------------------
SCORE_THRESHOLD = 50
"""Scores ≥ this count as annotations (the MSD500 cleaning threshold)."""
WEAK_SHARE = 0.08
"""Share of true annotations given a weak score below :data:`SCORE_THRESHOLD`."""
NOISE_TAGS_PER_TRACK = 0.6
"""Mean number of wrong, low-score tags per track (Poisson)."""
NOISE_SCORE_RANGE = (1, 45)
WEAK_SCORE_RANGE = (20, 49)

# Spellings of original_tag: (probability, function of the cleaned tag).
_SPELLINGS: tuple[tuple[float, Callable[[str], str]], ...] = (
    (0.6, lambda t: t),
    (0.25, lambda t: t.title()),
    (0.1, lambda t: t.replace(" ", "-")),
    (0.05, lambda t: t.upper()),
)


@dataclass(frozen=True)
class Rule:
    """A tag given by a rule over the audible features of a track.

    Attributes:
        tag: the tag.
        category: its MSD500 category.
        description: the rule in words, recorded as the tag's source.
        test: features DataFrame → boolean Series (which tracks get the tag).
    """

    tag: str
    category: str
    description: str
    test: Callable[[pd.DataFrame], pd.Series]

    @property
    def source(self) -> str:
        return f"{self.category if self.category == 'mood' else 'activity'} rule: {self.description}"


def _slow(f: pd.DataFrame) -> pd.Series:
    return f["pace"] < SLOW_PACE


def _fast(f: pd.DataFrame) -> pd.Series:
    return f["pace"] > FAST_PACE


def _soft(f: pd.DataFrame) -> pd.Series:
    return f["loudness_db"] < SOFT_DB


def _loud(f: pd.DataFrame) -> pd.Series:
    return f["loudness_db"] > LOUD_DB


def _major(f: pd.DataFrame) -> pd.Series:
    return (f["mode"] == "major") & (f["mode_correlation"] >= MODE_CONFIDENCE)


def _minor(f: pd.DataFrame) -> pd.Series:
    return (f["mode"] == "minor") & (f["mode_correlation"] >= MODE_CONFIDENCE)


def _reverberant(f: pd.DataFrame) -> pd.Series:
    return (f["reverb_wet"] >= REVERB_WET) & (f["reverb_rt60"] >= REVERB_RT60)


def _plays(instruments: frozenset[str]) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda f: f["instrument"].isin(instruments)


RULES: tuple[Rule, ...] = (
    Rule("happy", "mood", "major + fast", lambda f: _major(f) & _fast(f)),
    Rule("sad", "mood", "minor + slow", lambda f: _minor(f) & _slow(f)),
    Rule(
        "melancholic",
        "mood",
        "minor + not fast + (soft or reverberant)",
        lambda f: _minor(f) & ~_fast(f) & (_soft(f) | _reverberant(f)),
    ),
    Rule(
        "dreamy",
        "mood",
        "not fast + pad/harp/celesta/strings/music box + reverberant",
        lambda f: ~_fast(f) & _plays(DREAMY_INSTRUMENTS)(f) & _reverberant(f),
    ),
    Rule("energetic", "mood", "fast + loud", lambda f: _fast(f) & _loud(f)),
    Rule("calm", "mood", "slow + soft", lambda f: _slow(f) & _soft(f)),
    Rule("peaceful", "mood", "slow + major + not loud", lambda f: _slow(f) & _major(f) & ~_loud(f)),
    Rule("dark", "mood", "minor + low register", lambda f: _minor(f) & (f["register"] < LOW_REGISTER)),
    Rule("bright", "mood", "major + high register", lambda f: _major(f) & (f["register"] > HIGH_REGISTER)),
    Rule("solemn", "mood", "slow + organ/choir/brass", lambda f: _slow(f) & _plays(SOLEMN_INSTRUMENTS)(f)),
    Rule(
        "playful",
        "mood",
        "fast + major + piano/celesta/music box/flute/clarinet/recorder/banjo/harpsichord/pan flute",
        lambda f: _fast(f) & _major(f) & _plays(LIGHT_INSTRUMENTS)(f),
    ),
    Rule("intense", "mood", "not slow + loud + minor", lambda f: ~_slow(f) & _loud(f) & _minor(f)),
    Rule("relaxing", "mood", "not fast + soft + reverberant", lambda f: ~_fast(f) & _soft(f) & _reverberant(f)),
    Rule("sleep", "activity", "slow + soft", lambda f: _slow(f) & _soft(f)),
    Rule("party", "activity", "fast + loud + major", lambda f: _fast(f) & _loud(f) & _major(f)),
    Rule(
        "study",
        "activity",
        "not fast + soft + no choir",
        lambda f: ~_fast(f) & _soft(f) & (f["instrument"] != "choir"),
    ),
)
"""The audible rules, applied to every track's measured features."""

# --- catalogue keyword rules ----------------------------------------------------------------------
DANCES: tuple[tuple[str, str], ...] = (
    (r"jig", "jig"),
    (r"\breel", "reel"),
    (r"hornpipe", "hornpipe"),
    (r"strathspey|strathsy", "strathspey"),
    (r"\bclog", "clog"),
    (r"waltz", "waltz"),
    (r"polka", "polka"),
    (r"minuet", "minuet"),
    (r"\bmarch|quick ?step", "march"),
)
"""Regex over the tune's ``R:`` field (first) or title → dance-type activity tag."""

MARCH = "march"
FIDDLE_TUNE_DANCES = frozenset({"jig", "reel", "hornpipe", "strathspey", "clog"})
"""Dance types played as fiddle tunes (→ genre ``fiddle tune``)."""

SONG_TYPES: tuple[tuple[str, str, str], ...] = (
    (r"liebe", "genre", "love song"),
    (r"ballade|romanze", "genre", "ballad"),
    (r"religi|geistlich", "genre", "hymn"),
    (r"religi|geistlich", "activity", "worship"),
    (r"kinder", "genre", "children's song"),
    (r"wiegen", "genre", "lullaby"),
    (r"wiegen", "activity", "sleep"),
    (r"soldat|krieg", "genre", "soldier song"),
    (r"trink|zech", "activity", "drinking"),
    (r"hochzeit", "activity", "wedding"),
    (r"tanz", "activity", "dance"),
    (r"xiaodiao", "genre", "xiaodiao"),
    (r"shange", "genre", "mountain song"),
    (r"haozi", "genre", "work song"),
    (r"haozi", "activity", "work"),
)
"""Regex over the song-type field (Essen ``R:``) → (category, tag)."""


def decade_tag(year: int) -> str:
    """The decade tag of a year: centuries before 1800 (``"1500s"``), decades from 1800 (``"1880s"``).

    Dates of early music are rarely known to the decade, so they are tagged by century.
    """
    if year < 1800:
        return f"{year // 100 * 100}s"
    return f"{year // 10 * 10}s"


def dance_of(piece: Piece) -> str | None:
    """The dance type of a tune from its ``R:`` field, else its title; None when neither names one."""
    for text in (piece.rhythm, piece.title.lower()):
        for pattern, tag in DANCES:
            if re.search(pattern, text):
                return tag
    return None


def catalogue_tags(piece: Piece, collection: Collection) -> list[tuple[str, str]]:
    """(tag, category) pairs a piece carries from its catalogue metadata, without duplicates."""
    tags: list[tuple[str, str]] = [(g, "genre") for g in collection.genres]
    location = piece_location(piece, collection)
    if location:
        tags.append((location, "location"))
    language = piece_language(piece, collection)
    if language:
        tags.append((language, "language"))
    year = piece_year(piece, collection)
    if year is not None:
        tags.append((decade_tag(year), "decade"))
    if collection.sacred:
        tags.append(("worship", "activity"))
    dance = dance_of(piece)
    if dance:
        tags.append((dance, "activity"))
        if dance != MARCH:
            tags.append(("dance", "activity"))
        if dance in FIDDLE_TUNE_DANCES:
            tags.append(("fiddle tune", "genre"))
    song_type = f"{piece.rhythm} {piece.path if 'kinder' in piece.path else ''}"
    for pattern, category, tag in SONG_TYPES:
        if re.search(pattern, song_type):
            tags.append((tag, category))
    return list(dict.fromkeys(tags))


def rule_tags(features: pd.DataFrame) -> pd.DataFrame:
    """Apply :data:`RULES` and the instrument to every track.

    Args:
        features: one row per track with a ``track_index`` column and the columns of
            :class:`~retrieval.data.demo.render.TrackFeatures`.

    Returns:
        Long table ``track_index, tag, category, source``.
    """
    frames = [
        pd.DataFrame(
            {
                "track_index": features["track_index"],
                "tag": features["instrument"],
                "category": "instrument",
                "source": RENDER,
            }
        )
    ]
    for rule in RULES:
        hit = rule.test(features).to_numpy(bool)
        frames.append(
            pd.DataFrame(
                {
                    "track_index": features["track_index"].to_numpy()[hit],
                    "tag": rule.tag,
                    "category": rule.category,
                    "source": rule.source,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def drop_rare(
    annotations: pd.DataFrame, min_tracks: int, min_artists: int, artist_of_track: np.ndarray
) -> tuple[pd.DataFrame, dict[str, dict[str, int]]]:
    """Drop tags carried by fewer than ``min_tracks`` tracks or fewer than ``min_artists`` artists.

    A tag held by a handful of artists cannot reach every split of an artist-level split.

    Args:
        annotations: long table with ``track_index, tag, category`` (true annotations).
        min_tracks: minimum distinct tracks per tag.
        min_artists: minimum distinct artists per tag.
        artist_of_track: (n_tracks,) artist of each track index.

    Returns:
        ``(kept annotations, {dropped tag: {"tracks": n, "artists": m}})``.
    """
    artist = artist_of_track[annotations["track_index"].to_numpy()]
    spread = (
        annotations.assign(artist=artist)
        .groupby("tag")
        .agg(tracks=("track_index", "nunique"), artists=("artist", "nunique"))
    )
    rare = spread[(spread["tracks"] < min_tracks) | (spread["artists"] < min_artists)]
    kept = annotations[~annotations["tag"].isin(rare.index)].reset_index(drop=True)
    return kept, {tag: {k: int(v) for k, v in row.items()} for tag, row in rare.sort_index().iterrows()}


def score_annotations(
    truth: pd.DataFrame, vocabulary: pd.DataFrame, n_tracks: int, rng: np.random.Generator
) -> pd.DataFrame:
    """Give Last.fm-like scores to the true annotations and add noisy low-score ones.

    Args:
        truth: true annotations ``track_index, tag, category`` (one row per pair), in a fixed order.
        vocabulary: the kept tags, ``tag, category``, in a fixed order.
        n_tracks: number of tracks (track indices are ``0 … n_tracks − 1``).
        rng: generator (one stream for the whole table, so scores are reproducible).

    Returns:
        ``track_index, tag, category, score, original_tag`` sorted by track then tag; true pairs
        score in [50, 100] except a :data:`WEAK_SHARE` in [20, 49]; noise pairs score in [1, 45].
    """
    scores = rng.integers(SCORE_THRESHOLD, 101, len(truth))
    weak = rng.random(len(truth)) < WEAK_SHARE
    scores[weak] = rng.integers(WEAK_SCORE_RANGE[0], WEAK_SCORE_RANGE[1] + 1, int(weak.sum()))
    scored = truth.assign(score=scores)
    # Noise: a Poisson number of random tags per track, minus any the track truly has.
    n_noise = rng.poisson(NOISE_TAGS_PER_TRACK, n_tracks)
    noise_track = np.repeat(np.arange(n_tracks), n_noise)
    noise_tag = rng.integers(0, len(vocabulary), noise_track.size)
    noise = pd.DataFrame(
        {
            "track_index": noise_track,
            "tag": vocabulary["tag"].to_numpy()[noise_tag],
            "category": vocabulary["category"].to_numpy()[noise_tag],
            "score": rng.integers(NOISE_SCORE_RANGE[0], NOISE_SCORE_RANGE[1] + 1, noise_track.size),
        }
    )
    noise = noise.drop_duplicates(["track_index", "tag"])
    known = pd.MultiIndex.from_frame(scored[["track_index", "tag"]])
    noise = noise[~pd.MultiIndex.from_frame(noise[["track_index", "tag"]]).isin(known)]
    table = pd.concat([scored, noise], ignore_index=True).sort_values(["track_index", "tag"], kind="stable")
    table = table.reset_index(drop=True)
    table["original_tag"] = spell(table["tag"], rng)
    return table


def spell(tags: pd.Series, rng: np.random.Generator) -> pd.Series:
    """Last.fm-style spellings of cleaned tags (as typed by users): mostly as is, else title case etc."""
    probabilities = np.array([p for p, _ in _SPELLINGS])
    choice = rng.choice(len(_SPELLINGS), size=len(tags), p=probabilities / probabilities.sum())
    values = tags.to_numpy(dtype=object)
    out = values.copy()
    for k, (_, spelling) in enumerate(_SPELLINGS):
        chosen = choice == k
        out[chosen] = [spelling(t) for t in values[chosen]]
    return pd.Series(out, index=tags.index, dtype=object)
