"""Phrase layers for word2vec: gensim's phrase detection, kept as JSON, and the tokenised corpus it reads.

A phrase layer merges frequent word pairs into one token joined by :data:`PHRASE_DELIMITER` ("deep house" →
``deep_house``); stacking layers builds longer phrases ("drum and bass" → ``drum_and_bass``). A layer is stored as
a JSON-able dict (``phrasegrams`` phrase → score, ``threshold``, ``min_count``, ``connector_words``), never a
pickle, and :func:`frozen_phrases` rebuilds gensim's ``FrozenPhrases`` from it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from retrieval.encoders.text.tokens import tokenize
from retrieval.errors import DataError

__all__ = ["CONNECTOR_WORDS", "PHRASE_DELIMITER", "FrozenPhraseLayer", "TokenisedDocuments", "frozen_phrases"]

#: Joins the words of a phrase token (gensim's and GoogleNews' convention).
PHRASE_DELIMITER = "_"
#: Words that may sit inside a detected phrase ("drum and bass" → drum_and_bass); gensim's English list.
CONNECTOR_WORDS: frozenset[str] = frozenset("a an and at by for from in of on or the to with without".split())


class TokenisedDocuments:
    """A re-iterable corpus for gensim: each non-empty document as a token list, merged by the phrase layers.

    ``source`` is a text file (one document per line, UTF-8, streamed on every pass) or an in-memory sequence.
    """

    def __init__(self, source: Path | Sequence[str], layers: Sequence[Any] = ()):
        self.source = source
        self.layers = list(layers)

    def _lines(self) -> Iterator[str]:
        if not isinstance(self.source, Path):
            yield from self.source
            return
        with open(self.source, "rb") as handle:  # decoded line by line so an error names its line
            for line_no, raw in enumerate(handle, start=1):
                try:
                    yield raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    message = f"not UTF-8 text ({error.reason}); re-encode the file as UTF-8"
                    raise DataError(self.source, message, line=line_no) from error

    def __iter__(self) -> Iterator[list[str]]:
        for text in self._lines():
            tokens = tokenize(text)
            if not tokens:
                continue
            for layer in self.layers:
                tokens = layer[tokens]
            yield tokens


class FrozenPhraseLayer:
    """One frozen phrase layer: ``layer[tokens]`` merges each run ``a [connector words] b`` whose joined phrase
    scores above the threshold into one token, left to right, exactly as gensim's ``FrozenPhrases`` does
    (``analyze_sentence`` and ``score_candidate`` of gensim 4, tested against it), without importing gensim:
    that import pulls in ``scipy.stats`` and was a fifth of a cold CLI search that trains nothing.

    Args:
        phrasegrams: phrase (words joined by :data:`PHRASE_DELIMITER`) → score.
        threshold: a phrase merges when its score is strictly above this.
        connector_words: words that may sit inside a phrase.
    """

    def __init__(self, phrasegrams: dict[str, float], threshold: float, connector_words: frozenset[str]):
        self.phrasegrams, self.threshold, self.connector_words = phrasegrams, threshold, connector_words

    def __getitem__(self, tokens: Sequence[str]) -> list[str]:
        out: list[str] = []
        start, between = None, []
        for word in tokens:
            if word in self.connector_words:
                if start:
                    between.append(word)
                else:
                    out.append(word)
                continue
            if start:
                phrase = PHRASE_DELIMITER.join([start, *between, word])
                if self.phrasegrams.get(phrase, float("-inf")) > self.threshold:
                    out.append(phrase)
                    start, between = None, []
                    continue
                out += [start, *between]  # not a phrase: its words stay, and this word may start one
            start, between = word, []
        if start:
            out += [start, *between]
        return out


def frozen_phrases(layer: dict[str, Any]) -> FrozenPhraseLayer:
    """A frozen phrase layer from its JSON form (phrase → score, threshold, connector words)."""
    return FrozenPhraseLayer(dict(layer["phrasegrams"]), layer["threshold"], frozenset(layer["connector_words"]))
