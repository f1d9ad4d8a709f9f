"""What users touch: ``retrieval.search("dreamy")``, ``retrieval.load(path)`` and :class:`Retriever`.

A retriever is a trained run (the model, its tag vocabulary and word encoder) plus an index of a catalogue's
track vectors. ``retrieval index`` writes an index folder with a ``model.json`` naming its run, so
``load(INDEX)`` finds both; ``load(RUN)`` uses ``RUN/index`` when present.

Example:
    >>> import retrieval                                   # doctest: +SKIP
    >>> hits = retrieval.search("dreamy", k=5)             # the demo catalogue, after `make demo`
    >>> hits[0].track_id, hits[0].score, hits.matched_tags[:3]
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from retrieval.devices import model_device
from retrieval.encoders.text.spelling import Speller
from retrieval.errors import DataError, InputError, RetrievalError
from retrieval.index.base import Hit
from retrieval.index.folder import MODEL_FILE
from retrieval.vectors import unit_rows

# Norm floor of the cosines computed here (tags vs query, listening factors): an all-zero row scores 0.
_NORM_EPS = 1e-12
#: Query batches up to this size run torch and numpy on one thread (see :func:`_query_threads`).
_SMALL_BATCH = 8
# Candidates re-ranked when blending text with listening similarity, per requested result.
_BLEND_POOL = 10


@functools.cache
def _blas() -> Any:
    """numpy's BLAS thread pool (threadpoolctl's handle; found once per process)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas")


@contextlib.contextmanager
def _query_threads(n_queries: int) -> Iterator[None]:
    """Run a few queries' torch and numpy arithmetic on one thread.

    A query's MLP and dot products take microseconds of arithmetic; a second thread only adds its wake-up, and
    an OpenBLAS thread then busy-waits ~0.1 s for more work — on a 2-core machine, on the core the sentence
    model's ONNX Runtime needs for the *next* query (measured: warm search p50 9.4 → 8.0 ms with one BLAS thread;
    the MLP's share 1.6 → 0.7 ms with one torch thread). ONNX Runtime keeps its own pool. Large batches are
    left alone.
    """
    if n_queries > _SMALL_BATCH:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with _blas().limit(limits=1):
            yield
    finally:
        torch.set_num_threads(threads)


class SearchResult(list):
    """A list of :class:`Hit`, best first, that also says how the query was understood.

    Attributes:
        query: the query as given.
        terms: the words / phrases the text encoder resolved the query to (e.g. ``["sad", "piano"]``); a corrected
            misspelling reads ``"draemy→dreamy"``, words read through the sentence backoff end in ``~``.
        matched_tags: the vocabulary tags nearest to the query in the shared space, as (tag, cosine) pairs.
    """

    def __init__(self, hits: Sequence[Hit], query: str, terms: Sequence[str], matched_tags: Sequence[tuple]):
        super().__init__(hits)
        self.query = query
        self.terms = list(terms)
        self.matched_tags = list(matched_tags)

    def __repr__(self) -> str:
        tags = ", ".join(f"{t} {s:.2f}" for t, s in self.matched_tags[:5])
        lines = [f"{len(self)} hits for {self.query!r} (terms: {', '.join(self.terms) or '-'}; nearest tags: {tags})"]
        lines += [f"{rank:>3}. {hit}" for rank, hit in enumerate(self, 1)]
        return "\n".join(lines)

    __str__ = __repr__


