"""The pipeline flow: every stage as a Prefect task, shards mapped concurrently.

``pipeline_flow(stages=["frames"])`` runs one stage with whatever it needs; inputs that are
already in the artifact store come back at once as Cached task runs.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from prefect import flow, get_run_logger

from flows.settings import resolve_profile, task_runner_for, workspace_path
from t2v_core import gc, pipeline
from t2v_core.store import ArtifactRef, ArtifactStore
from tasks._common import unwrap
from tasks.annotate import annotate_shard_task, combine_annotate_task
from tasks.embed import embed_task
from tasks.evaluate import evaluate_task
from tasks.frames import combine_frames_task, frames_shard_task
from tasks.ingest import ingest_task
from tasks.match import match_task
from tasks.render import render_task
from tasks.synth import synth_task
from tasks.tokenize import combine_tokenize_task, tokenize_shard_task
from tasks.train import train_task


def _results(futures: Any) -> list[ArtifactRef]:
    return [unwrap(r) for r in futures.result()]


@flow(name="t2v-pipeline", log_prints=True)
def pipeline_flow(
    profile: str = "demo",
    stages: list[str] | None = None,
    workspace: str = "",
    overrides: dict[str, dict[str, Any]] | None = None,
    catalog: str = "",
    init_from: str = "",
) -> dict[str, Any]:
    """Run the given stages (default: all) and what they need. ``init_from``: the key of a
    training run to warm-start training from (nightly retraining continues that way).

    Returns ``{"refs": {stage: ref}, "ran": {stage: n}, "cached": {stage: n}}``, where the
    counts include shard task runs (``tokenize-shard`` ...), so callers can see what ran."""
    prof = resolve_profile(profile, overrides)
    ws = str(workspace_path(workspace))
    plan = pipeline.closure(stages or pipeline.STAGES)
    refs: dict[str, Any] = {}
    done: list[ArtifactRef] = []
    tok_shards: list[ArtifactRef] = []

    for stage in plan:
        if stage == "synth":
            refs["synth"] = None if prof.ingest.manifest else unwrap(synth_task(prof, ws))
        elif stage == "ingest":
            refs["ingest"] = unwrap(ingest_task(prof, ws, refs["synth"]))
        elif stage == "tokenize":
            specs = pipeline.plan_text_shards(pipeline.Context(prof, ArtifactStore(ws)), refs["ingest"])
            tok_shards = _results(tokenize_shard_task.map(prof, ws, specs))
            done += tok_shards
            refs["tokenize"] = unwrap(combine_tokenize_task(prof, ws, tok_shards))
        elif stage == "annotate":
            ann = _results(annotate_shard_task.map(prof, ws, tok_shards))
            done += ann
            refs["annotate"] = unwrap(combine_annotate_task(prof, ws, ann))
        elif stage == "embed":
            refs["embed"] = unwrap(embed_task(prof, ws, refs["tokenize"], refs["annotate"]))
        elif stage == "frames":
            specs = pipeline.plan_frame_shards(pipeline.Context(prof, ArtifactStore(ws)), refs["ingest"])
            shards = _results(frames_shard_task.map(prof, ws, specs))
            done += shards
            refs["frames"] = unwrap(combine_frames_task(prof, ws, shards))
        elif stage == "match":
            refs["match"] = unwrap(match_task(prof, ws, refs["ingest"], refs["embed"], refs["frames"]))
        elif stage == "train":
            warm = ArtifactStore(ws).get("train", init_from) if init_from else None
            if init_from and warm is None:
                raise ValueError(f"init_from: no committed training run {init_from!r}")
            refs["train"] = unwrap(train_task(prof, ws, refs["ingest"], refs["embed"], refs["frames"],
                                              refs["match"], warm))
        elif stage == "render":
            refs["render"] = unwrap(render_task(prof, ws, refs["train"], catalog))
        elif stage == "evaluate":
            refs["evaluate"] = unwrap(evaluate_task(prof, ws, refs["train"], refs["match"], refs["ingest"],
                                                    refs["embed"], refs["frames"]))

    refs = {k: unwrap(v) for k, v in refs.items() if v is not None}
    gc.record_run(ArtifactStore(ws), refs, label=",".join(plan))  # what `t2v gc` keeps
    done += refs.values()
    ran = Counter(r.stage for r in done if not r.cached)
    cached = Counter(r.stage for r in done if r.cached)
    logger = get_run_logger()
    for stage in plan:
        if stage in refs:
            how = "cached" if refs[stage].cached else "built"
            logger.info("%-9s %s  %s", stage, how, refs[stage].path)
    return {"refs": {k: v.to_dict() for k, v in refs.items()}, "ran": dict(ran), "cached": dict(cached)}


def run(profile: str = "demo", stages: list[str] | None = None, workspace: str = "",
        overrides: dict[str, dict[str, Any]] | None = None, catalog: str = "",
        init_from: str = "") -> dict[str, Any]:
    """Run the pipeline flow with the profile's task runner."""
    prof = resolve_profile(profile, overrides)
    runner = task_runner_for(prof)
    return pipeline_flow.with_options(task_runner=runner)(
        profile=profile, stages=stages, workspace=workspace, overrides=overrides, catalog=catalog,
        init_from=init_from,
    )
