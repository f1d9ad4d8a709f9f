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

__all__ = ["CONNECTOR_WORDS", "PHRASE_DELIMITER", "TokenisedDocuments", "frozen_phrases"]

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


def frozen_phrases(layer: dict[str, Any]) -> Any:
    """A gensim ``FrozenPhrases`` from its JSON form (phrase → score, threshold, connector words)."""
    from gensim.models.phrases import Phrases

    frozen = Phrases(min_count=layer["min_count"], threshold=layer["threshold"], delimiter=PHRASE_DELIMITER,
                     connector_words=frozenset(layer["connector_words"])).freeze()
    # FrozenPhrases keeps only this dict (phrase → score) to merge tokens; restoring it restores the model.
    frozen.phrasegrams = dict(layer["phrasegrams"])
    return frozen
