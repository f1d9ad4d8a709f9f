"""Everything a training run or an evaluation reads, assembled once from a corpus and a config.

- the subset's tags (anchors) with their categories and word vectors (the word tower's input);
- per split: song ids, the multi-hot label matrix, and the tracks' inputs — cached log-mels (audio) and ALS
  item factors (listening);
- which tracks were excluded and why (no audio file, unreadable audio, no listening data): reported, never dropped
  silently.

Every split keeps only tracks that have every input the corpus offers (audio where the corpus has audio, listening
where it has a Taste Profile), whatever the modality, so that audio, cultural and hybrid models are compared on the
same tracks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from retrieval.config import Config, expand_path
from retrieval.data.vocabulary import Vocabulary, build_vocabulary
from retrieval.errors import ConfigError, InputError
from retrieval.model import TrackInputs

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")


@dataclass
class SplitData:
    """One split's tracks. ``labels``: (n, n_tags) bool; ``listening``: (n, factors) float32 or None."""

    ids: list[str]
    labels: torch.Tensor
    listening: torch.Tensor | None
    has_listening: torch.Tensor


@dataclass
class ExperimentData:
    """Inputs for training and evaluation (see module docstring)."""

    vocabulary: Vocabulary
    splits: dict[str, SplitData]
    features: object | None  # retrieval.data.features.FeatureStore
    input_frames: int
    excluded: dict[str, dict[str, int]] = field(default_factory=dict)
    train_crops: AugmentedCrops | None = None

    def track_inputs(self, split: str, rows: Sequence[int], n_crops: int) -> TrackInputs:
        """Whole-track inputs: ``n_crops`` equally spaced crops per track (the paper's evaluation)."""
        data = self.splits[split]
        crops = None
        if self.features is not None:
            crops = self.features.track_crops([data.ids[i] for i in rows], self.input_frames, n_crops)
        return self._inputs(data, torch.as_tensor(list(rows), dtype=torch.long), crops)

    def hold_out(self, tags: Sequence[str], splits: Sequence[str] = ("train", "valid")) -> None:
        """Make ``tags`` unseen (the TTMR protocol): their label columns are cleared in ``splits``, so they are
        never anchors nor scored in validation; their tracks stay, carrying their other tags.

        Raises:
            ConfigError: a tag is not in the vocabulary (``data.unseen_tags``).
        """
        missing = [tag for tag in tags if tag not in self.vocabulary.tags]
        if missing:
            raise ConfigError(f"data.unseen_tags: {missing[:5]} are not tags of this corpus; choose tags from "
                              "its selected_tags.tsv")
        columns = [self.vocabulary.tags.index(tag) for tag in tags]
        for name in splits:
            if name in self.splits:
                labels = self.splits[name].labels.clone()
                labels[:, columns] = False
                self.splits[name].labels = labels

    @staticmethod
    def _inputs(data: SplitData, rows: torch.Tensor, crops: torch.Tensor | None) -> TrackInputs:
        listening = data.listening[rows] if data.listening is not None else None
        return TrackInputs(features=crops, listening=listening, has_listening=data.has_listening[rows])


