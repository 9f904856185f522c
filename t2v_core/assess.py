"""The Moving Shapes judge applied to a trained model: the evaluation prompts (held-out and
seen compositions of the built-in corpus), rendered and judged on their pixels. Used by the
evaluate stage and, on a few prompts, during training, for corpora that name this judge."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from t2v_core import evaluate as ev
from t2v_core.config import EmbedConfig
from t2v_core.corpus import synthetic as syn
from t2v_core.embeddings import encode_tokens, prompt_tokens


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
    metrics, clips = render_and_judge(model, nlp, embed_cfg, rows, variety_pairs, ev.evaluate_clips)
    return metrics, clips, rows


def render_and_judge(model: Any, nlp: Any, embed_cfg: EmbedConfig, rows: list[dict[str, Any]], variety_pairs: int,
                     judge: Callable[[np.ndarray, list[dict[str, Any]]], dict[str, Any]]
                     ) -> tuple[dict[str, Any], np.ndarray]:
    """Render each row's prompt with its seed, judge the clips against the rows, and add the
    variety of a second draw (seed + 1) of the first ``variety_pairs`` rows."""

    def generate(prompts: list[str], seeds: list[int]) -> np.ndarray:
        tokens = prompt_tokens(nlp, prompts, embed_cfg.token_form)
        ids, lengths, _ = encode_tokens(tokens, model.vocab, embed_cfg.max_len)
        return model.generate(ids, lengths, seeds)

    clips = generate([r["prompt"] for r in rows], [r["seed"] for r in rows])
    metrics: dict[str, Any] = judge(clips, rows)
    if variety_pairs:
        pairs = rows[:variety_pairs]
        again = generate([r["prompt"] for r in pairs], [r["seed"] + 1 for r in pairs])
        metrics["variety"] = float(ev.variety(clips[: len(pairs)], again))
    metrics["prompts"] = len(rows)
    return metrics, clips
