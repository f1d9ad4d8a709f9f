"""Build the demo corpus: plan, render in parallel, tag, simulate listeners, split, write (cached, resumable).

:func:`build_demo_corpus` writes a folder in exactly the MSD500 layout (see ``data/msd500/README.md``)
so the same loaders serve the demo and the real data::

    OUT/track_tags.tsv  selected_tags.tsv  unique_tracks.txt  train_triplets.txt
    OUT/audio/A/B/C/TRxxxxxxxxxxxxxxxx.ogg     (22,050 Hz mono OGG Vorbis, sharded by track id)
    OUT/splits/train.tsv valid.tsv test.tsv unlabeled.tsv tags.tsv
    OUT/text/descriptions.txt
    OUT/manifest.json                          (written last: its presence marks a complete build)

Steps:

1. **Cache.** ``manifest.json`` records a hash of the arguments that shape the output (``n_tracks``,
   ``seed``, ``seconds``) and :data:`GENERATOR_VERSION`. When it matches and the files it lists exist,
   the call returns at once (``cached=True``) without touching anything. Otherwise the old manifest
   is deleted first, so an interrupted rebuild is never mistaken for a complete one. A non-empty
   folder the generator did not make is refused (the build overwrites and deletes files in it).
2. **Plan.** Each collection gets a share of ``n_tracks``; its pieces are taken in a seeded random
   order and each gives :attr:`~retrieval.data.demo.sources.Collection.renders` tracks. Every track's
   ids and render settings derive from ``(seed, piece, variation)`` alone, so they do not depend on
   scheduling.
3. **Render** (parallel over pieces, ``workers`` processes): parse each piece once, render its
   tracks, write each OGG atomically with its input hash and measured features in the file's
   comment. A track whose file already holds the same input hash is reused (resume). A piece that
   fails to parse or render is skipped with a warning naming it; the next pieces of its collection
   fill the gap.
4. **Tag** (:mod:`~retrieval.data.demo.tags`), drop tags on too few tracks, score.
5. **Listeners** (:mod:`~retrieval.data.demo.listeners`, simulated), **text**
   (:mod:`~retrieval.data.demo.text`), **splits**: whole artists are first held out as the
   ``unlabeled`` split (about :data:`UNLABELED_SHARE` of the tracks; their tags stay in
   ``track_tags.tsv`` but they are never used for supervised training), then
   :func:`retrieval.data.splits.build_splits` splits the other artists 70/15/15 so every tag has at
   least ``min_per_split`` tracks in each split.
6. **Write** the tables with the :mod:`retrieval.data.msd500` / :mod:`~retrieval.data.taste_profile` /
   :mod:`~retrieval.data.splits` writers (all atomic), remove audio of tracks no longer in the
   catalogue, then write the manifest.

Determinism: the same arguments give byte-identical TSVs, text and manifest tables, and audio that
decodes to identical samples (OGG files differ in their random stream serial number only).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import importlib.metadata
import json
import logging
import math
import multiprocessing
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from retrieval.data.demo import ids, listeners, tags, text
from retrieval.data.demo.render import SAMPLE_RATE, RenderSettings, draw_settings, soundfont_path
from retrieval.data.demo.sources import (
    COLLECTION_BY_KEY,
    COLLECTIONS,
    Piece,
    assign_artists,
    full_catalogue,
)
from retrieval.errors import ConfigError, DataError
from retrieval.fileio import write_text_atomic

logger = logging.getLogger(__name__)

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
_SCORES_STREAM, _LISTENERS_STREAM, _TEXT_STREAM, _UNLABELED_STREAM = 1, 2, 3, 4


@dataclass(frozen=True)
class TrackPlan:
    """One planned track: its piece, ids and render settings (all fixed before rendering).

    Attributes:
        key: ``"<piece key>/<variation>"``, unique.
        piece: the source piece.
        variation: render number within the piece (0, 1, …).
        track_id: MSD-style track id (names the audio file).
        song_id: MSD-style song id (the catalogue key).
        settings: render settings.
        input_hash: hash of everything the audio depends on (resume key).
    """

    key: str
    piece: Piece
    variation: int
    track_id: str
    song_id: str
    settings: RenderSettings
    input_hash: str


@dataclass(frozen=True)
class DemoSummary:
    """What a build produced.

    Attributes:
        out: the corpus folder.
        n_tracks: tracks in the catalogue.
        tags_per_category: number of kept tags in each MSD500 category.
        n_listeners: simulated listeners.
        n_plays: total simulated play count (sum over triplets).
        build_seconds: wall time of the build that wrote the corpus.
        cached: True when this call found a complete build and did nothing.
        n_artists: distinct artists.
        n_triplets: lines of ``train_triplets.txt``.
        split_sizes: tracks per split.
        skipped: ``"piece: error"`` for every piece skipped.
        dropped_tags: tags dropped as too rare → ``{"tracks": n, "artists": m}``.
    """

    out: Path
    n_tracks: int
    tags_per_category: dict[str, int]
    n_listeners: int
    n_plays: int
    build_seconds: float
    cached: bool
    n_artists: int = 0
    n_triplets: int = 0
    split_sizes: dict[str, int] = field(default_factory=dict)
    skipped: tuple[str, ...] = ()
    dropped_tags: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def n_tags(self) -> int:
        return sum(self.tags_per_category.values())

    def format(self) -> str:
        """A readable multi-line summary table."""
        state = "cached, nothing rebuilt" if self.cached else "built"
        lines = [
            f"Demo corpus at {self.out} ({state}; build took {self.build_seconds:.1f} s)",
            f"  {'tracks':<12}{self.n_tracks:>8}   artists {self.n_artists}",
            f"  {'listeners':<12}{self.n_listeners:>8}   triplets {self.n_triplets}, plays {self.n_plays} "
            "(simulated Taste Profile)",
            "  {:<12}{:>8}   ".format("splits", sum(self.split_sizes.values()))
            + ", ".join(f"{k} {v}" for k, v in self.split_sizes.items()),
            f"  {'tags':<12}{self.n_tags:>8}",
        ]
        lines += [f"    {category:<10}{n:>8}" for category, n in self.tags_per_category.items()]
        if self.dropped_tags:
            lines.append(
                f"  dropped {len(self.dropped_tags)} rare tags: "
                + ", ".join(f"{t} ({d['tracks']} tracks, {d['artists']} artists)" for t, d in self.dropped_tags.items())
            )
        if self.skipped:
            lines.append(f"  skipped {len(self.skipped)} pieces: " + "; ".join(self.skipped))
        return "\n".join(lines)

    @classmethod
    def from_json(cls, data: dict, out: Path, cached: bool) -> DemoSummary:
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values.update(out=out, cached=cached, skipped=tuple(data.get("skipped", ())))
        return cls(**values)


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


def build_demo_corpus(
    out: Path,
    n_tracks: int = DEFAULT_N_TRACKS,
    seed: int = 0,
    *,
    seconds: float = DEFAULT_SECONDS,
    workers: int | None = None,
    progress: bool = True,
) -> DemoSummary:
    """Build (or find cached) the demo corpus in ``out``.

    Args:
        out: destination folder (created).
        n_tracks: tracks to render (default 2000).
        seed: seed of every random choice; the same seed gives the same corpus.
        seconds: excerpt length of every track, in seconds.
        workers: rendering processes (None: ``os.cpu_count()``; 1: render in this process).
        progress: show a tqdm progress bar.

    Returns:
        A :class:`DemoSummary` (``cached=True`` when nothing had to be done).

    Raises:
        ConfigError: a bad argument, or no artist split satisfies the per-split tag minimum.
        RuntimeError: a default-size build kept fewer than :data:`MIN_TAGS` tags.

    Example:
        >>> summary = build_demo_corpus(Path("demo"), n_tracks=24, seconds=2.0)  # doctest: +SKIP
        >>> print(summary.format())  # doctest: +SKIP
    """
    started = time.perf_counter()
    _check_arguments(n_tracks, seconds, workers)
    out = Path(out)
    arguments = {"n_tracks": int(n_tracks), "seed": int(seed), "seconds": float(seconds)}
    arguments_hash = _hash({"generator_version": GENERATOR_VERSION, **arguments})
    cached = cached_summary(out, arguments_hash)
    if cached is not None:
        return cached
    _claim(out)
    (out / MANIFEST).unlink(missing_ok=True)

    catalogue = full_catalogue()
    plans, skipped = _render_all(out, catalogue, n_tracks, seed, seconds, workers, progress)
    pieces = {plan.piece.key: plan.piece for plan, _ in plans}  # in catalogue order
    tracks = _track_table(plans, assign_artists(list(pieces.values())))
    manifest = _write_tables(out, tracks, pieces, seed, n_tracks)
    _remove_stale_audio(out, set(tracks["track_id"]))

    summary = manifest["summary"]
    summary["skipped"] = [f"{key}: {error}" for key, error in skipped]
    summary["build_seconds"] = round(time.perf_counter() - started, 2)
    manifest.update(
        generator="retrieval.data.demo",
        generator_version=GENERATOR_VERSION,
        arguments=arguments,
        arguments_hash=arguments_hash,
        skipped_pieces=[{"piece": k, "error": e} for k, e in skipped],
    )
    write_text_atomic(out / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return DemoSummary.from_json(summary, out, cached=False)


def _claim(out: Path) -> None:
    """Make ``out`` a demo-corpus folder, refusing a non-empty folder the generator did not make.

    The build overwrites the layout's files and deletes audio that is not in its catalogue, so it must
    never run in, say, a real MSD500 folder. A folder qualifies when it is new or empty, or holds
    :data:`MARKER` (left by an earlier, possibly interrupted, build) or a manifest.

    Raises:
        ConfigError: ``out`` is not empty and was not made by the demo generator.
    """
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists() and not (out / MANIFEST).exists():
        raise ConfigError(
            f"{out} is not empty and holds no demo corpus; the demo generator overwrites and deletes files "
            "in its folder, so choose a new or empty folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    if not (out / MARKER).exists():
        write_text_atomic(out / MARKER, "made by retrieval.data.demo (see manifest.json)\n")


def _check_arguments(n_tracks: int, seconds: float, workers: int | None) -> None:
    if not isinstance(n_tracks, int | np.integer) or n_tracks < 1:
        raise ConfigError(f"n_tracks must be a positive integer, got {n_tracks!r}")
    if not (isinstance(seconds, int | float) and math.isfinite(seconds) and seconds > 0):
        raise ConfigError(f"seconds must be a positive number of seconds, got {seconds!r}")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"workers must be a positive integer or None (all cores), got {workers!r}")


def _hash(data: object) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _stable_int(text: str) -> int:
    """A 64-bit integer from ``text`` that, unlike ``hash()``, is the same in every process."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


