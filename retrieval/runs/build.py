"""Build a run's model and text encoder from its config, and rebuild them from a checkpoint's ``model_args``.

``model_args(config, ...)`` gives the constructor arguments a checkpoint stores (plain JSON-like values);
``build_model(args, task)`` turns them back into the model, so loading a run never needs the code that trained it.

    retrieval task: JointModel(audio backbone | None, listening projection | None, word projection)
    tagging task:   TaggingModel(audio backbone → dropout → linear, one logit per tag)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path

from retrieval.config import Config, expand_path
from retrieval.encoders.backbones import backbone_arguments, backbone_name, build_audio_encoder

__all__ = ["build_model", "model_args", "plain_args", "tagging_args", "text_encoder_for"]


def model_args(config: Config, text_dim: int, listening_dim: int | None) -> dict:
    """Constructor arguments of the joint model and its audio backbone (stored in checkpoints)."""
    m = config.model
    audio_dim = m.listening.factors if m.modality == "concat" else m.embed_dim
    return {
        "modality": m.modality,
        "text_dim": text_dim,
        "embed_dim": m.embed_dim,
        "hidden_dim": m.hidden_dim,
        "dropout": m.dropout,
        "listening_dim": listening_dim if m.modality != "audio" else None,
        "audio": None
        if m.modality == "cultural"
        else {"name": backbone_name(m.audio), "args": backbone_arguments(m.audio, m.mel, audio_dim)},
    }


def tagging_args(config: Config, n_tags: int) -> dict:
    """Constructor arguments of a tagger: the backbone (``model.audio``, ``model.mel``; output
    ``model.embed_dim``), ``n_tags`` and the head's dropout ``model.dropout``."""
    m = config.model
    return {
        "audio": {"name": backbone_name(m.audio), "args": backbone_arguments(m.audio, m.mel, m.embed_dim)},
        "n_tags": n_tags,
        "dropout": m.dropout,
    }


def build_model(args: dict, task: str = "retrieval"):
    """The model of ``task`` from :func:`model_args` / :func:`tagging_args` output (untrained weights)."""
    if task == "tagging":
        from retrieval.tagging.model import build_tagging_model

        return build_tagging_model(args)
    from retrieval.model import JointModel

    audio = None
    if args["audio"] is not None:
        audio = build_audio_encoder(args["audio"]["name"], **args["audio"]["args"])
    rest = {k: v for k, v in args.items() if k != "audio"}
    return JointModel(audio_encoder=audio, **rest)


def plain_args(args: dict) -> dict:
    """Model args made checkpoint-safe (dataclasses → dicts), so they load with ``weights_only``."""
    return json.loads(json.dumps(args, default=lambda o: asdict(o) if is_dataclass(o) else str(o)))


def text_encoder_for(config: Config, folder: Path | None = None, train: bool = True,
                     tags: Sequence[str] = ()):
    """The word tower's input encoder that ``config`` names, through the registry of
    :mod:`retrieval.encoders.text`: MiniLM (``kind: sentence``), pretrained vectors (``text.pretrained``), or the
    domain word2vec — loaded from ``folder/word2vec`` when a run saved one there, else trained on the corpus text
    (``train=True``, saved to ``folder``); ``kind: fused`` puts that word2vec beside MiniLM. Given the run's
    ``tags`` and ``text.backoff: sentence``, the word2vec reads unknown words through them (query time; training
    never meets an unknown word).

    Raises:
        DataError: ``train=False`` and ``folder`` holds no trained word2vec.
    """
    from retrieval.encoders import text

    settings = config.model.text
    if settings.kind == "sentence":
        return text.build_text_encoder("sentence")
    word2vec = _word2vec_for(config, folder, train)
    if tags and settings.backoff == "sentence":
        word2vec = word2vec.with_backoff(tags)
    return text.build_text_encoder("fused", word2vec=word2vec) if settings.kind == "fused" else word2vec


def _word2vec_for(config: Config, folder: Path | None, train: bool):
    """The run's word2vec: pretrained, saved in ``folder/word2vec``, or trained now (and saved there)."""
    from retrieval.encoders import text

    settings = config.model.text
    if settings.pretrained:
        return text.build_text_encoder("word2vec", pretrained=expand_path(settings.pretrained))
    saved = folder / "word2vec" if folder is not None else None
    if saved is not None and saved.exists():
        return text.load_text_encoder(saved)
    if not train:
        from retrieval.errors import DataError

        raise DataError(saved or Path("text"), "no trained word2vec in this run; train the run again")
    encoder = text.build_text_encoder(
        "word2vec",
        documents=expand_path(config.data.root) / settings.corpus,
        vector_size=settings.vector_size,
        epochs=settings.epochs,
        min_count=settings.min_count,
        phrase_min_count=settings.phrase_min_count,
        phrase_threshold=settings.phrase_threshold,
        seed=config.train.seed,
    )
    if saved is not None:
        encoder.save(saved)
    return encoder
