"""The demo corpus' text: catalogue descriptions for training the domain word2vec (``text/descriptions.txt``).

The generator can honestly describe only what it knows, so every document is built from the
catalogue and the track's tags (score ≥ 50): one document per track (title, collection, artist and
a few sentences that use its tags, then its tag list) and one per collection (a factual sentence
about it and its most common tags). Sentence templates vary per track (seeded), so tags appear in
varied contexts; multi-word tags (``irish folk``, ``fiddle tune``) always appear as the same word pair.

Phrase detection: the corpus is small (about 100k words, 8k distinct unigrams and bigrams, for the
default 2,000 tracks) and ``folk`` is everywhere, so gensim ``Phrases``' default threshold (10, default
scorer) joins only the rarer pairs (``love song``, ``pan flute``, ...). A threshold of 0.4 (default
scorer) or 0.3 (``scoring="npmi"``) joins every multi-word tag, along with some template pairs.

Note that these documents describe the whole catalogue, test tracks included: they inform which
*words* are related, not which track has which tag.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

# Sentence templates per category; "{}" receives a tag list joined with "and".
_TEMPLATES: dict[str, tuple[str, ...]] = {
    "genre": ("Genre: {}.", "This is {} music.", "Listeners file it under {}.", "Style: {}."),
    "location": ("The music comes from {}.", "A tune from {}.", "Region: {}.", "Origin: {}."),
    "language": ("Sung in {}.", "The lyrics are in {}.", "Language: {}."),
    "decade": ("It dates from the {}.", "Era: the {}.", "A piece of the {}."),
    "instrument": ("This recording is played on {}.", "Arranged for {}.", "Lead instrument: {}."),
    "mood": ("It sounds {}.", "The mood is {}.", "Listeners describe it as {}."),
    "activity": ("Good for {}.", "Music for {}.", "Often chosen for {}."),
}
_INSTRUMENTAL = "instrumental"
_INSTRUMENTAL_SENTENCES = ("An instrumental piece.", "Instrumental, no lyrics.", "It is instrumental.")
_CATEGORY_ORDER = ("genre", "location", "language", "decade", "instrument", "mood", "activity")
_COLLECTION_TOP_TAGS = 12


def _join(tags: Sequence[str]) -> str:
    return tags[0] if len(tags) == 1 else ", ".join(tags[:-1]) + " and " + tags[-1]


def track_document(title: str, collection: str, artist: str, tags: pd.DataFrame, rng: np.random.Generator) -> str:
    """One track's description on a single line.

    Args:
        title: the track's title.
        collection: the collection's catalogue name.
        artist: the artist (collection volume or composer).
        tags: the track's annotations with ``tag, category`` columns (score ≥ 50 only).
        rng: generator choosing templates and the order of the tag list.
    """
    sentences = [f"{title}, from {collection} ({artist})."]
    for category in _CATEGORY_ORDER:
        chosen = tags.loc[tags["category"] == category, "tag"].tolist()
        if category == "language" and _INSTRUMENTAL in chosen:
            sentences.append(_INSTRUMENTAL_SENTENCES[rng.integers(len(_INSTRUMENTAL_SENTENCES))])
            chosen.remove(_INSTRUMENTAL)
        if chosen:
            templates = _TEMPLATES[category]
            sentences.append(templates[rng.integers(len(templates))].format(_join(chosen)))
    listed = tags["tag"].to_numpy(dtype=object)[rng.permutation(len(tags))]
    if len(listed):
        sentences.append("Tags: " + ", ".join(listed) + ".")
    return " ".join(sentences)


def collection_document(name: str, about: str, tags: pd.Series) -> str:
    """One collection's description: its documented sentence and its most common tags.

    Args:
        name: catalogue name.
        about: the documented sentence (:attr:`~retrieval.data.demo.sources.Collection.about`).
        tags: every annotation (tag strings, score ≥ 50) of the collection's tracks.
    """
    top = tags.value_counts().sort_index(kind="stable").sort_values(ascending=False, kind="stable")
    top = top.index[:_COLLECTION_TOP_TAGS].tolist()
    return f"{about} {name} is mostly tagged {_join(top)}." if top else about


def build_documents(
    tracks: pd.DataFrame, annotations: pd.DataFrame, about: Mapping[str, str], rng: np.random.Generator
) -> list[str]:
    """Every document of ``text/descriptions.txt``, one per line, in catalogue order.

    Args:
        tracks: one row per track, columns ``track_index, title, collection, collection_name, artist``.
        annotations: ``track_index, tag, category, score`` (all scores; only ≥ 50 are used).
        about: collection key → documented sentence.
        rng: generator for templates.
    """
    good = annotations[annotations["score"] >= 50]
    by_track = dict(tuple(good.groupby("track_index", sort=True)))
    empty = good.iloc[:0]
    docs = [
        track_document(row.title, row.collection_name, row.artist, by_track.get(row.track_index, empty), rng)
        for row in tracks.itertuples(index=False)
    ]
    collection_of = tracks.set_index("track_index")["collection"]
    names = tracks.drop_duplicates("collection").set_index("collection")["collection_name"]
    good_collection = good["track_index"].map(collection_of)
    for key, name in names.items():
        docs.append(collection_document(name, about[key], good.loc[good_collection == key, "tag"]))
    return [" ".join(doc.split()) for doc in docs]  # one line each, no stray whitespace
