"""Shared fixtures: a tiny demo corpus generated once per test session (seconds, not minutes), and the chance
level that end-to-end figures are compared with."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
import torch


def random_ranking_ap(n_tracks: int, n_positives: int) -> float:
    """Expected average precision of a uniformly random ranking of ``n_tracks`` with ``n_positives`` positives.

    Position ``r`` holds a positive with probability ``R / n``; given that, the other ``r − 1`` places above it hold
    ``(r − 1)(R − 1) / (n − 1)`` positives on average, so

        E[AP] = (1 / n) Σ_r [1 / r + (R − 1)/(n − 1) · (r − 1)/r] = (H_n + (R − 1)/(n − 1) · (n − H_n)) / n

    It is at least the positive rate ``R / n`` and well above it for small splits (one positive in 7 tracks: 0.37
    against 0.14), so "twice chance" is measured against the stricter of the two.
    """
    harmonic = sum(1 / r for r in range(1, n_tracks + 1))
    slope = (n_positives - 1) / (n_tracks - 1) if n_tracks > 1 else 0.0
    return (harmonic + slope * (n_tracks - harmonic)) / n_tracks


def summary_chance_map(summary: Mapping) -> float:
    """The MAP a random ranking scores in expectation on the tags of an evaluation summary.

    Args:
        summary: :func:`retrieval.evaluation.summarize`'s dict plus ``n_tracks`` (what ``evaluate`` returns).
    """
    per_tag = summary["per_tag"].values()
    return sum(random_ranking_ap(summary["n_tracks"], tag["n_positives"]) for tag in per_tag) / len(per_tag)


def train_split_fit(run_path: Path) -> dict:
    """How well a run's best checkpoint ranks its own train split, against the labels **in the corpus files**.

    The ground truth is read from the corpus (not from :func:`retrieval.data.assembly.prepare_data`, which fed the
    training), so a bug that scrambles the training labels shows up here as a figure at chance.

    Returns:
        :func:`retrieval.evaluation.summarize`'s dict plus ``n_tracks`` (compare with :func:`summary_chance_map`).
    """
    import numpy as np

    from retrieval.data.assembly import config_corpus, prepare_data
    from retrieval.evaluation import retrieval_metrics, summarize
    from retrieval.runs import load_run

    run = load_run(run_path)
    config = run.config
    tagging = config.task == "tagging"
    data, _ = prepare_data(config, vocabulary=run.vocabulary, progress=False, need_listening=not tagging,
                           need_audio=config.model.modality != "cultural" or tagging)
    if tagging:
        from retrieval.tagging.predict import split_probabilities

        scores = split_probabilities(run.model, data, "train", config.eval.n_crops, config.eval.batch_size)
    else:
        from retrieval.training.experiment import split_scores

        scores = split_scores(run.model, data, "train", config.eval.n_crops, config.eval.batch_size)
    corpus = config_corpus(config)
    ids, labels = corpus.labels("train")
    row = {song: r for r, song in enumerate(ids)}
    column = [list(corpus.tag_names).index(tag) for tag in run.vocabulary.tags]
    truth = labels.toarray()[np.ix_([row[song] for song in data.splits["train"].ids], column)]
    summary = summarize(retrieval_metrics(scores, truth, k=config.eval.k), run.vocabulary.tags,
                        run.vocabulary.category_of)
    return {**summary, "n_tracks": len(truth)}


@pytest.fixture(scope="session")
def chance_map() -> Callable[[Mapping], float]:
    """:func:`summary_chance_map`, for tests that check a trained model beats chance."""
    return summary_chance_map


@pytest.fixture(scope="session")
def train_fit() -> Callable[[Path], dict]:
    """:func:`train_split_fit`, for tests that check a trained run fitted its training tracks."""
    return train_split_fit


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> None:
    # The CI machine has 2 cores; tiny tensors are faster on one thread and results stay reproducible.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 48-track demo corpus with 5-second previews, in the MSD500 layout."""
    from retrieval.data.demo import build_demo_corpus

    root = tmp_path_factory.mktemp("corpus") / "demo"
    build_demo_corpus(root, n_tracks=48, seed=0, seconds=5.0, workers=1, progress=False)
    return root


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 240-track demo corpus with 3-second previews: 33 test tracks, enough for a held-out figure above chance
    (the tiny corpus has 4). About half a minute to build."""
    from retrieval.data.demo import build_demo_corpus

    root = tmp_path_factory.mktemp("small_corpus") / "demo"
    build_demo_corpus(root, n_tracks=240, seed=0, seconds=3.0, workers=1, progress=False)
    return root


@pytest.fixture(scope="session")
def tiny_config_path() -> Path:
    return Path(__file__).resolve().parents[1] / "configs" / "demo" / "tiny.yaml"


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, tiny_corpus: Path, tiny_config_path: Path) -> Path:
    """A gated model trained for seconds on the tiny corpus (session-wide: tests must not modify it).

    100 steps fit its train split well above chance (see :func:`train_split_fit`); validating only after the last
    epoch makes ``best.ckpt`` that fitted model (a 6-track validation split would pick an epoch at random).
    """
    from retrieval.config import load_config
    from retrieval.training.experiment import train_run

    run = tmp_path_factory.mktemp("runs") / "gated"
    config = load_config(tiny_config_path, [f"data.root={tiny_corpus}", *FIT_TINY_RUN])
    train_run(config, run, progress=False)
    return run


#: Overrides of ``configs/demo/tiny.yaml`` under which the tiny gated run fits its train split.
FIT_TINY_RUN = ["train.epochs=20", "train.steps=5", "train.eval_every=20"]


#: A tiny self-attention tagger (CNNSA): small enough for seconds of training, and it has attention maps.
TINY_CNNSA = [
    "model.audio.backbone=cnnsa",
    "model.audio.channels=[4, 4, 8]",
    "model.audio.input_frames=64",
    "model.audio.options={pools: [[2, 2], [2, 2], [2, 1]], width: 16, heads: 2, layers: 1}",
]


@pytest.fixture(scope="session")
def tiny_tagging_config_path() -> Path:
    return Path(__file__).resolve().parents[1] / "configs" / "tagging" / "tiny.yaml"


@pytest.fixture(scope="session")
def tiny_tagging_run(tmp_path_factory: pytest.TempPathFactory, tiny_corpus: Path,
                     tiny_tagging_config_path: Path) -> Path:
    """A tagging run (task: tagging) of a tiny CNNSA on the tiny corpus, trained once per session: 200 steps fit
    its train split well above chance, and ``best.ckpt`` is the last epoch (as for :func:`tiny_run`)."""
    from retrieval.config import load_config
    from retrieval.training.tagging import train_tagging_run

    run = tmp_path_factory.mktemp("tagging") / "cnnsa"
    fit = ["train.epochs=20", "train.steps=10", "train.eval_every=20", "train.lr=3e-3"]
    config = load_config(tiny_tagging_config_path, [f"data.root={tiny_corpus}", *TINY_CNNSA, *fit])
    train_tagging_run(config, run, progress=False)
    return run


#: Extension → (PyAV encoder, sample rate, container) of the compressed test files :func:`encode_tone` writes.
ENCODINGS = {".opus": ("libopus", 48000, "ogg"), ".m4a": ("aac", 44100, "ipod"), ".mp3": ("libmp3lame", 44100, "mp3"),
             ".flac": ("flac", 44100, "flac")}


def encode_tone(path: Path, seconds: float = 3.0, freq: float = 440.0, tags: Mapping[str, str] | None = None,
                seed: int = 0) -> Path:
    """Write a stereo tone with a little noise through PyAV's encoder for ``path``'s extension (:data:`ENCODINGS`)
    and, with ``tags``, mutagen's "easy" tags (title, artist, album, genre, date: ID3 for .mp3, MP4 atoms for
    .m4a, Vorbis comments for .opus / .flac)."""
    import av
    import mutagen
    import numpy as np

    codec, rate, container = ENCODINGS[path.suffix]
    t = np.arange(int(seconds * rate)) / rate
    noise = np.random.default_rng(seed).standard_normal(len(t))
    signal = (0.3 * np.sin(2 * np.pi * freq * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.5 * t)) + 0.03 * noise)
    stereo = np.stack([signal, 0.8 * signal]).astype(np.float32)
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = "stereo"
        converter = av.AudioResampler(format=stream.codec_context.codec.audio_formats[0].name, layout="stereo",
                                      rate=rate)
        block = 1024
        for start in [*range(0, stereo.shape[1], block), None]:
            if start is None:
                frames = converter.resample(None)
            else:
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(stereo[:, start:start + block]),
                                                   format="fltp", layout="stereo")
                frame.sample_rate, frame.pts = rate, start
                frames = converter.resample(frame)
            for frame in frames:
                out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    if tags:
        tagged = mutagen.File(str(path), easy=True)
        if tagged.tags is None:
            tagged.add_tags()
        for key, value in tags.items():
            tagged[key] = value
        tagged.save()
    return path


@pytest.fixture(scope="session")
def tagged_formats(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of one tagged 3-s file per format of :data:`ENCODINGS` (opus.opus, m4a.m4a, mp3.mp3 with ID3,
    flac.flac): title "Song <ext>", artist "Artist <ext>", album "Album", genre "Folk", date "1999-03-04"."""
    folder = tmp_path_factory.mktemp("formats")
    for i, extension in enumerate(ENCODINGS):
        name = extension[1:]
        encode_tone(folder / f"{name}{extension}", freq=220.0 * (i + 1), seed=i,
                    tags={"title": f"Song {name}", "artist": f"Artist {name}", "album": "Album", "genre": "Folk",
                          "date": "1999-03-04"})
    return folder