# --------------------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------------------


def cached_summary(out: Path, arguments_hash: str) -> DemoSummary | None:
    """The summary of a complete build in ``out`` with this arguments hash, or None.

    Complete means: ``manifest.json`` parses, records the same hash and generator version, and every
    table file and every track's audio file exists. Nothing is written.
    """
    path = Path(out) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if manifest.get("arguments_hash") != arguments_hash or manifest.get("generator_version") != GENERATOR_VERSION:
        return None
    if not all((out / name).is_file() for name in manifest.get("files", ())):
        return None
    from retrieval.data.msd500 import read_unique_tracks

    try:
        track_ids = read_unique_tracks(out / "unique_tracks.txt")["track_id"]
    except DataError:
        return None
    if not all(_audio_path(out, track_id).is_file() for track_id in track_ids):
        return None
    return DemoSummary.from_json(manifest["summary"], Path(out), cached=True)


def _audio_path(out: Path, track_id: str) -> Path:
    from retrieval.data.audio_locator import sharded_path

    return Path(sharded_path(Path(out) / AUDIO_DIR, track_id, AUDIO_SUFFIX))


# --------------------------------------------------------------------------------------------------
# Planning and rendering
# --------------------------------------------------------------------------------------------------


def quotas(n_tracks: int) -> dict[str, int]:
    """Tracks per collection: ``n_tracks`` shared by :attr:`Collection.share` (largest remainders)."""
    shares = np.array([c.share for c in COLLECTIONS])
    exact = n_tracks * shares / shares.sum()
    counts = np.floor(exact).astype(int)
    remainder_order = np.argsort(-(exact - counts), kind="stable")
    counts[remainder_order[: n_tracks - counts.sum()]] += 1
    return {c.key: int(n) for c, n in zip(COLLECTIONS, counts, strict=True)}


