"""The tracking judges (t2v_core.judge_objects) applied to a trained model, for corpora that
name ``digits`` or ``shapes2``: prompts of seen and held-out compositions, rendered and judged
on their pixels, as t2v_core.assess does for Moving Shapes. Used by the evaluate stage and,
on seen prompts, during training.

The figures, for each of ``seen`` and ``held_out``: ``n`` clips; per attribute, the share of
the prompts' objects read right (``digit``, ``direction``; or ``colour``, ``shape``, ``size``,
``direction``); ``count``, the share of clips with as many objects as asked for;
``all_correct``, the share with the right count and every attribute of every object right;
``coherent`` and ``correct_and_coherent`` (t2v_core.judge_objects.SceneJudgement.coherent);
and the same again under ``one`` and ``two`` for the clips asked for one and for two objects.
``coherence.coherent_share`` is the coherent share over all clips.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from t2v_core import digit_classifier as dc
from t2v_core import judge_objects as jo
from t2v_core.assess import over_seed_sets
from t2v_core.corpus import digits as dg
from t2v_core.corpus import shapes2 as s2

JUDGES = ("digits", "shapes2")
SPLITS = (("seen", "train"), ("held_out", "test"))


def classifier_for(judge: str, manifest: Path) -> dc.DigitClassifier | None:
    """The digit classifier that Moving Digits' synth wrote beside its manifest (None for a
    judge that needs none)."""
    if judge != "digits":
        return None
    path = Path(manifest).parent / dc.FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the digits judge reads digits with the classifier that "
                                "`t2v corpus synth` writes beside the corpus's manifest")
    return dc.DigitClassifier.load(path)


def evaluation_prompts(judge: str, n_per_split: int, seed: int,
                       splits: Sequence[str] = ("train", "test")) -> list[dict[str, Any]]:
    """``n_per_split`` prompts of each of ``splits`` (train: seen compositions, test: held
    out). Digits: one- and two-digit prompts in turn, each cycling through its side's
    compositions. Shapes2: two objects, a held-out colour-shape pair (cycling through the
    five) in each held-out prompt."""
    if judge not in JUDGES:
        raise ValueError(f"unknown scene judge {judge!r}; expected one of {list(JUDGES)}")
    rng = np.random.default_rng(seed)
    rows = []
    for split in splits:
        if judge == "digits":
            pools = [dg.compositions(k)[split] for k in (1, 2)]
            orders = [rng.permutation(len(p)) for p in pools]
            for i in range(n_per_split):
                pool, order = pools[i % 2], orders[i % 2]
                comp = pool[order[(i // 2) % len(pool)]]
                objects = [{"digit": str(d), "direction": r} for d, r in comp]
                rows.append({"objects": objects, "split": split, "prompt": dg.prompt_for(comp),
                             "seed": int(rng.integers(2**31))})
        else:
            pairs = s2.HELD_PAIRS if split == "test" else s2.SEEN_PAIRS
            for i, k in enumerate(np.resize(rng.permutation(len(pairs)), n_per_split)):
                scene = s2.scene_with(pairs[int(k)], split == "test", rng)
                objects = [dict(zip(s2.ATTRIBUTES, o, strict=True)) for o in scene]
                rows.append({"objects": objects, "split": split, "prompt": s2.prompt_for(scene),
                             "seed": int(rng.integers(2**31))})
    return rows


def judge_clips(judge: str, clips: Sequence[np.ndarray], classifier: dc.DigitClassifier | None
                ) -> list[jo.SceneJudgement]:
    if judge == "digits":
        if classifier is None:
            raise ValueError("the digits judge needs the corpus's digit classifier")
        return [jo.judge_digits(np.asarray(c), classifier) for c in clips]
    return [jo.judge_shapes2(np.asarray(c)) for c in clips]


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def scene_accuracy(judged: Sequence[jo.SceneJudgement], rows: Sequence[dict[str, Any]],
                   attributes: Sequence[str]) -> dict[str, Any]:
    """The figures of the module's docstring for these clips (no ``one``/``two`` split)."""
    if len(judged) != len(rows):
        raise ValueError(f"{len(judged)} judgements but {len(rows)} prompt rows")
    hits = [jo.match(j, r["objects"], attributes) for j, r in zip(judged, rows, strict=True)]
    out: dict[str, Any] = {"n": len(rows)}
    for a in attributes:
        out[a] = _mean([float(h[a]) for clip in hits for h in clip])
    right = [j.count == len(r["objects"]) and all(all(h.values()) for h in clip)
             for j, r, clip in zip(judged, rows, hits, strict=True)]
    out["count"] = _mean([float(j.count == len(r["objects"])) for j, r in zip(judged, rows, strict=True)])
    out["all_correct"] = _mean([float(x) for x in right])
    out["coherent"] = _mean([float(j.coherent) for j in judged])
    out["correct_and_coherent"] = _mean([float(x and j.coherent) for x, j in zip(right, judged, strict=True)])
    return out


