"""Every stage as a Prefect task, from the stage registry (t2v_core.pipeline.REGISTRY).

Three generic tasks serve every stage; ``stage_task``, ``shard_task`` and ``combine_task``
name each run after its stage (``frames``, ``frames-shard-3``), so the UI shows the DAG as
before. They are thin: the stage functions in t2v_core.stages do the work, and the artifact
store is the cache (tasks._common.finish marks a reused artifact's run "Cached").
"""

from __future__ import annotations

from typing import Any

from prefect import task

from t2v_core.config import Profile
from t2v_core.pipeline import REGISTRY
from t2v_core.store import ArtifactRef
from tasks._common import context, finish

# Setting-up stages retry once: a shard or an ingest that failed on a passing I/O error
# (a decoder crash, a full disk freed since) usually succeeds the second time. Training,
# matching and evaluation do not: a rerun resumes training from its newest checkpoint.
RETRIED = {"synth", "ingest"}


@task(name="stage")
def _stage(profile: Profile, workspace: str, stage: str, inputs: dict[str, ArtifactRef],
           options: dict[str, Any]):
    return finish(REGISTRY[stage].build(context(profile, workspace), inputs, **options))


@task(name="shard", retries=1)
def _shard(profile: Profile, workspace: str, stage: str, item: Any, index: int):
    return finish(REGISTRY[stage].build(context(profile, workspace), item))


@task(name="combine")
def _combine(profile: Profile, workspace: str, stage: str, shards: list[ArtifactRef]):
    return finish(REGISTRY[stage].combine(context(profile, workspace), shards))  # type: ignore[misc]


def stage_task(stage: str):
    """The task that runs unsharded ``stage``: call it with (profile, workspace, stage,
    inputs, options)."""
    return _stage.with_options(name=stage, retries=1 if stage in RETRIED else 0)


def shard_task(stage: str):
    """The task that builds one shard of ``stage``; map it over (..., items, indices)."""
    return _shard.with_options(name=f"{stage}-shard", task_run_name=f"{stage}-shard-{{index}}")


def combine_task(stage: str):
    """The task that joins the shards of ``stage`` into its artifact."""
    return _combine.with_options(name=stage)
