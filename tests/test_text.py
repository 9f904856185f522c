"""Tokenize and annotate with the real spaCy model on tiny inputs."""

from __future__ import annotations

import pyarrow as pa
import pytest

from t2v_core import text
from t2v_core.config import AnnotateConfig, TokenizeConfig
from t2v_core.store import conform

CAPTIONS = [
    "A small red circle moves left.",
    "The big blue square slides up quickly in London.",
    "Barack Obama watches a green triangle bounce around Paris!",
    "two yellow squares don't move",
    "A tiny  purple\tstar drifts\ndown",
]


@pytest.fixture(scope="module")
def model_name() -> str:
    return text.resolve_model_name("")


@pytest.fixture(scope="module")
def tokenizer(model_name):
    return text.load_tokenizer(model_name)


@pytest.fixture(scope="module")
def annotator(model_name):
    return text.load_annotator(model_name)


def _ids(n: int) -> list[str]:
    return [f"c{i}" for i in range(n)]


def _captions_of(tokens: pa.Table) -> dict[str, str]:
    """Rebuild each caption from its stored text + whitespace."""
    out: dict[str, str] = {}
    for row in tokens.to_pylist():
        out[row["caption_id"]] = out.get(row["caption_id"], "") + row["text"] + row["whitespace"]
    return out


def test_loaders_run_only_needed_components(tokenizer, annotator):
    assert tokenizer.pipe_names == []
    assert "parser" not in annotator.pipe_names and "senter" not in annotator.pipe_names
    for needed in ("tagger", "attribute_ruler", "lemmatizer", "ner"):
        assert needed in annotator.pipe_names


def test_unknown_model_lists_installed(model_name):
    with pytest.raises(ValueError, match=model_name):
        text.resolve_model_name("xx_not_a_model")


def test_tokens_rebuild_normalized_caption(tokenizer):
    tokens, rejects = text.tokenize_captions(tokenizer, _ids(len(CAPTIONS)), CAPTIONS, TokenizeConfig())
    assert rejects.num_rows == 0
    assert tokens.schema == text.TOKENS_SCHEMA
    rebuilt = _captions_of(tokens)
    for cid, caption in zip(_ids(len(CAPTIONS)), CAPTIONS):
        assert rebuilt[cid] == text.normalize_caption(caption)
    # Offsets point into the normalized caption.
    for row in tokens.to_pylist():
        assert rebuilt[row["caption_id"]][row["start_char"]:row["end_char"]] == row["text"]
    first = [r for r in tokens.to_pylist() if r["caption_id"] == "c3"]
    assert [r["text"] for r in first] == ["two", "yellow", "squares", "do", "n't", "move"]
    assert [r["token_index"] for r in first] == list(range(6))


def test_annotations_have_exactly_the_tokens(tokenizer, annotator):
    tokens, _ = text.tokenize_captions(tokenizer, _ids(len(CAPTIONS)), CAPTIONS, TokenizeConfig())
    annotations, entities = text.annotate_tokens(annotator, tokens, AnnotateConfig(batch_size=2))
    assert annotations.schema == text.ANNOTATIONS_SCHEMA
    # Row for row: same caption, same index, same text.
    for col in ("caption_id", "token_index", "text"):
        assert annotations.column(col).to_pylist() == tokens.column(col).to_pylist()
    rows = annotations.to_pylist()
    assert {r["pos"] for r in rows} >= {"NOUN", "ADJ", "VERB"}
    lemmas = {(r["caption_id"], r["text"]): r["lemma"] for r in rows}
    assert lemmas[("c3", "squares")] == "square"
    # Entities: found, and their offsets agree with the tokens table.
    ents = {(e["caption_id"], e["text"]): e for e in entities.to_pylist()}
    assert ("c2", "Barack Obama") in ents and ents[("c2", "Barack Obama")]["label"] == "PERSON"
    assert ("c1", "London") in ents
    start_chars = {(r["caption_id"], r["token_index"]): r["start_char"] for r in tokens.to_pylist()}
    for e in entities.to_pylist():
        assert start_chars[(e["caption_id"], e["start_token"])] == e["start_char"]


