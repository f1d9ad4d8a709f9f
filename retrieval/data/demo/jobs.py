"""Plan the demo tracks and render them in parallel worker processes (build steps 2–3, see
:mod:`retrieval.data.demo.build`).

Each collection gets a share of the tracks; every track's ids and render settings derive from
``(seed, piece, variation)`` alone, so they do not depend on scheduling. Each worker parses a piece once, renders
its tracks and writes each OGG atomically with its input hash (the resume key) and measured features.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import importlib.metadata
import logging
import multiprocessing
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.data.demo import ids
from retrieval.data.demo.layout import (
    GENERATOR_VERSION,
    MAX_FILL_ROUNDS,
    audio_path,
    stable_hash,
)
from retrieval.data.demo.render import SAMPLE_RATE, RenderSettings, Studio, draw_settings, soundfont_path
from retrieval.data.demo.sources import COLLECTION_BY_KEY, COLLECTIONS, Piece

logger = logging.getLogger(__name__)


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
        studio: the SoundFont, EQ and room of an other-render track; None for the demo corpus's own sound.
    """

    key: str
    piece: Piece
    variation: int
    track_id: str
    song_id: str
    settings: RenderSettings
    input_hash: str
    studio: Studio | None = None


#: ``(piece, n) → its first n planned tracks``: how a build turns a piece into :class:`TrackPlan` s.
Planner = Callable[[Piece, int], list[TrackPlan]]

def stable_int(text: str) -> int:
    """A 64-bit integer from ``text`` that, unlike ``hash()``, is the same in every process."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def piece_order(catalogue: Mapping[str, list[Piece]], seed: int) -> dict[str, list[Piece]]:
    """Each collection's pieces in the seeded random order a build takes them in."""
    return {
        key: [pieces[i] for i in np.random.default_rng([seed, stable_int(key)]).permutation(len(pieces))]
        for key, pieces in catalogue.items()
    }


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
        rng = np.random.default_rng([seed, stable_int(key)])
        settings = draw_settings(rng, collection.instruments, collection.pace, seconds)
        input_hash = stable_hash({"piece": piece.key, "settings": dataclasses.asdict(settings), **render_inputs})
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


def render_all(
    out: Path,
    catalogue: dict[str, list[Piece]],
    n_tracks: int,
    seed: int,
    seconds: float,
    workers: int | None,
    progress: bool,
) -> tuple[list[tuple[TrackPlan, dict]], list[tuple[str, str]]]:
    """Plan and render the demo corpus: :data:`quotas` of each collection, :attr:`Collection.renders` per piece.

    Returns:
        ``([(plan, features)], [(skipped piece key, error)])`` with tracks in catalogue order
        (collection order, then the seeded piece order, then variation).
    """
    render_inputs = _render_inputs()

    def plan(piece: Piece, n: int) -> list[TrackPlan]:
        return plan_piece(piece, n, seed, seconds, render_inputs)

    renders = {key: COLLECTION_BY_KEY[key].renders for key in catalogue}
    return render_pieces(out, piece_order(catalogue, seed), quotas(n_tracks), renders, plan, workers, progress)


def render_pieces(
    out: Path,
    order: Mapping[str, list[Piece]],
    need: Mapping[str, int],
    renders: Mapping[str, int],
    plan: Planner,
    workers: int | None,
    progress: bool,
) -> tuple[list[tuple[TrackPlan, dict]], list[tuple[str, str]]]:
    """Resume and render until every collection's quota is met or its pieces run out.

    Args:
        out: the corpus folder (audio goes under ``out/audio``).
        order: each collection's pieces in the order they are taken.
        need: tracks wanted per collection.
        renders: tracks made from each piece of a collection (the last piece may make fewer).
        plan: the build's :data:`Planner`.
        workers / progress: rendering processes (None: all cores) / a tqdm bar.

    Returns:
        ``([(plan, features)], [(skipped piece key, error)])``, tracks in ``order`` (then variation).
    """
    from tqdm.auto import tqdm

    need = dict(need)
    next_piece = dict.fromkeys(order, 0)
    done: dict[str, list[tuple[TrackPlan, dict]]] = {}  # piece key → its tracks
    skipped: list[tuple[str, str]] = []
    workers = (os.cpu_count() or 1) if workers is None else workers
    bar = tqdm(total=sum(need.values()), desc="rendering", unit="track", disable=not progress)
    try:
        with _Executor(workers) as executor:
            for _ in range(MAX_FILL_ROUNDS):
                batch: list[list[TrackPlan]] = []
                for key, deficit in need.items():
                    pieces = order[key]
                    while deficit > 0 and next_piece[key] < len(pieces):
                        piece = pieces[next_piece[key]]
                        next_piece[key] += 1
                        n = min(renders[key], deficit)
                        batch.append(plan(piece, n))
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
        logger.warning("%s: collections ran out of usable pieces, tracks missing: %s", out, short)
    tracks = [track for key in order for piece in order[key] for track in done.get(piece.key, ())]
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

    path = audio_path(out, plan.track_id)
    if not path.is_file():
        return None
    comment = read_track_comment(path)
    if not comment or comment.get("input_hash") != plan.input_hash:
        return None
    return comment.get("features")


_SYNTHS: dict = {}  # one synthesiser per (sample rate, SoundFont) and worker process


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

    piece, studio = plans[0].piece, plans[0].studio
    sample_rate = SAMPLE_RATE if studio is None else studio.sample_rate
    soundfont = None if studio is None else Path(studio.soundfont)
    if (sample_rate, soundfont) not in _SYNTHS:
        _SYNTHS[sample_rate, soundfont] = Synthesizer(sample_rate, soundfont)
    synth = _SYNTHS[sample_rate, soundfont]
    try:
        with warnings.catch_warnings():  # music21 warns about many harmless notation details
            warnings.simplefilter("ignore")
            notes = notes_from_score(parse_piece(piece))
        rendered = [synth.render(notes, plan.settings, plan.studio) for plan in plans]
    except Exception as error:  # any failure of one source piece skips that piece only
        return f"{type(error).__name__}: {error}"
    results = []
    for plan, (audio, features) in zip(plans, rendered, strict=True):
        features_dict = features_to_dict(features)
        comment = {"input_hash": plan.input_hash, "features": features_dict, "piece": piece.key}
        write_track(audio_path(Path(out), plan.track_id), audio, comment, sample_rate)
        results.append(features_dict)
    return results
