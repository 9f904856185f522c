"""The Moving Shapes judge applied to a trained model: the evaluation prompts (held-out and
seen compositions of the built-in corpus), rendered and judged on their pixels, and the
figures made of the judge's readings (attribute accuracy, temporal coherence, variety). Used
by the evaluate stage and, on a few prompts, during training, for corpora that name this
judge."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from t2v_core.corpus import synthetic as syn
from t2v_core.judge import TOLERANCE, Judgement, judge_clip, judge_many

ATTRIBUTES = ("colour", "shape", "size", "direction")


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def attribute_accuracy(judgements: Sequence[Judgement], expected: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Share of clips whose judged colour, shape, size and direction match what was asked
    for; ``all_correct`` needs all four. A clip the judge cannot read counts as wrong.
    ``coherent`` is the share of these clips with one unchanging object in every frame, and
    ``correct_and_coherent`` needs both, which is what a user of one video sees."""
    if len(judgements) != len(expected):
        raise ValueError(f"{len(judgements)} judgements but {len(expected)} expectations")
    out: dict[str, Any] = {"n": len(judgements)}
    hits = np.array(
        [[getattr(j, a) == e[a] for a in ATTRIBUTES] for j, e in zip(judgements, expected, strict=True)],
        dtype=bool,
    ).reshape(len(judgements), len(ATTRIBUTES))
    for i, a in enumerate(ATTRIBUTES):
        out[a] = _mean(hits[:, i])
    out["all_correct"] = _mean(hits.all(axis=1))
    coherent = np.array([j.coherent for j in judgements], dtype=bool)
    out["coherent"] = _mean(coherent)
    out["correct_and_coherent"] = _mean(hits.all(axis=1) & coherent)
    return out


def temporal_coherence(judgements: Sequence[Judgement]) -> dict[str, Any]:
    """``coherent_share``: clips with one object of one colour and shape in every frame.
    ``smoothness``: mean std/mean of centroid steps (0 = constant speed) over the clips where
    it is defined (an object in at least three consecutive frames)."""
    smooth = [j.smoothness for j in judgements if np.isfinite(j.smoothness)]
    return {
        "n": len(judgements),
        "coherent_share": _mean([float(j.coherent) for j in judgements]),
        "smoothness": _mean(smooth),
        "smoothness_n": len(smooth),
        "object_frame_share": _mean([j.n_frames_with_object / len(j.frame_colours) for j in judgements]),
    }


# "Visibly different", precisely. A pair of clips differs visibly when either
#  - the judge finds the object in the same frame of both clips at places more than
#    VARIETY_SHIFT of the frame's side apart (1.6 px at 32 px: a jump anyone sees when
#    flicking between the two; codec noise moves a decoded centroid by < 0.3 px), or
#  - more than VARIETY_PIXELS of all pixels change by more than a quarter of full scale in
#    some channel (catches a different colour or shape, or clips without a readable
#    object; faint noise never reaches a quarter of full scale).
# Moving Shapes draws the start position and speed at random, so the real corpus is varied
# by this measure; a generator that ignores its noise scores 0.
VARIETY_SHIFT = 0.05
VARIETY_PIXELS = 0.02
VARIETY_LEVEL = 64


def _pair_differs(a: np.ndarray, b: np.ndarray) -> bool:
    changed = (np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=-1) > VARIETY_LEVEL).mean()
    if changed > VARIETY_PIXELS:
        return True
    ca, cb = judge_clip(a).centroids, judge_clip(b).centroids
    both = ~np.isnan(ca[:, 0]) & ~np.isnan(cb[:, 0])
    if not both.any():
        return False
    apart = np.linalg.norm(ca[both] - cb[both], axis=1).max()
    return bool(apart > VARIETY_SHIFT * min(a.shape[1:3]))


def variety(clips_a: np.ndarray, clips_b: np.ndarray) -> float:
    """Share of pairs (clips_a[i], clips_b[i]), made from the same prompt with different
    noise, that are visibly different (defined above)."""
    if len(clips_a) != len(clips_b):
        raise ValueError(f"variety needs pairs: {len(clips_a)} clips against {len(clips_b)}")
    if len(clips_a) == 0:
        raise ValueError("variety needs at least one pair")
    for a, b in zip(clips_a, clips_b, strict=True):
        if a.shape != b.shape or a.dtype != np.uint8 or b.dtype != np.uint8 or a.ndim != 4:
            raise ValueError(f"pairs must be uint8 clips of one shape, got {a.dtype} {a.shape} / {b.dtype} {b.shape}")
    return float(np.mean([_pair_differs(a, b) for a, b in zip(clips_a, clips_b, strict=True)]))


