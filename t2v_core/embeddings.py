"""Word vectors (gensim word2vec, GloVe, or both), vocabulary, token ids, sentence vectors.

``train_embeddings`` reads the tokenize / annotate stages' per-shard Parquet files one shard
at a time and never holds the corpus in memory:

1. pass over the shards: turn each caption into its token form (``form_tokens``), append it
   as one line to a plain-text corpus file on disk and count the words;
2. word2vec reads that file (``corpus_file`` mode, in C threads without the GIL, or as a
   streamed iterable), optionally starting from GloVe vectors that are kept frozen, so the
   words GloVe lacks are learned in GloVe's own space;
3. pass over the corpus file again: token ids (padded) and sentence vectors, a chunk of
   captions at a time, into arrays of one row per caption.

Only the per-caption outputs (N x max_len ids, N x D sentence vectors) and the vocabulary
grow with the corpus. Render uses ``prompt_tokens`` + ``encode_tokens`` (+ ``sentence_vectors``
with the saved component) so prompts get the same treatment as captions.
"""

from __future__ import annotations

import itertools
import os
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from gensim.models import KeyedVectors, Word2Vec
from gensim.models.word2vec import LineSentence

from t2v_core.config import EmbedConfig
from t2v_core.store import atomic_path, write_parquet

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
TOKEN_FORMS = ("lower", "lemma", "entity")
SENTENCE_METHODS = ("mean", "sif")
VECTOR_SOURCES = ("auto", "word2vec", "glove", "both")
W2V_MODES = ("corpus_file", "iterable")
CHUNK = 4096  # captions per step of the second pass

VOCAB_SCHEMA = pa.schema(
    [
        pa.field("token", pa.string(), nullable=False),
        pa.field("id", pa.int32(), nullable=False),  # row of embedding_matrix.npy
        pa.field("count", pa.int64(), nullable=False),  # occurrences in the corpus (0 for pad/unk)
    ]
)

CAPTIONS_SCHEMA = pa.schema(
    [
        pa.field("caption_id", pa.string(), nullable=False),
        pa.field("row", pa.int32(), nullable=False),  # row in token_ids.npy / sentence_vectors.npy
        pa.field("length", pa.int32(), nullable=False),  # ids used, <= max_len (0: no content)
        pa.field("n_tokens", pa.int32(), nullable=False),  # content tokens before truncation
        pa.field("n_oov", pa.int32(), nullable=False),  # of n_tokens, not in the vocabulary
    ]
)

Progress = Callable[[str, float], None]


# ----------------------------------------------------------------------------- token form

_SPACE_RUN = re.compile(r"\s+")


def is_content(token: str) -> bool:
    """True unless the token is only punctuation, spaces or invisible format characters
    (those carry nothing a word vector could; emoji and symbols do count)."""
    return any(unicodedata.category(c)[0] not in "PZC" for c in token)


def form_tokens(
    lower: Sequence[str],
    token_form: str,
    lemma: Sequence[str] | None = None,
    spans: Sequence[tuple[int, int]] = (),
) -> list[str]:
    """One caption's tokens in the embedding's form, punctuation and spaces dropped.

    lower: lowercase token text. lemma: lowercased lemmas (a surface form per token).
    entity: lowercase tokens with each entity span [start, end) merged into one token joined
    by "_" ("new_york"), so a multi-word name gets one vector."""
    if token_form == "lower":
        words = list(lower)
    elif token_form == "lemma":
        if lemma is None or len(lemma) != len(lower):
            raise ValueError("token_form 'lemma' needs one lemma per token")
        words = [w.lower() for w in lemma]
    elif token_form == "entity":
        starts = {s: e for s, e in spans}
        words, i = [], 0
        while i < len(lower):
            end = starts.get(i)
            if end is not None and end > i + 1:
                words.append("_".join(w for w in lower[i:end] if is_content(w)) or lower[i])
                i = end
            else:
                words.append(lower[i])
                i += 1
    else:
        raise ValueError(f"token_form must be one of {TOKEN_FORMS}, got {token_form!r}")
    # A token must stay one token in a whitespace-separated corpus line.
    return [_SPACE_RUN.sub("_", w) for w in words if is_content(w)]


