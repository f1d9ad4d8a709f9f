"""The text encoders by name, and the one factory that builds or loads any of them.

``retrieval.runs.build.text_encoder_for`` builds a run's word tower input through :func:`build_text_encoder` and
reloads it with :func:`load_text_encoder`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from retrieval.encoders.text.base import META_FILE, TextEncoder, read_meta
from retrieval.encoders.text.fused import FusedEncoder
from retrieval.encoders.text.sentence import SentenceEncoder
from retrieval.encoders.text.word2vec import Word2VecEncoder
from retrieval.errors import ConfigError

__all__ = ["TEXT_ENCODERS", "build_text_encoder", "load_text_encoder"]


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
    "fused": (FusedEncoder, FusedEncoder),
}


def build_text_encoder(kind: str, **kwargs: Any) -> TextEncoder:
    """Build a text encoder by name.

    ``build_text_encoder("word2vec", documents=path_or_texts, vector_size=300, ...)`` trains;
    ``build_text_encoder("word2vec", pretrained="GoogleNews-vectors-negative300.bin", limit=500_000)`` loads;
    ``build_text_encoder("sentence", device="cpu")`` loads all-MiniLM-L6-v2;
    ``build_text_encoder("fused", word2vec=encoder)`` puts the two side by side.

    Raises:
        ConfigError: unknown ``kind`` (the message lists the valid ones) or bad arguments.
    """
    if kind not in TEXT_ENCODERS:
        raise ConfigError(f"unknown text encoder {kind!r}; choose one of {sorted(TEXT_ENCODERS)}")
    builder, _ = TEXT_ENCODERS[kind]
    return builder(**kwargs)


def load_text_encoder(folder: str | Path) -> TextEncoder:
    """Load whichever text encoder ``folder`` holds (its ``encoder.json`` names the kind)."""
    meta = read_meta(Path(folder) / META_FILE, None)
    _, cls = TEXT_ENCODERS[meta["kind"]]
    return cls.load(folder)