def _render_inputs() -> dict:
    """Versions of what rendering depends on besides the settings (part of every track's input hash)."""
    return {
        "generator_version": GENERATOR_VERSION,
        "sample_rate": SAMPLE_RATE,
        "soundfont_bytes": soundfont_path().stat().st_size,
        "music21": importlib.metadata.version("music21"),
        "tinysoundfont": importlib.metadata.version("tinysoundfont"),
    }


def plan_piece(piece: Piece, n: int, seed: int, seconds: float, render_inputs: dict) -> list[TrackPlan]:
    """The first ``n`` tracks of ``piece``: ids and settings from ``(seed, piece key, variation)`` only."""
    collection = COLLECTION_BY_KEY[piece.collection]
    keys = [f"{piece.key}/{v}" for v in range(n)]
    plans = []
    for variation, key in enumerate(keys):
        rng = np.random.default_rng([seed, _stable_int(key)])
        settings = draw_settings(rng, collection.instruments, collection.pace, seconds)
        input_hash = _hash({"piece": piece.key, "settings": dataclasses.asdict(settings), **render_inputs})
        plans.append(
            TrackPlan(
                key=key,
                piece=piece,
                variation=variation,
                track_id=ids.msd_id(ids.TRACK_PREFIX, seed, key),
                song_id=ids.msd_id(ids.SONG_PREFIX, seed, key),
                settings=settings,
                input_hash=input_hash,
            )
        )
    return plans