def split_accuracy(judged: Sequence[jo.SceneJudgement], rows: Sequence[dict[str, Any]],
                   attributes: Sequence[str]) -> dict[str, Any]:
    """``scene_accuracy`` for all these clips, and under ``one``/``two`` by objects asked for."""
    out = scene_accuracy(judged, rows, attributes)
    for name, k in (("one", 1), ("two", 2)):
        idx = [i for i, r in enumerate(rows) if len(r["objects"]) == k]
        if idx:
            out[name] = scene_accuracy([judged[i] for i in idx], [rows[i] for i in idx], attributes)
    return out


def evaluate_scenes(judge: str, clips: np.ndarray, rows: Sequence[dict[str, Any]],
                    classifier: dc.DigitClassifier | None) -> dict[str, Any]:
    """``seen`` and ``held_out`` figures of generated clips (N, T, H, W, 3) uint8 against the
    prompt rows they were made from."""
    judged = judge_clips(judge, clips, classifier)
    out: dict[str, Any] = {}
    for name, split in SPLITS:
        idx = [i for i, r in enumerate(rows) if r["split"] == split]
        if idx:
            out[name] = split_accuracy([judged[i] for i in idx], [rows[i] for i in idx], jo.ATTRIBUTES[judge])
    # over all clips, under the key the Moving Shapes judge uses for it
    out["coherence"] = {"n": len(judged), "coherent_share": _mean([float(j.coherent) for j in judged])}
    return out


def judge_model(model: Any, judge: str, classifier: dc.DigitClassifier | None,
                n_per_split: int, variety_pairs: int, seed: int, splits: Sequence[str] = ("train", "test"),
                seed_sets: int = 1) -> tuple[dict[str, Any], np.ndarray, list[dict[str, Any]]]:
    """Render ``n_per_split`` prompts of each of ``splits`` with a Text2Video and judge the
    pixels, over ``seed_sets`` noise-seed sets (assess.over_seed_sets). Returns the metrics,
    the clips and the prompt rows they were made from (the first set's)."""
    rows = evaluation_prompts(judge, n_per_split, seed, splits)
    metrics, clips = over_seed_sets(model, rows, variety_pairs,
                                    lambda c, r: evaluate_scenes(judge, c, r, classifier), seed, seed_sets)
    return metrics, clips, rows


def validation(model: Any, judge: str, classifier: dc.DigitClassifier | None) -> dict[str, float]:
    """The figures training logs and selects by (the keys of the Moving Shapes judge's
    validation), from 40 seen-composition prompts only, drawn with the evaluation's seed
    plus one. ``seen_weakest`` is the lowest of all-correct, coherence and variety."""
    m, _, _ = judge_model(model, judge, classifier, 40, 40, 1235, splits=("train",))
    seen = {"seen_all_correct": m["seen"]["all_correct"] or 0.0,
            "seen_coherent": m["seen"]["coherent"] or 0.0,
            "seen_correct_and_coherent": m["seen"]["correct_and_coherent"] or 0.0,
            "seen_variety": m["variety"]}
    return {**seen, "seen_weakest": min(seen["seen_all_correct"], seen["seen_coherent"], seen["seen_variety"])}


def manifest_objects(row: dict[str, Any], attributes: Sequence[str]) -> list[dict[str, str]]:
    """The objects a manifest row of Moving Digits or two-object Moving Shapes names
    (``objects``, ``<attribute>_1``, ``<attribute>_2``), read with every cell as text."""
    return [{a: str(row[f"{a}_{k}"]) for a in attributes} for k in range(1, int(row["objects"]) + 1)]
