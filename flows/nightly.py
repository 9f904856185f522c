"""Nightly retraining: the whole pipeline over a (grown) corpus manifest, then promotion.

Content-keyed shards make the run incremental: shards whose captions and videos are
unchanged come back Cached, so a corpus that grew by a few rows recomputes only the shards
those rows fall into. Training, rendering and evaluation then run for the new data, and the
new model becomes the default for render-catalog only if its evaluation accuracy is not
below the current default's (t2v_core.promote).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows.pipeline import pipeline_flow
from flows.settings import resolve_profile, task_runner_for, workspace_path
from t2v_core import promote
from t2v_core.store import ArtifactRef, ArtifactStore


@flow(name="nightly-retrain", log_prints=True)
def nightly_retrain_flow(
    manifest: str = "",
    profile: str = "demo",
    workspace: str = "",
    overrides: dict[str, dict[str, Any]] | None = None,
    metric: str = promote.DEFAULT_METRIC,
    continue_training: bool = False,
) -> dict[str, Any]:
    """Ingest ``manifest`` (empty = the profile's own corpus), train, render, evaluate, and
    promote the new model unless its ``metric`` is below the default model's.
    ``continue_training``: warm-start from the default model instead of from scratch."""
    over = {k: dict(v) for k, v in (overrides or {}).items()}
    if manifest:
        over.setdefault("ingest", {})["manifest"] = manifest
    prof = resolve_profile(profile, over or None)
    ws = str(workspace_path(workspace))
    previous = promote.default_model(ArtifactStore(ws)) if continue_training else None
    result = pipeline_flow.with_options(task_runner=task_runner_for(prof))(
        profile=profile, workspace=ws, overrides=over or None,
        init_from=previous.key if previous is not None else "")
    refs = {k: ArtifactRef(**v) for k, v in result["refs"].items()}
    decision = promote.promote(ArtifactStore(ws), refs["train"], refs["evaluate"], metric)
    verdict = "promoted" if decision.promoted else "kept the previous model"
    create_markdown_artifact(
        f"## Nightly retrain: {verdict}\n\n"
        f"- new model `{decision.candidate}`: {metric} = {decision.candidate_accuracy:.4f}\n"
        f"- previous default `{decision.previous or '-'}`: {metric} = {decision.previous_accuracy:.4f}\n"
        f"- {decision.reason}\n- ran: {result['ran']}\n- cached: {result['cached']}\n",
        key="nightly-retrain",
    )
    print(f"nightly: {verdict} ({decision.reason}); ran {result['ran']}, cached {result['cached']}")
    return {**result, "promotion": asdict(decision)}
