"""Artist-disjoint train / valid / test splits: build them (the paper's subset builder), check, read, write.

The paper's recipe (Won et al., ICASSP 2021, MSD100 / MSD50): keep annotations with score ≥ 50, drop
tracks with more than 20 tags, keep the N most frequent tags, then split *artists* 70/15/15 and redraw
until every tag has ≥ 100 tracks in every split. The authors' draw was unseeded; here draw ``k`` shuffles
with ``np.random.default_rng(seed + k)``, so a split is reproducible from its arguments.

On-disk format (``DIR/splits/``)::

    train.tsv, valid.tsv, test.tsv [, unlabeled.tsv]   header "song_id<TAB>artist", one track per line
    tags.tsv                                           header "tag<TAB>category", the subset's tags

The authors' published splits (``reproducible_splits``: ``train_ids.npy`` ... with ``"ROW//ID"`` entries
and ``tags.npy``) are read by :func:`read_published_splits`.

Length (~490 lines): one concept, the split, from its builder to its file formats. The readers and the builder both
end in :func:`check_splits`, and the format's constants (file names, the ``unlabeled`` split) sit beside both, so they
stay in one module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd
from scipy import sparse

from retrieval.data.msd500 import DEFAULT_MIN_SCORE, label_matrix, read_tag_table
from retrieval.data.tsv import first_bad, raise_first, read_tsv
from retrieval.errors import ConfigError, DataError
from retrieval.fileio import atomic_path, load_npy

SPLIT_NAMES: tuple[str, ...] = ("train", "valid", "test", "unlabeled")
LABELED_SPLITS: tuple[str, ...] = ("train", "valid", "test")
SPLIT_COLUMNS: tuple[str, ...] = ("song_id", "artist")
TAGS_FILE = "tags.tsv"
TAGS_COLUMNS: tuple[str, ...] = ("tag", "category")
DEFAULT_FRACTIONS: tuple[float, float, float] = (0.7, 0.15, 0.15)
PUBLISHED_SEPARATOR = "//"
"""The authors' split files hold ``f"{row}//{id}"`` strings."""
_FRACTION_TOLERANCE = 1e-6


@dataclass(frozen=True, kw_only=True)
class Splits:
    """Song ids of each split, the subset's tags, and each song's artist.

    Attributes:
        train, valid, test: song ids (disjoint).
        unlabeled: extra song ids without labels (optional, disjoint from the others).
        tags: the subset's tag vocabulary (label columns), in order.
        artist_of: song id → artist name (may be empty, e.g. for published splits).

    Construct with keywords: ``Splits(train=..., valid=..., test=..., tags=..., artist_of=...)``.
    """

    train: tuple[str, ...]
    valid: tuple[str, ...]
    test: tuple[str, ...]
    tags: tuple[str, ...]
    artist_of: Mapping[str, str] = field(default_factory=dict)
    unlabeled: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in (*SPLIT_NAMES, "tags"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "artist_of", MappingProxyType(dict(self.artist_of)))
        ids = pd.Series(self.all_ids(), dtype=object)
        if ids.duplicated().any():
            duplicate = ids[ids.duplicated()].iloc[0]
            where = [name for name in SPLIT_NAMES if duplicate in set(getattr(self, name))]
            raise ValueError(
                f"song {duplicate!r} appears twice (in {', '.join(where)}); splits must be disjoint"
            )
        tags = pd.Series(self.tags, dtype=object)
        if tags.duplicated().any():
            raise ValueError(f"tag {tags[tags.duplicated()].iloc[0]!r} appears twice in tags")

    def ids(self, name: str) -> tuple[str, ...]:
        """Song ids of split ``name`` (one of :data:`SPLIT_NAMES`)."""
        if name not in SPLIT_NAMES:
            raise ConfigError(f"unknown split {name!r}; expected one of {', '.join(SPLIT_NAMES)}")
        return getattr(self, name)

    def all_ids(self) -> tuple[str, ...]:
        """Every song id: train, then valid, test, unlabeled."""
        return self.train + self.valid + self.test + self.unlabeled