def prompt_tokens(nlp: Any, texts: Sequence[str], token_form: str) -> list[list[str]]:
    """Prompts in the token form the captions were embedded with. ``nlp`` is
    ``text.load_tokenizer`` for "lower", ``text.load_annotator`` for "lemma" / "entity"."""
    from t2v_core.text import normalize_caption

    needs = {"lemma": "lemmatizer", "entity": "ner"}.get(token_form)
    if token_form not in TOKEN_FORMS:
        raise ValueError(f"token_form must be one of {TOKEN_FORMS}, got {token_form!r}")
    if needs and needs not in nlp.pipe_names:
        raise ValueError(f"token_form {token_form!r} needs a pipeline with {needs!r} (load_annotator)")
    out = []
    for doc in nlp.pipe([normalize_caption(t) for t in texts]):
        lower = [t.lower_ for t in doc]
        lemma = [t.lemma_ for t in doc] if token_form == "lemma" else None
        spans = [(e.start, e.end) for e in doc.ents] if token_form == "entity" else ()
        out.append(form_tokens(lower, token_form, lemma, spans))
    return out


def encode_tokens(
    tokens: Sequence[Sequence[str]], vocab: Mapping[str, int], max_len: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids (N, max_len) int32 padded with 0, lengths (N,) int32, n_oov (N,) int32).

    Unknown words map to UNK_ID (1) and are counted in n_oov, over the whole token list
    (also past max_len, so truncation does not hide them)."""
    if max_len < 1:
        raise ValueError("max_len must be positive")
    n = len(tokens)
    ids = np.zeros((n, max_len), dtype=np.int32)
    lengths = np.zeros(n, dtype=np.int32)
    n_oov = np.zeros(n, dtype=np.int32)
    for row, words in enumerate(tokens):
        seq = [vocab.get(w, UNK_ID) for w in words]
        n_oov[row] = sum(1 for w in words if w not in vocab)
        seq = seq[:max_len]
        ids[row, : len(seq)] = seq
        lengths[row] = len(seq)
    return ids, lengths, n_oov


# ----------------------------------------------------------------------- sentence vectors


def word_weights(counts: Mapping[str, int], method: str, a: float = 1e-3) -> dict[str, float]:
    """Per-word weights of the sentence average: 1 for "mean"; a / (a + p(w)) for "sif"
    (Arora et al. 2017), p(w) the word's frequency in the corpus."""
    if method not in SENTENCE_METHODS:
        raise ValueError(f"sentence_method must be one of {SENTENCE_METHODS}, got {method!r}")
    if method == "mean":
        return {w: 1.0 for w in counts}
    total = float(sum(counts.values())) or 1.0
    return {w: a / (a + c / total) for w, c in counts.items()}


def weighted_average(
    tokens: Sequence[Sequence[str]], vectors: KeyedVectors, weights: Mapping[str, float]
) -> np.ndarray:
    """(N, D) float32: per caption, the weighted mean of its in-vocabulary word vectors.
    A caption with none stays zero (the caller counts those through n_oov)."""
    out = np.zeros((len(tokens), vectors.vector_size), dtype=np.float32)
    for row, words in enumerate(tokens):
        known = [w for w in words if w in vectors.key_to_index]
        if known:
            w = np.array([weights.get(k, 1.0) for k in known], dtype=np.float32)
            out[row] = w @ vectors[known] / len(known)
    return out


def first_component(x: np.ndarray) -> np.ndarray:
    """Unit first principal direction of the rows of x (uncentered, as in the SIF paper's
    code), from the D x D Gram matrix, accumulated a chunk of rows at a time so that a
    large N costs no float64 copy of x."""
    gram = np.zeros((x.shape[1], x.shape[1]), dtype=np.float64)
    for start in range(0, len(x), CHUNK):
        part = x[start:start + CHUNK].astype(np.float64)
        gram += part.T @ part
    _, vecs = np.linalg.eigh(gram)
    u = vecs[:, -1]
    # eigh's sign is arbitrary; fix it so the saved component is reproducible.
    return (u if u[np.argmax(np.abs(u))] >= 0 else -u).astype(np.float32)


def remove_component(x: np.ndarray, u: np.ndarray, inplace: bool = False) -> np.ndarray:
    """x minus its projection on the unit vector u, float32; ``inplace`` (x must be
    float32) saves the second (N, D) array when N is large."""
    out = x if inplace else np.array(x, dtype=np.float32)
    for start in range(0, len(out), CHUNK):
        part = out[start:start + CHUNK]
        part -= np.outer(part @ u, u)  # a chunk at a time: no (N, D) temporary either
    return out