def test_bad_inputs_reconcile(tokenizer, annotator):
    huge = " ".join(["word"] * 20_000)
    cases = {
        "empty": "",
        "blank": " \t\n  ",
        "only-controls": "\x00\x07\x1b",
        "huge": huge,
        "controls": "red\x00ball\x07 moves\r\nleft\u200b",
        "emoji": "🐶 chases a red ball 👨‍👩‍👧 ⚽",
        "cjk": "一只红色的球 moves left",
        "cyrillic": "Красный круг движется влево",
        "arabic": "دائرة حمراء تتحرك",
        "surrogate": "bad \udcff byte",
        "not-text": None,
        "ok": "A blue square moves up.",
    }
    ids = list(cases) + ["ok"]  # plus a duplicate id
    texts = list(cases.values()) + ["A different caption."]
    tokens, rejects = text.tokenize_captions(tokenizer, ids, texts, TokenizeConfig())
    annotations, _ = text.annotate_tokens(annotator, tokens, AnnotateConfig())

    annotated = set(annotations.column("caption_id").to_pylist())
    reasons = dict(zip(rejects.column("caption_id").to_pylist(), rejects.column("reason").to_pylist()))
    assert len(ids) == len(annotated) + rejects.num_rows
    assert annotated == {"controls", "emoji", "cjk", "cyrillic", "arabic", "ok"}
    assert "empty" in reasons["empty"] and "empty" in reasons["blank"] and "empty" in reasons["only-controls"]
    assert "max_tokens" in reasons["huge"]
    assert "Unicode" in reasons["surrogate"] and "not text" in reasons["not-text"]
    assert rejects.column("reason").to_pylist().count("duplicate caption_id") == 1
    # Control characters became spaces; the emoji survive as tokens.
    words = tokens.column("text").to_pylist()
    assert "ball" in words and "🐶" in words and not any("\x00" in w for w in words)
    # Previews are writable UTF-8 even for the surrogate caption.
    conform(rejects, text.TEXT_REJECTS_SCHEMA)


def test_huge_caption_goes_through_when_allowed(tokenizer):
    huge = " ".join(["word"] * 20_000)
    cfg = TokenizeConfig(max_tokens=50_000, max_chars=1_000_000)
    tokens, rejects = text.tokenize_captions(tokenizer, ["h"], [huge], cfg)
    assert rejects.num_rows == 0 and tokens.num_rows == 20_000


def test_schemas_are_enforced(tokenizer):
    tokens, _ = text.tokenize_captions(tokenizer, ["a"], ["a red ball"], TokenizeConfig())
    with pytest.raises(ValueError, match="lower"):
        conform(tokens.drop_columns(["lower"]), text.TOKENS_SCHEMA)
    bad = tokens.set_column(1, "token_index", pa.array(["x"] * tokens.num_rows))
    with pytest.raises(pa.ArrowInvalid):
        conform(bad, text.TOKENS_SCHEMA)


def test_annotate_rejects_scrambled_tokens(tokenizer, annotator):
    tokens, _ = text.tokenize_captions(tokenizer, ["a"], ["a red ball"], TokenizeConfig())
    scrambled = tokens.take([1, 0, 2])
    with pytest.raises(ValueError, match="contiguous"):
        text.annotate_tokens(annotator, scrambled, AnnotateConfig())


def test_normalize_caption():
    assert text.normalize_caption("  a\tb\x00c \u00a0 d\u200b\ufeff ") == "a b c d"
    zwj = "👨\u200d👩"
    assert text.normalize_caption(zwj) == zwj


@pytest.mark.slow
def test_two_processes_give_the_same_annotations(tokenizer, annotator):
    captions = CAPTIONS * 8
    tokens, _ = text.tokenize_captions(tokenizer, _ids(len(captions)), captions, TokenizeConfig())
    one = text.annotate_tokens(annotator, tokens, AnnotateConfig(batch_size=8, n_process=1))
    two = text.annotate_tokens(annotator, tokens, AnnotateConfig(batch_size=8, n_process=2))
    assert one[0].equals(two[0]) and one[1].equals(two[1])
