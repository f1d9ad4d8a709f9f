"""The generalisation set: held-out compositions, another SoundFont, EQ, room and tempo; the MSD500 layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from retrieval.augment.signal import rbj_biquad
from retrieval.data.demo.layout import audio_path
from retrieval.data.demo.other_render import SAMPLE_RATE, SOUNDFONTS, build_other_render, used_pieces
from retrieval.data.demo.render import read_track_comment


def _response(b: np.ndarray, a: np.ndarray, frequency: float, rate: int) -> float:
    """|H(e^{jw})| in dB of one biquad at ``frequency``."""
    z = np.exp(-1j * 2 * np.pi * frequency / rate * np.arange(3))
    return float(20 * np.log10(abs(np.dot(b, z) / np.dot(a, z))))


@pytest.mark.parametrize("kind, gain", [("lowshelf", 6.0), ("highshelf", -9.0), ("peak", 8.0)])
def test_rbj_sections_have_their_gain_where_the_cookbook_puts_it(kind: str, gain: float) -> None:
    rate = 44_100
    b, a = rbj_biquad(kind, 1000.0, gain, rate)
    assert a[0] == 1.0
    dc, nyquist, centre = (_response(b, a, f, rate) for f in (0.0, rate / 2, 1000.0))
    if kind == "lowshelf":
        assert dc == pytest.approx(gain, abs=1e-6) and nyquist == pytest.approx(0.0, abs=1e-6)
    elif kind == "highshelf":
        assert nyquist == pytest.approx(gain, abs=1e-6) and dc == pytest.approx(0.0, abs=1e-6)
    else:
        assert centre == pytest.approx(gain, abs=1e-6) and dc == pytest.approx(0.0, abs=1e-6)
    batch_b, _ = rbj_biquad(kind, 1000.0, np.array([gain, 0.0]), rate)
    assert batch_b.shape == (2, 3) and np.allclose(batch_b[0], b) and np.allclose(batch_b[1], [1, *batch_b[1, 1:]])


@pytest.fixture(scope="module")
def other(tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A 12-track other render of the tiny corpus, and its build summary."""
    if not any(p.is_file() for p in SOUNDFONTS):
        pytest.skip(f"{SOUNDFONTS[0]} missing: `make install` installs Debian's fluid-soundfont-gm (CI does)")
    out = tmp_path_factory.mktemp("other_render") / "other"
    return out, build_other_render(out, tiny_corpus, n_tracks=12, seed=0, seconds=3.0, workers=1, progress=False)


def test_other_render_holds_out_the_demo_pieces_at_44k_in_the_msd500_layout(tiny_corpus: Path,
                                                                           other: tuple[Path, dict]) -> None:
    from retrieval.data.corpus import load_corpus

    out, summary = other
    assert not summary["cached"] and summary["n_tracks"] >= 10
    corpus = load_corpus(out)
    assert set(corpus.splits.ids("test")) == set(corpus.song_ids()) and not corpus.splits.ids("train")
    assert not (out / "train_triplets.txt").exists()  # never played: a hybrid must embed them cold start
    demo_pieces = used_pieces(tiny_corpus)
    for track_id in corpus.tracks["track_id"]:
        path = audio_path(out, track_id)
        info = sf.info(path)
        assert info.samplerate == SAMPLE_RATE
        assert read_track_comment(path)["piece"] not in demo_pieces  # a composition the demo never rendered
    demo_tags = set(load_corpus(tiny_corpus).tag_names)
    assert set(corpus.tag_names) <= demo_tags
    manifest = json.loads((out / "manifest.json").read_text())
    before = manifest["arguments_hash"]
    again = build_other_render(out, tiny_corpus, n_tracks=12, seed=0, seconds=3.0, workers=1, progress=False)
    assert again["cached"] and json.loads((out / "manifest.json").read_text())["arguments_hash"] == before


@pytest.mark.slow
def test_evaluate_compares_cold_start_map_on_the_shared_tags(small_corpus: Path, tiny_config_path: Path,
                                                             tmp_path: Path) -> None:
    """An audio run of the 240-track corpus against a 40-track other render of it: the demo side of the
    comparison is exactly the run's own test evaluation restricted to the shared tags."""
    from retrieval.config import load_config
    from retrieval.training.experiment import (
        evaluate_generalisation,
        evaluate_run,
        format_generalisation,
        train_run,
    )

    if not any(p.is_file() for p in SOUNDFONTS):
        pytest.skip(f"{SOUNDFONTS[0]} missing: `make install` installs Debian's fluid-soundfont-gm (CI does)")
    out = tmp_path / "other"
    build_other_render(out, small_corpus, n_tracks=40, seed=0, seconds=3.0, workers=1, progress=False)
    run = tmp_path / "run"
    config = load_config(tiny_config_path, [f"data.root={small_corpus}", "model.modality=audio",
                                            "train.epochs=10", "train.steps=10", "train.eval_every=10"])
    train_run(config, run, progress=False)
    result = evaluate_generalisation(run, out, progress=False)
    tags = result["tags"]
    assert len(tags) >= 5 and result["shared_tags"] == len(tags)
    own = evaluate_run(run, progress=False)["per_tag"]
    for tag in tags:  # same model, same tracks: the same average precision
        assert result["demo_test"]["per_tag"][tag]["ap"] == pytest.approx(own[tag]["ap"], abs=1e-6), tag
    for side, key in (("demo_test", "demo_test_map"), ("other_render", "other_render_map")):
        assert result[key] == pytest.approx(np.mean([result[side]["per_tag"][t]["ap"] for t in tags]))
    assert result["ratio"] == pytest.approx(result["other_render_map"] / result["demo_test_map"])
    assert sum(c["n_tags"] for c in result["per_category"].values()) == len(tags)
    assert result["other_render"]["n_tracks"] >= 35
    saved = json.loads((run / "generalisation.json").read_text())
    assert saved["ratio"] == pytest.approx(result["ratio"])
    table = format_generalisation(result)
    assert "overall" in table and f"{result['ratio']:.2f}" in table