def sentence_vectors(
    tokens: Sequence[Sequence[str]],
    vectors: KeyedVectors,
    counts: Mapping[str, int],
    method: str = "sif",
    a: float = 1e-3,
    component: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(sentence vectors (N, D) float32, removed component (D,) float32).

    "mean": plain average, component zeros. "sif": frequency-weighted average with the first
    principal component removed; pass the corpus's saved ``component`` to treat new
    sentences (prompts) exactly as the corpus was treated, or None to fit it on these."""
    x = weighted_average(tokens, vectors, word_weights(counts, method, a))
    if method == "mean":
        return x, np.zeros(vectors.vector_size, dtype=np.float32)
    u = first_component(x) if component is None else np.asarray(component, dtype=np.float32)
    return remove_component(x, u), u


# ----------------------------------------------------------------------- reading shards


def _runs(ids: list[str]) -> Iterator[tuple[str, int, int]]:
    """(caption_id, start, stop) for each run of equal ids; a tokens table keeps each
    caption's rows together."""
    start = 0
    for cid, group in itertools.groupby(ids):
        n = sum(1 for _ in group)
        yield cid, start, start + n
        start += n


def _shard_captions(
    token_file: Path, token_form: str, ann_file: Path | None, ent_file: Path | None
) -> Iterator[tuple[str, list[str]]]:
    """(caption_id, tokens in form) for every caption of one shard, in table order."""
    tokens = pq.read_table(token_file, columns=["caption_id", "lower"])
    ids = tokens.column("caption_id").to_pylist()
    lower = tokens.column("lower").to_pylist()
    lemma = None
    spans: dict[str, list[tuple[int, int]]] = {}
    if token_form == "lemma":
        if ann_file is None:
            raise ValueError("token_form 'lemma' needs the annotate stage's files")
        ann = pq.read_table(ann_file, columns=["caption_id", "lemma"])
        if ann.column("caption_id").to_pylist() != ids:
            raise ValueError(f"{ann_file} is not aligned row for row with {token_file}")
        lemma = ann.column("lemma").to_pylist()
    elif token_form == "entity":
        if ent_file is None:
            raise ValueError("token_form 'entity' needs the annotate stage's entity files")
        ents = pq.read_table(ent_file, columns=["caption_id", "start_token", "end_token"]).to_pydict()
        for cid, s, e in zip(ents["caption_id"], ents["start_token"], ents["end_token"]):
            spans.setdefault(cid, []).append((s, e))
    for cid, start, stop in _runs(ids):
        yield cid, form_tokens(
            lower[start:stop], token_form,
            lemma[start:stop] if lemma is not None else None, spans.get(cid, ()),
        )


def _read_lines(path: Path) -> Iterator[list[str]]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            yield line.split()


# ---------------------------------------------------------------------- word vectors


def load_glove(path: str | Path) -> KeyedVectors:
    """A GloVe-format text file: "word v1 v2 ... vD" per line, no header."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"GloVe file {p} does not exist")
    return KeyedVectors.load_word2vec_format(str(p), binary=False, no_header=True)


def _vector_source(cfg: EmbedConfig) -> str:
    if cfg.vectors not in VECTOR_SOURCES:
        raise ValueError(f"embed.vectors must be one of {VECTOR_SOURCES}, got {cfg.vectors!r}")
    source = cfg.vectors if cfg.vectors != "auto" else ("both" if cfg.glove_path else "word2vec")
    if source in ("glove", "both") and not cfg.glove_path:
        raise ValueError(f"embed.vectors = {source!r} needs embed.glove_path")
    return source


def train_word2vec(
    corpus_path: Path, cfg: EmbedConfig, frozen: KeyedVectors | None = None
) -> tuple[Word2Vec, int]:
    """Word2vec over a one-caption-per-line corpus file; returns (model, raw words trained).

    Words in ``frozen`` (GloVe) start from those vectors and are never updated (lock
    factor 0), so the other words are learned around them, in the same space."""
    if cfg.w2v_mode not in W2V_MODES:
        raise ValueError(f"embed.w2v_mode must be one of {W2V_MODES}, got {cfg.w2v_mode!r}")
    model = Word2Vec(
        vector_size=cfg.vector_size, window=cfg.window, min_count=cfg.min_count,
        workers=cfg.workers, sg=cfg.sg, seed=cfg.seed, epochs=cfg.epochs,
    )
    source: dict[str, Any]
    if cfg.w2v_mode == "corpus_file":
        source = {"corpus_file": str(corpus_path)}
    else:
        source = {"corpus_iterable": LineSentence(str(corpus_path))}
    model.build_vocab(**source)
    if not model.wv.key_to_index:
        raise ValueError(f"no word occurs embed.min_count = {cfg.min_count} times: nothing to train")
    if frozen is not None:
        lockf = np.ones(len(model.wv), dtype=np.float32)
        for word, i in model.wv.key_to_index.items():
            if word in frozen.key_to_index:
                model.wv.vectors[i] = frozen[word]
                lockf[i] = 0.0
        model.wv.vectors_lockf = lockf
    model.train(
        **source, total_examples=model.corpus_count, total_words=model.corpus_total_words,
        epochs=cfg.epochs,
    )
    # What train() returns as raw words is an estimate in corpus_file mode; this is exact.
    return model, int(model.corpus_total_words) * cfg.epochs


def _final_vectors(
    counts: Counter[str], cfg: EmbedConfig, w2v: Word2Vec | None, glove: KeyedVectors | None
) -> tuple[list[str], np.ndarray, int]:
    """(words in id order, their vectors, how many came from GloVe). Order: most frequent
    first, ties by the word, so ids do not depend on gensim internals."""
    keep: dict[str, np.ndarray] = {}
    from_glove = 0
    for word, count in counts.items():
        if glove is not None and word in glove.key_to_index:
            keep[word] = glove[word]  # GloVe has it: always its vector, even below min_count
            from_glove += 1
        elif w2v is not None and word in w2v.wv.key_to_index:
            keep[word] = w2v.wv[word]
    words = sorted(keep, key=lambda w: (-counts[w], w))
    dim = cfg.vector_size
    matrix = np.stack([keep[w] for w in words]).astype(np.float32) if words else np.zeros((0, dim), np.float32)
    return words, matrix, from_glove


# --------------------------------------------------------------------------- the stage


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        np.save(tmp, array)


def train_embeddings(
    token_files: Sequence[Path],
    cfg: EmbedConfig,
    out_dir: Path,
    annotation_files: Sequence[Path] = (),
    entity_files: Sequence[Path] = (),
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Word vectors, vocabulary, caption token ids and sentence vectors into ``out_dir``:

    vectors.kv (gensim KeyedVectors, word counts as the "count" attribute), vocab.parquet
    (VOCAB_SCHEMA; id 0 <pad>, 1 <unk>), embedding_matrix.npy (V, D) float32 aligned with
    the ids (pad and unk rows zero), captions.parquet (CAPTIONS_SCHEMA, the row order of:)
    token_ids.npy (N, max_len) int32 and sentence_vectors.npy (N, D) float32, and
    sentence_component.npy (D,) (the SIF component removed; zeros for "mean").

    Returns counts for the stage manifest."""
    if cfg.token_form not in TOKEN_FORMS:
        raise ValueError(f"embed.token_form must be one of {TOKEN_FORMS}, got {cfg.token_form!r}")
    if cfg.sentence_method not in SENTENCE_METHODS:
        raise ValueError(f"embed.sentence_method must be one of {SENTENCE_METHODS}, got {cfg.sentence_method!r}")
    source = _vector_source(cfg)
    token_files = [Path(f) for f in token_files]
    for name, files in (("annotation", annotation_files), ("entity", entity_files)):
        if files and len(files) != len(token_files):
            raise ValueError(f"{len(files)} {name} files for {len(token_files)} token files")
    report = progress or (lambda _msg, _frac: None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # The corpus in token form, one caption per line: what word2vec reads and pass 2 rereads.
    # ".tmp-" keeps it out of the artifact's manifest should a crash leave it behind.
    corpus_path = out_dir / f".corpus.tmp-{os.getpid()}.txt"
    try:
        return _train(token_files, cfg, out_dir, annotation_files, entity_files, source,
                      corpus_path, report)
    finally:
        corpus_path.unlink(missing_ok=True)


def _train(
    token_files: list[Path], cfg: EmbedConfig, out_dir: Path, annotation_files: Sequence[Path],
    entity_files: Sequence[Path], source: str, corpus_path: Path, report: Progress,
) -> dict[str, Any]:
    # Pass 1: shards -> corpus file + counts. Only one shard is in memory at a time.
    counts: Counter[str] = Counter()
    caption_ids: list[str] = []
    with open(corpus_path, "w", encoding="utf-8") as fh:
        for i, tf in enumerate(token_files):
            ann = Path(annotation_files[i]) if annotation_files else None
            ent = Path(entity_files[i]) if entity_files else None
            for cid, words in _shard_captions(tf, cfg.token_form, ann, ent):
                caption_ids.append(cid)
                counts.update(words)
                fh.write(" ".join(words) + "\n")
            report("reading shards", (i + 1) / max(len(token_files), 1))
    if len(set(caption_ids)) != len(caption_ids):
        raise ValueError("a caption id appears in more than one place in the token files")
    if not counts:
        raise ValueError(f"no content tokens in {len(caption_ids)} captions: nothing to embed")

    # Word vectors.
    glove = None
    if source in ("glove", "both"):
        glove = load_glove(cfg.glove_path)
        if glove.vector_size != cfg.vector_size:
            raise ValueError(
                f"GloVe file has {glove.vector_size}-d vectors but embed.vector_size is "
                f"{cfg.vector_size}; set them equal (and model.word_dim with them)"
            )
    w2v, words_trained, seconds = None, 0, 0.0
    if source in ("word2vec", "both"):
        report("training word2vec", 0.0)
        t0 = time.perf_counter()
        w2v, words_trained = train_word2vec(corpus_path, cfg, frozen=glove)
        seconds = time.perf_counter() - t0
        report("training word2vec", 1.0)
    words, matrix, from_glove = _final_vectors(counts, cfg, w2v, glove)
    del w2v, glove

    kv = KeyedVectors(cfg.vector_size)
    kv.add_vectors(words, matrix)
    for w in words:
        kv.set_vecattr(w, "count", counts[w])
    with atomic_path(out_dir / "vectors.kv") as tmp:
        kv.save(str(tmp), separately=[])  # one file, so one rename makes it whole
    vocab = {w: i + 2 for i, w in enumerate(words)}
    write_parquet(
        pa.table({
            "token": [PAD, UNK, *words],
            "id": np.arange(len(words) + 2, dtype=np.int32),
            "count": [0, 0, *(counts[w] for w in words)],
        }),
        out_dir / "vocab.parquet", VOCAB_SCHEMA,
    )
    _save_npy(out_dir / "embedding_matrix.npy",
              np.concatenate([np.zeros((2, cfg.vector_size), np.float32), matrix]))

    # Pass 2: corpus file -> token ids and (weighted) sentence averages, a chunk at a time.
    n = len(caption_ids)
    ids = np.zeros((n, cfg.max_len), dtype=np.int32)
    lengths = np.zeros(n, dtype=np.int32)
    n_tokens = np.zeros(n, dtype=np.int32)
    n_oov = np.zeros(n, dtype=np.int32)
    sent = np.zeros((n, cfg.vector_size), dtype=np.float32)
    weights = word_weights({w: counts[w] for w in words}, cfg.sentence_method, cfg.sif_a)
    lines = _read_lines(corpus_path)
    for start in range(0, n, CHUNK):
        chunk = list(itertools.islice(lines, CHUNK))
        stop = start + len(chunk)
        ids[start:stop], lengths[start:stop], n_oov[start:stop] = encode_tokens(chunk, vocab, cfg.max_len)
        n_tokens[start:stop] = [len(c) for c in chunk]
        sent[start:stop] = weighted_average(chunk, kv, weights)
        report("encoding captions", stop / n)
    component = np.zeros(cfg.vector_size, dtype=np.float32)
    if cfg.sentence_method == "sif":
        component = first_component(sent)
        remove_component(sent, component, inplace=True)

    write_parquet(
        pa.table({"caption_id": caption_ids, "row": np.arange(n, dtype=np.int32),
                  "length": lengths, "n_tokens": n_tokens, "n_oov": n_oov}),
        out_dir / "captions.parquet", CAPTIONS_SCHEMA,
    )
    _save_npy(out_dir / "token_ids.npy", ids)
    _save_npy(out_dir / "sentence_vectors.npy", sent)
    _save_npy(out_dir / "sentence_component.npy", component)

    return {
        "captions": n,
        "tokens": int(n_tokens.sum()),
        "vocab_size": len(words) + 2,
        "corpus_types": len(counts),
        "glove_words": from_glove,
        "oov_tokens": int(n_oov.sum()),
        "oov_types": len(counts) - len(words),
        "captions_without_vectors": int(np.sum(n_oov == n_tokens)),
        "empty_captions": int(np.sum(n_tokens == 0)),
        "truncated_captions": int(np.sum(n_tokens > cfg.max_len)),
        "words_trained": words_trained,
        "w2v_words_per_sec": words_trained / seconds if seconds else 0.0,
    }
