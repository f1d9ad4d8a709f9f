"""Word vectors as a text encoder: :class:`Word2VecEncoder` (the paper's word tower input: 300-d).

Gensim word vectors, either trained here on music text with bigram/trigram phrase detection (``"deep house"`` →
``deep_house``, :mod:`retrieval.encoders.text.phrases`), or loaded from a pretrained KeyedVectors file (GoogleNews,
or the authors' music word2vec). Vectors are float32 of unit L2 norm, shape (n, output_dim).

How :class:`Word2VecEncoder` resolves a query (see :meth:`Word2VecEncoder.resolve`), in order:

1. **Normalise**: NFKC, lowercase, split into word tokens (punctuation dropped; ``hip-hop``, ``r&b``,
   ``rock'n'roll`` stay whole; ``_`` separates words), see :func:`~retrieval.encoders.text.tokens.tokenize`.
2. **Whole phrase**: the query as one vocabulary entry (``"sad piano"`` → ``sad_piano``; also tried:
   ``sad-piano``, ``sadpiano``).
3. **Phrase-merged tokens**: the trained phrase models merge the tokens (bigrams, then trigrams); a phrase the
   vocabulary lacks is split back into its words; runs of up to :data:`MAX_NGRAM` words that form a vocabulary
   entry are merged greedily (this is what finds ``New_York``-style phrases in pretrained vectors).
4. **Unknown words through the sentence model**: with a :class:`~retrieval.encoders.text.backoff.SentenceBackoff`
   (``model.text.backoff: sentence``), each run of consecutive unknown content words ("falling asleep") is read by
   all-MiniLM-L6-v2 and mapped into this space through the nearest tags; it counts as one more term, reported as
   ``"falling asleep~"``.
5. **Mean of terms**: the vector is the mean of the unit vectors of the terms, stopwords skipped
   (:data:`STOPWORDS`), and the words every query could carry (:data:`FILLER`: "music", "songs", "play" …) skipped
   unless nothing else is left, re-normalised. Without a backoff, unknown words are skipped, reported in
   :class:`Resolution` and logged; pass ``strict=True`` to :meth:`Word2VecEncoder.encode` to make them an error.
6. If no term is known (and there is no backoff): :class:`UnknownTermError` names the unknown words and suggests
   the vocabulary words closest by spelling (difflib).

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
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.encoders.text.backoff import SentenceBackoff
from retrieval.encoders.text.base import META_FILE, read_meta
from retrieval.encoders.text.phrases import CONNECTOR_WORDS, PHRASE_DELIMITER, TokenisedDocuments, frozen_phrases
from retrieval.encoders.text.tokens import Resolution, UnknownTermError, tokenize
from retrieval.errors import DataError
from retrieval.fileio import atomic_open, atomic_path, write_text_atomic
from retrieval.vectors import unit_rows

__all__ = ["BACKOFF_MARK", "FILLER", "MAX_NGRAM", "STOPWORDS", "Word2VecEncoder"]

logger = logging.getLogger(__name__)

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
#: Words of a request rather than of its music ("play me some songs …"): skipped when the query has other terms.
#: Measured on benchmarks/everyday_queries.py: "bagpipe music" 0.2 → 0.7 of the top 10 relevant.
FILLER: frozenset[str] = frozenset(
    "music musics song songs tune tunes track tracks piece pieces playlist want wanna need play put give "
    "please help listen listening hear".split()
)
#: How many of the most frequent vocabulary words are searched for spelling suggestions (difflib is O(pool)).
SUGGESTION_POOL = 200_000
#: How many spelling suggestions an UnknownTermError lists per word.
SUGGESTIONS_PER_WORD = 3
#: word2vec-format suffixes (binary if ".bin" is among them); any other suffix is gensim's native format.
_WORD2VEC_SUFFIXES = (".bin", ".bin.gz", ".txt", ".txt.gz", ".vec", ".vec.gz")
#: Suffix marking a term read through the sentence backoff in ``Resolution.terms`` ("falling asleep~").
BACKOFF_MARK = "~"
#: Norm floor when normalising rows (vectors and ``encode``'s output are float32): zero rows stay zero.
_NORM_FLOOR = np.finfo(np.float32).tiny
#: Files of a saved Word2VecEncoder; ``encoder.json`` is written last and marks a complete save.
_W2V_FILES = {"vectors": "vectors.npy", "vocab": "vocab.json", "phrases": "phrases.json", "meta": META_FILE}


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
        backoff: reads unknown words through the sentence model (see :meth:`with_backoff`); None skips them.

    Look-ups are case-insensitive: a cased vocabulary (GoogleNews) answers a lowercase word with its most
    frequent spelling ("new york" → ``New_York``).
    """

    kind = "word2vec"

    def __init__(self, keys: Sequence[str], vectors: np.ndarray, *, phrases: Sequence[dict[str, Any]] = (),
                 stopwords: Iterable[str] = STOPWORDS, meta: dict[str, Any] | None = None,
                 backoff: SentenceBackoff | None = None):
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(keys) or len(keys) == 0:
            raise ValueError(f"need one vector row per key and at least one key: {len(keys)} keys, "
                             f"vectors {vectors.shape}")
        self._keys = list(keys)
        self._vectors = vectors
        self._phrase_layers = [dict(layer) for layer in phrases]
        self._phrasers = [frozen_phrases(layer) for layer in self._phrase_layers]
        self.stopwords = frozenset(stopwords)
        self.meta = dict(meta or {})
        self.output_dim = int(vectors.shape[1])
        if backoff is not None and backoff.word_dim != self.output_dim:
            raise ValueError(f"the backoff maps into {backoff.word_dim} dims, the vectors have {self.output_dim}")
        self.backoff = backoff
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
            frozen = Phrases(TokenisedDocuments(source, [frozen_phrases(lay) for lay in layers]),
                             min_count=phrase_min_count, threshold=phrase_threshold,
                             delimiter=PHRASE_DELIMITER, connector_words=CONNECTOR_WORDS).freeze()
            layers.append({"phrasegrams": dict(frozen.phrasegrams), "threshold": phrase_threshold,
                           "min_count": phrase_min_count, "connector_words": sorted(CONNECTOR_WORDS)})
        corpus = TokenisedDocuments(source, [frozen_phrases(layer) for layer in layers])

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

    def with_backoff(self, tags: Sequence[str], sentence=None) -> Word2VecEncoder:
        """This encoder with unknown words read through the sentence model and the nearest of ``tags`` (a run's
        vocabulary; see :mod:`~retrieval.encoders.text.backoff`). Known words encode exactly as before."""
        backoff = SentenceBackoff(list(tags), self.encode(list(tags)), sentence)
        return Word2VecEncoder(self._keys, self._vectors, phrases=self._phrase_layers, stopwords=self.stopwords,
                               meta=self.meta, backoff=backoff)

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

    def resolve(self, text: str, *, skip_filler: bool = True) -> Resolution:
        """Which vocabulary entries ``text`` stands for (rules in the module docstring). Terms read through the
        backoff end in :data:`BACKOFF_MARK`.

        Raises:
            UnknownTermError: no word of ``text`` is in the vocabulary (and there is no backoff), or it has only
                stopwords / no words.
        """
        tokens = tokenize(text)
        if not tokens:
            raise UnknownTermError(text, [], {}, reason="it has no words")
        whole = self._find(tokens)
        if whole is not None:
            return Resolution((self._keys[whole],), (), "whole")
        skipped = self.stopwords | FILLER if skip_filler else self.stopwords
        terms: list[str] = []
        unknown: list[str] = []
        run: list[str] = []  # consecutive unknown content words: one backoff term

        def end_run() -> None:
            if run and self.backoff is not None:
                terms.append(" ".join(run) + BACKOFF_MARK)
            else:
                unknown.extend(run)
            run.clear()

        for group in self._segment(tokens):
            if len(group) == 1 and group[0] in skipped:
                end_run()
                continue
            row = self._find(group)
            if row is None:
                run.extend(word for word in group if word not in self.stopwords)
                continue
            end_run()
            terms.append(self._keys[row])
        end_run()
        if not terms and not unknown and skip_filler and any(token in FILLER for token in tokens):
            return self.resolve(text, skip_filler=False)  # "music", "play some songs": the filler is the query
        if not terms:
            if not unknown:
                raise UnknownTermError(text, [], {}, reason="it has only stopwords; add a content word")
            raise UnknownTermError(text, unknown, self._suggestions(unknown))
        return Resolution(tuple(terms), tuple(unknown), "partial" if unknown else "terms")

    def matched_terms(self, text: str) -> list[str]:
        """The vocabulary entries ``text`` resolved to (raises like :meth:`resolve`)."""
        return list(self.resolve(text).terms)

    # -- encoding

    def backoff_runs(self, texts: Sequence[str]) -> list[str]:
        """The distinct runs of unknown words that :meth:`encode` reads through the backoff (none without one)."""
        if self.backoff is None:
            return []
        runs = (term[:-len(BACKOFF_MARK)] for text in texts for term in self.resolve(text).terms
                if term.endswith(BACKOFF_MARK))
        return list(dict.fromkeys(runs))

    def encode(self, texts: Sequence[str], *, strict: bool = False,
               sentence_vectors: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """Encode each text as the re-normalised mean of its terms' unit vectors.

        v(text) = normalise( (1/|T|) Σ_{t∈T} w_t / ‖w_t‖ ), T = ``resolve(text).terms``.

        Args:
            texts: n tags or queries.
            strict: raise :class:`UnknownTermError` when any content word is unknown, instead of skipping it.
            sentence_vectors: MiniLM vectors of the :meth:`backoff_runs` already computed by the caller (the fused
                encoder reads them in the same batch as its whole queries); the others are computed here.

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
            known = [term for term in resolution.terms if not term.endswith(BACKOFF_MARK)]
            guessed = [term[:-len(BACKOFF_MARK)] for term in resolution.terms if term.endswith(BACKOFF_MARK)]
            parts = [unit_rows(self._vectors[[self._index[term.lower()] for term in known]], _NORM_FLOOR)]
            if guessed:
                given = sentence_vectors or {}
                known_runs = np.stack([given[run] for run in guessed]) if all(r in given for r in guessed) else None
                parts.append(self.backoff.encode(guessed, known_runs))
            out[i] = np.vstack(parts).mean(axis=0)
        return unit_rows(out, _NORM_FLOOR)

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
        """Write ``vectors.npy``, ``vocab.json``, ``phrases.json`` and (last) ``encoder.json`` to ``folder`` (a
        backoff is rebuilt from the run's tags when it loads, never saved).

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
        meta = read_meta(meta_path, cls.kind)
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
