"""One loader for a corpus folder: the real MSD500 or the generated demo corpus (same layout).

Layout (``data/msd500/README.md`` has the details)::

    DIR/track_tags.tsv       annotations (song_id, original_tag, cleaned_tag, category, score)
    DIR/selected_tags.tsv    tag, category
    DIR/unique_tracks.txt    track_id<SEP>song_id<SEP>artist_name<SEP>title
    DIR/train_triplets.txt   Taste Profile (user, song_id, play_count), optional
    DIR/audio/, DIR/mel/     previews / precomputed log-mels, optional
    DIR/splits/              train.tsv, valid.tsv, test.tsv [, unlabeled.tsv], tags.tsv, optional

Example:
    >>> corpus = load_corpus("/data/msd500")  # doctest: +SKIP
    >>> song_ids, labels = corpus.labels("train")  # doctest: +SKIP
    >>> labels.shape  # (len(song_ids), len(corpus.tags))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse

from retrieval.data.msd500 import (
    DEFAULT_MIN_SCORE,
    label_matrix,
    read_selected_tags,
    read_track_tags,
    read_unique_tracks,
)
from retrieval.data.splits import SPLIT_NAMES, TAGS_FILE, Splits, read_split_tags, read_splits
from retrieval.data.taste_profile import PlayMatrix, read_taste_profile
from retrieval.errors import DataError

if TYPE_CHECKING:
    from retrieval.data.audio_locator import AudioLocator

TRACK_TAGS_FILE = "track_tags.tsv"
SELECTED_TAGS_FILE = "selected_tags.tsv"
UNIQUE_TRACKS_FILE = "unique_tracks.txt"
TASTE_PROFILE_FILE = "train_triplets.txt"
AUDIO_DIR = "audio"
MEL_DIR = "mel"
MEL_EXTENSION = ".npy"
SPLITS_DIR = "splits"
DEMO_HINT = (
    "point at a folder laid out as in data/msd500/README.md, or create a demo corpus with "
    "`retrieval data demo --out DIR`"
)


@dataclass(eq=False)
class Corpus:
    """A loaded corpus folder.

    Attributes:
        root: the corpus folder.
        track_tags: every annotation (:func:`~retrieval.data.msd500.read_track_tags`), keyed by song id.
        tags: the subset's tags, DataFrame ``tag, category`` in label-column order (``splits/tags.tsv``
            when present, else ``selected_tags.tsv``).
        tracks: DataFrame indexed by ``song_id`` with ``track_id, artist, title`` (the first MSD track of
            each song), for the corpus's songs.
        splits: the splits (``splits/``), or None when the folder has none.
        song_tracks: DataFrame ``song_id, track_id`` listing every MSD track of each corpus song (MSD has
            duplicate tracks of one song); used to find audio named by any of them.
        min_score: annotation score threshold for labels.
    """

    root: Path
    track_tags: pd.DataFrame
    tags: pd.DataFrame
    tracks: pd.DataFrame
    splits: Splits | None
    song_tracks: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["song_id", "track_id"]))
    min_score: float = DEFAULT_MIN_SCORE

    @property
    def categories(self) -> dict[str, str]:
        """Tag → category (``""`` when unknown)."""
        return dict(zip(self.tags["tag"], self.tags["category"], strict=True))

    @property
    def tag_names(self) -> tuple[str, ...]:
        """The label columns, in order."""
        return tuple(self.tags["tag"])

    def song_ids(self) -> tuple[str, ...]:
        """Every song of the corpus: all split ids when there are splits, else every annotated song."""
        if self.splits is not None:
            return self.splits.all_ids()
        return tuple(pd.unique(self.track_tags["song_id"]))

    def _require_splits(self) -> Splits:
        if self.splits is None:
            raise DataError(
                self.root / SPLITS_DIR,
                "this corpus has no splits; build them with retrieval.data.splits.build_splits and "
                "write_splits(splits, DIR/splits)",
            )
        return self.splits

    def labels(self, split: str) -> tuple[tuple[str, ...], sparse.csr_matrix]:
        """Song ids of ``split`` and their labels.

        Returns:
            ``(song_ids, L)`` with ``L`` a bool CSR matrix of shape ``(len(song_ids), len(self.tags))``,
            ``L[i, j]`` = song i has tag j with score ≥ ``min_score``.
        """
        song_ids = self._require_splits().ids(split)
        return song_ids, label_matrix(self.track_tags, song_ids, self.tag_names, self.min_score)

    def summary(self, listeners: bool = True) -> str:
        """Readable counts: tracks per split, tags per category and (reading the Taste Profile) listeners."""
        lines = [f"corpus {self.root}", f"  tracks: {len(self.song_ids())}"]
        if self.splits is not None:
            sizes = ", ".join(f"{name} {len(self.splits.ids(name))}" for name in SPLIT_NAMES if self.splits.ids(name))
            lines.append(f"  splits: {sizes}")
        per_category = self.tags.groupby("category", sort=True)["tag"].count()
        lines.append(f"  tags: {len(self.tags)} ({', '.join(f'{c} {n}' for c, n in per_category.items())})")
        if listeners and (self.root / TASTE_PROFILE_FILE).is_file():
            plays = self.taste_profile()
            lines.append(
                f"  listeners: {plays.matrix.shape[0]} users, {plays.matrix.nnz} (user, track) pairs, "
                f"{int(plays.matrix.sum())} plays"
            )
        return "\n".join(lines)

    def _aliases(self) -> dict[str, list[str]]:
        """Song id → every MSD track id of the song, then their 7digital ids when the corpus has the id map
        (:mod:`retrieval.data.seven_digital`): files may be named by any of them."""
        from retrieval.data.seven_digital import find_id_map, read_id_map

        pairs = self.song_tracks
        map_path = find_id_map(self.root)
        if map_path is not None:
            seven = pairs["track_id"].map(read_id_map(map_path))
            known = seven.notna()
            pairs = pd.concat([pairs, pd.DataFrame({"song_id": pairs.loc[known, "song_id"].to_numpy(),
                                                    "track_id": seven[known].to_numpy()})], ignore_index=True)
        return pairs.groupby("song_id", sort=False)["track_id"].agg(list).to_dict()

    def audio_locator(self, **kwargs: Any) -> AudioLocator:
        """An :class:`~retrieval.data.audio_locator.AudioLocator` over ``root/audio`` that finds a song's
        file named by its song id or by any of its track ids. ``kwargs`` go to the locator.
        """
        from retrieval.data.audio_locator import AudioLocator

        path = self.root / AUDIO_DIR
        if not path.is_dir():
            raise DataError(
                path,
                "no audio folder; put the previews you own here, flat (audio/TR....mp3), sharded "
                "(audio/A/B/C/TR....mp3) or as the 7digital dump (audio/8/9/8947470.clip.mp3 with "
                "7digital_ids.tsv), see data/msd500/README.md",
            )
        return AudioLocator(path, aliases=self._aliases(), **kwargs)

    def mel_locator(self) -> AudioLocator | None:
        """Like :meth:`audio_locator` over the precomputed log-mels ``root/mel/**.npy``; None when the
        corpus has no ``mel/`` folder.
        """
        from retrieval.data.audio_locator import AudioLocator

        path = self.root / MEL_DIR
        if not path.is_dir():
            return None
        return AudioLocator(path, extensions=(MEL_EXTENSION,), aliases=self._aliases())

    def taste_profile(self, **kwargs: Any) -> PlayMatrix:
        """Read ``root/train_triplets.txt`` restricted to :meth:`song_ids` (columns in that order).

        ``kwargs`` go to :func:`~retrieval.data.taste_profile.read_taste_profile` (``chunk_rows``,
        ``progress``).
        """
        path = self.root / TASTE_PROFILE_FILE
        if not path.is_file():
            raise DataError(
                path,
                "file not found; the Echo Nest Taste Profile's train_triplets.txt "
                "(user, song_id, play_count) belongs here (see data/msd500/README.md)",
            )
        return read_taste_profile(path, items=self.song_ids(), **kwargs)


def check_corpus_root(root: str | Path) -> Path:
    """``root`` as a Path if it is a folder, else a :class:`DataError` saying how to make a corpus (call it before
    any slow work that reads the corpus, such as training)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, f"corpus folder not found; {DEMO_HINT}")
    return root


def _required(root: Path, name: str) -> Path:
    path = root / name
    if not path.is_file():
        raise DataError(path, f"file not found; {DEMO_HINT}")
    return path


def _map_track_ids(ids: pd.Series, song_of_track: pd.Series, song_ids: pd.Index) -> pd.Series:
    """Replace ids that are MSD track ids (and not song ids) by their song id; others pass through.

    The MSD500 README calls ``track_tags.tsv``'s first column ``song_id``; if a copy holds track ids
    (``TR...``) instead, this makes it usable without a conversion step.
    """
    is_track = ~ids.isin(song_ids) & ids.isin(song_of_track.index)
    if not is_track.any():
        return ids
    out = ids.copy()
    out[is_track] = song_of_track.reindex(ids[is_track]).to_numpy()
    return out


def _map_split_ids(splits: Splits, song_of_track: pd.Series, song_ids: pd.Index) -> Splits:
    """:func:`_map_track_ids` applied to every split (artists follow their songs)."""
    old_ids = pd.Series(splits.all_ids(), dtype=object)
    new_ids = _map_track_ids(old_ids, song_of_track, song_ids)
    if new_ids.equals(old_ids):
        return splits
    sizes = np.cumsum([len(splits.ids(name)) for name in SPLIT_NAMES])
    parts = np.split(new_ids.to_numpy(), sizes[:-1])
    artists = old_ids.map(dict(splits.artist_of))
    known = artists.notna().to_numpy()
    return Splits(
        **{name: tuple(part) for name, part in zip(SPLIT_NAMES, parts, strict=True)},
        tags=splits.tags,
        artist_of=dict(zip(new_ids[known], artists[known], strict=True)),
    )


def load_corpus(
    root: str | Path, *, splits_dir: str | Path | None = None, min_score: float = DEFAULT_MIN_SCORE
) -> Corpus:
    """Load a corpus folder (real MSD500 or demo corpus).

    Reads ``track_tags.tsv`` and ``unique_tracks.txt`` (required), ``splits/`` when present, and the tag
    list from ``splits/tags.tsv`` or else ``selected_tags.tsv`` (empty categories in the former are
    filled from the latter). The Taste Profile and audio are opened on demand
    (:meth:`Corpus.taste_profile`, :meth:`Corpus.audio_locator`).

    Ids in ``track_tags.tsv`` or the splits that are MSD *track* ids are mapped to their song ids through
    ``unique_tracks.txt`` (the catalogue is keyed by song id).

    Args:
        root: the corpus folder.
        splits_dir: a split folder to use instead of ``root/splits`` (e.g. an MSD100 subset's splits).
        min_score: annotation score threshold for :meth:`Corpus.labels`.

    Raises:
        DataError: a missing folder or file (named, with how to get it), a malformed file (file and line),
            a split song missing from ``unique_tracks.txt``, or a split tag that no annotation uses.
    """
    root = check_corpus_root(root)
    track_tags = read_track_tags(_required(root, TRACK_TAGS_FILE))
    unique_tracks = read_unique_tracks(_required(root, UNIQUE_TRACKS_FILE))
    song_index = pd.Index(unique_tracks["song_id"].unique())
    song_of_track = unique_tracks.drop_duplicates("track_id").set_index("track_id")["song_id"]
    track_tags["song_id"] = _map_track_ids(track_tags["song_id"], song_of_track, song_index)

    if splits_dir is not None and not Path(splits_dir).is_dir():
        raise DataError(splits_dir, "split folder not found; build one with `retrieval data subset`")
    splits_dir = root / SPLITS_DIR if splits_dir is None else Path(splits_dir)
    splits: Splits | None = None
    selected_path = root / SELECTED_TAGS_FILE
    if splits_dir.is_dir():
        splits = _map_split_ids(read_splits(splits_dir), song_of_track, song_index)
        tags = read_split_tags(splits_dir)
        if selected_path.is_file() and (tags["category"] == "").any():
            selected = read_selected_tags(selected_path).set_index("tag")["category"]
            empty = tags["category"] == ""
            tags.loc[empty, "category"] = tags.loc[empty, "tag"].map(selected).fillna("").to_numpy()
    elif selected_path.is_file():
        tags = read_selected_tags(selected_path)
    else:
        raise DataError(selected_path, f"file not found (and no {SPLITS_DIR}/{TAGS_FILE}); {DEMO_HINT}")
    tags_path = splits_dir / TAGS_FILE if splits is not None else selected_path
    _check_tags_used(tags_path, tags["tag"], track_tags)

    corpus_songs = pd.Index(splits.all_ids() if splits is not None else track_tags["song_id"].unique())
    if splits is not None:
        missing = ~corpus_songs.isin(song_index)
        if missing.any():
            raise DataError(
                root / UNIQUE_TRACKS_FILE,
                f"{int(missing.sum())} split songs have no line here, e.g. {corpus_songs[missing][0]!r}; add "
                "track_id<SEP>song_id<SEP>artist_name<SEP>title for each",
            )
    in_corpus = unique_tracks["song_id"].isin(corpus_songs).to_numpy()
    song_tracks = unique_tracks.loc[in_corpus, ["song_id", "track_id"]].reset_index(drop=True)
    tracks = unique_tracks.loc[in_corpus].drop_duplicates("song_id").set_index("song_id")
    return Corpus(
        root=root,
        track_tags=track_tags,
        tags=tags.reset_index(drop=True),
        tracks=tracks[["track_id", "artist", "title"]],
        splits=splits,
        song_tracks=song_tracks,
        min_score=min_score,
    )


def _check_tags_used(path: Path, tags: Sequence[str] | pd.Series, track_tags: pd.DataFrame) -> None:
    """A listed tag that no annotation carries would be an all-zero label column: name it."""
    tags = pd.Series(tags, dtype=object)
    unused = ~tags.isin(track_tags["cleaned_tag"])
    if unused.any():
        raise DataError(
            path,
            f"{int(unused.sum())} tags never appear in {TRACK_TAGS_FILE}'s cleaned_tag column, e.g. "
            f"{tags[unused].iloc[0]!r} (tags are matched exactly, case included)",
            key=str(tags[unused].iloc[0]),
        )


def artist_mapping(tracks: pd.DataFrame) -> Mapping[str, str]:
    """Song id → artist from a ``tracks`` frame (:attr:`Corpus.tracks`) or ``unique_tracks`` rows."""
    frame = tracks.reset_index() if "song_id" not in tracks.columns else tracks
    frame = frame.drop_duplicates("song_id")
    return dict(zip(frame["song_id"], frame["artist"], strict=True))


def artists_by_any_id(corpus: Corpus) -> dict[str, str]:
    """Song id **and** every MSD track id of each corpus song → its artist: published split files and
    ``track_tags.tsv`` copies name tracks by track id (``TR…``), the catalogue by song id (``SO…``)."""
    by_song = dict(artist_mapping(corpus.tracks))
    by_track = dict(zip(corpus.song_tracks["track_id"], corpus.song_tracks["song_id"].map(by_song), strict=True))
    return {**{k: v for k, v in by_track.items() if isinstance(v, str)}, **by_song}


def import_published_splits(
    corpus: Corpus, folder: str | Path, *, prefix: str = "", min_per_split: int = 1
) -> tuple[Splits, list[str]]:
    """The authors' published splits (:func:`~retrieval.data.splits.read_published_splits`) with each track's
    artist, and the problems :func:`~retrieval.data.splits.check_splits` finds (artist-disjointness, tracks
    without an artist, tags short of ``min_per_split`` tracks), checked on the corpus' song ids.

    Returns:
        (splits with ids as published and artists filled in, problems — an empty list when all hold).
    """
    from retrieval.data.splits import check_splits, read_published_splits

    splits = read_published_splits(Path(folder), prefix=prefix, artist_of=artists_by_any_id(corpus))
    unique = pd.DataFrame({"song_id": corpus.song_tracks["song_id"], "track_id": corpus.song_tracks["track_id"]})
    song_of_track = unique.drop_duplicates("track_id").set_index("track_id")["song_id"]
    as_songs = _map_split_ids(splits, song_of_track, pd.Index(corpus.tracks.index))
    problems = check_splits(as_songs, corpus.track_tags, min_score=corpus.min_score, min_per_split=min_per_split)
    return splits, problems
