"""The towers' building blocks: each maps one modality to fixed-size vectors.

Modules:
    backbones    every audio backbone of the seed papers (features → CNN / transformer) and their base class
                 ``Backbone``, in one registry (``AUDIO_BACKBONES``).
    text         tag / query text → word vector (``Word2VecEncoder`` with phrases, or ``SentenceEncoder``).
    listening    play counts → weighted-ALS item factors (``fit_item_factors`` → ``ItemFactors``).
    projection   ``MLPHead``: Linear → BN → ReLU → Dropout → Linear, into the shared space.

Every encoder exposes ``output_dim``. The names below are re-exported lazily (PEP 562), so importing one
module, e.g. ``retrieval.encoders.text``, does not import torch through ``backbones``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "AUDIO_BACKBONES": "backbones",
    "Backbone": "backbones.base",
    "ShortChunkCNN": "backbones.short_chunk",
    "ShortChunkResNet": "backbones.short_chunk",
    "build_audio_encoder": "backbones",
    "TEXT_ENCODERS": "text",
    "TextEncoder": "text",
    "Word2VecEncoder": "text",
    "SentenceEncoder": "text",
    "UnknownTermError": "text",
    "build_text_encoder": "text",
    "load_text_encoder": "text",
    "ItemFactors": "listening",
    "fit_item_factors": "listening",
    "MLPHead": "projection",
}

__all__ = [
    "AUDIO_BACKBONES",
    "Backbone",
    "ItemFactors",
    "MLPHead",
    "SentenceEncoder",
    "ShortChunkCNN",
    "ShortChunkResNet",
    "TEXT_ENCODERS",
    "TextEncoder",
    "UnknownTermError",
    "Word2VecEncoder",
    "build_audio_encoder",
    "build_text_encoder",
    "fit_item_factors",
    "load_text_encoder",
]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load on first access
    from retrieval.encoders.backbones import AUDIO_BACKBONES, build_audio_encoder
    from retrieval.encoders.backbones.base import Backbone
    from retrieval.encoders.backbones.short_chunk import ShortChunkCNN, ShortChunkResNet
    from retrieval.encoders.listening import ItemFactors, fit_item_factors
    from retrieval.encoders.projection import MLPHead
    from retrieval.encoders.text import (
        TEXT_ENCODERS,
        SentenceEncoder,
        TextEncoder,
        UnknownTermError,
        Word2VecEncoder,
        build_text_encoder,
        load_text_encoder,
    )


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'retrieval.encoders' has no attribute {name!r}")
    return getattr(importlib.import_module(f"retrieval.encoders.{_EXPORTS[name]}"), name)
