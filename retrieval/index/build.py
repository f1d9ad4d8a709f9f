"""Build a search index: over a corpus (the demo catalogue, MSD) or over a folder of your own audio files.

Folder indexing (``retrieval index DIR --model RUN --out INDEX``):

- walks ``DIR`` for audio files (:data:`AUDIO_EXTENSIONS`: libsndfile's formats, and AAC / M4A, Opus, WMA, ...
  through FFmpeg), in sorted order; every other file is reported as skipped with the reason, none is ignored;
- reads each file's title / artist / album / genre / year tags into the catalogue (file stem when untitled);
- embeds in batches with a progress bar, streaming each file (a 10-minute track costs a few tens of MB);
- caches each file's vector under ``<cache>/<model fingerprint>/<sha256 of the file's bytes>.npy``, written
  atomically as soon as it is computed: a re-run embeds only new or changed files, and an interrupted run
  resumes where it stopped;
- skips unreadable files and reports them (file and reason); the index is written only at the end, atomically,
  so an old index stays intact until the new one is complete.

Both kinds write ``INDEX/model.json`` naming the run, so ``retrieval.load(INDEX)`` finds the model.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from retrieval.errors import AudioError, RetrievalError
from retrieval.fileio import atomic_path, write_text_atomic
from retrieval.index.catalogue import make_catalogue
from retrieval.index.registry import DEFAULT_BACKEND, create_index

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".m4b", ".aac", ".alac", ".wma",
                    ".aiff", ".aif", ".webm", ".mka", ".wv", ".ape")
_HASH_BLOCK = 1 << 20


@dataclass
class IndexReport:
    """What an indexing run did."""

    out: Path
    indexed: int = 0
    embedded: int = 0
    cached: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    #: indexed files whose own tags gave at least one of title / artist / album / genre / year (folders only;
    #: -1: not read, mutagen is missing)
    tagged: int | None = None

    def format(self) -> str:
        lines = [
            f"index {self.out}: {self.indexed} tracks ({self.embedded} embedded now, {self.cached} from cache)",
        ]
        if self.tagged == -1:
            lines.append("file tags not read: mutagen is missing (pip install 'retrieval[formats]'); titles are "
                         "file names")
        elif self.tagged is not None:
            lines.append(f"file tags (title, artist, album, genre, year) read from {self.tagged} of {self.indexed} "
                         "files")
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} file(s):")
            # Reasons from AudioError already start with the file's path.
            lines += [f"  {reason}" if reason.startswith(path) else f"  {path}: {reason}"
                      for path, reason in self.skipped.items()]
        return "\n".join(lines)


def file_hash(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_HASH_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def find_audio_files(folder: str | os.PathLike) -> list[Path]:
    """Audio files under ``folder`` (recursive, sorted; hidden files skipped)."""
    return scan_folder(folder)[0]


def scan_folder(folder: str | os.PathLike) -> tuple[list[Path], dict[str, str]]:
    """The audio files under ``folder`` (recursive, sorted) and every other file with why it is passed over
    (hidden, not an audio extension, or not a regular file).

    Raises:
        RetrievalError: ``folder`` is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise RetrievalError(f"{folder}: not a folder of audio files")
    audio, others = [], {}
    for path in sorted(p for p in folder.rglob("*") if not p.is_dir()):
        hidden = any(part.startswith(".") for part in path.relative_to(folder).parts)
        if not path.is_file():
            others[str(path)] = "not a regular file (a broken link, a pipe or a device)"
        elif hidden:
            others[str(path)] = "hidden file (its name or a folder's starts with '.')"
        elif path.suffix.lower() not in AUDIO_EXTENSIONS:
            others[str(path)] = f"not an audio file extension ({path.suffix or 'none'})"
        else:
            audio.append(path)
    return audio, others


def _write_index(out: Path, run, ids: Sequence[str], vectors: np.ndarray, catalogue, backend: str) -> None:
    index = create_index(backend, dim=vectors.shape[1], fingerprint=run.fingerprint)
    index.add(list(ids), vectors)
    index.build()
    index.save(out, catalogue)
    write_text_atomic(out / "model.json", json.dumps({"run": str(Path(run.folder).resolve())}, indent=2))


