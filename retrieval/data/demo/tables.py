"""Turn rendered tracks into the MSD500 tables: tags, scores, listeners, text, the unlabeled hold-out and the
artist split (build steps 4–6, see :mod:`retrieval.data.demo.build`).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from retrieval.data.demo import listeners, tags, text
from retrieval.data.demo.jobs import TrackPlan
from retrieval.data.demo.layout import (
    AUDIO_DIR,
    AUDIO_SUFFIX,
    DEFAULT_N_TRACKS,
    LISTENERS_STREAM,
    MIN_TAGS,
    MIN_TRACKS_PER_TAG,
    SCORES_STREAM,
    SPLIT_FRACTIONS,
    SPLITS_DIR,
    TABLE_FILES,
    TEXT_FILE,
    TEXT_STREAM,
    UNLABELED_SHARE,
    UNLABELED_STREAM,
    build_thresholds,
)
from retrieval.data.demo.render import SAMPLE_RATE
from retrieval.data.demo.sources import (
    COLLECTION_BY_KEY,
    COLLECTIONS,
    Piece,
)
from retrieval.fileio import write_text_atomic

logger = logging.getLogger(__name__)




def track_table(tracks: list[tuple[TrackPlan, dict]], artists: dict[str, str]) -> pd.DataFrame:
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


def annotations(tracks: pd.DataFrame, pieces: dict[str, Piece]) -> tuple[pd.DataFrame, dict[str, set[str]]]:
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


def write_tables(out: Path, tracks: pd.DataFrame, pieces: dict[str, Piece], seed: int, n_tracks: int) -> dict:
    """Tag, simulate, split and write every table; return the manifest (without arguments)."""
    from retrieval.data import msd500, splits, taste_profile

    truth, sources = annotations(tracks, pieces)
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

    scored = tags.score_annotations(truth, vocabulary, len(tracks), np.random.default_rng([seed, SCORES_STREAM]))
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
        np.random.default_rng([seed, LISTENERS_STREAM]),
    )
    taste_profile.write_taste_profile(profile.users, profile.songs, profile.counts, out / "train_triplets.txt")

    about = {c.key: c.about for c in COLLECTIONS}
    documents = text.build_documents(tracks, scored, about, np.random.default_rng([seed, TEXT_STREAM]))
    write_text_atomic(out / TEXT_FILE, "\n".join(documents) + "\n")

    artist_of = dict(zip(tracks["song_id"], tracks["artist"], strict=True))
    unlabeled = _unlabeled_songs(
        tracks,
        scored,
        len(SPLIT_FRACTIONS) * min_per_split,
        min_artists if min_per_split else 0,
        np.random.default_rng([seed, UNLABELED_STREAM]),
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


def remove_stale_audio(out: Path, keep: set[str]) -> None:
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
