"""The generalisation set: compositions the demo corpus never used, rendered so that they sound different.

A model trained on the demo corpus has heard one SoundFont (``TimGM6mb``), one EQ (none) and one kind of room.
:func:`build_other_render` measures what it learnt about *music* rather than about that sound: it takes pieces of
the same collections that no demo track was rendered from (read from the demo tracks' own comments), and plays each
once through another General MIDI SoundFont (Debian's ``fluid-soundfont-gm``, ``FluidR3_GM.sf2``) at 44.1 kHz, a
random EQ (low shelf, peaking band, high shelf, ±9 dB), another room (pre-delay, damped tail, wider RT60 range) and
tempi scaled by 0.7–1.4× the demo's. Tags follow from the same rules (:mod:`~retrieval.data.demo.tags`) measured on
the new renders, with the demo corpus's label noise; only tags of the demo corpus's vocabulary are kept, and only
those on at least :data:`MIN_TAG_TRACKS` tracks (the *shared tags*).

The folder is in the MSD500 layout, every track in the test split, no listening data (the tracks are new to any
model: a hybrid must embed them cold-start)::

    OUT/track_tags.tsv  selected_tags.tsv  unique_tracks.txt
    OUT/audio/A/B/C/TRxxxxxxxxxxxxxxxx.ogg     (44,100 Hz mono OGG Vorbis)
    OUT/splits/train.tsv valid.tsv (empty) test.tsv tags.tsv
    OUT/manifest.json                          (written last; its arguments hash makes a rebuild a no-op)

``retrieval data other-render`` builds it; ``retrieval evaluate RUN --other-render`` compares a run's MAP on it with
its MAP on the demo test split (:func:`retrieval.training.experiment.evaluate_generalisation`).

MuseScore's General SoundFont (Debian's ``musescore-general-soundfont``) was tried as a second SoundFont and left
out: through tinysoundfont its piano sounds at −61 dBFS where the other two give −27 to −30.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from retrieval.data.demo import ids
from retrieval.data.demo.jobs import TrackPlan, quotas, render_pieces, stable_int
from retrieval.data.demo.layout import (
    DEFAULT_SECONDS,
    GENERATOR_VERSION,
    MANIFEST,
    SCORES_STREAM,
    SPLITS_DIR,
    audio_path,
    stable_hash,
)
from retrieval.data.demo.render import Studio, draw_settings, read_track_comment
from retrieval.data.demo.sources import COLLECTION_BY_KEY, Piece, assign_artists, full_catalogue
from retrieval.errors import ConfigError, DataError
from retrieval.fileio import write_text_atomic

logger = logging.getLogger(__name__)

DEFAULT_N_TRACKS = 500
MIN_TAG_TRACKS = 5
"""A demo tag is evaluated on the other render only when at least this many of its tracks carry it."""
SAMPLE_RATE = 44_100
SOUNDFONTS = (Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),)
"""Where Debian's ``fluid-soundfont-gm`` puts its SoundFont (the Makefile installs the package)."""
TEMPO_RANGE = (0.7, 1.4)
"""Factor on the demo's drawn pace (log-uniform)."""
REVERB_PROBABILITY = 0.8
REVERB_WET_RANGE = (0.15, 0.7)
REVERB_RT60_RANGE = (0.4, 4.0)
SHELF_DB_RANGE = (-9.0, 9.0)
PEAK_DB_RANGE = (-8.0, 8.0)
PEAK_HZ_RANGE = (300.0, 5000.0)
PREDELAY_RANGE = (0.005, 0.06)
DAMPING_RANGE = (0.2, 0.9)
_STREAM = 11  # the other render's random stream, apart from every stream of the demo build
ARTIST_SUFFIX = " (other render)"


