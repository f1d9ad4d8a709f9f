"""Misspelt query words corrected to words the model knows: :class:`Speller`.

A word is corrected when it is not a known word, not an English word and exactly one edit (insert, delete,
substitute, swap two neighbours) from a known word: ``draemy`` → ``dreamy``, ``violn`` → ``violin``,
``peacefull`` → ``peaceful``. "Known" is the model's own vocabulary (its tags' words and, for word2vec, the
corpus words), most frequent first; "English" is the lexicon of whole words of the sentence model's tokenizer
(bert-base-uncased, ~23,000 words), so an ordinary word the corpus lacks ("asleep") is never "corrected" into a
different one ("sleep") — it goes to the text encoder as typed. Words of fewer than :data:`MIN_LENGTH` letters are
left alone (too many near neighbours).
"""

from __future__ import annotations

import functools
import string
from collections.abc import Iterable

from retrieval.encoders.text.tokens import TOKEN_PATTERN, tokenize
from retrieval.errors import RetrievalError

__all__ = ["MIN_LENGTH", "Speller", "english_lexicon"]

#: Shortest word the speller corrects.
MIN_LENGTH = 4
_LETTERS = string.ascii_lowercase


class Speller:
    """Correct misspelt words of a query against a known vocabulary.

    Args:
        known: the known words, most preferred first (ties between candidates go to the earlier word).
        lexicon: English words that are never corrected (default: :func:`english_lexicon`).
    """

    def __init__(self, known: Iterable[str], lexicon: frozenset[str] | None = None):
        self._rank: dict[str, int] = {}
        for word in known:
            for token in tokenize(word):
                self._rank.setdefault(token, len(self._rank))
        self.lexicon = english_lexicon() if lexicon is None else lexicon

    def correct_word(self, word: str) -> str | None:
        """The known word ``word`` is a misspelling of, or None (known, English, short or no single match)."""
        if len(word) < MIN_LENGTH or word in self._rank or word in self.lexicon or not word.isalpha():
            return None
        candidates = [c for c in _one_edit(word) if c in self._rank]
        return min(candidates, key=self._rank.__getitem__) if candidates else None

    def correct(self, text: str) -> tuple[str, list[tuple[str, str]]]:
        """``text`` with misspelt words replaced, and the (typed, corrected) pairs in query order.

        Example:
            >>> Speller(["dreamy", "piano"], lexicon=frozenset()).correct("draemy piano")
            ('dreamy piano', [('draemy', 'dreamy')])
        """
        fixes: list[tuple[str, str]] = []

        def fix(match) -> str:
            word = match.group(0).lower()
            right = self.correct_word(word)
            if right is None:
                return match.group(0)
            fixes.append((word, right))
            return right

        return TOKEN_PATTERN.sub(fix, text), fixes


def _one_edit(word: str) -> set[str]:
    """Every string one insertion, deletion, substitution or adjacent swap away from ``word``."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    deletes = {a + b[1:] for a, b in splits if b}
    swaps = {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    replaces = {a + c + b[1:] for a, b in splits if b for c in _LETTERS}
    inserts = {a + c + b for a, b in splits for c in _LETTERS}
    return (deletes | swaps | replaces | inserts) - {word}


@functools.cache
def english_lexicon() -> frozenset[str]:
    """Whole English words of the sentence model's tokenizer vocabulary (empty if that package is missing)."""
    try:
        from retrieval.encoders.text.sentence import _sentence_model_dir

        vocab = (_sentence_model_dir() / "vocab.txt").read_text(encoding="utf-8").split("\n")
    except (ImportError, OSError, RetrievalError):
        return frozenset()
    return frozenset(w for w in vocab if w.isalpha() and w.islower())