class _RunEmbedder:
    """A trained run as :func:`index_folder`'s embedder: decode → the audio tower's crops → index-space vectors."""

    def __init__(self, run_dir: str | os.PathLike, batch_size: int):
        from retrieval.runs import load_run

        self.run = load_run(run_dir)
        self.fingerprint = self.run.fingerprint
        self.batch_size = batch_size

    def prepare(self, path: Path):
        """Decode one file into its model input (raises AudioError on a bad file)."""
        from retrieval.embedding import file_crops

        return file_crops(self.run.model, [str(path)], self.run.config.eval.n_crops)[0]

    def embed(self, prepared: list) -> np.ndarray:
        """Prepared inputs → (len(prepared), d) vectors, one row per file."""
        import torch

        from retrieval.embedding import embed_crops

        return embed_crops(self.run.model, torch.stack(prepared), self.batch_size).numpy()

    def write(self, out: Path, ids: Sequence[str], vectors: np.ndarray, catalogue, backend: str) -> None:
        _write_index(out, self.run, ids, vectors, catalogue, backend)


def index_folder(
    model: str | os.PathLike,
    folder: str | os.PathLike,
    out: str | os.PathLike,
    *,
    backend: str = DEFAULT_BACKEND,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 8,
    progress: bool = True,
) -> IndexReport:
    """Index every audio file under ``folder`` (see module docstring) with ``model``: a trained run folder, or
    the name of a pretrained model (``retrieval models``: e.g. "musicnn-mtt").

    Track ids are the files' paths relative to ``folder``; the catalogue records each file's tags
    (:func:`~retrieval.audio.metadata.read_file_tags`; the title falls back to the file stem) and its path.
    """
    from tqdm.auto import tqdm

    from retrieval import paths
    from retrieval.pretrained.tagger import PRETRAINED

    if str(model) in PRETRAINED:
        from retrieval.pretrained.retriever import PretrainedEmbedder

        embedder = PretrainedEmbedder(str(model))
    else:
        embedder = _RunEmbedder(model, batch_size)
    folder, out = Path(folder), Path(out)
    cache = Path(cache_dir) if cache_dir else paths.home() / "embeddings"
    cache = cache / embedder.fingerprint
    report = IndexReport(out)
    files, report.skipped = scan_folder(folder)
    vectors: dict[Path, np.ndarray] = {}
    todo: list[tuple[Path, Path]] = []
    for path in files:
        try:
            cached = cache / f"{file_hash(path)}.npy"
        except OSError as error:
            report.skipped[str(path)] = f"cannot read: {error}"
            continue
        if cached.exists():
            vectors[path] = np.load(cached)
            report.cached += 1
        else:
            todo.append((path, cached))
    bar = tqdm(total=len(todo), desc="embedding", unit="file", disable=not progress)
    for start in range(0, len(todo), batch_size):
        batch, prepared = [], []
        for path, cached in todo[start : start + batch_size]:
            try:
                prepared.append(embedder.prepare(path))
                batch.append((path, cached))
            except AudioError as error:
                report.skipped[str(path)] = str(error)
        if batch:
            for (path, cached), vector in zip(batch, embedder.embed(prepared), strict=True):
                with atomic_path(cached) as tmp, open(tmp, "wb") as handle:
                    np.save(handle, vector)
                vectors[path] = vector
            report.embedded += len(batch)
        bar.update(len(todo[start : start + batch_size]))
    bar.close()
    if not vectors:
        raise RetrievalError(f"{folder}: no readable audio files to index ({len(report.skipped)} skipped)")
    ordered = [p for p in files if p in vectors]
    ids = [str(p.relative_to(folder)) for p in ordered]
    catalogue, report.tagged = _folder_catalogue(ids, ordered)
    embedder.write(out, ids, np.stack([vectors[p] for p in ordered]), catalogue, backend)
    report.indexed = len(ordered)
    return report