def _render_all(
    out: Path,
    catalogue: dict[str, list[Piece]],
    n_tracks: int,
    seed: int,
    seconds: float,
    workers: int | None,
    progress: bool,
) -> tuple[list[tuple[TrackPlan, dict]], list[tuple[str, str]]]:
    """Plan, resume and render until every collection's quota is met or its pieces run out.

    Returns:
        ``([(plan, features)], [(skipped piece key, error)])`` with tracks in catalogue order
        (collection order, then the seeded piece order, then variation).
    """
    from tqdm.auto import tqdm

    render_inputs = _render_inputs()
    need = quotas(n_tracks)
    order = {
        key: [pieces[i] for i in np.random.default_rng([seed, _stable_int(key)]).permutation(len(pieces))]
        for key, pieces in catalogue.items()
    }
    next_piece = dict.fromkeys(catalogue, 0)
    done: dict[str, list[tuple[TrackPlan, dict]]] = {}  # piece key → its tracks
    skipped: list[tuple[str, str]] = []
    workers = (os.cpu_count() or 1) if workers is None else workers
    bar = tqdm(total=n_tracks, desc="demo corpus", unit="track", disable=not progress)
    try:
        with _Executor(workers) as executor:
            for _ in range(MAX_FILL_ROUNDS):
                batch: list[list[TrackPlan]] = []
                for key, deficit in need.items():
                    pieces = order[key]
                    while deficit > 0 and next_piece[key] < len(pieces):
                        piece = pieces[next_piece[key]]
                        next_piece[key] += 1
                        n = min(COLLECTION_BY_KEY[key].renders, deficit)
                        batch.append(plan_piece(piece, n, seed, seconds, render_inputs))
                        deficit -= n
                if not batch:
                    break
                for plans, result in executor.run(out, batch, bar):
                    piece = plans[0].piece
                    if isinstance(result, str):
                        logger.warning("demo corpus: skipped %s (%s): %s", piece.key, piece.title, result)
                        skipped.append((piece.key, result))
                        bar.total += len(plans)  # their replacements are rendered in the next round
                        bar.refresh()
                    else:
                        done[piece.key] = list(zip(plans, result, strict=True))
                        need[piece.collection] -= len(plans)
    finally:
        bar.close()
    short = {k: n for k, n in need.items() if n > 0}
    if short:
        logger.warning("demo corpus: collections ran out of usable pieces, tracks missing: %s", short)
    tracks = [track for key in catalogue for piece in order[key] for track in done.get(piece.key, ())]
    return tracks, skipped


