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
from tasks.stages import combine_task, shard_task, stage_task


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
    options: dict[str, dict[str, Any]] = {"render": {"catalog": catalog or None}}
    if init_from:
        warm = ArtifactStore(ws).get("train", init_from)
        if warm is None:
            raise ValueError(f"init_from: no committed training run {init_from!r}")
        options["train"] = {"init_from": warm}

    for name in plan:
        stage = pipeline.REGISTRY[name]
        inputs = pipeline.inputs_of(stage, refs)
        if stage.sharded:
            assert stage.plan is not None
            items = stage.plan(pipeline.Context(prof, ArtifactStore(ws)), inputs)
            shards = _results(shard_task(name).map(prof, ws, name, items, list(range(len(items)))))
            done += shards
            refs[name] = unwrap(combine_task(name)(prof, ws, name, shards))
        else:
            refs[name] = unwrap(stage_task(name)(prof, ws, name, inputs, options.get(name, {})))

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
