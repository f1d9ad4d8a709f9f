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

Modules: this one runs the steps and owns the cache (1); :mod:`~retrieval.data.demo.jobs` plans and renders (2–3);
:mod:`~retrieval.data.demo.tables` tags, simulates, splits and writes (4–6); :mod:`~retrieval.data.demo.layout`
holds the file names and thresholds they share.

Determinism: the same arguments give byte-identical TSVs, text and manifest tables, and audio that
decodes to identical samples (OGG files differ in their random stream serial number only).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from retrieval.data.demo.jobs import render_all
from retrieval.data.demo.layout import (
    DEFAULT_N_TRACKS,
    DEFAULT_SECONDS,
    GENERATOR_VERSION,
    MANIFEST,
    MARKER,
    audio_path,
    stable_hash,
)
from retrieval.data.demo.sources import assign_artists, full_catalogue
from retrieval.data.demo.tables import remove_stale_audio, track_table, write_tables
from retrieval.errors import ConfigError, DataError
from retrieval.fileio import write_text_atomic

logger = logging.getLogger(__name__)


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
    arguments_hash = stable_hash({"generator_version": GENERATOR_VERSION, **arguments})
    cached = cached_summary(out, arguments_hash)
    if cached is not None:
        return cached
    _claim(out)
    (out / MANIFEST).unlink(missing_ok=True)

    catalogue = full_catalogue()
    plans, skipped = render_all(out, catalogue, n_tracks, seed, seconds, workers, progress)
    pieces = {plan.piece.key: plan.piece for plan, _ in plans}  # in catalogue order
    tracks = track_table(plans, assign_artists(list(pieces.values())))
    manifest = write_tables(out, tracks, pieces, seed, n_tracks)
    remove_stale_audio(out, set(tracks["track_id"]))

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
    if not all(audio_path(out, track_id).is_file() for track_id in track_ids):
        return None
    return DemoSummary.from_json(manifest["summary"], Path(out), cached=True)


