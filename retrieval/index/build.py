"""Build a search index: over a corpus (the demo catalogue, MSD) or over a folder of your own audio files.

Folder indexing (``retrieval index DIR --model RUN --out INDEX``):

- walks ``DIR`` for audio files (.wav .flac .ogg .mp3 .aiff .aif), in sorted order;
- embeds in batches with a progress bar, streaming each file (a 10-minute track costs a few tens of MB);
- caches each file's vector under ``<cache>/<model fingerprint>/<sha256 of the file's bytes>.npy``, written
  atomically as soon as it is computed: a re-run embeds only new or changed files, and an interrupted run
  resumes where it stopped;
- a cache entry that cannot be read back (empty, truncated, NaN, another dimension) is a miss: a warning names
  it, and the file is embedded again;
- skips unreadable files and files whose names hold a tab or newline (a catalogue row could not hold them) and
  reports them (file and reason); the index is written only at the end, atomically, so an old index stays
  intact until the new one is complete;
- checks the destination before embedding anything: it must be an index folder, an empty folder or a new path
  in a writable folder, and no other process may be writing it (a lock held until the end).

Both kinds write ``INDEX/model.json`` naming the run — relative to the index folder, so an index moved together
with its run (``$RETRIEVAL_HOME`` moved, say) still finds it, and absolute as a fallback — so
``retrieval.load(INDEX)`` finds the model. Catalogue audio paths are absolute.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from retrieval.errors import AudioError, RetrievalError
from retrieval.fileio import atomic_path, folder_lock, make_folder, sweep_old_temporaries
from retrieval.index.catalogue import make_catalogue
from retrieval.index.folder import MODEL_FILE, check_replaceable
from retrieval.index.registry import DEFAULT_BACKEND, create_index

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
_HASH_BLOCK = 1 << 20
#: Characters a track id or catalogue cell cannot hold (the catalogue is an unquoted TSV).
_UNSAFE_NAME = ("\t", "\n", "\r")

logger = logging.getLogger(__name__)


@dataclass
class IndexReport:
    """What an indexing run did."""

    out: Path
    indexed: int = 0
    embedded: int = 0
    cached: int = 0
    skipped: dict[str, str] = field(default_factory=dict)

    def format(self) -> str:
        lines = [
            f"index {self.out}: {self.indexed} tracks ({self.embedded} embedded now, {self.cached} from cache)",
        ]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} unreadable file(s):")
            # Reasons from AudioError already start with the file's path.
            lines += [_one_line(reason if reason.startswith(path) else f"{path}: {reason}")
                      for path, reason in self.skipped.items()]
        return "\n".join(lines)


def _one_line(text: str) -> str:
    """A report line with the tabs and newlines of odd file names shown as escapes."""
    return "  " + text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")


def file_hash(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_HASH_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def find_audio_files(folder: str | os.PathLike) -> list[Path]:
    """Audio files under ``folder`` (recursive, sorted; hidden files skipped)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RetrievalError(f"{folder}: not a folder of audio files")
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file() and not p.name.startswith(".")
    )


def model_description(out: Path, run_folder: str | os.PathLike) -> bytes:
    """``model.json`` of an index at ``out`` made by the run at ``run_folder``: the run relative to the index
    folder (portable) and absolute (a fallback when only the index moves)."""
    run = Path(run_folder).resolve()
    relative = os.path.relpath(run, Path(out).absolute().resolve())
    return (json.dumps({"run": relative, "run_absolute": str(run)}, indent=2) + "\n").encode()


def _write_index(out: Path, run, ids: Sequence[str], vectors: np.ndarray, catalogue, backend: str) -> None:
    index = create_index(backend, dim=vectors.shape[1], fingerprint=run.fingerprint)
    index.add(list(ids), vectors)
    index.build()
    index.save(out, catalogue, extra={MODEL_FILE: model_description(out, run.folder)})


def read_cached(path: Path, dim: int) -> np.ndarray | None:
    """A cached vector, or None when the entry is missing or cannot be trusted (empty, truncated, not an
    array, NaN or infinite, another dimension): a bad entry is logged by name and deleted, so it is embedded
    again instead of blocking the folder."""
    if not path.is_file():
        return None
    try:
        vector = np.load(path, allow_pickle=False)
        problem = (None if vector.shape == (dim,) and np.isfinite(vector).all()
                   else f"shape {vector.shape} (expected ({dim},)) or non-finite values")
    except (OSError, ValueError, EOFError) as error:
        problem = f"unreadable ({error})"
    if problem is None:
        return vector
    logger.warning("%s: bad cache entry, %s; embedding the file again", path, problem)
    path.unlink(missing_ok=True)
    return None


