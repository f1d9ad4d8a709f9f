"""What the artist-group comparison needs per track, and how it is made from audio files and the demo corpus.

Each audio file is decoded once (:func:`retrieval.audio.load_audio`); from the waveform come both
``n_patches`` equally spaced ~1-s log-mel patches (the networks' input) and the audio statistics of the audio
factor (:class:`retrieval.heads.artist_factors.AudioStatistics`).

The demo corpus (:func:`demo_inputs`): artists are the ``artist`` field of ``unique_tracks.txt`` (a
composer's or collection's volume); the genre target is one top-level era/region genre per track made from
its genre tags by :data:`DEMO_TOP_GENRES` (see :func:`demo_top_genres`); the tags factor uses every tag of the
corpus; the listening factor uses ALS vectors fitted on the corpus's simulated Taste Profile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import sparse

from retrieval.audio import MelConfig, MelSpectrogram, equally_spaced_crops, load_audio
from retrieval.errors import AudioError, DataError
from retrieval.heads.artist_factors import AudioStatistics

__all__ = ["DEMO_TOP_GENRES", "NO_GENRE", "ArtistGroupInputs", "demo_inputs", "demo_top_genres", "extract_audio_inputs"]

#: Genre index of a track without a genre target.
NO_GENRE = -1
#: Storage dtype of the patches (halves memory; cast to float32 per batch).
PATCH_DTYPE = torch.float16

#: The demo's top-level genres (era or region), each with the corpus genre tags that vote for it, in order.
#: Broad tags that span several eras or regions ("folk", "classical", "early music", "polyphony", "choral",
#: "sacred", "hymn", "ballad", "love song", "soldier song", "mountain song", "fiddle tune") do not vote.
DEMO_TOP_GENRES: dict[str, tuple[str, ...]] = {
    "medieval": ("medieval",),
    "renaissance": ("renaissance", "madrigal", "mass"),
    "baroque": ("baroque", "chorale"),
    "classical era": ("chamber music",),
    "celtic": ("celtic", "irish folk", "scottish folk"),
    "american folk": ("american folk",),
    "english folk": ("english folk",),
    "german folk": ("german folk",),
    "chinese folk": ("chinese folk", "xiaodiao"),
}


@dataclass
class ArtistGroupInputs:
    """Per-track inputs of the comparison, rows aligned.

    Attributes:
        track_ids: (n,) ids.
        artists: (n,) str artist of each track.
        splits: (n,) str split of each track (``train`` rows train every network and head; ``test`` rows are
            scored; other rows only help define the artist features).
        genres: (n,) int64 genre index, :data:`NO_GENRE` where the track has none.
        genre_names: the genre of each index.
        patches: (n, n_patches, n_mels, frames) float16 log-mel patches.
        audio_stats: (n, d) float32 audio statistics.
        tag_labels: (n, n_tags) binary tag matrix, or None.
        tag_names: the tags of ``tag_labels``' columns.
        listening: (n, f) float32 listening vectors, or None.
        listening_valid: (n,) bool, rows of ``listening`` that had plays.
        skipped: id → reason, for tracks dropped because their audio is missing or unreadable.
    """

    track_ids: tuple[str, ...]
    artists: np.ndarray
    splits: np.ndarray
    genres: np.ndarray
    genre_names: tuple[str, ...]
    patches: torch.Tensor
    audio_stats: np.ndarray
    tag_labels: sparse.csr_matrix | None = None
    tag_names: tuple[str, ...] = ()
    listening: np.ndarray | None = None
    listening_valid: np.ndarray | None = None
    skipped: dict[str, str] = field(default_factory=dict)


def extract_audio_inputs(
    audio_paths: Mapping[str, str | Path],
    mel: MelConfig,
    patch_frames: int,
    n_patches: int,
    statistics: AudioStatistics,
    progress: bool = False,
) -> tuple[list[str], torch.Tensor, np.ndarray, dict[str, str]]:
    """Decode each file once: mel patches and audio statistics.

    Args:
        audio_paths: track id → audio file.
        mel: mel settings of the patches (and the decoding sample rate).
        patch_frames: frames per patch (43 ≈ 1 s at 22,050 Hz / hop 512).
        n_patches: equally spaced patches per track (a track shorter than a patch is zero-padded).
        statistics: the audio factor's summary (its mel settings should match ``mel``'s rate).
        progress: show a progress bar.

    Returns:
        ``(ids, patches, stats, errors)``: the ids read, in input order; patches (n, n_patches, n_mels,
        patch_frames) float16; stats (n, statistics.dim) float32; id → error for unreadable files.
    """
    from tqdm.auto import tqdm

    front_end = MelSpectrogram(mel)
    ids, patches, stats, errors = [], [], [], {}
    with torch.no_grad():
        for track_id, path in tqdm(audio_paths.items(), desc="audio inputs", unit="track", disable=not progress):
            try:
                wave = torch.from_numpy(load_audio(path, mel.sample_rate))
            except AudioError as error:
                errors[track_id] = str(error)
                continue
            log_mel = front_end(wave[None])[0]  # (n_mels, frames)
            patches.append(equally_spaced_crops(log_mel, patch_frames, n_patches).to(PATCH_DTYPE))
            stats.append(statistics(wave))
            ids.append(track_id)
    if not ids:
        return ids, torch.zeros(0, n_patches, mel.n_mels, patch_frames, dtype=PATCH_DTYPE), np.zeros(
            (0, statistics.dim), np.float32), errors
    return ids, torch.stack(patches), torch.stack(stats).numpy().astype(np.float32), errors


def demo_top_genres(track_tags: pd.DataFrame, song_ids: list[str] | tuple[str, ...],
                    min_score: float) -> tuple[np.ndarray, tuple[str, ...]]:
    """One top-level genre per demo track from its genre tags.

    Rule: every annotation with ``score ≥ min_score`` whose tag is listed in :data:`DEMO_TOP_GENRES` adds its
    score to that top genre; the track's genre is the top genre with the largest sum (ties: the earlier in
    :data:`DEMO_TOP_GENRES`); a track with no voting tag has :data:`NO_GENRE`.

    Args:
        track_tags: annotations (``song_id, cleaned_tag, score``), as in :attr:`Corpus.track_tags`.
        song_ids: the rows.
        min_score: the corpus's label threshold.

    Returns:
        ``(genres, names)``: (len(song_ids),) int64 index into ``names`` (the keys of DEMO_TOP_GENRES).
    """
    names = tuple(DEMO_TOP_GENRES)
    vote_of = {tag: i for i, tags in enumerate(DEMO_TOP_GENRES.values()) for tag in tags}
    votes = track_tags.loc[track_tags["score"] >= min_score, ["song_id", "cleaned_tag", "score"]]
    votes = votes.assign(genre=votes["cleaned_tag"].map(vote_of)).dropna(subset=["genre"])
    sums = votes.groupby(["song_id", "genre"], as_index=False)["score"].sum()
    best = sums.sort_values(["song_id", "score", "genre"], ascending=[True, False, True]).drop_duplicates("song_id")
    genre_of = best.set_index("song_id")["genre"]
    genres = genre_of.reindex(list(song_ids)).fillna(NO_GENRE).to_numpy(dtype=np.int64)
    return genres, names


def demo_inputs(
    corpus_root: str | Path,
    mel: MelConfig,
    patch_frames: int,
    n_patches: int,
    statistics: AudioStatistics,
    listening_factors: int,
    listening_iterations: int,
    seed: int,
    progress: bool = False,
) -> ArtistGroupInputs:
    """Build :class:`ArtistGroupInputs` for a corpus folder in the MSD500 layout (the demo corpus).

    Needs ``splits/`` and ``audio/``; the listening factor is built when ``train_triplets.txt`` exists.
    Tracks without readable audio are dropped and listed in ``skipped``.

    Raises:
        DataError: the corpus cannot be loaded, has no splits, or none of its audio can be read.
    """
    from retrieval.data.corpus import TASTE_PROFILE_FILE, load_corpus
    from retrieval.data.msd500 import label_matrix
    from retrieval.data.splits import SPLIT_NAMES

    corpus = load_corpus(corpus_root)
    if corpus.splits is None:
        raise DataError(Path(corpus_root) / "splits", "the comparison needs artist-level splits (train/test)")
    split_of = {song: name for name in SPLIT_NAMES for song in corpus.splits.ids(name)}
    located = corpus.audio_locator().locate(corpus.song_ids())
    ids, patches, stats, errors = extract_audio_inputs(located.found, mel, patch_frames, n_patches, statistics,
                                                       progress)
    skipped = {i: "no audio file" for i in located.missing} | errors
    if not ids:
        n_tracks = len(located.missing) + len(errors)
        raise DataError(Path(corpus_root) / "audio", f"no readable audio for any of the {n_tracks} tracks")
    genres, names = demo_top_genres(corpus.track_tags, ids, corpus.min_score)
    labels = label_matrix(corpus.track_tags, ids, corpus.tag_names, corpus.min_score)
    listening = valid = None
    if (Path(corpus_root) / TASTE_PROFILE_FILE).is_file():
        from retrieval.encoders.listening import fit_item_factors

        plays = corpus.taste_profile()
        factors = fit_item_factors(plays.matrix, items=plays.items, factors=listening_factors,
                                   iterations=listening_iterations, seed=seed, num_threads=1)
        row = pd.Index(factors.items).get_indexer(ids)
        listening = np.where(row[:, None] >= 0, factors.vectors[row], 0.0).astype(np.float32)
        valid = (row >= 0) & factors.has_data[row]
    return ArtistGroupInputs(
        track_ids=tuple(ids),
        artists=corpus.tracks.loc[ids, "artist"].to_numpy().astype(str),
        splits=np.array([split_of[i] for i in ids]),
        genres=genres,
        genre_names=names,
        patches=patches,
        audio_stats=stats,
        tag_labels=labels,
        tag_names=corpus.tag_names,
        listening=listening,
        listening_valid=valid,
        skipped=skipped,
    )
