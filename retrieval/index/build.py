"""Build a search index: over a corpus (the demo catalogue, MSD) or over a folder of your own audio files.

Folder indexing (``retrieval index DIR --model RUN --out INDEX``):

- walks ``DIR`` for audio files (.wav .flac .ogg .mp3 .aiff .aif), in sorted order;
- embeds in batches with a progress bar, streaming each file (a 10-minute track costs a few tens of MB);
- caches each file's vector under ``<cache>/<model fingerprint>/<sha256 of the file's bytes>.npy``, written
  atomically as soon as it is computed: a re-run embeds only new or changed files, and an interrupted run
  resumes where it stopped;
- skips unreadable files and reports them (file and reason); the index is written only at the end, atomically,
  so an old index stays intact until the new one is complete;
- embeds in this process (``engine="local"``, the default, no Ray needed) or on a Ray cluster
  (``engine="ray"``: :mod:`retrieval.index.ray_engine`), through the same cache and the same per-batch code.

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
from retrieval.index.registry import DEFAULT_BACKEND, create_index, resolve_backend

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif")
#: Where ``index_folder`` embeds: this process, or an actor pool on a Ray cluster.
ENGINES = ("local", "ray")
_HASH_BLOCK = 1 << 20


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
    folder = Path(folder)
    if not folder.is_dir():
        raise RetrievalError(f"{folder}: not a folder of audio files")
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file() and not p.name.startswith(".")
    )


def _write_index(out: Path, run, ids: Sequence[str], vectors: np.ndarray, catalogue, backend: str) -> None:
    index = create_index(resolve_backend(backend, len(ids)), dim=vectors.shape[1], fingerprint=run.fingerprint)
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


def make_embedder(model: str | os.PathLike, batch_size: int):
    """The embedder of ``model`` (a trained run folder, or a pretrained model's name): ``prepare(path)`` decodes
    one file, ``embed(prepared)`` gives one vector per file, ``write(...)`` saves the index, ``fingerprint``."""
    from retrieval.pretrained.names import PRETRAINED

    if str(model) in PRETRAINED:
        from retrieval.pretrained.retriever import PretrainedEmbedder

        return PretrainedEmbedder(str(model))
    return _RunEmbedder(model, batch_size)


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
) -> IndexReport:
    """Index every audio file under ``folder`` (see module docstring) with ``model``: a trained run folder, or
    the name of a pretrained model (``retrieval models``: e.g. "musicnn-mtt").

    Track ids are the files' paths relative to ``folder``; the catalogue records titles (file stems) and paths.

    Args:
        engine: "local" (this process) or "ray" (an actor pool on a Ray cluster: :mod:`retrieval.index.ray_engine`;
            the optional extra ``ray``). Both read and write the same per-file cache and give the same vectors.
        address: the Ray cluster to join (``ray.init(address=...)``); None starts a local one on 127.0.0.1.
        workers: Ray actors (one model each); None uses one per CPU of the cluster.
    """
    from tqdm.auto import tqdm

    from retrieval import paths
    from retrieval.embedding import ahead

    if engine not in ENGINES:
        raise RetrievalError(f"unknown engine {engine!r}; valid: {list(ENGINES)}")
    embedder = make_embedder(model, batch_size)
    folder, out = Path(folder), Path(out)
    cache = Path(cache_dir) if cache_dir else paths.home() / "embeddings"
    cache = cache / embedder.fingerprint
    report = IndexReport(out)
    files = find_audio_files(folder)
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
    if engine == "ray" and todo:
        from retrieval.index.ray_engine import embed_on_ray

        embedded, skipped = embed_on_ray(model, todo, batch_size=batch_size, address=address, workers=workers,
                                         progress=progress)
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
    if not vectors:
        raise RetrievalError(f"{folder}: no readable audio files to index ({len(report.skipped)} skipped)")
    ordered = [p for p in files if p in vectors]
    ids = [str(p.relative_to(folder)) for p in ordered]
    catalogue = make_catalogue(ids, titles=[p.stem for p in ordered], audio_paths=[str(p) for p in ordered])
    embedder.write(out, ids, np.stack([vectors[p] for p in ordered]), catalogue, backend)
    report.indexed = len(ordered)
    return report


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