class AugmentedCrops:
    """Augmented training crops: a random crop of the cached waveform → :class:`retrieval.augment.Augment` → the
    tower's front end → ``(B, n_mels, input_frames)``, like :meth:`FeatureStore.crops_at` of the features.

    Args:
        config: the experiment config (``train.augment`` names the preset; the front end is the audio tower's).
        ids: the tracks crops are cut from (their waveforms are cached under ``corpus/cache``).
        progress: show the waveform cache's progress bar.
    """

    def __init__(self, config: Config, ids: Sequence[str], progress: bool = True):
        from retrieval.audio import WaveConfig, front_end
        from retrieval.augment import PRESETS, Augment

        settings = audio_input(config)
        self.mel, self.frames = settings.mel, settings.input_frames
        rate = self.mel.sample_rate
        self.waves, missing = feature_store(config_corpus(config), ids, WaveConfig(rate), progress)
        if missing:
            raise InputError(f"{len(missing)} tracks have mels but no readable audio (e.g. {sorted(missing)[:3]}); "
                             "rebuild the corpus or set train.augment: none")
        self.samples = self.mel.samples_for_frames(self.frames)
        self.augment = Augment(rate, PRESETS[config.train.augment])
        self.front_end = front_end(self.mel)

    @torch.no_grad()
    def crops_at(self, ids: Sequence[str], fractions: Sequence[float], generator: torch.Generator) -> torch.Tensor:
        """The crops of ``ids`` starting at ``fractions`` of their free range (as
        :meth:`FeatureStore.crops_at`), each augmented with draws from ``generator``."""
        waves = self.waves.crops_at(ids, self.samples, fractions)[:, 0]  # (B, samples)
        return self.front_end(self.augment(waves, generator))[..., : self.frames]


def config_corpus(config: Config):
    """The corpus a config names (``data.root``, ``data.splits``, ``data.min_score``), loaded."""
    from retrieval.data.corpus import load_corpus

    splits_dir = expand_path(config.data.splits) if config.data.splits else None
    return load_corpus(expand_path(config.data.root), splits_dir=splits_dir, min_score=config.data.min_score)


def prepare_data(
    config: Config,
    vocabulary: Vocabulary | None = None,
    text_encoder=None,
    progress: bool = True,
    need_audio: bool = True,
    need_listening: bool = True,
    splits: Sequence[str] = SPLITS,
) -> tuple[ExperimentData, object | None]:
    """Load the corpus named by ``config.data`` and assemble :class:`ExperimentData`.

    Args:
        config: the experiment config.
        vocabulary: reuse these tags and vectors (evaluation of a trained run); else built with ``text_encoder``.
        text_encoder: used to build the vocabulary when ``vocabulary`` is None.
        need_audio / need_listening: whether to prepare mels / ALS factors (a cultural model needs no mels).
        splits: the splits to load (``unlabeled`` too for noisy-student training; its labels are not used).

    Returns:
        (data, item_factors) — item_factors is the fitted :class:`ItemFactors` (or None) so callers can save it.
    """
    corpus = config_corpus(config)
    tag_frame = corpus.tags
    if vocabulary is None:
        vocabulary = build_vocabulary(list(tag_frame["tag"]), list(tag_frame["category"]), text_encoder)

    ids_by_split: dict[str, list[str]] = {}
    labels_by_split: dict[str, torch.Tensor] = {}
    for name in splits:
        ids, labels = corpus.labels(name)
        ids_by_split[name] = list(ids)
        labels_by_split[name] = _reorder_columns(labels, list(tag_frame["tag"]), vocabulary.tags)

    all_ids = sorted({i for ids in ids_by_split.values() for i in ids})
    keep = np.ones(len(all_ids), dtype=bool)
    excluded: dict[str, dict[str, int]] = {}

    features = None
    if need_audio:
        features, missing = _prepare_mels(config, corpus, all_ids, progress)
        keep &= ~np.isin(all_ids, list(missing))
        excluded["audio"] = {"missing_or_unreadable": len(missing)}

    factors = None
    listening_of: dict[str, np.ndarray] = {}
    has_of: dict[str, bool] = {}
    if need_listening and (Path(corpus.root) / "train_triplets.txt").exists():
        factors = _fit_factors(config, corpus)
        vectors, mask = factors.lookup(all_ids)
        listening_of = dict(zip(all_ids, vectors, strict=False))
        has_of = dict(zip(all_ids, mask, strict=False))
        keep &= mask
        excluded["listening"] = {"no_plays": int((~mask).sum())}

    kept = {i for i, k in zip(all_ids, keep, strict=False) if k}
    split_data: dict[str, SplitData] = {}
    for name in splits:
        rows = [r for r, i in enumerate(ids_by_split[name]) if i in kept]
        ids = [ids_by_split[name][r] for r in rows]
        labels = labels_by_split[name][rows]
        listening = None
        if listening_of:
            listening = torch.from_numpy(np.stack([listening_of[i] for i in ids]).astype(np.float32))
        has = torch.tensor([has_of.get(i, False) for i in ids], dtype=torch.bool)
        split_data[name] = SplitData(ids, labels, listening, has)
        if len(rows) < len(ids_by_split[name]):
            log.warning(
                "%s split: %d of %d tracks excluded (missing inputs)",
                name,
                len(ids_by_split[name]) - len(rows),
                len(ids_by_split[name]),
            )
    data = ExperimentData(vocabulary, split_data, features, audio_input(config).input_frames, excluded)
    return data, factors


