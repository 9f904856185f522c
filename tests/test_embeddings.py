"""Embeddings over real tokenize/annotate shard files of a tiny seeded corpus."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from gensim.models import KeyedVectors

from t2v_core import embeddings as E
from t2v_core import text
from t2v_core.config import AnnotateConfig, EmbedConfig, TokenizeConfig
from t2v_core.store import write_parquet

COLOURS = ["red", "blue", "green", "yellow"]
SHAPES = ["circle", "square", "triangle"]
MOVES = ["moves left", "slides right", "bounces up", "drifts down"]
PLACES = ["in New York", "near Paris", "", ""]


def _captions(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [
        f"A {rng.choice(COLOURS)} {rng.choice(SHAPES)} {rng.choice(MOVES)} {rng.choice(PLACES)}.".replace(" .", ".")
        for _ in range(n)
    ]


@pytest.fixture(scope="module")
def nlp_pair():
    name = text.resolve_model_name("")
    return text.load_tokenizer(name), text.load_annotator(name)


@pytest.fixture(scope="module")
def shards(tmp_path_factory, nlp_pair) -> dict[str, list[Path]]:
    """Two shards of 60 captions each, plus one caption with no content ("!!!")."""
    tok, ann = nlp_pair
    caps = _captions(120) + ["!!!"]
    ids = [f"c{i:03d}" for i in range(len(caps))]
    root = tmp_path_factory.mktemp("shards")
    files: dict[str, list[Path]] = {"tokens": [], "annotations": [], "entities": [], "ids": ids}
    for s, (a, b) in enumerate([(0, 60), (60, len(caps))]):
        tokens, rejects = text.tokenize_captions(tok, ids[a:b], caps[a:b], TokenizeConfig())
        assert rejects.num_rows == 0
        annotations, entities = text.annotate_tokens(ann, tokens, AnnotateConfig())
        for name, table, schema in (
            ("tokens", tokens, text.TOKENS_SCHEMA),
            ("annotations", annotations, text.ANNOTATIONS_SCHEMA),
            ("entities", entities, text.ENTITIES_SCHEMA),
        ):
            path = root / name / f"part-{s:05d}.parquet"
            write_parquet(table, path, schema)
            files[name].append(path)
    return files


CFG = EmbedConfig(vector_size=8, epochs=3, workers=1, max_len=6)


def _run(shards, out: Path, cfg: EmbedConfig = CFG) -> dict:
    return E.train_embeddings(shards["tokens"], cfg, out, shards["annotations"], shards["entities"])


def test_outputs_follow_the_contract(shards, tmp_path):
    res = _run(shards, tmp_path)
    vocab = pq.read_table(tmp_path / "vocab.parquet").to_pydict()
    assert vocab["token"][:2] == ["<pad>", "<unk>"] and vocab["id"] == list(range(len(vocab["id"])))
    matrix = np.load(tmp_path / "embedding_matrix.npy")
    assert matrix.shape == (len(vocab["id"]), 8) and matrix.dtype == np.float32
    assert not matrix[0].any()
    kv = KeyedVectors.load(str(tmp_path / "vectors.kv"))
    for tok, i, count in zip(vocab["token"][2:], vocab["id"][2:], vocab["count"][2:]):
        np.testing.assert_array_equal(matrix[i], kv[tok])
        assert kv.get_vecattr(tok, "count") == count
    caps = pq.read_table(tmp_path / "captions.parquet").to_pydict()
    assert caps["caption_id"] == shards["ids"] and caps["row"] == list(range(len(caps["row"])))
    ids = np.load(tmp_path / "token_ids.npy")
    assert ids.shape == (len(shards["ids"]), 6) and ids.dtype == np.int32
    for row, length in enumerate(caps["length"]):
        assert (ids[row, :length] >= 2).all() and not ids[row, length:].any()
    # "A red circle moves left in New York." has 8 content tokens: truncated to 6.
    assert max(caps["n_tokens"]) == 8 and max(caps["length"]) == 6
    assert caps["n_tokens"][-1] == 0 and res["empty_captions"] == 1
    assert np.load(tmp_path / "sentence_vectors.npy").shape == (len(shards["ids"]), 8)
    assert res["captions"] == len(shards["ids"]) and res["oov_tokens"] == 0
    assert res["words_trained"] == res["tokens"] * CFG.epochs
    assert not list(tmp_path.glob(".*tmp*"))  # the scratch corpus file is gone


def test_word2vec_is_deterministic_for_a_seed(shards, tmp_path):
    _run(shards, tmp_path / "a")
    _run(shards, tmp_path / "b")
    _run(shards, tmp_path / "c", EmbedConfig(**{**CFG.__dict__, "seed": 1}))
    a, b, c = (np.load(tmp_path / d / "embedding_matrix.npy") for d in "abc")
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_iterable_mode_learns_the_same_vocabulary(shards, tmp_path):
    _run(shards, tmp_path / "file")
    _run(shards, tmp_path / "iter", EmbedConfig(**{**CFG.__dict__, "w2v_mode": "iterable"}))
    v1, v2 = (pq.read_table(tmp_path / d / "vocab.parquet") for d in ("file", "iter"))
    assert v1.equals(v2)


def test_token_forms(shards, tmp_path):
    forms = {}
    for form in ("lower", "lemma", "entity"):
        _run(shards, tmp_path / form, EmbedConfig(**{**CFG.__dict__, "token_form": form}))
        forms[form] = set(pq.read_table(tmp_path / form / "vocab.parquet").column("token").to_pylist())
    assert "moves" in forms["lower"] and "move" in forms["lemma"] and "moves" not in forms["lemma"]
    assert "new_york" in forms["entity"] and "new_york" not in forms["lower"]
    assert "." not in forms["lower"]  # punctuation is not a word


def _write_glove(path: Path, words: dict[str, list[float]]) -> Path:
    path.write_text("".join(f"{w} {' '.join(str(x) for x in v)}\n" for w, v in words.items()))
    return path


GLOVE = {
    "red": [1, 0, 0, 0, 0, 0, 0, 0.5],
    "blue": [0, 1, 0, 0, 0, 0, 0, 0.5],
    "circle": [0, 0, 1, 0, 0, 0, 0, 0.5],
    "zebra": [0, 0, 0, 1, 0, 0, 0, 0.5],  # not in the corpus: not in the vocabulary
}


def test_glove_only_counts_the_rest_as_oov(shards, tmp_path):
    glove = _write_glove(tmp_path / "glove.txt", GLOVE)
    cfg = EmbedConfig(**{**CFG.__dict__, "glove_path": str(glove), "vectors": "glove"})
    res = _run(shards, tmp_path / "out", cfg)
    kv = KeyedVectors.load(str(tmp_path / "out" / "vectors.kv"))
    assert set(kv.index_to_key) == {"red", "blue", "circle"}
    np.testing.assert_allclose(kv["red"], GLOVE["red"])
    caps = pq.read_table(tmp_path / "out" / "captions.parquet").to_pydict()
    assert res["words_trained"] == 0 and res["glove_words"] == 3
    assert res["oov_tokens"] == sum(caps["n_oov"]) > 0
    # Every caption has "a" and a verb, neither in this GloVe file.
    assert all(oov >= 2 for oov, n in zip(caps["n_oov"], caps["n_tokens"]) if n)


def test_glove_and_word2vec_mix(shards, tmp_path):
    glove = _write_glove(tmp_path / "glove.txt", GLOVE)
    cfg = EmbedConfig(**{**CFG.__dict__, "glove_path": str(glove)})  # vectors = auto -> both
    res = _run(shards, tmp_path / "out", cfg)
    kv = KeyedVectors.load(str(tmp_path / "out" / "vectors.kv"))
    for word in ("red", "blue", "circle"):  # frozen during training: exactly GloVe's
        np.testing.assert_array_equal(kv[word], np.array(GLOVE[word], dtype=np.float32))
    assert "square" in kv and np.abs(kv["square"]).sum() > 0 and "zebra" not in kv
    assert res["glove_words"] == 3 and res["oov_tokens"] == 0 and res["words_trained"] > 0


def test_glove_dimension_mismatch_is_an_error(shards, tmp_path):
    glove = _write_glove(tmp_path / "glove.txt", {"red": [1.0, 2.0]})
    cfg = EmbedConfig(**{**CFG.__dict__, "glove_path": str(glove)})
    with pytest.raises(ValueError, match="vector_size"):
        _run(shards, tmp_path / "out", cfg)


def test_min_count_makes_oov_that_is_counted(shards, tmp_path):
    from collections import Counter

    counts = Counter(
        w for f in shards["tokens"] for w in pq.read_table(f).column("lower").to_pylist() if E.is_content(w)
    )
    threshold = sorted(counts.values())[len(counts) // 2]
    rare = {w for w, c in counts.items() if c < threshold}
    res = _run(shards, tmp_path, EmbedConfig(**{**CFG.__dict__, "min_count": threshold}))
    caps = pq.read_table(tmp_path / "captions.parquet").to_pydict()
    assert rare and res["oov_tokens"] == sum(counts[w] for w in rare) == sum(caps["n_oov"])
    assert res["oov_types"] == len(rare) and res["vocab_size"] == len(counts) - len(rare) + 2
    with pytest.raises(ValueError, match="min_count"):
        _run(shards, tmp_path / "none", EmbedConfig(**{**CFG.__dict__, "min_count": 10_000}))


def _toy_kv() -> tuple[KeyedVectors, dict[str, int]]:
    kv = KeyedVectors(2)
    kv.add_vectors(["the", "red", "ball"], np.array([[1, 1], [1, 0], [0, 1]], dtype=np.float32))
    return kv, {"the": 1000, "red": 10, "ball": 10}


def test_mean_and_sif(tmp_path):
    kv, counts = _toy_kv()
    sents = [["the", "red"], ["the", "ball"], ["red", "unknown"], ["unknown"]]
    mean, comp = E.sentence_vectors(sents, kv, counts, "mean")
    np.testing.assert_allclose(mean[0], [1, 0.5])
    np.testing.assert_allclose(mean[2], [1, 0])  # the unknown word is skipped, not a zero
    assert not mean[3].any() and not comp.any()
    sif, u = E.sentence_vectors(sents, kv, counts, "sif", a=1e-3)
    # Before removal the frequent "the" weighs far less than "red".
    raw = E.weighted_average(sents, kv, E.word_weights(counts, "sif", 1e-3))
    p_the, p_red = 1000 / 1020, 10 / 1020
    np.testing.assert_allclose(raw[0], (1e-3 / (1e-3 + p_the) * np.ones(2) + 1e-3 / (1e-3 + p_red) * np.array([1, 0])) / 2, rtol=1e-5)
    np.testing.assert_allclose(sif @ u, 0, atol=1e-5)  # the common component is gone
    assert np.isclose(np.linalg.norm(u), 1)
    again, _ = E.sentence_vectors(sents, kv, counts, "sif", component=u)
    np.testing.assert_allclose(again, sif, atol=1e-6)


def test_stage_sif_removes_its_component(shards, tmp_path):
    _run(shards, tmp_path)
    sent = np.load(tmp_path / "sentence_vectors.npy")
    u = np.load(tmp_path / "sentence_component.npy")
    assert np.isclose(np.linalg.norm(u), 1, atol=1e-4)
    np.testing.assert_allclose(sent @ u, 0, atol=1e-4)


def test_encode_tokens_counts_oov():
    vocab = {"<pad>": 0, "<unk>": 1, "red": 2, "ball": 3}
    ids, lengths, oov = E.encode_tokens([["red", "zzz", "ball"], [], ["ball"] * 5 + ["qqq"]], vocab, 4)
    np.testing.assert_array_equal(ids, [[2, 1, 3, 0], [0, 0, 0, 0], [3, 3, 3, 3]])
    np.testing.assert_array_equal(lengths, [3, 0, 4])
    np.testing.assert_array_equal(oov, [1, 0, 1])  # the unknown past max_len still counts
    assert ids.dtype == lengths.dtype == oov.dtype == np.int32


def test_prompt_encoding_matches_captions(nlp_pair, shards, tmp_path):
    tok, ann = nlp_pair
    assert E.prompt_tokens(tok, ["A RED circle, moving\tleft!"], "lower") == [["a", "red", "circle", "moving", "left"]]
    assert E.prompt_tokens(ann, ["A blue square drifts in New York"], "entity") == [
        ["a", "blue", "square", "drifts", "in", "new_york"]
    ]
    assert E.prompt_tokens(ann, ["two squares moved"], "lemma") == [["two", "square", "move"]]
    with pytest.raises(ValueError, match="load_annotator"):
        E.prompt_tokens(tok, ["x"], "lemma")
    # A prompt that equals a training caption encodes to that caption's ids.
    _run(shards, tmp_path)
    vocab = dict(zip(*pq.read_table(tmp_path / "vocab.parquet").select(["token", "id"]).to_pydict().values()))
    rows = [r for r in pq.read_table(shards["tokens"][0]).to_pylist() if r["caption_id"] == "c000"]
    prompt = "".join(r["text"] + r["whitespace"] for r in rows)
    ids, lengths, oov = E.encode_tokens(E.prompt_tokens(tok, [prompt], "lower"), vocab, CFG.max_len)
    np.testing.assert_array_equal(ids[0], np.load(tmp_path / "token_ids.npy")[0])
    ids, _, oov = E.encode_tokens(E.prompt_tokens(tok, ["a purple circle"], "lower"), vocab, CFG.max_len)
    assert list(ids[0, :3]) == [vocab["a"], 1, vocab["circle"]] and oov[0] == 1


def test_bad_settings_are_clear_errors(shards, tmp_path):
    for bad, match in (({"token_form": "stem"}, "token_form"), ({"sentence_method": "max"}, "sentence_method"),
                       ({"vectors": "glove"}, "glove_path"), ({"w2v_mode": "fast"}, "w2v_mode")):
        with pytest.raises(ValueError, match=match):
            _run(shards, tmp_path, EmbedConfig(**{**CFG.__dict__, **bad}))