@dataclass
class Retriever:
    """Search a catalogue with text, audio or a track; tag audio.

    Build one with :func:`load`. Every vector lives in the model's index space (``dim`` values; track vectors
    have unit norm). Hit scores are the index's cosine similarities; for the gated hybrid, whose query vectors
    carry the gate in their norm, that is s/‖query‖ — each query's ranking is exactly the model's (see
    :mod:`retrieval.model`); :meth:`tag` compares a track with every tag by the model's own similarity s.
    """

    run: object  # retrieval.runs.Run
    text_encoder: object
    index: object | None
    item_factors: object | None = None
    speller: Speller | None = None
    # query-independent, computed once: the tags' index-space vectors and their unit rows (matched_tags), and
    # the word tower as numpy for a few queries (JointModel.query_projector)
    _tag_vectors: np.ndarray | None = field(default=None, init=False, repr=False)
    _unit_tags: np.ndarray | None = field(default=None, init=False, repr=False)
    _projector: object | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.speller is None:
            words = list(self.run.vocabulary.tags) + list(getattr(self.text_encoder, "vocabulary", ()))
            self.speller = Speller(words)

    @property
    def model(self):
        return self.run.model

    @property
    def dim(self) -> int:
        return self.model.output_dim

    # ---- embeddings ----------------------------------------------------------------------------------------
    def embed_text(self, texts: str | Sequence[str]) -> np.ndarray:
        """Queries → (len(texts), dim) vectors. A tag, a phrase ("sad piano") or a sentence; misspelt words are
        corrected first (:class:`~retrieval.encoders.text.spelling.Speller`). A bare string is one query.

        Example:
            >>> retriever.embed_text(["dreamy", "music for falling asleep"]).shape  # doctest: +SKIP
            (2, 512)

        Returns:
            (n, dim) float32; unit norm except for the gated model (see :meth:`JointModel.encode_text`).
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        with _query_threads(len(texts)):
            return self._embed_corrected([self.speller.correct(text)[0] for text in texts])

    @torch.inference_mode()
    def _embed_corrected(self, texts: list[str]) -> np.ndarray:
        vectors = np.asarray(self.text_encoder.encode(texts), dtype=np.float32)
        if len(texts) > _SMALL_BATCH:
            queries = torch.from_numpy(vectors).to(model_device(self.model))
            return self.model.encode_text(queries).float().cpu().numpy()
        if self._projector is None:  # the loaded model is frozen: its numpy snapshot stays valid
            self._projector = self.model.query_projector()
        return self._projector(vectors)

    def embed_audio(self, paths: str | os.PathLike | Sequence[str | os.PathLike],
                    n_crops: int | None = None) -> np.ndarray:
        """Audio files (any format and sample rate) → (len(paths), dim) unit vectors, from ``n_crops`` equally
        spaced crops (default: the run's evaluation setting). Files have no listening data: the gated model
        predicts that part from audio."""
        from retrieval.embedding import embed_files

        n_crops = n_crops or self.run.config.eval.n_crops
        paths = [paths] if isinstance(paths, str | os.PathLike) else paths
        return embed_files(self.model, [str(p) for p in paths], n_crops=n_crops).numpy()

    def tag_vectors(self) -> np.ndarray:
        """(n_tags, dim) vectors of the vocabulary tags (computed once; do not modify)."""
        if self._tag_vectors is None:
            with torch.inference_mode():
                tags = self.run.vocabulary.vectors.to(model_device(self.model))
                self._tag_vectors = self.model.encode_text(tags).float().cpu().numpy()
            self._unit_tags = unit_rows(self._tag_vectors, _NORM_EPS)
        return self._tag_vectors

    # ---- search --------------------------------------------------------------------------------------------
    def search(
        self, query: str | Sequence[str], k: int = 10, *, near: str | None = None, blend: float = 0.0
    ) -> SearchResult:
        """Tracks for a text query, best first.

        Args:
            query: a tag ("dreamy"), a phrase ("sad piano", "music for falling asleep") or a list of words
                (their vectors are averaged by the word encoder).
            k: number of hits.
            near: optional track id; with ``blend`` > 0, hits are re-ranked toward tracks that the same people
                listen to: score = (1 − blend)·text + blend·cos(listening factors of hit, of ``near``).
            blend: weight of listening similarity in [0, 1] (needs a model with listening data).

        Returns:
            :class:`SearchResult` (a list of :class:`Hit`) with ``terms`` and ``matched_tags``.
        """
        _check_k(k)
        with _query_threads(1):
            return self._search(query if isinstance(query, str) else " ".join(query), k, near, blend)

    def _search(self, text: str, k: int, near: str | None, blend: float) -> SearchResult:
        corrected, fixes = self.speller.correct(text)
        vector = self._embed_corrected([corrected])
        shown = {right: f"{typed}→{right}" for typed, right in fixes}
        terms = [shown.get(term.lower(), term) for term in self.text_encoder.matched_terms(corrected)]
        # nearest tags to the query, by cosine
        self.tag_vectors()
        tag_scores = self._unit_tags @ unit_rows(vector, _NORM_EPS)[0]
        order = np.argsort(-tag_scores)[:10]
        matched = [(self.run.vocabulary.tags[i], float(tag_scores[i])) for i in order]
        if blend > 0:
            hits = self._blended(vector, k, near, blend)
        else:
            hits = self._index().search_hits(vector, k)[0]
        return SearchResult(hits, text, terms, matched)

    def audio_query(self, paths: str | os.PathLike | Sequence[str | os.PathLike]) -> np.ndarray:
        """Audio files → query vectors that compare with the indexed tracks like with like.

        A file has no listening data, so the gated model would predict its cultural half from audio while every
        catalogue track carries its real one: two kinds of vector (a catalogue file could rank its own track
        23rd). The query keeps only the audio half, scaled by √2 with the cultural half zero, so ⟨query, track⟩
        is exactly the audio-space cosine. Single-space models return :meth:`embed_audio` unchanged.
        """
        vectors = self.embed_audio(paths)
        if self.model.modality == "gated":
            half = self.model.embed_dim
            vectors[:, :half] = unit_rows(vectors[:, :half], _NORM_EPS) * np.float32(np.sqrt(2.0))
            vectors[:, half:] = 0.0
        return vectors

    def search_by_audio(self, path: str | os.PathLike, k: int = 10) -> list[Hit]:
        """Tracks that sound like the audio file at ``path``, by :meth:`audio_query` (a catalogue file finds its
        own track first). Scores are audio-space cosines."""
        _check_k(k)
        hits = self._index().search_hits(self.audio_query(path), k)[0]
        if self.model.modality != "gated":
            return hits
        # the index scores cos(query, track) = cos_audio / √2 (the track's norm is 1, the query's √2)
        return [replace(hit, score=hit.score * math.sqrt(2.0)) for hit in hits]

    def similar(self, track_id: str, k: int = 10) -> list[Hit]:
        """Tracks nearest to an indexed track (the track itself excluded)."""
        _check_k(k)
        with _query_threads(1):
            return self._index().neighbours(track_id, k)

    def tag(
        self, path: str | os.PathLike, k: int = 10, head: str | os.PathLike | None = None
    ) -> list[tuple[str, float]]:
        """Tags of an audio file, best first, as (tag, score) pairs.

        Without ``head``: zero-shot — the ``k`` vocabulary tags nearest to the track in the shared space (score =
        the model's similarity). With ``head``: a tagger trained on this model's shared-space features
        (``retrieval train-head --features shared``); scores are its probabilities.
        """
        _check_k(k)
        vector = self.embed_audio([path])
        if head is None:
            scores, names = self.tag_vectors() @ vector[0], self.run.vocabulary.tags
        else:
            from retrieval.heads.probe import Tagger

            tagger = Tagger.load(head)
            if tagger.info.get("features") != "shared" or tagger.info.get("fingerprint") != self.run.fingerprint:
                raise RetrievalError(
                    f"{head}: this head was trained on {tagger.info.get('features')} features of model "
                    f"{tagger.info.get('fingerprint')}, not on this model's ({self.run.fingerprint}) shared space; "
                    f"train one with `retrieval train-head --run {self.run.folder} --features shared ...`"
                )
            scores, names = tagger.predict(vector)[0], tagger.tags
        order = np.argsort(-scores)[:k]
        return [(names[i], float(scores[i])) for i in order]

    def tag_track(self, track_id: str, k: int = 10) -> list[tuple[str, float]]:
        """Zero-shot tags of an indexed track, best first: the ``k`` vocabulary tags nearest to its index vector
        by the model's similarity s (as :meth:`tag` does for a file, without decoding it again).

        Raises:
            UnknownIdError: ``track_id`` is not in the index.
        """
        scores = self.tag_vectors() @ self._index().vectors_of([track_id])[0]
        order = np.argsort(-scores, kind="stable")[:k]
        return [(self.run.vocabulary.tags[i], float(scores[i])) for i in order]

    def track_tag_scores(self) -> tuple[list[str], list[str], np.ndarray]:
        """Zero-shot scores of every vocabulary tag for every indexed track.

        Returns:
            (tags, the category of each tag, (n_tracks, n_tags) float32 similarities s in the index's row order).
        """
        index = self._index()
        scores = index.vectors_of(index.ids.tolist()) @ self.tag_vectors().T
        return list(self.run.vocabulary.tags), list(self.run.vocabulary.categories), scores.astype(np.float32)

    # ---- helpers -------------------------------------------------------------------------------------------
    def _index(self):
        if self.index is None:
            raise RetrievalError(
                f"no index for run {self.run.folder}; build one with "
                f"`retrieval index AUDIO_DIR --model {self.run.folder} --out INDEX`"
            )
        return self.index

    def _blended(self, vector: np.ndarray, k: int, near: str | None, blend: float) -> list[Hit]:
        if not 0.0 <= blend <= 1.0:
            raise ValueError(f"blend must be in [0, 1], got {blend}")
        if self.item_factors is None or near is None:
            raise RetrievalError("blending needs a model trained with listening data and a `near` track id")
        hits = self._index().search_hits(vector, k * _BLEND_POOL)[0]
        ids = [hit.track_id for hit in hits] + [near]
        factors, known = self.item_factors.lookup(ids)
        if not known[-1]:
            raise RetrievalError(f"track {near!r} has no listening data to blend with")
        unit = unit_rows(factors, _NORM_EPS)
        listening = np.where(known[:-1], unit[:-1] @ unit[-1], 0.0)
        scores = (1 - blend) * np.array([hit.score for hit in hits]) + blend * listening
        order = np.argsort(-scores, kind="stable")[:k]
        return [replace(hits[i], score=float(scores[i])) for i in order]


def _check_k(k: object) -> None:
    """``k`` (how many results) must be an integer ≥ 1: ``k=-1`` would otherwise slice off the last result."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise InputError(f"k must be an integer ≥ 1 (how many results), got {k!r}")


def locate(path: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """(run folder, index folder) of an index folder (its ``model.json`` names the run) or of a run folder
    (``RUN/index``); ``None`` is the demo's index.

    Raises:
        DataError: nothing there, with the command that creates it, or a folder that is neither.
    """
    from retrieval import paths
    from retrieval.pretrained.names import PRETRAINED

    path = Path(path) if path is not None else paths.demo_index_path()
    if not path.exists():
        hint = (
            "run `make demo` (or `retrieval demo`)"
            if path == paths.demo_index_path()
            else ("build one with `retrieval index AUDIO_DIR --model RUN --out INDEX`, or name a pretrained model "
                  f"(`retrieval models`: {', '.join(PRETRAINED)})")
        )
        raise DataError(path, f"no retriever here; {hint}")
    described = _index_description(path)
    if described is not None:
        if "run" not in described:
            raise DataError(path / MODEL_FILE, f"this index was built with {described.get('pretrained', 'no run')!r}"
                            ", not a trained run; load it with retrieval.load (it has no run folder)")
        return _described_run(path, described), path
    if (path / "checkpoints").is_dir():
        return path, path / "index"
    raise DataError(path, f"neither an index folder (no {MODEL_FILE}) nor a run folder (no checkpoints/)")


def load(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> Retriever:
    """Load a retriever from an index folder (with ``model.json``), a run folder (using ``RUN/index``) or the
    name of a pretrained model (``retrieval models``: "musicnn-mtt", "musicnn-msd", "vgg-mtt", "vgg-msd"; a
    :class:`~retrieval.pretrained.retriever.PretrainedRetriever`, which tags files without an index).

    ``None`` loads the demo retriever from :func:`retrieval.paths.demo_index_path` (``$RETRIEVAL_HOME``).
    ``device``: where the trained run's model embeds audio and batches of queries (``auto``, ``cpu``, ``cuda``,
    ``cuda:N``, ``mps``); vectors come back as float32 numpy whatever it is.

    Raises:
        DataError: nothing there, with the command that creates it.
    """
    from retrieval.pretrained.names import PRETRAINED
    from retrieval.runs import load_run

    if path is not None and str(path) in PRETRAINED and not Path(path).exists():
        from retrieval.pretrained.retriever import PretrainedRetriever

        return PretrainedRetriever(str(path))
    described = _index_description(path) if path is not None else None
    if described is not None and "pretrained" in described:
        from retrieval.pretrained.retriever import PretrainedRetriever

        return PretrainedRetriever(described["pretrained"], index_dir=path)
    run_dir, index_dir = locate(path)
    run = load_run(run_dir, device=device)
    index = None
    if index_dir.exists():
        from retrieval.index import load_index

        index = load_index(index_dir, expected_fingerprint=run.fingerprint)
    item_factors = None
    if (run_dir / "item_factors.npz").is_file():
        from retrieval.encoders.listening import ItemFactors

        item_factors = ItemFactors.load(run_dir / "item_factors.npz")
    return Retriever(run, run.text_encoder(), index, item_factors)


def _index_description(path: str | os.PathLike) -> dict | None:
    """An index folder's ``model.json`` — ``{"run": RUN}`` or ``{"pretrained": NAME}`` — or None if it has none.

    Raises:
        DataError: the file is unreadable or not such an object (named, with what to do).
    """
    file = Path(path) / MODEL_FILE
    if not file.is_file():
        return None
    try:
        described = json.loads(file.read_text())
    except (OSError, ValueError) as error:
        raise DataError(file, f"unreadable ({error}); rebuild the index") from error
    if not isinstance(described, dict) or not ({"run", "pretrained"} & set(described)):
        raise DataError(file, "names neither a run nor a pretrained model; rebuild the index")
    return described


def _described_run(index: Path, described: dict) -> Path:
    """The run an index's ``model.json`` names: relative to the index folder (so index and run move together),
    else at its absolute path (the index moved alone); the first that holds checkpoints."""
    candidates = [index / str(described["run"])]
    if "run_absolute" in described:
        candidates.append(Path(str(described["run_absolute"])))
    for candidate in candidates:
        if (candidate / "checkpoints").is_dir():
            return candidate
    raise DataError(index / MODEL_FILE, f"the run it names is not there ({' nor '.join(map(str, candidates))}); "
                    "move the run back, or rebuild the index with `retrieval index AUDIO_DIR --model RUN --out INDEX`",
                    key="run")


_DEFAULT: dict[str, Retriever] = {}


def search(query: str | Sequence[str], k: int = 10) -> SearchResult:
    """Search the default catalogue (the demo, after ``make demo``; ``$RETRIEVAL_HOME`` moves it).

    Example:
        >>> import retrieval                      # doctest: +SKIP
        >>> print(retrieval.search("dreamy"))
    """
    from retrieval import paths

    key = str(paths.demo_index_path())
    if key not in _DEFAULT:
        _DEFAULT[key] = load()
    return _DEFAULT[key].search(query, k)