def evaluate_clips(clips: np.ndarray, expected: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Judge generated clips (N, T, H, W, 3) uint8 against the rows they were made from
    (colour, shape, size, direction, split). ``seen`` covers compositions of the training
    split, ``held_out`` those of the test split (each with its own ``coherent`` share, so a
    checkpoint can be chosen on the seen compositions alone); ``coherence`` covers all clips."""
    if clips.ndim != 5 or clips.shape[-1] != 3 or clips.dtype != np.uint8:
        raise ValueError(f"clips must be uint8 (N, T, H, W, 3), got {clips.dtype} {clips.shape}")
    if len(clips) != len(expected):
        raise ValueError(f"{len(clips)} clips but {len(expected)} expected rows")
    unknown = sorted({str(e.get("split")) for e in expected} - {"train", "test"})
    if unknown:
        raise ValueError(f"expected rows need split 'train' or 'test', got {unknown}")
    judged = judge_many(clips)
    by_split = {
        name: [i for i, e in enumerate(expected) if e["split"] == split]
        for name, split in (("seen", "train"), ("held_out", "test"))
    }
    out: dict[str, Any] = {
        name: attribute_accuracy([judged[i] for i in idx], [expected[i] for i in idx])
        for name, idx in by_split.items()
    }
    out["coherence"] = temporal_coherence(judged)
    out["outline_deviation"] = outline_deviation(judged)
    return out


def outline_deviation(judgements: Sequence[Judgement]) -> dict[str, float | None]:
    """How far generated outlines miss the nearest corpus shape, in px over every frame with
    an object: median, 90th percentile, and the share within the judge's tolerance. Shape
    right or wrong is a step at TOLERANCE; this says how far a model is from it."""
    values = np.array([d for j in judgements for d in j.frame_deviations if np.isfinite(d)])
    if not len(values):
        return {"median": None, "p90": None, "within_tolerance": None}
    return {"median": float(np.median(values)), "p90": float(np.percentile(values, 90)),
            "within_tolerance": float((values <= TOLERANCE).mean())}


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


def judge_model(model: Any, n_per_split: int, variety_pairs: int, seed: int, seed_sets: int = 1
                ) -> tuple[dict[str, Any], np.ndarray, list[dict[str, Any]]]:
    """Render ``n_per_split`` held-out and seen prompts with a Text2Video and judge the
    pixels, over ``seed_sets`` noise-seed sets (``over_seed_sets``). Returns the metrics,
    the clips and the prompt rows they were made from (the first set's)."""
    rows = evaluation_prompts(n_per_split, seed)
    metrics, clips = over_seed_sets(model, rows, variety_pairs, evaluate_clips, seed, seed_sets)
    return metrics, clips, rows


def over_seed_sets(model: Any, rows: list[dict[str, Any]], variety_pairs: int,
                   judge: Callable[[np.ndarray, list[dict[str, Any]]], dict[str, Any]],
                   seed: int, sets: int) -> tuple[dict[str, Any], np.ndarray]:
    """``render_and_judge`` with the rows' own seeds, then with ``sets - 1`` more fixed seed
    sets (scoring.seed_set): a model must be right for every noise draw, not for one lucky
    set. The first set's metrics and clips, with ``seed_sets`` added: per split, each set's
    all-correct, their mean and the worst."""
    from t2v_core.scoring import seed_set

    metrics, clips = render_and_judge(model, rows, variety_pairs, judge)
    per_set = [metrics]
    for k in range(1, max(1, sets)):
        drawn = [dict(r, seed=s) for r, s in zip(rows, seed_set(seed, k, len(rows)), strict=True)]
        per_set.append(render_and_judge(model, drawn, 0, judge)[0])
    summary: dict[str, Any] = {"sets": len(per_set)}
    for split in ("seen", "held_out"):
        values = [m[split]["all_correct"] for m in per_set if m.get(split, {}).get("all_correct") is not None]
        if values:
            summary[split] = {"all_correct": values, "mean": float(np.mean(values)), "worst": float(min(values))}
    metrics["seed_sets"] = summary
    return metrics, clips


def render_and_judge(model: Any, rows: list[dict[str, Any]], variety_pairs: int,
                     judge: Callable[[np.ndarray, list[dict[str, Any]]], dict[str, Any]]
                     ) -> tuple[dict[str, Any], np.ndarray]:
    """Render each row's prompt with its seed (the model reads the prompts itself, as a
    user's), judge the clips against the rows, and add the variety of a second draw
    (seed + 1) of the first ``variety_pairs`` rows."""
    generate = model.generate
    clips = generate([r["prompt"] for r in rows], [r["seed"] for r in rows])
    metrics: dict[str, Any] = judge(clips, rows)
    if variety_pairs:
        pairs = rows[:variety_pairs]
        again = generate([r["prompt"] for r in pairs], [r["seed"] + 1 for r in pairs])
        metrics["variety"] = float(variety(clips[: len(pairs)], again))
    metrics["prompts"] = len(rows)
    return metrics, clips
