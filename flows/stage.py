"""The run-stage flow: one stage (and whatever it needs) with a profile, for the UI and
for reruns. Inputs that are already in the artifact store come back as Cached task runs."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.pipeline import pipeline_flow
from flows.settings import resolve_profile, task_runner_for
from t2v_core.pipeline import STAGES


@flow(name="run-stage", log_prints=True)
def run_stage_flow(
    stage: str,
    profile: str = "demo",
    workspace: str = "",
    overrides: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run ``stage`` (one of synth, ingest, tokenize, annotate, embed, frames, train, render,
    evaluate) with what it needs; returns the pipeline flow's refs and ran/cached counts."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    runner = task_runner_for(resolve_profile(profile, overrides))
    result = pipeline_flow.with_options(task_runner=runner)(profile=profile, stages=[stage], workspace=workspace, overrides=overrides)
    print(f"{stage}: ran {result['ran']}, cached {result['cached']}")
    return result