class _Executor:
    """Runs piece tasks in worker processes (or in this process when ``workers == 1``)."""

    def __init__(self, workers: int):
        self.workers = workers
        self.pool: concurrent.futures.ProcessPoolExecutor | None = None

    def __enter__(self) -> _Executor:
        if self.workers > 1:
            # spawn: no inherited threads or locks from the caller (torch, tqdm), same on every OS.
            self.pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn")
            )
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def run(self, out: Path, batch: list[list[TrackPlan]], bar):
        """Yield ``(plans, features list | error string)`` for every piece of ``batch`` (any order).

        Tracks whose audio already holds their input hash are not rendered again (resume); only the
        missing tracks of a piece are sent to a worker.
        """
        todo = []
        for plans in batch:
            cached = [_resumed_features(out, plan) for plan in plans]
            missing = [plan for plan, features in zip(plans, cached, strict=True) if features is None]
            bar.update(len(plans) - len(missing))
            if missing:
                todo.append((plans, cached, missing))
            else:
                yield plans, cached
        # Largest files first: the slow parses start early and the pool stays busy at the end.
        todo.sort(key=lambda task: -task[0][0].piece.size)
        if self.pool is None:
            results = ((task, render_piece_task(str(out), task[2])) for task in todo)
        else:
            futures = {self.pool.submit(render_piece_task, str(out), task[2]): task for task in todo}
            results = ((futures[f], f.result()) for f in concurrent.futures.as_completed(futures))
        for (plans, cached, missing), result in results:
            bar.update(len(missing))
            if isinstance(result, str):
                yield plans, result
            else:
                rendered = iter(result)
                yield plans, [features if features is not None else next(rendered) for features in cached]


def _resumed_features(out: Path, plan: TrackPlan) -> dict | None:
    """The features stored in an already-rendered track whose input hash matches, else None."""
    from retrieval.data.demo.render import read_track_comment

    path = _audio_path(out, plan.track_id)
    if not path.is_file():
        return None
    comment = read_track_comment(path)
    if not comment or comment.get("input_hash") != plan.input_hash:
        return None
    return comment.get("features")


_SYNTH = None  # one synthesiser per worker process


def render_piece_task(out: str, plans: Sequence[TrackPlan]) -> list[dict] | str:
    """Worker: parse the piece once, render and write each planned track.

    Returns:
        The features of each track (in ``plans`` order), or an error message when the piece cannot be
        parsed or rendered (the caller skips the piece).

    Raises:
        OSError: a track cannot be written (a full disk must stop the build, not skip every piece).
    """
    from retrieval.data.demo.analysis import notes_from_score
    from retrieval.data.demo.render import Synthesizer, features_to_dict, write_track
    from retrieval.data.demo.sources import parse_piece

    global _SYNTH
    piece = plans[0].piece
    if _SYNTH is None:
        _SYNTH = Synthesizer()
    try:
        with warnings.catch_warnings():  # music21 warns about many harmless notation details
            warnings.simplefilter("ignore")
            notes = notes_from_score(parse_piece(piece))
        rendered = [_SYNTH.render(notes, plan.settings) for plan in plans]
    except Exception as error:  # any failure of one source piece skips that piece only
        return f"{type(error).__name__}: {error}"
    results = []
    for plan, (audio, features) in zip(plans, rendered, strict=True):
        features_dict = features_to_dict(features)
        comment = {"input_hash": plan.input_hash, "features": features_dict, "piece": piece.key}
        write_track(_audio_path(Path(out), plan.track_id), audio, comment)
        results.append(features_dict)
    return results


# --------------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------------


