"""A retriever over a published tagger that needs no training: ``retrieval.load("musicnn-mtt")``.

An index built with ``retrieval index FOLDER --model musicnn-mtt --out IDX`` holds, per track, the tagger's
mean penultimate features (the cosine index: ``similar`` and search by audio) and its 50 mean tag probabilities
(``tags.npz``: text search). Any text is mapped onto the model's tags through the sentence encoder e
(all-MiniLM-L6-v2):

    w_j(text) = softmax_j( cos(e(text), e(tag_j)) / τ ),   τ = 0.05
    score(text, track) = Σ_j w_j(text) · p_j(track)

— the expected probability of the tags the text is closest to ("mellow acoustic" weighs acoustic, soft,
chillout …; a text equal to a tag is, in effect, that tag's probability).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from retrieval.errors import DataError, RetrievalError
from retrieval.index.folder import MODEL_FILE
from retrieval.pretrained.tagger import PretrainedTagger

__all__ = ["TAGS_FILE", "PretrainedEmbedder", "PretrainedRetriever"]

TAGS_FILE = "tags.npz"
#: Softmax temperature of the text → tag weights (see the module docstring).
TEMPERATURE = 0.05


class PretrainedEmbedder:
    """:func:`retrieval.index.build.index_folder`'s embedder for a pretrained tagger: a file's vector is
    [mean penultimate features, mean tag probabilities]; :meth:`write` splits them into the index and
    ``tags.npz``."""

    def __init__(self, name: str):
        self.tagger = PretrainedTagger(name)
        self.fingerprint = f"{name}-{self.tagger.fingerprint}"
        self.dim = self.tagger.feature_dim + len(self.tagger.labels)

    def prepare(self, path: Path) -> np.ndarray:
        return self.tagger.file_patches(path)

    def embed(self, prepared: list[np.ndarray]) -> np.ndarray:
        rows = []
        for patches in prepared:
            probabilities, features = self.tagger.summarise(patches)
            rows.append(np.concatenate([features, probabilities]))
        return np.stack(rows).astype(np.float32)

    def write(self, out: Path, ids: Sequence[str], vectors: np.ndarray, catalogue, backend: str) -> None:
        from retrieval.index.registry import create_index, resolve_backend

        dim = self.tagger.feature_dim
        index = create_index(resolve_backend(backend, len(ids)), dim=dim, fingerprint=self.fingerprint)
        index.add(list(ids), vectors[:, :dim])
        index.build()
        tags = io.BytesIO()
        np.savez(tags, ids=np.asarray(ids), probabilities=vectors[:, dim:], labels=np.asarray(self.tagger.labels))
        # inside the index's atomic swap: the folder never holds vectors without their tags and model
        index.save(out, catalogue, extra={TAGS_FILE: tags.getvalue(),
                                          MODEL_FILE: json.dumps({"pretrained": self.tagger.name}, indent=2).encode()})


class PretrainedRetriever:
    """Tag, search and compare music with a published tagger (see the module docstring).

    Args:
        name: one of :data:`~retrieval.pretrained.tagger.PRETRAINED`.
        index_dir: an index built with this model (needed by ``search``, ``similar``, ``search_by_audio``).
    """

    def __init__(self, name: str, index_dir: str | os.PathLike | None = None):
        self.tagger = PretrainedTagger(name)
        self.name = name
        self.fingerprint = f"{name}-{self.tagger.fingerprint}"
        self.index = None
        self._probabilities = None
        self._sentence = None  # the sentence encoder and the tags' vectors in it, made on the first text query
        self._label_vectors = None
        if index_dir is not None:
            from retrieval.index import load_index

            index_dir = Path(index_dir)
            self.index = load_index(index_dir, expected_fingerprint=self.fingerprint)
            try:
                with np.load(index_dir / TAGS_FILE) as saved:
                    ids, probabilities = saved["ids"], saved["probabilities"]
            except (OSError, KeyError, ValueError) as error:
                raise DataError(index_dir / TAGS_FILE, f"unreadable ({error}); rebuild the index with "
                                f"`retrieval index FOLDER --model {name} --out {index_dir}`") from error
            import pandas as pd

            rows = pd.Index(ids.astype(str)).get_indexer(self.index._ids.astype(str))
            if (rows < 0).any():
                raise DataError(index_dir / TAGS_FILE, "does not cover every indexed track; rebuild the index")
            self._probabilities = probabilities[rows].astype(np.float32)  # in the index's row order

    @property
    def labels(self) -> list[str]:
        return self.tagger.labels

    def tag(self, path: str | os.PathLike, k: int = 10, head: str | None = None) -> list[tuple[str, float]]:
        """The ``k`` most probable of the model's tags for an audio file, as (tag, probability), best first
        (musicnn's probabilities averaged over consecutive 3-s patches)."""
        if head is not None:
            raise RetrievalError("a pretrained tagger has its own tags; --head is for trained runs")
        probabilities, _ = self.tagger.embed_file(path)
        order = np.argsort(-probabilities, kind="stable")[:k]
        return [(self.labels[i], float(probabilities[i])) for i in order]

    def embed_audio(self, paths: str | os.PathLike | Sequence[str | os.PathLike]) -> np.ndarray:
        """Audio files → (n, feature_dim) mean penultimate features (the vectors ``similar`` compares)."""
        paths = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
        return self.tagger.embed_files(paths)[1]

    def embed_text(self, texts: str | Sequence[str]) -> np.ndarray:
        """Texts → (n, 50) weights over the model's tags (:meth:`tag_weights`): a track's score is w · p."""
        return self.tag_weights(texts)

    def tag_weights(self, texts: str | Sequence[str]) -> np.ndarray:
        """w(text): (n, 50) softmax weights of the model's tags for each text (see the module docstring)."""
        from retrieval.encoders.text import SentenceEncoder

        texts = [texts] if isinstance(texts, str) else list(texts)
        if not all(text.strip() for text in texts):
            raise RetrievalError("empty query; type some words, e.g. 'mellow acoustic'")
        if self._sentence is None:
            self._sentence = SentenceEncoder()
            self._label_vectors = self._sentence.encode(self.labels)
        logits = self._sentence.encode(texts) @ self._label_vectors.T / TEMPERATURE
        weights = np.exp(logits - logits.max(axis=1, keepdims=True))
        return weights / weights.sum(axis=1, keepdims=True)

    def search(self, query: str | Sequence[str], k: int = 10, *, near: str | None = None, blend: float = 0.0):
        """Tracks for any text: score = Σ_j w_j(text) · p_j(track), best first (a :class:`SearchResult` whose
        ``matched_tags`` are the heaviest tags with their weights)."""
        from retrieval.api import SearchResult
        from retrieval.index.base import attach_metadata

        if near is not None or blend:
            raise RetrievalError("a pretrained tagger has no listening data to blend with; drop --near/--blend")
        self._require_index()
        text = query if isinstance(query, str) else " ".join(query)
        weights = self.tag_weights(text)[0]
        scores = self._probabilities @ weights
        order = np.argsort(-scores, kind="stable")[:k]
        hits = attach_metadata(self.index._ids[order][None, :], scores[order][None, :].astype(np.float32),
                               self.index.catalogue)[0]
        heaviest = np.argsort(-weights)[:10]
        return SearchResult(hits, text, [text], [(self.labels[i], float(weights[i])) for i in heaviest])

    def similar(self, track_id: str, k: int = 10):
        """Tracks nearest to an indexed track by cosine of the penultimate features (itself excluded)."""
        self._require_index()
        return self.index.neighbours(track_id, k)

    def search_by_audio(self, path: str | os.PathLike, k: int = 10):
        """Tracks that sound like an audio file (cosine of the penultimate features)."""
        self._require_index()
        _, features = self.tagger.embed_file(path)
        return self.index.search_hits(features[None, :], k)[0]

    def tag_track(self, track_id: str, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` most probable tags of an indexed track (its stored probabilities), best first.

        Raises:
            UnknownIdError: ``track_id`` is not in the index.
        """
        from retrieval.errors import UnknownIdError

        self._require_index()
        rows = np.flatnonzero(self.index.ids == track_id)
        if not len(rows):
            raise UnknownIdError(f"track ids not in this index: [{track_id!r}]")
        probabilities = self._probabilities[rows[0]]
        order = np.argsort(-probabilities, kind="stable")[:k]
        return [(self.labels[i], float(probabilities[i])) for i in order]

    def track_tag_scores(self) -> tuple[list[str], list[str], np.ndarray]:
        """(the model's tags, their category — all ``"tag"``: the published models have none —, (n_tracks, 50)
        probabilities in the index's row order)."""
        self._require_index()
        return list(self.labels), ["tag"] * len(self.labels), self._probabilities

    def _require_index(self) -> None:
        if self.index is None:
            raise RetrievalError(f"no index for {self.name}; build one with "
                                 f"`retrieval index AUDIO_DIR --model {self.name} --out INDEX`")
