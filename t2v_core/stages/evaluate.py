"""evaluate: the published model on the test side: metrics.json and a side-by-side page."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from t2v_core.stages.base import Context, Stage, build_artifact, corpus_of
from t2v_core.store import ArtifactRef


def build(ctx: Context, inputs: dict[str, ArtifactRef]) -> ArtifactRef:
    """The generic metrics, and the corpus judge's where it has one."""
    from t2v_core.checkpoints import require_published
    from t2v_core.sidebyside import write_side_by_side

    def build_into(out: Path) -> dict[str, int]:
        metrics, side, clips = evaluate_model(ctx, require_published(Path(inputs["train"].path)), inputs)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
        n = write_side_by_side(out / "side_by_side", side.texts, side.clips, clips,
                               ctx.profile.evaluate.side_by_side, ctx.profile.render.fps)
        return {"test_videos": len(side.texts), "side_by_side": n}

    params = {**ctx.settings(STAGE), "use_ema": ctx.profile.render.use_ema}
    return build_artifact(ctx, "evaluate", params, {s: inputs[s].key for s in STAGE.inputs}, build_into)


def evaluate_model(ctx: Context, checkpoint: Path, inputs: dict[str, ArtifactRef]
                   ) -> tuple[dict[str, Any], Any, np.ndarray]:
    """The evaluation metrics of one checkpoint against this corpus's test side (also used
    by nightly promotion to re-score the current model). Returns the metrics, the test side
    and the first seed set's generated clips. Prompts are read as a user's would be, by the
    model itself (the spaCy model and token form stored in its checkpoint)."""
    from t2v_core import scoring
    from t2v_core.datasets import side_data
    from t2v_core.generate import Text2Video
    from t2v_core.matching import FILE, load_match

    cfg = ctx.profile.evaluate
    ingest_ref = inputs["ingest"]
    model = Text2Video.from_checkpoint(checkpoint, use_ema=ctx.profile.render.use_ema)
    side = side_data(ingest_ref, inputs["embed"], inputs["frames"], "test", cfg.max_captions, cfg.seed)
    ids, lengths = model.read(side.texts)[:2]

    def generate(rows: Sequence[int], seeds: Sequence[int]) -> np.ndarray:
        rows = list(rows)
        return model.generate_ids(ids[rows], lengths[rows], list(seeds))

    metrics, clips = scoring.generic_metrics(load_match(Path(inputs["match"].file(FILE))), side, generate, cfg)
    corpus = corpus_of(ingest_ref)
    name = corpus.get("judge")
    if name == "shapes":
        from t2v_core.assess import judge_model

        judged, _, _ = judge_model(model, cfg.prompts_per_split, cfg.variety_pairs, cfg.seed, cfg.seed_sets)
        metrics["judge"] = {"name": "shapes", **judged}
    elif name in ("digits", "shapes2"):
        from t2v_core import assess_objects

        classifier = assess_objects.classifier_for(name, Path(ingest_ref.manifest()["params"]["manifest"]))
        judged, _, _ = assess_objects.judge_model(model, name, classifier, cfg.prompts_per_split,
                                                  cfg.variety_pairs, cfg.seed, seed_sets=cfg.seed_sets)
        metrics["judge"] = {"name": name, **judged}
    metrics["corpus"] = corpus
    metrics["checkpoint"] = checkpoint.name
    return metrics, side, clips


STAGE = Stage("evaluate", ("train", "match", "ingest", "embed", "frames"), ("evaluate",), build,
              "generic metrics (R-precision, Frechet, KID, motion, variety) and the corpus judge's, on the test side")
