"""Query text → word tokens, and what a word encoder reports about a query it resolved (or could not).

:func:`tokenize` is the one normalisation every text path applies (NFKC, lowercase, word tokens); a
:class:`Resolution` says which vocabulary entries a query stood for; :class:`UnknownTermError` says which words
were unknown and suggests close ones.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from retrieval.errors import RetrievalError

__all__ = ["TOKEN_PATTERN", "Resolution", "UnknownTermError", "tokenize"]

#: A word token: letters/digits, optionally joined by ' & or - ("hip-hop", "r&b", "rock'n'roll").
TOKEN_PATTERN = re.compile(r"[^\W_]+(?:['&\-][^\W_]+)*")


def tokenize(text: str) -> list[str]:
    """Normalise ``text`` into word tokens: NFKC, lowercase, punctuation and underscores dropped.

    Example:
        >>> tokenize("Deep_House, Hip-Hop & R&B (80s)!")
        ['deep', 'house', 'hip-hop', 'r&b', '80s']
    """
    return TOKEN_PATTERN.findall(unicodedata.normalize("NFKC", text).lower())


class UnknownTermError(RetrievalError, KeyError):
    """A query has no word in the encoder's vocabulary.

    Attributes:
        query: the text as given.
        unknown: the normalised words that were not found.
        suggestions: for each unknown word, the closest vocabulary words by spelling (possibly empty).
    """

    def __init__(self, query: str, unknown: Sequence[str], suggestions: dict[str, list[str]],
                 reason: str = ""):
        self.query = query
        self.unknown = list(unknown)
        self.suggestions = suggestions
        if reason:
            message = f"cannot encode {query!r}: {reason}"
        else:
            hints = "; ".join(
                f"{word!r}: did you mean {', '.join(map(repr, close))}?" if close
                else f"{word!r}: no close word"
                for word, close in suggestions.items()
            )
            words = ", ".join(map(repr, self.unknown))
            message = (f"no vocabulary entry for {words} in query {query!r} ({hints}). "
                       "Rephrase with known words (see encoder.vocabulary) or use the sentence encoder.")
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return self.message


@dataclass(frozen=True)
class Resolution:
    """What a query resolved to.

    Attributes:
        terms: the vocabulary entries whose vectors are averaged (as spelled in the vocabulary); a run of unknown
            words read through the sentence backoff is one term ending in ``~`` ("falling asleep~").
        ignored: normalised query words not in the vocabulary (skipped: there is no backoff); stopwords and
            filler words are not listed.
        rule: ``"whole"`` (the query is one entry), ``"terms"`` (every content word resolved) or ``"partial"``
            (some words were unknown and skipped).
    """

    terms: tuple[str, ...]
    ignored: tuple[str, ...]
    rule: Literal["whole", "terms", "partial"]
