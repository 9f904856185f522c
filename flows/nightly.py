"""Nightly retraining: the whole pipeline over a (grown) corpus manifest, promotion for that
corpus, then retention (``t2v gc``).

Content-keyed shards make the run incremental: shards whose captions and videos are
unchanged come back Cached, so a corpus that grew by a few rows recomputes only the shards
those rows fall into. Training, rendering and evaluation then run for the new data, and the
new model becomes the corpus's default unless it scores below the current default in the
same evaluation (t2v_core.promote). Last, artifacts nothing needs any more are deleted
(t2v_core.gc, keeping what the profile's ``[runner] keep_runs`` newest runs used).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from flows.pipeline import pipeline_flow
from flows.settings import resolve_profile, task_runner_for, workspace_path
from t2v_core import gc, promote
from t2v_core.store import ArtifactRef, ArtifactStore
from tasks._common import unwrap
from tasks.stages import stage_task


@flow(name="nightly-retrain", log_prints=True)
def nightly_retrain_flow(
    manifest: str = "",
    profile: str = "demo",
    workspace: str = "",
    overrides: dict[str, dict[str, Any]] | None = None,
    metric: str = promote.DEFAULT_METRIC,
    continue_training: bool = False,
) -> dict[str, Any]:
    """Ingest ``manifest`` (empty = the profile's own corpus), train, render, evaluate,
    promote the new model for that corpus unless its ``metric`` is below the default
    model's, and delete what no recent run or model needs.
    ``continue_training``: warm-start from the corpus's default model instead of from scratch."""
    over = {k: dict(v) for k, v in (overrides or {}).items()}
    if manifest:
        over.setdefault("ingest", {})["manifest"] = manifest
    prof = resolve_profile(profile, over or None)
    ws = str(workspace_path(workspace))
    store = ArtifactStore(ws)
    previous = None
    if continue_training:
        try:
            previous = promote.default_model(store, promote.corpus_id_for(prof, store))
        except ValueError:  # the built-in corpus, never ingested here: no default model yet
            previous = None
    result = pipeline_flow.with_options(task_runner=task_runner_for(prof))(
        profile=profile, workspace=ws, overrides=over or None,
        init_from=previous.key if previous is not None else "")
    refs = {k: ArtifactRef(**v) for k, v in result["refs"].items()}

    corpus_id = promote.corpus_id_for(prof, store, ingest=refs["ingest"])
    candidate_metrics = json.loads(refs["evaluate"].file("metrics.json").read_text())
    # Like for like: the current default is scored again by tonight's evaluation (tonight's
    # test side and matching model), beside the new model, before they are compared.
    current = promote.default_model(store, corpus_id)
    current_metrics = None
    if current is not None and current.key != refs["train"].key:
        inputs = {**{s: refs[s] for s in ("match", "ingest", "embed", "frames")}, "train": current}
        rescored = unwrap(stage_task("evaluate")(prof, ws, "evaluate", inputs, {}))
        current_metrics = json.loads(rescored.file("metrics.json").read_text())
    decision = promote.promote(store, corpus_id, refs["train"], candidate_metrics, current_metrics, metric)

    garbage = gc.plan_gc(store, prof.runner.keep_runs)
    freed = gc.collect(store, garbage)

    verdict = "promoted" if decision.promoted else "kept the previous model"
    current_value = "not scored" if math.isnan(decision.current_value) else f"{decision.current_value:.4f}"
    create_markdown_artifact(
        f"## Nightly retrain of `{corpus_id}`: {verdict}\n\n"
        f"- new model `{decision.candidate}`: {metric} = {decision.candidate_value:.4f}\n"
        f"- previous default `{decision.current or '-'}`: {metric} = {current_value}\n"
        f"- {decision.reason}\n- ran: {result['ran']}\n- cached: {result['cached']}\n"
        f"- gc: deleted {len(garbage)} artifacts, freed {gc.human(freed)}\n",
        key="nightly-retrain",
    )
    print(f"nightly ({corpus_id}): {verdict} ({decision.reason}); ran {result['ran']}, cached {result['cached']}")
    print(f"nightly gc: deleted {len(garbage)} artifacts, freed {gc.human(freed)} "
          f"(keeping the last {prof.runner.keep_runs} runs)")
    return {**result, "corpus": corpus_id, "promotion": asdict(decision), "current_metrics": current_metrics,
            "gc": {"deleted": [f"{g.stage}/{g.key}" for g in garbage], "freed_bytes": freed}}
