"""Judging a trained model on its pixels: the evaluation prompts (held-out and seen
compositions of the built-in corpus), rendering and judging them, and the Frechet distance
to real clips. Used by the evaluate stage and, on a few prompts, during training."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow.parquet as pq

from t2v_core import evaluate as ev
from t2v_core.config import EmbedConfig, EvaluateConfig
from t2v_core.corpus import synthetic as syn
from t2v_core.datasets import load_clips
from t2v_core.embeddings import encode_tokens, prompt_tokens
from t2v_core.store import ArtifactRef


def evaluation_prompts(n_per_split: int, seed: int) -> list[dict[str, Any]]:
    """``n_per_split`` held-out prompts and as many seen ones, cycling through all
    attribute combinations of each split so every colour, shape, size and direction shows."""
    rng = np.random.default_rng(seed)
    combos: dict[str, list[tuple[str, str, str, str]]] = {"train": [], "test": []}
    for c in syn.COLOURS:
        for s in syn.SHAPES:
            for z in syn.SIZES:
                for d in syn.DIRECTIONS:
                    combos[syn.split_of(c, s)].append((c, s, z, d))
    rows = []
    for split, pool in combos.items():
        order = rng.permutation(len(pool))
        for i in range(n_per_split):
            c, s, z, d = pool[order[i % len(pool)]]
            rows.append({"colour": c, "shape": s, "size": z, "direction": d, "split": split,
                         "prompt": syn.prompt_for(c, s, z, d), "seed": int(rng.integers(2**31))})
    return rows


def judge_model(model: Any, nlp: Any, embed_cfg: EmbedConfig, n_per_split: int,
                variety_pairs: int, seed: int
                ) -> tuple[dict[str, Any], np.ndarray, list[dict[str, Any]]]:
    """Render ``n_per_split`` held-out and seen prompts with a Text2Video (prompts read by
    ``nlp`` in the embed stage's token form) and judge the pixels. Returns the metrics, the
    clips and the prompt rows they were made from."""
    rows = evaluation_prompts(n_per_split, seed)

    def generate(prompts: list[str], seeds: list[int]) -> np.ndarray:
        tokens = prompt_tokens(nlp, prompts, embed_cfg.token_form)
        ids, lengths, _ = encode_tokens(tokens, model.vocab, embed_cfg.max_len)
        return model.generate(ids, lengths, seeds)

    clips = generate([r["prompt"] for r in rows], [r["seed"] for r in rows])
    metrics: dict[str, Any] = ev.evaluate_clips(clips, rows)
    if variety_pairs:
        pairs = rows[:variety_pairs]
        again = generate([r["prompt"] for r in pairs], [r["seed"] + 1 for r in pairs])
        metrics["variety"] = float(ev.variety(clips[: len(pairs)], again))
    metrics["prompts"] = len(rows)
    return metrics, clips, rows


def frechet_against_real(fake: np.ndarray, rows: list[dict[str, Any]], frames_ref: ArtifactRef,
                         ingest_ref: ArtifactRef, cfg: EvaluateConfig) -> float:
    """Frechet distance between real test-split clips and the generated held-out clips, on
    the features of a small classifier trained on the real corpus."""
    clips, clip_row = load_clips(frames_ref)
    corpus = pq.read_table(ingest_ref.file("corpus.parquet")).to_pandas().drop_duplicates("video_sha256")
    corpus = corpus[corpus["video_sha256"].isin(clip_row.keys())]
    attrs = ["colour", "shape", "size", "direction"]
    real = clips[corpus["video_sha256"].map(clip_row).to_numpy()]
    labels = {a: corpus[a].astype("category").cat.codes.to_numpy() for a in attrs}
    net = ev.train_feature_net(real, labels, steps=cfg.feature_steps, seed=cfg.seed)
    test_real = real[(corpus["split"] == "test").to_numpy()]
    test_fake = fake[np.array([r["split"] == "test" for r in rows])]
    if len(test_real) < 2 or len(test_fake) < 2:
        return float("nan")
    return float(ev.frechet_distance(ev.video_features(net, test_real), ev.video_features(net, test_fake)))