def audio_input(config: Config):
    """The audio tower's resolved :class:`~retrieval.encoders.backbones.base.InputSettings` (front end, crop length)."""
    from retrieval.encoders.backbones import backbone_input

    return backbone_input(config.model.audio, config.model.mel)


def _reorder_columns(labels, tags: list[str], order: list[str]) -> torch.Tensor:
    """Dense bool label matrix with columns in ``order`` (the vocabulary's tag order)."""
    dense = labels.toarray() if hasattr(labels, "toarray") else np.asarray(labels)
    position = {t: i for i, t in enumerate(tags)}
    missing = [t for t in order if t not in position]
    if missing:
        raise InputError(f"tags of the model are not in this corpus: {missing[:5]}; evaluate a run on the corpus "
                         "(data.root, data.splits) it was trained on")
    return torch.from_numpy(dense[:, [position[t] for t in order]].astype(bool))


def _prepare_mels(config: Config, corpus, ids: list[str], progress: bool):
    return feature_store(corpus, ids, audio_input(config).mel, progress)


def feature_store(corpus, ids: Sequence[str], front_end, progress: bool = True):
    """A :class:`~retrieval.data.features.FeatureStore` of ``front_end`` features for ``ids`` of ``corpus``, built
    (cached under ``corpus/cache/mel``) → (store, ids without usable audio)."""
    from retrieval.data.features import FeatureStore

    store = FeatureStore(Path(corpus.root) / "cache" / "mel", front_end)
    located = corpus.audio_locator().locate(list(ids))
    if located.missing:
        log.warning("%d tracks have no audio file (e.g. %s)", len(located.missing), located.missing[:3])
    errors = store.build(located.found, progress=progress)
    for message in list(errors.values())[:5]:
        log.warning("skipped unreadable audio: %s", message)
    unavailable = set(located.missing) | set(errors)
    return store, unavailable


def _fit_factors(config: Config, corpus):
    """ALS item factors for the corpus, cached next to the corpus keyed by the listening settings."""
    import hashlib
    import json
    from dataclasses import asdict

    from retrieval.encoders.listening import ItemFactors, fit_item_factors

    settings = asdict(config.model.listening)
    # The key covers every input: the settings, the seed, the play file's identity and the corpus's songs.
    stat = (Path(corpus.root) / "train_triplets.txt").stat()
    identity = {
        **settings,
        "seed": config.train.seed,
        "plays": [stat.st_size, stat.st_mtime_ns],
        "songs": hashlib.sha1("|".join(corpus.song_ids()).encode()).hexdigest(),
    }
    key = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    cache = Path(corpus.root) / "cache" / f"als-{key}.npz"
    if cache.exists():
        return ItemFactors.load(cache)
    plays = corpus.taste_profile()
    factors = fit_item_factors(
        plays.matrix,
        factors=settings["factors"],
        regularization=settings["regularization"],
        iterations=settings["iterations"],
        alpha=settings["alpha"],
        seed=config.train.seed,
        items=plays.items,
    )
    factors.save(cache)
    return factors