def build_other_render(
    out: Path,
    demo: Path,
    n_tracks: int = DEFAULT_N_TRACKS,
    seed: int = 0,
    *,
    seconds: float = DEFAULT_SECONDS,
    workers: int | None = None,
    progress: bool = True,
) -> dict:
    """Build (or find cached) the generalisation set of the demo corpus ``demo`` in ``out``.

    Args:
        out: destination folder (created; must not be the demo corpus).
        demo: a complete demo corpus (its manifest, vocabulary and track comments are read).
        n_tracks: tracks to render, one per held-out piece, shared between collections as in the demo.
        seed: seed of the piece order, ids and every drawn setting.
        seconds / workers / progress: as :func:`~retrieval.data.demo.build_demo_corpus`.

    Returns:
        The manifest's ``summary`` (``cached``: True when nothing had to be done).

    Raises:
        DataError: ``demo`` is not a complete demo corpus.
        ConfigError: no other SoundFont is installed, or ``out`` is ``demo``.
    """
    started = time.perf_counter()
    out, demo = Path(out), Path(demo)
    if out.resolve() == demo.resolve():
        raise ConfigError(f"{out}: the other render needs its own folder, not the demo corpus's")
    demo_manifest = _demo_manifest(demo)
    soundfont = other_soundfont()
    arguments = {"n_tracks": int(n_tracks), "seed": int(seed), "seconds": float(seconds),
                 "demo": demo_manifest["arguments_hash"], "soundfont_bytes": soundfont.stat().st_size}
    arguments_hash = stable_hash({"generator_version": GENERATOR_VERSION, "other_render": arguments})
    cached = _cached(out, arguments_hash)
    if cached is not None:
        return {**cached, "cached": True}
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)

    order = held_out_pieces(demo, seed)
    render_inputs = {"generator_version": GENERATOR_VERSION, "other_render": 1,
                     "soundfont_bytes": arguments["soundfont_bytes"]}

    def plan(piece: Piece, n: int) -> list[TrackPlan]:
        return [plan_other(piece, seed, seconds, soundfont, render_inputs)]

    tracks, skipped = render_pieces(out, order, quotas(n_tracks), dict.fromkeys(order, 1), plan, workers, progress)
    summary = _write_tables(out, demo, tracks, seed)
    summary.update(build_seconds=round(time.perf_counter() - started, 2), skipped=[f"{k}: {e}" for k, e in skipped])
    manifest = {
        "generator": "retrieval.data.demo.other_render",
        "generator_version": GENERATOR_VERSION,
        "arguments": arguments,
        "arguments_hash": arguments_hash,
        "demo_corpus": str(demo),
        "summary": summary,
        "sound": {
            "soundfont": str(soundfont),
            "sample_rate": SAMPLE_RATE,
            "tempo_factor": TEMPO_RANGE,
            "reverb": {"probability": REVERB_PROBABILITY, "wet": REVERB_WET_RANGE, "rt60": REVERB_RT60_RANGE,
                       "predelay": PREDELAY_RANGE, "damping": DAMPING_RANGE},
            "eq": {"shelves_db": SHELF_DB_RANGE, "peak_db": PEAK_DB_RANGE, "peak_hz": PEAK_HZ_RANGE},
        },
    }
    write_text_atomic(out / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return {**summary, "cached": False}


def format_summary(out: Path, summary: dict) -> str:
    """A readable summary of :func:`build_other_render`'s result."""
    state = "cached, nothing rebuilt" if summary.get("cached") else "built"
    lines = [f"Other render at {out} ({state}; build took {summary['build_seconds']:.1f} s)",
             f"  tracks {summary['n_tracks']} (one per held-out piece), shared tags {summary['shared_tags']}: "
             + ", ".join(f"{c} {n}" for c, n in summary["tags_per_category"].items())]
    if summary["demo_tags_left_out"]:
        lines.append(f"  demo tags on fewer than {MIN_TAG_TRACKS} tracks here, not evaluated: "
                     f"{len(summary['demo_tags_left_out'])}")
    if summary["skipped"]:
        lines.append(f"  skipped {len(summary['skipped'])} pieces: " + "; ".join(summary["skipped"]))
    return "\n".join(lines)


def other_soundfont() -> Path:
    """The first installed SoundFont of :data:`SOUNDFONTS`.

    Raises:
        ConfigError: none is installed (naming the Debian package to install).
    """
    for path in SOUNDFONTS:
        if path.is_file():
            return path
    raise ConfigError(f"{SOUNDFONTS[0]} not found; the other render plays Debian's General MIDI SoundFont: "
                      "apt-get install fluid-soundfont-gm (`make install` does)")


def used_pieces(demo: Path) -> set[str]:
    """Keys of the pieces the demo corpus rendered tracks from, read from its tracks' comments.

    Raises:
        DataError: a track's audio has no readable comment (not written by the demo generator).
    """
    from retrieval.data.msd500 import read_unique_tracks

    used = set()
    for track_id in read_unique_tracks(Path(demo) / "unique_tracks.txt")["track_id"]:
        path = audio_path(demo, track_id)
        comment = read_track_comment(path)
        if not comment or "piece" not in comment:
            raise DataError(path, "no demo-generator comment naming its piece; rebuild the demo corpus "
                                  "(retrieval data demo)")
        used.add(comment["piece"])
    return used


def held_out_pieces(demo: Path, seed: int) -> dict[str, list[Piece]]:
    """Per collection, the pieces no demo track was rendered from, in a seeded order of their own."""
    used = used_pieces(demo)
    order = {}
    for key, pieces in full_catalogue().items():
        unused = [p for p in pieces if p.key not in used]
        permutation = np.random.default_rng([seed, _STREAM, stable_int(key)]).permutation(len(unused))
        order[key] = [unused[i] for i in permutation]
    return order


def plan_other(piece: Piece, seed: int, seconds: float, soundfont: Path, render_inputs: dict) -> TrackPlan:
    """The one track of ``piece``: the demo's draw of instrument, loudness, register and start, then another
    tempo, room and EQ (:class:`~retrieval.data.demo.render.Studio`)."""
    collection = COLLECTION_BY_KEY[piece.collection]
    key = f"other/{piece.key}/0"
    rng = np.random.default_rng([seed, _STREAM, stable_int(key)])
    settings = draw_settings(rng, collection.instruments, collection.pace, seconds)
    reverb = rng.random() < REVERB_PROBABILITY
    settings = dataclasses.replace(
        settings,
        pace=round(settings.pace * float(np.exp(rng.uniform(*np.log(TEMPO_RANGE)))), 4),
        reverb_wet=round(float(rng.uniform(*REVERB_WET_RANGE)), 3) if reverb else 0.0,
        reverb_rt60=round(float(rng.uniform(*REVERB_RT60_RANGE)), 3) if reverb else 0.0,
    )
    studio = Studio(
        soundfont=str(soundfont),
        sample_rate=SAMPLE_RATE,
        low_shelf_db=round(float(rng.uniform(*SHELF_DB_RANGE)), 2),
        high_shelf_db=round(float(rng.uniform(*SHELF_DB_RANGE)), 2),
        peak_db=round(float(rng.uniform(*PEAK_DB_RANGE)), 2),
        peak_hz=round(float(np.exp(rng.uniform(*np.log(PEAK_HZ_RANGE)))), 1),
        predelay=round(float(rng.uniform(*PREDELAY_RANGE)), 4),
        damping=round(float(rng.uniform(*DAMPING_RANGE)), 3),
    )
    sound = {"settings": dataclasses.asdict(settings), "studio": dataclasses.asdict(studio)}
    return TrackPlan(
        key=key,
        piece=piece,
        variation=0,
        track_id=ids.msd_id(ids.TRACK_PREFIX, seed, key),
        song_id=ids.msd_id(ids.SONG_PREFIX, seed, key),
        settings=settings,
        input_hash=stable_hash({"piece": piece.key, **sound, **render_inputs}),
        studio=studio,
    )


def _write_tables(out: Path, demo: Path, tracks: list[tuple[TrackPlan, dict]], seed: int) -> dict:
    """Tag the renders like the demo, keep the demo's tags on ≥ :data:`MIN_TAG_TRACKS` tracks, write the tables."""
    from retrieval.data import msd500, splits
    from retrieval.data.demo import tags
    from retrieval.data.demo.tables import annotations, track_table

    if not tracks:
        raise DataError(out, "no piece of the demo's collections could be rendered; see the warnings above")
    pieces = {plan.piece.key: plan.piece for plan, _ in tracks}
    artists = {key: name + ARTIST_SUFFIX for key, name in assign_artists(list(pieces.values())).items()}
    table = track_table(tracks, artists)
    truth, _ = annotations(table, pieces)
    demo_tags = msd500.read_selected_tags(demo / "selected_tags.tsv")
    truth = truth[truth["tag"].isin(set(demo_tags["tag"]))]
    scored = tags.score_annotations(truth, demo_tags, len(table), np.random.default_rng([seed, _STREAM, SCORES_STREAM]))
    positives = scored[scored["score"] >= tags.SCORE_THRESHOLD].groupby("tag")["track_index"].nunique()
    shared = demo_tags[demo_tags["tag"].isin(positives[positives >= MIN_TAG_TRACKS].index)].reset_index(drop=True)
    scored = scored[scored["tag"].isin(set(shared["tag"]))]
    song_of = table["song_id"].to_numpy()
    msd500.write_track_tags(
        pd.DataFrame({
            "song_id": song_of[scored["track_index"].to_numpy()],
            "original_tag": scored["original_tag"].to_numpy(),
            "cleaned_tag": scored["tag"].to_numpy(),
            "category": scored["category"].to_numpy(),
            "score": scored["score"].to_numpy(),
        }),
        out / "track_tags.tsv",
    )
    msd500.write_selected_tags(shared, out / "selected_tags.tsv")
    msd500.write_unique_tracks(table[["track_id", "song_id", "artist", "title"]], out / "unique_tracks.txt")
    split = splits.Splits(train=(), valid=(), test=tuple(song_of), tags=tuple(shared["tag"]),
                          artist_of=dict(zip(table["song_id"], table["artist"], strict=True)))
    splits.write_splits(split, out / SPLITS_DIR, categories=dict(zip(shared["tag"], shared["category"], strict=True)))
    return {
        "n_tracks": len(table),
        "n_pieces": len(pieces),
        "shared_tags": int(len(shared)),
        "tags_per_category": {c: int(n) for c, n in shared["category"].value_counts().sort_index().items()},
        "demo_tags_left_out": sorted(set(demo_tags["tag"]) - set(shared["tag"])),
    }


def _demo_manifest(demo: Path) -> dict:
    try:
        manifest = json.loads((demo / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(demo / MANIFEST, f"not a complete demo corpus ({error}); build it with "
                                         "`retrieval data demo`") from None
    if manifest.get("generator") != "retrieval.data.demo":
        raise DataError(demo / MANIFEST, "not written by the demo generator; the other render needs the demo corpus")
    return manifest


def _cached(out: Path, arguments_hash: str) -> dict | None:
    """The summary of a complete build in ``out`` with this arguments hash, else None (nothing written)."""
    from retrieval.data.msd500 import read_unique_tracks

    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        if manifest.get("arguments_hash") != arguments_hash:
            return None
        track_ids = read_unique_tracks(out / "unique_tracks.txt")["track_id"]
    except (OSError, ValueError, DataError):
        return None
    if not all(audio_path(out, t).is_file() for t in track_ids):
        return None
    return manifest["summary"]
