"""What training is validated on (the train stage's ``eval_fn``): generic figures from the
val side through the matching model, and a corpus judge's where the corpus names one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from t2v_core.config import TrainConfig
from t2v_core.stages.base import corpus_of
from t2v_core.store import ArtifactRef

# What the Moving Shapes judge's validation reports (_judge_validation).
JUDGE_METRICS = ("seen_all_correct", "seen_coherent", "seen_correct_and_coherent", "seen_variety", "seen_weakest")


def validation(tcfg: TrainConfig, ingest_ref: ArtifactRef, embed_ref: ArtifactRef, frames_ref: ArtifactRef,
               match_ref: ArtifactRef) -> Callable[[Any], dict[str, float]]:
    """The metrics logged into metrics.parquet at each evaluation during training, from
    the validation side only (never test): R-precision of videos generated from up to
    ``[train] val_captions`` val captions and their variety, through the matching model;
    and where the corpus has a judge, the judge's figures on its validation prompts.
    [train] select_by picks the published checkpoint by one of these."""
    from t2v_core import scoring
    from t2v_core.datasets import side_data
    from t2v_core.matching import FILE, load_match

    side = side_data(ingest_ref, embed_ref, frames_ref, "val", tcfg.val_captions, tcfg.seed)
    score = scoring.validator(load_match(Path(match_ref.file(FILE))), side, tcfg.seed)
    judge = corpus_of(ingest_ref).get("judge", "")

    def evaluate(model: Any) -> dict[str, float]:
        def generate(rows: Sequence[int], seeds: Sequence[int]) -> np.ndarray:
            rows = list(rows)
            return model.generate_ids(side.token_ids[rows], side.lengths[rows], list(seeds))

        out = score(generate)
        if judge == "shapes":
            out.update(_judge_validation(model))
        elif judge in ("digits", "shapes2"):
            from t2v_core import assess_objects

            classifier = assess_objects.classifier_for(judge, Path(ingest_ref.manifest()["params"]["manifest"]))
            out.update(assess_objects.validation(model, judge, classifier))
        return out

    return evaluate


def _judge_validation(model: Any) -> dict[str, float]:
    """The Moving Shapes judge on 40 seen-composition prompts (training compositions, drawn
    with the evaluation's seed plus one, so neither their noise nor their order is the
    evaluate stage's). ``seen_weakest`` is the lowest of the three seen figures the judge
    has bars for: a checkpoint chosen on it is the one whose weakest bar is best."""
    from t2v_core.assess import judge_model

    m, _, _ = judge_model(model, 40, 40, 1235)
    seen = {"seen_all_correct": m["seen"]["all_correct"] or 0.0,
            "seen_coherent": m["seen"]["coherent"] or 0.0,
            "seen_correct_and_coherent": m["seen"]["correct_and_coherent"] or 0.0,
            "seen_variety": m["variety"]}
    return {**seen, "seen_weakest": min(seen["seen_all_correct"], seen["seen_coherent"], seen["seen_variety"])}