def _track_table(tracks: list[tuple[TrackPlan, dict]], artists: dict[str, str]) -> pd.DataFrame:
    """One row per track: ids, catalogue fields and measured features, in catalogue order."""
    rows = []
    for index, (plan, features) in enumerate(tracks):
        piece = plan.piece
        collection = COLLECTION_BY_KEY[piece.collection]
        rows.append(
            {
                "track_index": index,
                "track_id": plan.track_id,
                "song_id": plan.song_id,
                "artist": artists[piece.key],
                "title": piece.title,
                "collection": piece.collection,
                "collection_name": collection.name,
                "piece": piece.key,
                **features,
            }
        )
    table = pd.DataFrame(rows)
    if not (table["track_id"].is_unique and table["song_id"].is_unique):  # 36^16 ids: never in practice
        raise RuntimeError("two demo tracks drew the same MSD id; change the seed")
    return table


def _annotations(tracks: pd.DataFrame, pieces: dict[str, Piece]) -> tuple[pd.DataFrame, dict[str, set[str]]]:
    """True annotations ``track_index, tag, category`` (one row per pair) and each tag's sources."""
    per_piece = {key: tags.catalogue_tags(piece, COLLECTION_BY_KEY[piece.collection]) for key, piece in pieces.items()}
    lengths = tracks["piece"].map(lambda key: len(per_piece[key])).to_numpy()
    catalogue_rows = pd.DataFrame(
        {
            "track_index": np.repeat(tracks["track_index"].to_numpy(), lengths),
            "tag": [t for key in tracks["piece"] for t, _ in per_piece[key]],
            "category": [c for key in tracks["piece"] for _, c in per_piece[key]],
            "source": tags.CATALOGUE,
        }
    )
    rows = pd.concat([catalogue_rows, tags.rule_tags(tracks)], ignore_index=True)
    sources = rows.groupby("tag")["source"].agg(lambda s: set(s)).to_dict()
    categories = rows.groupby("tag")["category"].nunique()
    if (categories > 1).any():
        raise RuntimeError(f"tags in two categories: {sorted(categories[categories > 1].index)}")
    truth = rows.drop_duplicates(["track_index", "tag"])[["track_index", "tag", "category"]]
    return truth.sort_values(["track_index", "tag"], kind="stable").reset_index(drop=True), sources


def _category_order(vocabulary: pd.DataFrame) -> pd.DataFrame:
    from retrieval.data.msd500 import CATEGORIES

    rank = vocabulary["category"].map({c: i for i, c in enumerate(CATEGORIES)})
    return vocabulary.assign(_rank=rank).sort_values(["_rank", "tag"]).drop(columns="_rank").reset_index(drop=True)