class _RunEmbedder:
    """A trained run as :func:`index_folder`'s embedder: decode → the audio tower's crops → index-space vectors."""

    def __init__(self, run_dir: str | os.PathLike, batch_size: int):
        from retrieval.runs import load_run

        self.run = load_run(run_dir)
        self.fingerprint = self.run.fingerprint
        self.dim = self.run.model.output_dim
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

    Track ids are the files' paths relative to ``folder``; the catalogue records titles (file stems) and paths.

    Raises:
        DataError: ``out`` is neither an index folder nor an empty folder.
        FileSystemError: ``out`` or the cache cannot be written (named, with the reason), or another process is
            writing ``out``.
        RetrievalError: no file could be read.
    """
    from retrieval import paths
    from retrieval.pretrained.tagger import PRETRAINED

    folder, out = Path(folder), Path(out)
    files = find_audio_files(folder)
    # The destination is checked (and locked) before any embedding: a bad --out fails in a second, not an hour.
    check_replaceable(out)
    with folder_lock(out):
        if str(model) in PRETRAINED:
            from retrieval.pretrained.retriever import PretrainedEmbedder

            embedder = PretrainedEmbedder(str(model))
        else:
            embedder = _RunEmbedder(model, batch_size)
        cache = make_folder(Path(cache_dir) if cache_dir else paths.home() / "embeddings", "--cache-dir")
        cache = make_folder(cache / embedder.fingerprint, "--cache-dir")
        sweep_old_temporaries(cache)
        report = IndexReport(out)
        vectors = _embed_files(embedder, files, folder, cache, report, batch_size, progress)
        if not vectors:
            first = _one_line(next(iter(report.skipped.values()), "")).strip()  # one line, odd names escaped
            raise RetrievalError(f"{folder}: no readable audio files to index ({len(report.skipped)} skipped"
                                 + (f", e.g. {first}" if first else "") + ")")
        ordered = [p for p in files if p in vectors]
        ids = [str(p.relative_to(folder)) for p in ordered]
        catalogue = make_catalogue(ids, titles=[p.stem for p in ordered],
                                   audio_paths=[str(p.absolute()) for p in ordered])
        embedder.write(out, ids, np.stack([vectors[p] for p in ordered]), catalogue, backend)
    report.indexed = len(ordered)
    return report


def _embed_files(embedder, files: list[Path], folder: Path, cache: Path, report: IndexReport, batch_size: int,
                 progress: bool) -> dict[Path, np.ndarray]:
    """Each readable file's vector, from the cache or embedded now (and cached); skipped files go to ``report``."""
    from tqdm.auto import tqdm

    vectors: dict[Path, np.ndarray] = {}
    todo: list[tuple[Path, Path]] = []
    for path in files:
        if any(char in str(path.relative_to(folder)) for char in _UNSAFE_NAME):
            report.skipped[str(path)] = "its name holds a tab or newline, which an index cannot store; rename it"
            continue
        try:
            cached = cache / f"{file_hash(path)}.npy"
        except OSError as error:
            reason = "permission denied; fix its permissions (chmod)" if isinstance(error, PermissionError) else (
                f"cannot read: {error.strerror or error}")
            report.skipped[str(path)] = reason
            continue
        vector = read_cached(cached, embedder.dim)
        if vector is not None:
            vectors[path] = vector
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
    return vectors


def index_corpus(
    run_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    corpus_root: str | os.PathLike | None = None,
    backend: str = DEFAULT_BACKEND,
    progress: bool = True,
) -> IndexReport:
    """Index every track of a corpus (all splits, the unlabeled one included) with its audio and listening
    data, and its metadata (title, artist, tags with score ≥ the run's threshold, audio path). The destination
    is checked and locked first (see :func:`index_folder`)."""
    from retrieval.runs import load_run

    check_replaceable(Path(out))
    with folder_lock(out):
        return _index_corpus(load_run(run_dir), Path(out), corpus_root, backend, progress)


def _index_corpus(run, out: Path, corpus_root, backend: str, progress: bool) -> IndexReport:
    import torch

    from retrieval.config import expand_path
    from retrieval.data.corpus import load_corpus
    from retrieval.data.features import FeatureStore
    from retrieval.embedding import embed_batches
    from retrieval.model import TrackInputs

    config = run.config
    corpus = load_corpus(Path(corpus_root) if corpus_root else expand_path(config.data.root))
    report = IndexReport(out)
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
        audio_paths=[str(Path(audio_paths[i]).absolute()) if i in audio_paths else None for i in ids],
    )
    _write_index(out, run, ids, vectors, catalogue, backend)
    report.indexed = report.embedded = len(ids)
    return report
