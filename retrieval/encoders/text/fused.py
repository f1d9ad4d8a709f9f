"""Both word towers' inputs at once: :class:`FusedEncoder`, the domain word2vec beside all-MiniLM-L6-v2.

A query's vector is ``[w2v(q), minilm(q)] / √2`` (each half unit norm, so the whole is unit norm): the word2vec
half carries the corpus's own sense of its tags ("jig", "xiaodiao"), the sentence half reads any English and
whole sentences. The word tower's MLP learns from both. Words the word2vec lacks go through its sentence backoff
when it has one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from retrieval.encoders.text.base import META_FILE, read_meta
from retrieval.encoders.text.sentence import SentenceEncoder
from retrieval.encoders.text.tokens import tokenize
from retrieval.encoders.text.word2vec import Word2VecEncoder
from retrieval.errors import DataError
from retrieval.fileio import write_text_atomic

__all__ = ["FusedEncoder"]


class FusedEncoder:
    """word2vec and sentence vectors of the same text, concatenated and scaled to unit norm.

    Args:
        word2vec: the domain word2vec (with or without a backoff).
        sentence: the sentence encoder (default: a new :class:`SentenceEncoder`).
    """

    kind = "fused"

    def __init__(self, word2vec: Word2VecEncoder, sentence: SentenceEncoder | None = None):
        self.word2vec = word2vec
        self.sentence = sentence or SentenceEncoder()
        self.output_dim = word2vec.output_dim + self.sentence.output_dim

    @property
    def vocabulary(self) -> list[str]:
        """The word2vec vocabulary (the words the speller may correct towards)."""
        return self.word2vec.vocabulary

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), output_dim) float32, unit L2 norm."""
        if isinstance(texts, str):
            raise TypeError("encode takes a sequence of texts; wrap a single text in a list")
        texts = list(texts)
        whole = {" ".join(tokenize(text)): i for i, text in enumerate(texts)}
        # one MiniLM batch for the texts and the word2vec half's unknown runs ("falling asleep"); a run that is
        # a whole text ("lullaby") reuses that text's vector
        runs = [run for run in self.word2vec.backoff_runs(texts) if run not in whole]
        sentence = self.sentence.encode(texts + runs)
        known = {run: sentence[i] for run, i in whole.items()} | dict(zip(runs, sentence[len(texts):], strict=True))
        word = self.word2vec.encode(texts, sentence_vectors=known)
        return (np.hstack([word, sentence[:len(texts)]]) / np.float32(math.sqrt(2.0))).astype(np.float32)

    def matched_terms(self, text: str) -> list[str]:
        """The word2vec terms of ``text`` (the sentence half reads all of it)."""
        return self.word2vec.matched_terms(text)

    def fingerprint(self) -> str:
        return f"{self.word2vec.fingerprint()[:8]}{self.sentence.fingerprint()[:8]}"

    def save(self, folder: str | Path) -> None:
        """The word2vec into ``folder/word2vec``, then ``encoder.json``."""
        folder = Path(folder)
        self.word2vec.save(folder / "word2vec")
        meta = {"kind": self.kind, "fingerprint": self.fingerprint()}
        write_text_atomic(folder / META_FILE, json.dumps(meta, indent=2))

    @classmethod
    def load(cls, folder: str | Path) -> FusedEncoder:
        """Rebuild from :meth:`save`'s folder.

        Raises:
            DataError: a part is missing, or the parts differ from the ones saved.
        """
        folder = Path(folder)
        meta = read_meta(folder / META_FILE, cls.kind)
        encoder = cls(Word2VecEncoder.load(folder / "word2vec"))
        if encoder.fingerprint() != meta.get("fingerprint"):
            raise DataError(folder / META_FILE, "the saved parts do not match the recorded fingerprint; save "
                            "the encoder again", key="fingerprint")
        return encoder