def _write_tables(out: Path, tracks: pd.DataFrame, pieces: dict[str, Piece], seed: int, n_tracks: int) -> dict:
    """Tag, simulate, split and write every table; return the manifest (without arguments)."""
    from retrieval.data import msd500, splits, taste_profile

    truth, sources = _annotations(tracks, pieces)
    min_tracks, min_artists, min_per_split = build_thresholds(n_tracks)
    truth, dropped = tags.drop_rare(truth, min_tracks, min_artists, tracks["artist"].to_numpy())
    vocabulary = _category_order(truth.drop_duplicates("tag")[["tag", "category"]])
    counts = truth.groupby("tag")["track_index"].nunique()
    if n_tracks >= DEFAULT_N_TRACKS and (len(vocabulary) < MIN_TAGS or counts.min() < MIN_TRACKS_PER_TAG):
        raise RuntimeError(
            f"the demo corpus kept {len(vocabulary)} tags (the least frequent on "
            f"{counts.min()} tracks); a default-size build needs ≥ {MIN_TAGS} tags on ≥ "
            f"{MIN_TRACKS_PER_TAG} tracks each"
        )

    scored = tags.score_annotations(truth, vocabulary, len(tracks), np.random.default_rng([seed, _SCORES_STREAM]))
    song_of = tracks["song_id"].to_numpy()
    track_tags = pd.DataFrame(
        {
            "song_id": song_of[scored["track_index"].to_numpy()],
            "original_tag": scored["original_tag"].to_numpy(),
            "cleaned_tag": scored["tag"].to_numpy(),
            "category": scored["category"].to_numpy(),
            "score": scored["score"].to_numpy(),
        }
    )
    msd500.write_track_tags(track_tags, out / "track_tags.tsv")
    msd500.write_selected_tags(vocabulary, out / "selected_tags.tsv")
    msd500.write_unique_tracks(tracks[["track_id", "song_id", "artist", "title"]], out / "unique_tracks.txt")

    profile = listeners.simulate_taste_profile(
        _listener_attributes(tracks, truth),
        song_of,
        listeners.n_listeners_for(len(tracks)),
        np.random.default_rng([seed, _LISTENERS_STREAM]),
    )
    taste_profile.write_taste_profile(profile.users, profile.songs, profile.counts, out / "train_triplets.txt")

    about = {c.key: c.about for c in COLLECTIONS}
    documents = text.build_documents(tracks, scored, about, np.random.default_rng([seed, _TEXT_STREAM]))
    write_text_atomic(out / TEXT_FILE, "\n".join(documents) + "\n")

    artist_of = dict(zip(tracks["song_id"], tracks["artist"], strict=True))
    unlabeled = _unlabeled_songs(
        tracks,
        scored,
        len(SPLIT_FRACTIONS) * min_per_split,
        min_artists if min_per_split else 0,
        np.random.default_rng([seed, _UNLABELED_STREAM]),
    )
    labeled = track_tags[~track_tags["song_id"].isin(unlabeled)]
    split = splits.build_splits(
        labeled,
        artist_of,
        min_per_split=min_per_split,
        fractions=SPLIT_FRACTIONS,
        seed=seed,
        max_tags_per_track=None,
        artist_source=out / "unique_tracks.txt",
    )
    split = dataclasses.replace(
        split,
        unlabeled=tuple(sorted(unlabeled)),
        artist_of={**dict(split.artist_of), **{s: artist_of[s] for s in unlabeled}},
    )
    categories = dict(zip(vocabulary["tag"], vocabulary["category"], strict=True))
    splits.write_splits(split, out / SPLITS_DIR, categories=categories)

    tag_counts = {t: int(counts[t]) for t in vocabulary["tag"]}
    per_category = vocabulary["category"].value_counts()
    summary = {
        "n_tracks": len(tracks),
        "n_artists": int(tracks["artist"].nunique()),
        "tags_per_category": {c: int(per_category.get(c, 0)) for c in msd500.CATEGORIES},
        "n_listeners": profile.n_listeners,
        "n_plays": int(profile.counts.sum()),
        "n_triplets": len(profile.counts),
        "split_sizes": {name: len(split.ids(name)) for name in splits.SPLIT_NAMES},
        "dropped_tags": dropped,
    }
    return {
        "summary": summary,
        "files": [
            *TABLE_FILES,
            *(f"{SPLITS_DIR}/{n}.tsv" for n in splits.SPLIT_NAMES if split.ids(n)),
            f"{SPLITS_DIR}/{splits.TAGS_FILE}",
        ],
        "audio": {
            "folder": AUDIO_DIR,
            "layout": "audio/A/B/C/<track_id>.ogg (A, B, C = characters 3-5 of the id)",
            "format": "OGG Vorbis, mono",
            "sample_rate": SAMPLE_RATE,
            "soundfont": "pretty_midi/TimGM6mb.sf2 (General MIDI)",
        },
        "tags": {
            t: {"category": categories[t], "source": "; ".join(sorted(sources[t])), "n_tracks": tag_counts[t]}
            for t in vocabulary["tag"]
        },
        "rules": {r.tag: r.source for r in tags.RULES},
        "scores": {
            "threshold": tags.SCORE_THRESHOLD,
            "weak_share": tags.WEAK_SHARE,
            "noise_tags_per_track": tags.NOISE_TAGS_PER_TRACK,
        },
        "thresholds": {
            "min_tracks_per_tag": min_tracks,
            "min_artists_per_tag": min_artists,
            "min_per_split": min_per_split,
        },
        "splits": {
            "builder": "retrieval.data.splits.build_splits",
            "by": "artist",
            "fractions": SPLIT_FRACTIONS,
            "min_per_split": min_per_split,
            "min_score": tags.SCORE_THRESHOLD,
            "unlabeled": f"whole artists, about {UNLABELED_SHARE:.0%} of the tracks, held out of "
            "train/valid/test for semi-supervised training; their tags stay in "
            "track_tags.tsv but must never be used for supervised training",
        },
        "taste_profile": {
            "simulated": True,
            "n_listeners": profile.n_listeners,
            "n_triplets": len(profile.counts),
            "n_plays": int(profile.counts.sum()),
            "unplayed_tracks": len(profile.unplayed),
            "note": "synthetic listeners whose tastes follow location, language, collection and "
            "decade (not audible) more than instrument, pace and loudness (audible); "
            f"{listeners.UNPLAYED_SHARE:.0%} of the tracks are never played. Not real "
            "listening data.",
        },
        "collections": {
            c.key: {
                "name": c.name,
                "about": c.about,
                "tracks": int((tracks["collection"] == c.key).sum()),
                "pieces": int(tracks.loc[tracks["collection"] == c.key, "piece"].nunique()),
            }
            for c in COLLECTIONS
        },
    }


