"""Build a search index: over a corpus (the demo catalogue, MSD) or over a folder of your own audio files.

Folder indexing (``retrieval index DIR --model RUN --out INDEX``):

- walks ``DIR`` for audio files (:data:`AUDIO_EXTENSIONS`: libsndfile's formats, and AAC / M4A, Opus, WMA, ...
  through FFmpeg), in sorted order; every other file is reported as skipped with the reason, none is ignored;
- reads each file's title / artist / album / genre / year tags into the catalogue (file stem when untitled);
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
  in a writable folder, and no other process may be writing it (a lock held until the end);
- embeds in this process (``engine="local"``, the default, no Ray needed) or on a Ray cluster
  (``engine="ray"``: :mod:`retrieval.index.ray_engine`), through the same cache and the same per-batch code.

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
from retrieval.index.registry import DEFAULT_BACKEND, create_index, resolve_backend

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".m4b", ".aac", ".alac", ".wma",
                    ".aiff", ".aif", ".webm", ".mka", ".wv", ".ape")
#: Where ``index_folder`` embeds: this process, or an actor pool on a Ray cluster.
ENGINES = ("local", "ray")
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


def model_description(out: Path, run_folder: str | os.PathLike) -> bytes:
    """``model.json`` of an index at ``out`` made by the run at ``run_folder``: the run relative to the index
    folder (portable) and absolute (a fallback when only the index moves)."""
    run = Path(run_folder).resolve()
    relative = os.path.relpath(run, Path(out).absolute().resolve())
    return (json.dumps({"run": relative, "run_absolute": str(run)}, indent=2) + "\n").encode()


def _write_index(out: Path, run, ids: Sequence[str], vectors: np.ndarray, catalogue, backend: str) -> None:
    index = create_index(resolve_backend(backend, len(ids)), dim=vectors.shape[1], fingerprint=run.fingerprint)
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

    def __init__(self, run_dir: str | os.PathLike, batch_size: int, device: str = "cpu", precision: str = "fp32"):
        from retrieval.devices import check_precision
        from retrieval.runs import load_run

        self.run = load_run(run_dir, device=device)
        self.precision = check_precision(precision, key="precision")
        # vectors of another precision are other vectors: their own per-file cache
        self.fingerprint = self.run.fingerprint + ("" if precision == "fp32" else f"-{precision}")
        self.dim = self.run.model.output_dim
        self.batch_size = batch_size

    def prepare(self, path: Path):
        """Decode one file into its model input (raises AudioError on a bad file)."""
        from retrieval.embedding import file_crops

        return file_crops(self.run.model, [str(path)], self.run.config.eval.n_crops)[0]

    def embed(self, prepared: list) -> np.ndarray:
        """Prepared inputs → (len(prepared), d) vectors, one row per file."""
        import torch

        from retrieval.devices import autocast, model_device
        from retrieval.embedding import embed_crops

        with autocast(model_device(self.run.model), self.precision):
            return embed_crops(self.run.model, torch.stack(prepared), self.batch_size).numpy()

    def write(self, out: Path, ids: Sequence[str], vectors: np.ndarray, catalogue, backend: str) -> None:
        _write_index(out, self.run, ids, vectors, catalogue, backend)


def make_embedder(model: str | os.PathLike, batch_size: int, device: str = "cpu", precision: str = "fp32"):
    """The embedder of ``model`` (a trained run folder, or a pretrained model's name): ``prepare(path)`` decodes
    one file, ``embed(prepared)`` gives one vector per file, ``write(...)`` saves the index, ``fingerprint``. A
    run embeds on ``device`` in ``precision`` (:mod:`retrieval.devices`)."""
    from retrieval.pretrained.names import PRETRAINED

    if str(model) in PRETRAINED:
        from retrieval.pretrained.retriever import PretrainedEmbedder

        return PretrainedEmbedder(str(model))
    return _RunEmbedder(model, batch_size, device, precision)


def embed_batch(embedder, batch: Sequence[tuple[Path, Path]]) -> tuple[dict[Path, np.ndarray], dict[str, str]]:
    """Decode and embed one batch of (file, cache file) pairs, writing each vector to its cache file atomically.

    The unit of work of both engines (the local loop, which decodes the next batch while this one is embedded,
    and each Ray actor), so both give the same vectors.

    Returns:
        ``(vectors by file, reasons by unreadable file)``.
    """
    return embed_decoded(embedder, decode_batch(embedder, batch))


def decode_batch(embedder, batch: Sequence[tuple[Path, Path]]) -> tuple[list, list, dict[str, str]]:
    """The first half of :func:`embed_batch`: ``(decodable pairs, their model inputs, reasons by bad file)``."""
    done, prepared, skipped = [], [], {}
    for path, cached in batch:
        try:
            prepared.append(embedder.prepare(path))
            done.append((path, cached))
        except AudioError as error:
            skipped[str(path)] = str(error)
    return done, prepared, skipped


def embed_decoded(embedder, decoded: tuple[list, list, dict[str, str]]) -> tuple[dict[Path, np.ndarray],
                                                                                  dict[str, str]]:
    """The second half of :func:`embed_batch`: embed, write the cache files."""
    done, prepared, skipped = decoded
    vectors = {}
    if done:
        for (path, cached), vector in zip(done, embedder.embed(prepared), strict=True):
            with atomic_path(cached) as tmp, open(tmp, "wb") as handle:
                np.save(handle, vector)
            vectors[path] = vector
    return vectors, skipped


def index_folder(
    model: str | os.PathLike,
    folder: str | os.PathLike,
    out: str | os.PathLike,
    *,
    backend: str = DEFAULT_BACKEND,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 8,
    progress: bool = True,
    engine: str = "local",
    address: str | None = None,
    workers: int | None = None,
    device: str = "cpu",
    precision: str = "fp32",
) -> IndexReport:
    """Index every audio file under ``folder`` (see module docstring) with ``model``: a trained run folder, or
    the name of a pretrained model (``retrieval models``: e.g. "musicnn-mtt"). A run embeds on ``device`` in
    ``precision`` (:mod:`retrieval.devices`).

    Track ids are the files' paths relative to ``folder``; the catalogue records each file's tags
    (:func:`~retrieval.audio.metadata.read_file_tags`; the title falls back to the file stem) and its path.

    Args:
        engine: "local" (this process) or "ray" (an actor pool on a Ray cluster: :mod:`retrieval.index.ray_engine`;
            the optional extra ``ray``). Both read and write the same per-file cache and give the same vectors.
        address: the Ray cluster to join (``ray.init(address=...)``); None starts a local one on 127.0.0.1.
        workers: Ray actors (one model each); None uses one per CPU of the cluster.

    Raises:
        DataError: ``out`` is neither an index folder nor an empty folder.
        FileSystemError: ``out`` or the cache cannot be written (named, with the reason), or another process is
            writing ``out``.
        RetrievalError: no file could be read.
    """
    from retrieval import paths

    if engine not in ENGINES:
        raise RetrievalError(f"unknown engine {engine!r}; valid: {list(ENGINES)}")
    folder, out = Path(folder), Path(out)
    files, passed_over = scan_folder(folder)
    # The destination is checked (and locked) before any embedding: a bad --out fails in a second, not an hour.
    check_replaceable(out)
    with folder_lock(out):
        embedder = make_embedder(model, batch_size, device, precision)
        cache = make_folder(Path(cache_dir) if cache_dir else paths.home() / "embeddings", "--cache-dir")
        cache = make_folder(cache / embedder.fingerprint, "--cache-dir")
        sweep_old_temporaries(cache)
        report = IndexReport(out, skipped=passed_over)
        vectors = _embed_files(embedder, files, folder, cache, report, batch_size, progress,
                               ray={"model": model, "address": address, "workers": workers} if engine == "ray"
                               else None)
        if not vectors:
            first = _one_line(next(iter(report.skipped.values()), "")).strip()  # one line, odd names escaped
            raise RetrievalError(f"{folder}: no readable audio files to index ({len(report.skipped)} skipped"
                                 + (f", e.g. {first}" if first else "") + ")")
        ordered = [p for p in files if p in vectors]
        ids = [str(p.relative_to(folder)) for p in ordered]
        catalogue, report.tagged = _folder_catalogue(ids, [p.absolute() for p in ordered])
        embedder.write(out, ids, np.stack([vectors[p] for p in ordered]), catalogue, backend)
    report.indexed = len(ordered)
    return report


def _embed_files(embedder, files: list[Path], folder: Path, cache: Path, report: IndexReport, batch_size: int,
                 progress: bool, ray: dict | None = None) -> dict[Path, np.ndarray]:
    """Each readable file's vector, from the cache or embedded now (and cached); skipped files go to ``report``.
    ``ray``: embed on a Ray cluster (``model``, ``address``, ``workers`` of :func:`index_folder`), else here."""
    from tqdm.auto import tqdm

    from retrieval.embedding import ahead

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
    if ray is not None and todo:
        from retrieval.index.ray_engine import embed_on_ray

        embedded, skipped = embed_on_ray(ray["model"], todo, batch_size=batch_size, address=ray["address"],
                                         workers=ray["workers"], progress=progress)
    else:
        embedded, skipped = {}, {}
        with tqdm(total=len(todo), desc="embedding", unit="file", disable=not progress) as bar:
            batches = [todo[start : start + batch_size] for start in range(0, len(todo), batch_size)]
            for decoded in ahead(lambda batch: decode_batch(embedder, batch), batches):
                batch_vectors, batch_skipped = embed_decoded(embedder, decoded)
                embedded.update(batch_vectors)
                skipped.update(batch_skipped)
                bar.update(len(decoded[0]) + len(batch_skipped))
    vectors.update(embedded)
    report.skipped.update(skipped)
    report.embedded = len(embedded)
    return vectors


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
    device: str = "cpu",
    precision: str = "fp32",
) -> IndexReport:
    """Index every track of a corpus (all splits, the unlabeled one included) with its audio and listening
    data, and its metadata (title, artist, tags with score ≥ the run's threshold, audio path); the run embeds on
    ``device`` in ``precision``. The destination is checked and locked first (see :func:`index_folder`)."""
    from retrieval.runs import load_run

    check_replaceable(Path(out))
    with folder_lock(out):
        return _index_corpus(load_run(run_dir, device=device), Path(out), corpus_root, backend, progress, precision)


def _index_corpus(run, out: Path, corpus_root, backend: str, progress: bool, precision: str) -> IndexReport:
    import torch

    from retrieval.config import expand_path
    from retrieval.data.corpus import load_corpus
    from retrieval.data.features import FeatureStore
    from retrieval.devices import autocast, check_precision, model_device
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

    with autocast(model_device(run.model), check_precision(precision, key="precision")):
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
