"""A SIMULATED Taste Profile: synthetic listeners and their play counts (``train_triplets.txt``).

Nothing here comes from real listeners. The simulation exists so that the demo corpus has
listening data that carries information the audio does not, as the real Echo Nest Taste Profile
does: in the paper, listening data beats audio on location and language tags.

Model. Each track has categorical attributes in *families*; some are not audible (location,
language, collection, decade), some are (instrument, pace band, loudness band). Each listener
likes one or two values of every family (drawn in proportion to how common the value is). A
listener's affinity for a track is the weighted number of liked values it has,

    a(u, i) = Σ_f w_f · [value_f(i) ∈ liked_f(u)],   weights :data:`FAMILY_WEIGHTS`

with the non-audible families weighted most, so tastes follow region, language and era more than
sound. Tracks also have a long-tailed popularity ``log p_i ~ N(0, POPULARITY_SIGMA²)``. Listener
``u`` plays ``k_u ~ LogNormal(log MEDIAN_SONGS, SONGS_SIGMA²)`` distinct songs, drawn without
replacement with probability ∝ ``exp(β·a(u, i)) · p_i`` (Gumbel top-k), each with a Zipf-distributed
play count (exponent :data:`ZIPF_EXPONENT`: most counts are 1–3, a few are large).

A share :data:`UNPLAYED_SHARE` of the tracks is never played by anyone (as catalogue songs missing
from the real Taste Profile), so downstream code must handle tracks without listening data.
User ids are random-looking 40-hex strings, like the real file's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

FAMILY_WEIGHTS: dict[str, float] = {
    "location": 2.0,
    "language": 1.5,
    "collection": 1.0,
    "decade": 1.0,
    "instrument": 0.8,
    "pace": 0.6,
    "loudness": 0.4,
}
"""Weight of each attribute family in a listener's affinity (non-audible families first)."""

AFFINITY_SCALE = 1.5
"""β: how strongly affinity (vs popularity) decides what a listener plays."""
POPULARITY_SIGMA = 1.0
MEDIAN_SONGS = 20
"""Median number of distinct songs a listener plays."""
SONGS_SIGMA = 0.9
ZIPF_EXPONENT = 2.3
MAX_PLAY_COUNT = 2000
SECOND_FAVOURITE_PROBABILITY = 0.5
"""Probability that a listener likes a second value of a family."""
UNPLAYED_SHARE = 0.03
"""Share of tracks nobody plays (at least one track when there are two or more)."""
LISTENERS_PER_TRACK = 1.0
MIN_LISTENERS = 20
USER_ID_BYTES = 20
# Users per block when computing the (users × tracks) affinity, to bound memory.
_BLOCK_USERS = 512


@dataclass(frozen=True)
class TasteProfile:
    """Simulated play triplets.

    Attributes:
        users: (n,) user id of each triplet (40 hex characters).
        songs: (n,) song id of each triplet.
        counts: (n,) int64 play counts (≥ 1).
        n_listeners: number of simulated listeners (each plays at least one song).
        unplayed: song ids deliberately absent from the profile.
    """

    users: np.ndarray
    songs: np.ndarray
    counts: np.ndarray
    n_listeners: int
    unplayed: tuple[str, ...]


def n_listeners_for(n_tracks: int) -> int:
    """How many listeners a corpus of ``n_tracks`` gets: ``max(MIN_LISTENERS, LISTENERS_PER_TRACK · n)``."""
    return max(MIN_LISTENERS, int(round(LISTENERS_PER_TRACK * n_tracks)))


def simulate_taste_profile(
    attributes: pd.DataFrame, song_ids: np.ndarray, n_listeners: int, rng: np.random.Generator
) -> TasteProfile:
    """Simulate listeners and their plays.

    Args:
        attributes: one row per track (aligned with ``song_ids``), one string column per family of
            :data:`FAMILY_WEIGHTS`; an empty string means "unknown" (never liked).
        song_ids: (n_tracks,) song ids.
        n_listeners: number of listeners.
        rng: generator.

    Returns:
        The triplets, grouped by listener.
    """
    n_tracks = len(song_ids)
    song_ids = np.asarray(song_ids, dtype=object)
    n_unplayed = max(1, int(round(UNPLAYED_SHARE * n_tracks))) if n_tracks >= 2 else 0
    unplayed = np.sort(rng.choice(n_tracks, n_unplayed, replace=False))
    playable = np.ones(n_tracks, bool)
    playable[unplayed] = False

    liked, track_values = _likes(attributes, n_listeners, rng)
    log_popularity = rng.normal(0.0, POPULARITY_SIGMA, n_tracks)
    n_songs = np.clip(
        np.round(rng.lognormal(np.log(MEDIAN_SONGS), SONGS_SIGMA, n_listeners)), 1, int(playable.sum())
    ).astype(np.int64)
    user_ids = _user_ids(n_listeners, rng)

    chosen_users, chosen_songs = [], []
    for start in range(0, n_listeners, _BLOCK_USERS):
        block = slice(start, min(start + _BLOCK_USERS, n_listeners))
        affinity = sum(FAMILY_WEIGHTS[f] * (liked[f][block] @ track_values[f].T) for f in FAMILY_WEIGHTS)
        logits = AFFINITY_SCALE * affinity + log_popularity[None, :]
        logits[:, ~playable] = -np.inf
        keys = logits + rng.gumbel(size=logits.shape)
        order = np.argsort(-keys, axis=1, kind="stable")
        rank_ok = np.arange(n_tracks)[None, :] < n_songs[block, None]
        rows, ranks = np.nonzero(rank_ok)
        chosen_users.append(rows + start)
        chosen_songs.append(order[rows, ranks])
    users = np.concatenate(chosen_users)
    songs = np.concatenate(chosen_songs)
    counts = np.minimum(rng.zipf(ZIPF_EXPONENT, users.size), MAX_PLAY_COUNT).astype(np.int64)
    return TasteProfile(
        users=user_ids[users],
        songs=song_ids[songs],
        counts=counts,
        n_listeners=n_listeners,
        unplayed=tuple(song_ids[unplayed]),
    )


def _likes(
    attributes: pd.DataFrame, n_listeners: int, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per family: the listeners' liked values (n_listeners × n_values, 0/1) and the tracks'
    one-hot values (n_tracks × n_values)."""
    liked, track_values = {}, {}
    for family in FAMILY_WEIGHTS:
        codes, values = pd.factorize(attributes[family].fillna("").astype(str), sort=True)
        known = values != ""
        one_hot = np.zeros((len(codes), len(values)))
        one_hot[np.arange(len(codes)), codes] = 1.0
        one_hot[:, ~known] = 0.0
        frequency = one_hot.sum(axis=0)
        likes = np.zeros((n_listeners, len(values)))
        if frequency.sum() > 0:
            draws = rng.choice(len(values), size=(n_listeners, 2), p=frequency / frequency.sum())
            likes[np.arange(n_listeners), draws[:, 0]] = 1.0
            second = rng.random(n_listeners) < SECOND_FAVOURITE_PROBABILITY
            likes[np.flatnonzero(second), draws[second, 1]] = 1.0
        liked[family], track_values[family] = likes, one_hot
    return liked, track_values


def _user_ids(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct random 40-hex user ids."""
    raw = rng.integers(0, 256, size=(n, USER_ID_BYTES), dtype=np.uint8)
    ids = np.array([row.tobytes().hex() for row in raw], dtype=object)
    if len(set(ids)) != n:  # 160 random bits: a collision means a broken generator
        raise RuntimeError("duplicate simulated user ids")
    return ids