def _listener_attributes(tracks: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Per track, the attribute families of :data:`listeners.FAMILY_WEIGHTS` as strings ('' = unknown)."""
    index = tracks["track_index"]
    attributes = pd.DataFrame({"collection": tracks["collection"], "instrument": tracks["instrument"]})
    for family in ("location", "language", "decade"):
        first = truth[truth["category"] == family].drop_duplicates("track_index").set_index("track_index")["tag"]
        attributes[family] = index.map(first).fillna("").to_numpy()
    attributes["pace"] = np.select(
        [tracks["pace"] < tags.SLOW_PACE, tracks["pace"] > tags.FAST_PACE], ["slow", "fast"], "moderate"
    )
    attributes["loudness"] = np.select(
        [tracks["loudness_db"] < tags.SOFT_DB, tracks["loudness_db"] > tags.LOUD_DB],
        ["soft", "loud"],
        "medium",
    )
    return attributes


def _unlabeled_songs(
    tracks: pd.DataFrame, scored: pd.DataFrame, min_tracks: int, min_artists: int, rng: np.random.Generator
) -> list[str]:
    """Song ids of whole artists held out as the unlabeled split (about :data:`UNLABELED_SHARE` of tracks).

    Artists are visited in a seeded random order; one is held out only if every tag it carries keeps
    at least ``min_tracks`` labelled tracks (score ≥ 50) and ``min_artists`` labelled artists without
    it, so the artist split of the rest can still give every tag tracks in every split.
    """
    good = scored[scored["score"] >= tags.SCORE_THRESHOLD]
    artist_codes, artists = pd.factorize(tracks["artist"], sort=True)
    tag_codes, tag_names = pd.factorize(good["tag"], sort=True)
    per_artist = np.zeros((len(artists), len(tag_names)), dtype=np.int64)
    np.add.at(per_artist, (artist_codes[good["track_index"].to_numpy()], tag_codes), 1)
    tracks_left = per_artist.sum(axis=0)
    artists_left = (per_artist > 0).sum(axis=0)
    tracks_per_artist = np.bincount(artist_codes, minlength=len(artists))
    target = UNLABELED_SHARE * len(tracks)
    held, held_tracks = [], 0
    for a in rng.permutation(len(artists)):
        if held_tracks >= target:
            break
        carried = per_artist[a] > 0
        if np.all(tracks_left[carried] - per_artist[a, carried] >= min_tracks) and np.all(
            artists_left[carried] - 1 >= min_artists
        ):
            held.append(a)
            held_tracks += tracks_per_artist[a]
            tracks_left = tracks_left - per_artist[a]
            artists_left = artists_left - carried
    return tracks.loc[np.isin(artist_codes, held), "song_id"].tolist()


def _remove_stale_audio(out: Path, keep: set[str]) -> None:
    """Delete audio this generator wrote for tracks no longer in the catalogue (builds with other
    arguments) and temporary files left by a killed build; nothing else is touched."""
    from retrieval.data.demo.render import read_track_comment

    folder = out / AUDIO_DIR
    if not folder.is_dir():
        return
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        temporary = path.name.startswith(".") and ".tmp" in path.name
        stale = path.suffix == AUDIO_SUFFIX and path.stem not in keep
        if temporary or (stale and "input_hash" in (read_track_comment(path) or {})):
            path.unlink()
