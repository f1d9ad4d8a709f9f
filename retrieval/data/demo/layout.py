"""The demo corpus's layout and build thresholds: file names, sizes and minimums shared by its build steps."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

GENERATOR_VERSION = "1.0.0"
"""Bump when the output for given arguments changes: it invalidates caches and rendered audio."""

DEFAULT_N_TRACKS = 2000
DEFAULT_SECONDS = 15.0
MIN_TAGS = 60
"""A build of at least :data:`DEFAULT_N_TRACKS` tracks must keep this many tags (checked)."""
MIN_TRACKS_PER_TAG = 30
"""Tags on fewer tracks are dropped (scaled down for smaller builds, see :func:`build_thresholds`)."""
MIN_ARTISTS_PER_TAG = 6
"""Tags held by fewer artists are dropped: they could not reach all three splits of an artist split."""
MIN_PER_SPLIT = 3
"""Tracks per tag required in each of train/valid/test at the default size (scaled for smaller builds)."""
UNLABELED_SHARE = 0.10
SPLIT_FRACTIONS = (0.7, 0.15, 0.15)
SPLIT_MAX_DRAWS = 5000
"""Artist shuffles the split builder may try (each is a few vectorised operations)."""
MAX_FILL_ROUNDS = 8
"""Rounds of replacing skipped pieces with the next pieces of their collection."""

MANIFEST = "manifest.json"
MARKER = ".demo-corpus"
"""Hidden file marking a folder as made by the demo generator (see :func:`_claim`)."""
AUDIO_DIR = "audio"
AUDIO_SUFFIX = ".ogg"
TEXT_FILE = "text/descriptions.txt"
SPLITS_DIR = "splits"
TABLE_FILES = ("track_tags.tsv", "selected_tags.tsv", "unique_tracks.txt", "train_triplets.txt", TEXT_FILE)

# Independent random streams of one build (each seeded with (seed, stream)).
SCORES_STREAM, LISTENERS_STREAM, TEXT_STREAM, UNLABELED_STREAM = 1, 2, 3, 4


def build_thresholds(n_tracks: int) -> tuple[int, int, int]:
    """``(min_tracks_per_tag, min_artists_per_tag, min_per_split)`` for a build of ``n_tracks``.

    At the default size and above: (:data:`MIN_TRACKS_PER_TAG`, :data:`MIN_ARTISTS_PER_TAG`,
    :data:`MIN_PER_SPLIT`). Smaller (test) builds scale the track counts down in proportion and need no
    artist spread when they need no per-split minimum, so a tiny corpus still has tags and splits.
    """
    scale = min(n_tracks / DEFAULT_N_TRACKS, 1.0)
    min_per_split = int(MIN_PER_SPLIT * scale)
    min_tracks = max(math.ceil(MIN_TRACKS_PER_TAG * scale), len(SPLIT_FRACTIONS) * min_per_split, 1)
    min_artists = MIN_ARTISTS_PER_TAG if min_per_split > 0 else 1
    return min_tracks, min_artists, min_per_split


def stable_hash(data: object) -> str:
    """SHA-256 of ``data`` as sorted JSON: the same in every process and run."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def audio_path(out: Path, track_id: str) -> Path:
    """Where a track's OGG lives: ``OUT/audio/A/B/C/TRxxxx.ogg``."""
    from retrieval.data.audio_locator import sharded_path

    return Path(sharded_path(Path(out) / AUDIO_DIR, track_id, AUDIO_SUFFIX))
