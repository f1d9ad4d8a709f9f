"""Every audio backbone of the seed papers, by name, and how a config selects and sizes one.

Modules:
    base          the base class :class:`Backbone` (front end → blocks → head → global max), ``InputSettings``.
    short_chunk   Short-chunk CNN and Short-chunk ResNet, the retrieval paper's towers (REFERENCE §1, §3).
    cnn           FCN, Musicnn, CRNN, Harmonic CNN (SMC 2020 benchmark settings).
    sample_cnn    SampleCNN and SampleCNN + SE (raw waveform).
    attention     self-attention tagger (CNNSA), Music Tagging Transformer, SpecTNT.

:data:`AUDIO_BACKBONES` is the one registry: a model config's ``model.audio.backbone`` names an entry, and the
same backbone serves as a multi-label tagger (:mod:`retrieval.tagging`) or as the retrieval model's audio tower.
Sizes: ``model.audio.size: paper`` uses the constructor defaults (the paper's widths and input), ``demo`` the
class's ``DEMO`` arguments (CPU-sized); ``channels``, ``input_frames``, ``options`` and ``model.mel`` in the
config override either.

Example:
    >>> net = build_audio_encoder("fcn", output_dim=16, channels=[4, 4, 4, 4, 4])
    >>> net.mel.sample_rate, net.input_frames
    (16000, 1813)
"""

from __future__ import annotations

import inspect
from typing import Any

from retrieval.audio import FrontEndConfig
from retrieval.encoders.backbones.attention import CNNSA, MusicTaggingTransformer, SpecTNT
from retrieval.encoders.backbones.base import Backbone, InputSettings
from retrieval.encoders.backbones.cnn import CRNN, FCN, HarmonicCNN, Musicnn
from retrieval.encoders.backbones.pretrained import PretrainedMusicnnTower, PretrainedVGGTower
from retrieval.encoders.backbones.sample_cnn import SampleCNN, SampleCNNSE
from retrieval.encoders.backbones.short_chunk import ShortChunkCNN, ShortChunkResNet
from retrieval.errors import ConfigError

__all__ = ["AUDIO_BACKBONES", "PRETRAINED_TOWERS", "backbone_arguments", "backbone_input", "backbone_name",
           "build_audio_encoder"]

#: Audio backbones by name. Register a new one here (a :class:`Backbone` subclass with a unique ``name``).
AUDIO_BACKBONES: dict[str, type[Backbone]] = {
    cls.name: cls
    for cls in (FCN, Musicnn, CRNN, SampleCNN, SampleCNNSE, ShortChunkCNN, ShortChunkResNet, HarmonicCNN, CNNSA,
                MusicTaggingTransformer, SpecTNT, PretrainedMusicnnTower, PretrainedVGGTower)
}
#: ``model.audio.backbone`` names that take published weights (``model.audio.pretrained``) → their tower.
PRETRAINED_TOWERS = {"musicnn": PretrainedMusicnnTower.name, "vgg": PretrainedVGGTower.name}


def backbone_name(settings: Any) -> str:
    """The registered backbone a config's ``model.audio`` builds: ``backbone``, or its pretrained tower when
    ``pretrained`` is set (``musicnn`` + ``pretrained: mtt`` → ``musicnn_pretrained``).

    Raises:
        ConfigError: ``pretrained`` with a backbone that has no published weights.
    """
    if getattr(settings, "pretrained", None) is None:
        return settings.backbone
    if settings.backbone not in PRETRAINED_TOWERS:
        raise ConfigError(f"model.audio.pretrained needs model.audio.backbone in {sorted(PRETRAINED_TOWERS)} (the "
                          f"published musicnn weights), got {settings.backbone!r}")
    return PRETRAINED_TOWERS[settings.backbone]


def _backbone(name: str) -> type[Backbone]:
    if name not in AUDIO_BACKBONES:
        raise ConfigError(f"unknown audio backbone {name!r}; choose one of {sorted(AUDIO_BACKBONES)}")
    return AUDIO_BACKBONES[name]


def build_audio_encoder(name: str, **kwargs: Any) -> Backbone:
    """Build a registered backbone from its constructor arguments.

    Args:
        name: a key of :data:`AUDIO_BACKBONES`.
        **kwargs: the backbone's constructor arguments; ``mel`` may be front-end settings or their dict form (as
            stored by :meth:`Backbone.config` and in checkpoints); omitted ones take the paper's values.

    Raises:
        ConfigError: an unknown name (the message lists the valid ones) or an argument the backbone does not take.
    """
    cls = _backbone(name)
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ConfigError(f"audio backbone {name!r} has no argument(s) {unknown}; allowed: {allowed}")
    return cls(**kwargs)


def backbone_arguments(settings: Any, mel: FrontEndConfig | None, output_dim: int) -> dict[str, Any]:
    """Constructor arguments for a config's audio tower.

    Args:
        settings: a :class:`retrieval.config.AudioSettings` (backbone, size, channels, input_frames, options).
        mel: ``model.mel`` of the config; ``None`` keeps the size's (or the paper's) front end.
        output_dim: the tower's output size.

    Returns:
        ``{"mel"?, "channels"?, "input_frames"?, ..., "output_dim"}``: the ``DEMO`` arguments when
        ``settings.size == "demo"``, updated by every setting the config gives.
    """
    cls = _backbone(backbone_name(settings))
    args: dict[str, Any] = dict(cls.DEMO) if settings.size == "demo" else {}
    if getattr(settings, "pretrained", None) is not None:
        args.update(pretrained=settings.pretrained, freeze=settings.freeze)
    if mel is not None:
        args["mel"] = mel
    if settings.channels is not None:
        args["channels"] = list(settings.channels)
    if settings.input_frames is not None:
        args["input_frames"] = settings.input_frames
    args.update(settings.options)
    args["output_dim"] = output_dim
    return args


def backbone_input(settings: Any, mel: FrontEndConfig | None) -> InputSettings:
    """The front end and crop length a config's audio tower reads, without building it (for feature caches)."""
    args = backbone_arguments(settings, mel, output_dim=1)
    front, frames = _backbone(backbone_name(settings)).resolve_input(args.get("mel"), args.get("input_frames"))
    return InputSettings(front, front.samples_for_frames(frames), frames)