def _folder_catalogue(ids: Sequence[str], files: Sequence[Path]):
    """(the catalogue of indexed files: their own tags, the file stem where a file has no title; how many files
    had tags)."""
    from retrieval.audio.metadata import FileTags, read_file_tags

    try:
        tags = [read_file_tags(path) for path in files]
    except ImportError:
        return make_catalogue(ids, titles=[p.stem for p in files], audio_paths=[str(p) for p in files]), -1
    catalogue = make_catalogue(ids, titles=[t.title or p.stem for t, p in zip(tags, files, strict=True)],
                          artists=[t.artist for t in tags], audio_paths=[str(p) for p in files],
                          albums=[t.album for t in tags], genres=[t.genre for t in tags],
                          years=[t.year for t in tags])
    return catalogue, sum(t != FileTags() for t in tags)


def index_corpus(
    run_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    corpus_root: str | os.PathLike | None = None,
    backend: str = DEFAULT_BACKEND,
    progress: bool = True,
) -> IndexReport:
    """Index every track of a corpus (all splits, the unlabeled one included) with its audio and listening
    data, and its metadata (title, artist, tags with score ≥ the run's threshold, audio path)."""
    import torch

    from retrieval.config import expand_path
    from retrieval.data.corpus import load_corpus
    from retrieval.data.features import FeatureStore
    from retrieval.embedding import embed_batches
    from retrieval.model import TrackInputs
    from retrieval.runs import load_run

    run = load_run(run_dir)
    config = run.config
    corpus = load_corpus(Path(corpus_root) if corpus_root else expand_path(config.data.root))
    report = IndexReport(Path(out))
    ids = list(corpus.song_ids())
    audio_paths: dict[str, Path] = {}
    features = None
    if run.model.audio is not None:
        located = corpus.audio_locator().locate(ids)
        audio_paths = located.found
        for missing in located.missing:
            report.skipped[missing] = "no audio file"
        features = FeatureStore(Path(corpus.root) / "cache" / "mel", run.model.audio.mel)
        for track_id, message in features.build(located.found, progress=progress).items():
            report.skipped[track_id] = message
    factors = has = None
    if run.model.listening_dim:
        from retrieval.encoders.listening import ItemFactors

        item_factors = ItemFactors.load(Path(run.folder) / "item_factors.npz")
        factors, has = item_factors.lookup(ids)
        if run.model.modality in ("cultural", "concat"):
            for track_id in np.asarray(ids)[~has]:
                report.skipped[track_id] = "no listening data (this model needs it)"
    ids = [i for i in ids if i not in report.skipped]
    rows = {i: r for r, i in enumerate(corpus.song_ids())}
    listening = (
        torch.from_numpy(np.stack([factors[rows[i]] for i in ids]).astype(np.float32)) if factors is not None else None
    )
    has_listening = (
        torch.tensor([bool(has[rows[i]]) for i in ids]) if has is not None else torch.zeros(len(ids), dtype=torch.bool)
    )

    def inputs_for(batch: list[int]) -> TrackInputs:
        crops = (
            features.track_crops([ids[r] for r in batch], run.model.audio.input_frames, config.eval.n_crops)
            if features
            else None
        )
        return TrackInputs(
            features=crops,
            listening=None if listening is None else listening[batch],
            has_listening=has_listening[batch],
        )

    vectors = embed_batches(run.model, len(ids), inputs_for, config.eval.batch_size).numpy()
    tagged = corpus.track_tags[corpus.track_tags["score"] >= config.data.min_score]
    tags_of = tagged.groupby("song_id")["cleaned_tag"].agg(lambda t: tuple(dict.fromkeys(t)))
    tracks = corpus.tracks.reindex(ids)
    catalogue = make_catalogue(
        ids,
        titles=tracks["title"].tolist(),
        artists=tracks["artist"].tolist(),
        tags=[tags_of.get(i, ()) for i in ids],
        audio_paths=[str(audio_paths[i]) if i in audio_paths else None for i in ids],
    )
    _write_index(Path(out), run, ids, vectors, catalogue, backend)
    report.indexed = report.embedded = len(ids)
    return report
