"""Search end to end on the tiny corpus: index a corpus and a folder, search by text / audio / track, tag."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import retrieval
from retrieval.cli import main
from retrieval.errors import DataError, RetrievalError
from retrieval.index.build import index_corpus, index_folder

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus_index(tmp_path_factory, tiny_run: Path, tiny_corpus: Path) -> Path:
    out = tmp_path_factory.mktemp("index") / "demo"
    report = index_corpus(tiny_run, out, corpus_root=tiny_corpus, backend="exact", progress=False)
    assert report.indexed > 0
    return out


def test_text_search_returns_sorted_hits_with_metadata(corpus_index: Path, chance_map) -> None:
    retriever = retrieval.load(corpus_index)
    result = retriever.search("dreamy", k=5)
    assert len(result) == 5
    scores = [hit.score for hit in result]
    assert scores == sorted(scores, reverse=True)
    assert all(hit.title and hit.artist and hit.audio_path for hit in result)
    assert result.matched_tags[0][0] in retriever.run.vocabulary.tags
    assert result.terms == ["dreamy"]
    # Scores are real cosines between the (normalised) query and the indexed track vectors.
    query = retriever.embed_text(["dreamy"])[0]
    query = query / np.linalg.norm(query)
    tracks = retriever.index.vectors_of([hit.track_id for hit in result])
    np.testing.assert_allclose(tracks @ query, scores, atol=1e-5)
    # Searching each tag ranks the whole catalogue: the hits that carry the tag (catalogue metadata, read from
    # the corpus) come first, far above chance: a random ranking's MAP is 0.17, the tiny run's 0.35 (ROC-AUC 0.70).
    from retrieval.evaluation import retrieval_metrics, summarize

    order = {track: row for row, track in enumerate(retriever.index.ids)}
    tags = retriever.run.vocabulary.tags
    ranked = np.zeros((len(order), len(tags)))
    carries = np.zeros((len(order), len(tags)), dtype=bool)
    for column, tag in enumerate(tags):
        for hit in retriever.search(tag, k=len(order)):
            ranked[order[hit.track_id], column] = hit.score
            carries[order[hit.track_id], column] = tag in hit.tags
    searched = summarize(retrieval_metrics(ranked, carries, k=5), tags, retriever.run.vocabulary.category_of)
    searched["n_tracks"] = len(order)
    assert searched["map"] >= 1.5 * chance_map(searched), (searched["map"], chance_map(searched))
    assert searched["roc_auc"] >= 0.6


def test_any_words_answer_and_typos_are_corrected(corpus_index: Path) -> None:
    retriever = retrieval.load(corpus_index)
    assert retriever.run.config.model.text.kind == "fused"  # the demo's default tower
    assert len(retriever.search("sad piano", k=3)) == 3
    # words the corpus text never had go through the sentence backoff and say so
    asleep = retriever.search("music for falling asleep", k=3)
    assert asleep.terms == ["falling asleep~"] and len(asleep) == 3
    # a misspelt tag is corrected, reported, and searches exactly like the tag
    typo = retriever.search("draemy", k=3)
    assert typo.terms == ["draemy→dreamy"]
    assert [h.track_id for h in typo] == [h.track_id for h in retriever.search("dreamy", k=3)]
    with pytest.raises(RetrievalError, match="stopwords"):
        retriever.search("the of and", k=3)
    with pytest.raises(RetrievalError, match="no words"):
        retriever.search("  ?! ", k=3)


def test_bare_strings_are_one_item_and_hits_are_plain_values(corpus_index: Path) -> None:
    retriever = retrieval.load(corpus_index)
    np.testing.assert_array_equal(retriever.embed_text("dreamy"), retriever.embed_text(["dreamy"]))
    assert retriever.embed_text("dreamy").shape == (1, retriever.model.output_dim)
    hit = retriever.search("folk", k=1)[0]
    assert type(hit.track_id) is str and type(hit.score) is float
    assert "np." not in repr(hit)
    assert retriever.embed_audio(hit.audio_path).shape[0] == 1


def test_similar_and_audio_query_and_tag(corpus_index: Path) -> None:
    retriever = retrieval.load(corpus_index)
    first = retriever.search("folk", k=1)[0]
    similar = retriever.similar(first.track_id, k=3)
    assert len(similar) == 3 and first.track_id not in [hit.track_id for hit in similar]
    assert len(retriever.search_by_audio(first.audio_path, k=3)) == 3
    # A file embeds like its corpus track: the gated model's audio half is the same vector (the corpus path reads
    # the float16 mel cache); the cultural half differs because a bare file has no listening data (cold start).
    half = retriever.model.embed_dim
    from_file = retriever.embed_audio([first.audio_path])[0, :half]
    indexed = retriever.index.vectors_of([first.track_id])[0, :half]
    np.testing.assert_allclose(from_file, indexed, atol=2e-3)
    tags = retriever.tag(first.audio_path, k=4)
    assert len(tags) == 4 and tags[0][1] >= tags[-1][1]


def test_a_catalogue_file_finds_its_own_track_first(corpus_index: Path) -> None:
    retriever = retrieval.load(corpus_index)
    hits = retriever.search("folk", k=len(retriever.index))
    files = [hit for hit in hits if hit.audio_path][:20]
    assert len(files) == 20
    ranks = []
    for hit in files:
        found = retriever.search_by_audio(hit.audio_path, k=5)
        ranks.append([h.track_id for h in found].index(hit.track_id) + 1 if hit.track_id in
                     [h.track_id for h in found] else None)
        assert found[0].score == pytest.approx(1.0, abs=5e-3)  # the audio-space cosine with itself
    assert ranks == [1] * 20, ranks
    # the old way (the file's predicted listening half against the tracks' real ones) is not like with like
    mixed = retriever.embed_audio(files[0].audio_path)
    exact = retriever.audio_query(files[0].audio_path)
    half = retriever.model.embed_dim
    assert not np.allclose(mixed[:, half:], 0) and np.allclose(exact[:, half:], 0)


def test_index_refuses_another_models_vectors(corpus_index: Path, tmp_path: Path, tiny_run: Path) -> None:
    from retrieval.index import load_index

    with pytest.raises(DataError, match="fingerprint"):
        load_index(corpus_index, expected_fingerprint="0" * 16)


def test_default_search_says_how_to_create_the_demo(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RETRIEVAL_HOME", str(tmp_path))
    with pytest.raises(DataError, match="make demo"):
        retrieval.search("dreamy")


def test_folder_indexing_skips_bad_files_and_caches(tmp_path: Path, tiny_run: Path, tiny_corpus: Path) -> None:
    music = tmp_path / "music"
    music.mkdir()
    for i, path in enumerate(sorted((tiny_corpus / "audio").rglob("*.ogg"))[:3]):
        shutil.copy(path, music / f"good{i}.ogg")
    (music / "empty.wav").write_bytes(b"")
    (music / "garbage.mp3").write_bytes(np.random.default_rng(0).bytes(5000))
    good = (music / "good0.ogg").read_bytes()
    (music / "truncated.ogg").write_bytes(good[: len(good) // 3])
    rate = 44100
    t = np.arange(rate * 90) / rate  # a 90-second stereo 44.1 kHz file (the benchmark does 10 minutes)
    sf.write(music / "long.flac", np.stack([np.sin(440 * 2 * np.pi * t), np.sin(660 * 2 * np.pi * t)], 1) * 0.1,
             rate)
    cache = tmp_path / "cache"
    report = index_folder(tiny_run, music, tmp_path / "index", backend="exact", cache_dir=cache, progress=False)
    assert sorted(Path(p).name for p in report.skipped) == ["empty.wav", "garbage.mp3", "truncated.ogg"]
    assert report.indexed == 4 and report.embedded == 4
    again = index_folder(tiny_run, music, tmp_path / "index", backend="exact", cache_dir=cache, progress=False)
    assert again.embedded == 0 and again.cached == 4
    hits = retrieval.load(tmp_path / "index").search("folk", k=4)
    assert {hit.track_id for hit in hits} == {"good0.ogg", "good1.ogg", "good2.ogg", "long.flac"}


def test_cli_search_similar_tag(corpus_index: Path, tiny_corpus: Path, capsys) -> None:
    assert main(["search", "sad piano", "--index", str(corpus_index), "-k", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["hits"]) == 3 and out["matched_tags"]
    track = out["hits"][0]["track_id"]
    assert main(["similar", track, "--index", str(corpus_index), "-k", "2"]) == 0
    assert capsys.readouterr().out.count("\n") == 2
    audio = out["hits"][0]["audio_path"]
    assert main(["tag", audio, "--index", str(corpus_index), "-k", "3"]) == 0
    assert capsys.readouterr().out.count("\n") == 3


def test_search_results_export_as_m3u_and_csv(corpus_index: Path, tmp_path: Path, capsys) -> None:
    import csv

    playlist, table = tmp_path / "dreamy.m3u", tmp_path / "out" / "dreamy.csv"
    assert main(["search", "dreamy", "--index", str(corpus_index), "-k", "4", "--m3u", str(playlist),
                 "--csv", str(table)]) == 0
    assert "wrote 4 of 4 hits to the playlist" in capsys.readouterr().err
    hits = retrieval.load(corpus_index).search("dreamy", k=4)
    lines = playlist.read_text().splitlines()
    assert lines[0] == "#EXTM3U" and lines[2::2] == [str(Path(hit.audio_path).resolve()) for hit in hits]
    assert lines[1] == f"#EXTINF:-1,{hits[0].artist} - {hits[0].title}"
    rows = list(csv.DictReader(table.open()))
    assert [row["track_id"] for row in rows] == [hit.track_id for hit in hits] and rows[0]["rank"] == "1"
    assert rows[0]["tags"].split("|") == list(hits[0].tags) and float(rows[0]["score"]) == pytest.approx(hits[0].score)
    track = hits[0].track_id
    assert main(["similar", track, "--index", str(corpus_index), "-k", "2", "--csv", str(table)]) == 0
    assert [row["track_id"] for row in csv.DictReader(table.open())] == [
        hit.track_id for hit in retrieval.load(corpus_index).similar(track, k=2)]


def test_index_detects_an_msd500_corpus_without_the_flag(tiny_run: Path, tiny_corpus: Path, tmp_path: Path,
                                                         capsys) -> None:
    out = tmp_path / "index"
    assert main(["-q", "index", str(tiny_corpus), "--model", str(tiny_run), "--out", str(out),
                 "--backend", "exact"]) == 0
    err = capsys.readouterr().err
    assert f"note: {tiny_corpus} is an MSD500-layout corpus" in err and str(tiny_corpus / "audio") in err
    hits = retrieval.load(out).search("folk", k=5)
    assert all(hit.tags and hit.artist for hit in hits)  # the corpus' tags and artists, not loose files
    assert main(["index", str(tiny_corpus), "--model", "musicnn-mtt", "--out", str(tmp_path / "p")]) == 2
    assert f"retrieval index {tiny_corpus}/audio --model musicnn-mtt" in capsys.readouterr().err


def test_tag_with_a_trained_head(corpus_index: Path, tiny_run: Path, tmp_path: Path) -> None:
    from retrieval.heads.probe import train_head

    head = tmp_path / "mood.pt"
    train_head(tiny_run, "genre", head, features="shared", head="linear")
    retriever = retrieval.load(corpus_index)
    audio = retriever.search("folk", k=1)[0].audio_path
    tags = retriever.tag(audio, k=3, head=head)
    assert len(tags) == 3 and all(0.0 <= p <= 1.0 for _, p in tags)
    assert {t for t, _ in tags} <= set(retriever.run.vocabulary.tags)
    audio_head = tmp_path / "audio.pt"
    train_head(tiny_run, "genre", audio_head, features="audio", head="linear")
    with pytest.raises(RetrievalError, match="shared"):
        retriever.tag(audio, k=3, head=audio_head)


def test_vocab_lists_the_tags_and_words_of_a_model(corpus_index: Path, tiny_run: Path, capsys) -> None:
    assert main(["vocab", str(corpus_index)]) == 0  # an index folder names its run
    out = capsys.readouterr().out
    assert out.startswith(f"{len(retrieval.load(corpus_index).run.vocabulary.tags)} tags")
    assert "dreamy" in out and "word tower: fused" in out and "nearest tags" in out
    assert main(["vocab", str(tiny_run), "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert "dreamy" in listing["tags"]["mood"] and "folk" in listing["words"]
    assert listing["text_encoder"] == "fused" and listing["backoff"] == "sentence"
    assert main(["vocab", str(tiny_run), "--words"]) == 0
    assert len(capsys.readouterr().out.splitlines()) > len(listing["words"])