# --------------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------------


def _check_build_arguments(
    top_n: int | None,
    min_per_split: int,
    fractions: Sequence[float],
    max_draws: int,
    max_tags_per_track: int | None,
) -> np.ndarray:
    """Validate :func:`build_splits`' arguments (ConfigError naming the bad one); return the fractions."""
    fractions = np.asarray(fractions, dtype=np.float64)
    if (
        fractions.shape != (len(LABELED_SPLITS),)
        or np.any(fractions <= 0)
        or (abs(fractions.sum() - 1.0) > _FRACTION_TOLERANCE)
    ):
        raise ConfigError(
            f"fractions must be 3 positive numbers (train, valid, test) summing to 1, got {fractions}"
        )
    if top_n is not None and top_n < 1:
        raise ConfigError(f"top_n must be ≥ 1 or None (all tags), got {top_n}")
    if min_per_split < 0:
        raise ConfigError(f"min_per_split must be ≥ 0, got {min_per_split}")
    if max_draws < 1:
        raise ConfigError(f"max_draws must be ≥ 1, got {max_draws}")
    if max_tags_per_track is not None and max_tags_per_track < 1:
        raise ConfigError(f"max_tags_per_track must be ≥ 1 or None, got {max_tags_per_track}")
    return fractions


def select_annotations(
    track_tags: pd.DataFrame,
    *,
    top_n: int | None = None,
    min_score: float = DEFAULT_MIN_SCORE,
    max_tags_per_track: int | None = 20,
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The paper's annotation filter: a score threshold, a cap on tags per track, the top-N tags.

    Keeps annotations with score ≥ ``min_score``; drops tracks that then carry more than
    ``max_tags_per_track`` distinct tags; keeps the ``top_n`` most frequent cleaned tags. Frequency =
    number of distinct tracks carrying the tag after the first two filters; ties are broken by tag name
    so the choice is deterministic.

    Returns:
        ``(annotations, tags)``: distinct ``(song_id, cleaned_tag)`` pairs restricted to the chosen tags,
        and the chosen tags sorted alphabetically (the authors' ``tags.npy`` order).
    """
    kept = track_tags.loc[track_tags["score"].to_numpy(np.float64) >= min_score, ["song_id", "cleaned_tag"]]
    kept = kept.drop_duplicates()
    if max_tags_per_track is not None:
        tags_per_track = kept["song_id"].map(kept["song_id"].value_counts())
        kept = kept[tags_per_track.to_numpy() <= max_tags_per_track]
    frequency = kept["cleaned_tag"].value_counts()
    ranked = (
        frequency.rename_axis("tag").reset_index(name="n").sort_values(["n", "tag"], ascending=[False, True])
    )
    chosen = ranked["tag"] if top_n is None else ranked["tag"].iloc[:top_n]
    kept = kept[kept["cleaned_tag"].isin(chosen)]
    return kept.reset_index(drop=True), tuple(sorted(chosen))


def _assign_artists(track_weight: np.ndarray, fractions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shuffle artists and cut the sequence at the cumulative fractions of *tracks*.

    An artist goes to split ``k`` when the midpoint of its tracks in the shuffled sequence falls in
    ``[F_{k-1}, F_k)``, ``F = cumsum(fractions)``; weighting by tracks keeps the split sizes near
    70/15/15 of the tracks even when a few artists have many tracks.

    Returns:
        Split index (0 train, 1 valid, 2 test) of every artist, shape ``(n_artists,)``.
    """
    order = rng.permutation(len(track_weight))
    weight = track_weight[order]
    midpoint = (np.cumsum(weight) - weight / 2) / weight.sum()
    split = np.empty(len(order), dtype=np.int64)
    split[order] = np.searchsorted(np.cumsum(fractions)[:-1], midpoint, side="right")
    return split


def build_splits(
    track_tags: pd.DataFrame,
    artist_of: Mapping[str, str],
    *,
    top_n: int | None = None,
    min_score: float = DEFAULT_MIN_SCORE,
    min_per_split: int = 100,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    max_draws: int = 1000,
    max_tags_per_track: int | None = 20,
    artist_source: str | Path = "unique_tracks.txt",
) -> Splits:
    """Build artist-disjoint splits where every tag has ≥ ``min_per_split`` tracks in every split.

    Steps: :func:`select_annotations` (score ≥ ``min_score``, ≤ ``max_tags_per_track`` tags per track,
    ``top_n`` most frequent tags); the tracks are those carrying at least one chosen tag; their artists
    (sorted) are shuffled with ``np.random.default_rng(seed + draw)`` and cut at the cumulative track
    fractions (see :func:`_assign_artists`); draws repeat until ``count[split, tag] ≥ min_per_split`` for
    all splits and tags, where ``count = S @ L`` (split one-hot × track-tag labels), at most
    ``max_draws`` times.

    Args:
        track_tags: annotations (:func:`~retrieval.data.msd500.read_track_tags`).
        artist_of: song id → artist name (e.g. from ``unique_tracks.txt``).
        top_n: keep this many most frequent tags (None: all).
        min_score: annotation threshold.
        min_per_split: required tracks per tag in each of train / valid / test.
        fractions: target track fractions of train, valid, test (sum 1).
        seed: draw ``k`` uses ``np.random.default_rng(seed + k)``.
        max_draws: give up after this many draws.
        max_tags_per_track: drop tracks with more tags than this (None: keep all).
        artist_source: the file ``artist_of`` came from, named in errors.

    Returns:
        :class:`Splits` with sorted song ids per split, the chosen tags (sorted), and ``artist_of``
        restricted to the chosen tracks.

    Raises:
        DataError: a chosen track has no artist (every such track should be in ``artist_source``).
        ConfigError: bad arguments, or no draw satisfies ``min_per_split``; the message names the tag
            that failed most often and its best count.
    """
    fractions = _check_build_arguments(top_n, min_per_split, fractions, max_draws, max_tags_per_track)
    annotations, tags = select_annotations(
        track_tags, top_n=top_n, min_score=min_score, max_tags_per_track=max_tags_per_track
    )
    if not tags:
        raise ConfigError(
            f"no annotation has score ≥ {min_score:g} (after dropping tracks with more than "
            f"{max_tags_per_track} tags); lower min_score or check track_tags"
        )
    songs = np.sort(annotations["song_id"].unique().astype(object))
    lookup = artist_of if isinstance(artist_of, dict) else dict(artist_of)
    artists = pd.Series(songs, dtype=object).map(lookup)
    missing = (artists.isna() | (artists.astype(str).str.strip() == "")).to_numpy()
    if missing.any():
        raise DataError(
            artist_source,
            f"{int(missing.sum())} of {len(songs)} tracks have no artist, e.g. song {songs[missing][0]!r}; "
            "add a line track_id<SEP>song_id<SEP>artist_name<SEP>title for each",
            key=str(songs[missing][0]),
        )
    artist_codes, artist_names = pd.factorize(artists.to_numpy(), sort=True)

    # Per-artist tag counts as COO triplets: count[split, tag] = bincount over (split_of_artist, tag).
    song_row = pd.Index(songs).get_indexer(annotations["song_id"])
    tag_col = pd.Index(tags).get_indexer(annotations["cleaned_tag"])
    per_artist = (
        sparse.coo_matrix(
            (np.ones(len(song_row), dtype=np.int64), (artist_codes[song_row], tag_col)),
            shape=(len(artist_names), len(tags)),
        )
        .tocsr()
        .tocoo()
    )  # sums the (artist, tag) duplicates
    tracks_per_artist = np.bincount(artist_codes, minlength=len(artist_names)).astype(np.float64)

    totals = np.bincount(tag_col, minlength=len(tags))
    n_splits = len(LABELED_SPLITS)
    impossible = first_bad(totals < n_splits * min_per_split)
    if impossible is not None:
        raise ConfigError(
            f"tag {tags[impossible]!r} has only {totals[impossible]} tracks, fewer than "
            f"{n_splits} × min_per_split = {n_splits * min_per_split}; lower min_per_split or top_n"
        )

    failures = np.zeros(len(tags), dtype=np.int64)
    best = np.zeros(len(tags), dtype=np.int64)
    for draw in range(max_draws):
        split_of_artist = _assign_artists(tracks_per_artist, fractions, np.random.default_rng(seed + draw))
        counts = np.bincount(
            split_of_artist[per_artist.row] * len(tags) + per_artist.col,
            weights=per_artist.data,
            minlength=n_splits * len(tags),
        ).reshape(n_splits, len(tags))
        smallest = counts.min(axis=0).astype(np.int64)
        if np.all(smallest >= min_per_split):
            split_of_song = split_of_artist[artist_codes]
            return Splits(
                **{name: tuple(songs[split_of_song == k]) for k, name in enumerate(LABELED_SPLITS)},
                tags=tags,
                artist_of=dict(zip(songs, artists.to_numpy(), strict=True)),
            )
        failures += smallest < min_per_split
        best = np.maximum(best, smallest)
    worst = int(np.argmax(failures))
    raise ConfigError(
        f"no artist split in {max_draws} draws gives every tag ≥ {min_per_split} tracks in each of "
        f"{', '.join(LABELED_SPLITS)}: tag {tags[worst]!r} failed in {failures[worst]} draws, its best "
        f"smallest-split count was {best[worst]}; lower min_per_split, choose fewer tags (top_n) or raise "
        "max_draws"
    )


def shared_artists(splits: Splits) -> dict[str, list[str]]:
    """Artists with songs in more than one split (unlabeled included) → those splits; empty when the splits are
    artist-disjoint. Songs without an artist are not counted (see :func:`check_splits`)."""
    membership = pd.DataFrame({
        "song_id": list(splits.all_ids()),
        "split": np.repeat(SPLIT_NAMES, [len(splits.ids(name)) for name in SPLIT_NAMES]),
    })
    membership["artist"] = membership["song_id"].map(dict(splits.artist_of))
    membership = membership.dropna(subset=["artist"])
    per_artist = membership.groupby("artist")["split"].agg(lambda where: sorted(set(where)))
    return {artist: where for artist, where in per_artist.items() if len(where) > 1}


def check_splits(
    splits: Splits,
    track_tags: pd.DataFrame,
    *,
    min_score: float = DEFAULT_MIN_SCORE,
    min_per_split: int = 100,
) -> list[str]:
    """Verify the split invariants; return the problems found (an empty list when all hold).

    Checks: every labeled song has an artist; no artist has songs in two splits (unlabeled included);
    every tag has ≥ ``min_per_split`` songs with score ≥ ``min_score`` in each of train / valid / test.
    """
    problems: list[str] = []
    membership = pd.DataFrame(
        {
            "song_id": list(splits.all_ids()),
            "split": np.repeat(SPLIT_NAMES, [len(splits.ids(name)) for name in SPLIT_NAMES]),
        }
    )
    membership["artist"] = membership["song_id"].map(dict(splits.artist_of))
    no_artist = membership["artist"].isna()
    if no_artist.any():
        problems.append(
            f"{int(no_artist.sum())} songs have no artist, e.g. {membership['song_id'][no_artist].iloc[0]!r}"
        )
    shared = shared_artists(splits)
    if shared:
        artist, where = next(iter(shared.items()))
        problems.append(
            f"{len(shared)} artists are in more than one split, e.g. {artist!r} in {', '.join(where)}"
        )
    for name in LABELED_SPLITS:
        counts = np.asarray(
            label_matrix(track_tags, splits.ids(name), splits.tags, min_score).sum(axis=0)
        ).ravel()
        short = np.flatnonzero(counts < min_per_split)
        if len(short):
            problems.append(
                f"{len(short)} tags have fewer than {min_per_split} songs in {name}, e.g. "
                f"{splits.tags[short[0]]!r} with {counts[short[0]]}"
            )
    return problems


# --------------------------------------------------------------------------------------------------
# Reading and writing
# --------------------------------------------------------------------------------------------------


def _clean_field(values: pd.Series) -> pd.Series:
    """Tabs and newlines would break the TSV: replace them by spaces (artist names only)."""
    text = values.astype(object).where(values.notna(), "").astype(str)
    return text.str.replace(r"[\t\r\n]", " ", regex=True)


def write_splits(splits: Splits, folder: str | Path, categories: Mapping[str, str] | None = None) -> None:
    """Write ``train.tsv``, ``valid.tsv``, ``test.tsv`` (+ ``unlabeled.tsv`` when non-empty) and
    ``tags.tsv`` into ``folder``. Each file is written atomically.

    Args:
        splits: the splits.
        folder: destination (created if needed).
        categories: tag → category for ``tags.tsv``; None writes empty categories.

    Artists come from ``splits.artist_of`` (empty when unknown); tabs/newlines inside artist names are
    written as spaces.

    Raises:
        ValueError: ``categories`` is given but lacks a tag.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if categories is not None:
        missing = [tag for tag in splits.tags if tag not in categories]
        if missing:
            raise ValueError(f"categories lacks {len(missing)} of the split's tags, e.g. {missing[0]!r}")
    lookup = dict(splits.artist_of)
    for name in SPLIT_NAMES:
        ids = splits.ids(name)
        if name == "unlabeled" and not ids:
            continue
        song_ids = pd.Series(ids, dtype=object)
        frame = pd.DataFrame({"song_id": song_ids, "artist": _clean_field(song_ids.map(lookup))})
        _write_tsv(frame, folder / f"{name}.tsv")
    tags = pd.Series(splits.tags, dtype=object)
    category = tags.map(dict(categories)) if categories is not None else pd.Series("", index=tags.index)
    _write_tsv(pd.DataFrame({"tag": tags, "category": _clean_field(category)}), folder / TAGS_FILE)


def _write_tsv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as handle:
        handle.write("\t".join(frame.columns) + "\n")
        handle.write("".join(line + "\n" for line in frame.iloc[:, 0].str.cat(frame.iloc[:, 1:], sep="\t")))


def read_split_tags(folder: str | Path) -> pd.DataFrame:
    """Read ``folder/tags.tsv`` (header ``tag<TAB>category``) → DataFrame ``tag, category``.

    Categories are canonicalised (see :func:`~retrieval.data.msd500.canonical_category`); an empty
    category is kept as ``""`` (unknown).
    """
    return read_tag_table(Path(folder) / TAGS_FILE, TAGS_COLUMNS, header="required", allow_empty_category=True)


def read_splits(folder: str | Path) -> Splits:
    """Read splits written by :func:`write_splits` (``train/valid/test[/unlabeled].tsv`` + ``tags.tsv``).

    Raises:
        DataError: naming the missing file, or the file and line of an empty id, a malformed line, or a
            song listed twice (within or across splits: the later line is named with the earlier place).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "splits folder not found; create it with build_splits + write_splits")
    frames = []
    for name in SPLIT_NAMES:
        path = folder / f"{name}.tsv"
        if name == "unlabeled" and not path.exists():
            continue
        if not path.is_file():
            raise DataError(
                path, f"missing split file; expected {', '.join(f'{n}.tsv' for n in LABELED_SPLITS)}"
            )
        frame = read_tsv(path, SPLIT_COLUMNS, header="required")
        raise_first(path, frame.index, [((frame["song_id"].str.strip() == "").to_numpy(), "empty song_id")])
        frames.append(frame.assign(split=name, file=str(path), line=frame.index.to_numpy()))
    rows = pd.concat(frames, ignore_index=True)
    duplicated = rows["song_id"].duplicated()
    if duplicated.any():
        again = rows[duplicated].iloc[0]
        first = rows[rows["song_id"] == again["song_id"]].iloc[0]
        raise DataError(
            again["file"],
            f"song {again['song_id']!r} is already listed in {Path(first['file']).name} "
            f"line {first['line']}; each song belongs to one split",
            line=int(again["line"]),
        )
    tags = read_split_tags(folder)
    known_artist = rows["artist"] != ""
    return Splits(
        **{name: tuple(rows.loc[rows["split"] == name, "song_id"]) for name in SPLIT_NAMES},
        tags=tuple(tags["tag"]),
        artist_of=dict(zip(rows.loc[known_artist, "song_id"], rows.loc[known_artist, "artist"], strict=True)),
    )


def _published_ids(path: Path) -> tuple[str, ...]:
    """Ids from one of the authors' ``*_ids.npy`` files (``"ROW//ID"`` strings)."""
    values = _load_strings(path)
    parts = pd.Series(values.astype(str), dtype=object).str.split(PUBLISHED_SEPARATOR, n=1, expand=True)
    parts = parts.reindex(columns=[0, 1]).astype(object)  # a file without any "//" has no column 1
    bad = (parts[1].isna() | ~parts[0].str.fullmatch(r"\d+") | (parts[1].fillna("") == "")).to_numpy()
    position = first_bad(bad)
    if position is not None:
        raise DataError(
            path,
            f"entry {str(values[position])!r} is not of the form 'ROW{PUBLISHED_SEPARATOR}ID'",
            key=f"entry {position}",
        )
    return tuple(parts[1])


def _load_strings(path: Path) -> np.ndarray:
    """A 1-d string array from ``path`` (:func:`retrieval.fileio.load_npy`: no pickles, errors name the file)."""
    values = load_npy(path, advice="; expected the authors' reproducible splits (see data/msd500/README.md)")
    if values.ndim != 1 or values.dtype.kind not in "US":
        raise DataError(
            path, f"expected a 1-d array of strings, found {values.dtype} of shape {values.shape}"
        )
    return values


def read_published_splits(
    folder: str | Path, *, prefix: str = "", artist_of: Mapping[str, str] | None = None
) -> Splits:
    """Read the authors' published splits (``reproducible_splits``).

    Files: ``{prefix}train_ids.npy``, ``{prefix}valid_ids.npy``, ``{prefix}test_ids.npy`` (1-d string
    arrays of ``"ROW//ID"``, ROW being the row in the authors' own label matrix, which is dropped) and
    ``{prefix}tags.npy`` (the sorted tag list). The authors' subset files use ``prefix="sub_"``.

    Args:
        folder: the folder holding the files.
        prefix: file-name prefix.
        artist_of: optional song id → artist, restricted to the split's songs in the result.

    Returns:
        :class:`Splits` with ids in file order.
    """
    folder = Path(folder)
    ids = {name: _published_ids(folder / f"{prefix}{name}_ids.npy") for name in LABELED_SPLITS}
    tags = tuple(str(tag) for tag in _load_strings(folder / f"{prefix}tags.npy"))
    artists: dict[str, str] = {}
    if artist_of is not None:
        songs = pd.Series([song for split in ids.values() for song in split], dtype=object)
        found = songs.map(artist_of if isinstance(artist_of, dict) else dict(artist_of)).dropna()
        artists = dict(zip(songs[found.index], found, strict=True))
    return Splits(**ids, tags=tags, artist_of=artists)
