"""Words outside a word2vec vocabulary, read through the sentence model: :class:`SentenceBackoff`.

A domain word2vec knows only the words of its corpus ("slow", "lullaby" or "asleep" may never occur in it). The
sentence model (all-MiniLM-L6-v2) reads any English, and the model's tags are where the word tower was trained
best: each tag ``t`` has a sentence vector ``s_t`` and its word2vec vector ``v_t`` (the input of its anchor). An
unknown word or run of words ``u`` becomes

    v(u) = normalise( Σ_{t ∈ N(u)} softmax_t( cos(s_u, s_t) / τ ) · v_t / ‖v_t‖ ),

N(u) the :data:`NEIGHBOURS` tags whose sentence vectors are nearest to ``s_u`` ("cello" → strings, violin, chamber
music; "falling asleep" → sleep, calm, relaxing), τ = :data:`TEMPERATURE`. Measured on
``benchmarks/everyday_queries.py`` (``benchmarks/RESULTS.md``), neighbours among the tags beat neighbours among the
whole word2vec vocabulary (mean share of relevant top-10 hits 0.686 against 0.644) and a ridge map from the
sentence space to the word space fitted on the vocabulary (0.572): the corpus's word vectors put "loud" or
"workout" beside whatever they co-occur with, the tags' vectors are what training aligned with the audio.

Nothing is saved: the tags' sentence vectors take well under a second to compute when a run loads.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from retrieval.encoders.text.sentence import SentenceEncoder
from retrieval.vectors import unit_rows

__all__ = ["NEIGHBOURS", "TEMPERATURE", "SentenceBackoff"]

#: Tags averaged per unknown term, and the softmax temperature over their cosines (chosen on the everyday queries).
NEIGHBOURS = 5
TEMPERATURE = 0.05
_NORM_FLOOR = np.finfo(np.float32).tiny


class SentenceBackoff:
    """Unknown words → word2vec vectors through their nearest tags in the sentence space.

    Args:
        keys: the tags (or any texts) the vectors belong to.
        word_vectors: their word2vec vectors (any norm), one row per key.
        sentence: the sentence encoder (default: a new :class:`SentenceEncoder`).
    """

    def __init__(self, keys: Sequence[str], word_vectors: np.ndarray, sentence=None):
        word_vectors = np.asarray(word_vectors, dtype=np.float32)
        if len(keys) == 0 or word_vectors.ndim != 2 or len(keys) != len(word_vectors):
            raise ValueError(f"need one word vector per key: {len(keys)} keys, vectors {word_vectors.shape}")
        self.keys = list(keys)
        self.word_vectors = unit_rows(word_vectors, _NORM_FLOOR)
        self.sentence = sentence or SentenceEncoder()
        self.sentence_vectors = self.sentence.encode([key.replace("_", " ") for key in self.keys])

    @property
    def word_dim(self) -> int:
        return int(self.word_vectors.shape[1])

    def nearest(self, texts: Sequence[str], sentence_vectors: np.ndarray | None = None
                ) -> tuple[np.ndarray, list[str]]:
        """(len(texts), word_dim) float32 unit vectors in the word2vec space, and each text's nearest key.
        ``sentence_vectors``: the texts' MiniLM vectors when the caller has them already."""
        if sentence_vectors is None:
            sentence_vectors = self.sentence.encode(list(texts))
        cosines = sentence_vectors @ self.sentence_vectors.T
        k = min(NEIGHBOURS, cosines.shape[1])
        top = np.argpartition(-cosines, k - 1, axis=1)[:, :k]
        near = np.take_along_axis(cosines, top, axis=1)
        weights = np.exp((near - near.max(axis=1, keepdims=True)) / TEMPERATURE)
        weights /= weights.sum(axis=1, keepdims=True)
        mixed = np.einsum("nk,nkd->nd", weights, self.word_vectors[top])
        best = top[np.arange(len(top)), near.argmax(axis=1)]
        return unit_rows(mixed, _NORM_FLOOR).astype(np.float32), [self.keys[i] for i in best]

    def encode(self, texts: Sequence[str], sentence_vectors: np.ndarray | None = None) -> np.ndarray:
        """(len(texts), word_dim) float32 unit vectors in the word2vec space."""
        return self.nearest(texts, sentence_vectors)[0]
