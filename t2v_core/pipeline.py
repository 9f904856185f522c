"""The stage registry, and the pipeline run in one process without Prefect.

Every stage is declared once, at the end of its module in ``t2v_core/stages/`` (name, inputs,
settings sections, builder, and for a sharded stage its plan and combine). The Prefect flows,
the CLI, ``t2v stages``, the run-stage deployment and ``closure`` read ``REGISTRY``; nothing
else lists stages. Pure: no Prefect here.

Each stage computes its cache key (its settings, its inputs' keys, its code version) and
either returns the committed artifact at once (``ref.cached``) or builds it. Sharded stages
(tokenize, annotate, frames) split their input into shards whose keys digest their content,
build each, and join them (hard links, one file per shard): a corpus that grows at its end
changes only its last shards.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from t2v_core.config import Profile
from t2v_core.stages import annotate, embed, evaluate, frames, ingest, match, render, synth, tokenize, train
from t2v_core.stages.base import Context, Progress, ShardSpec, Stage
from t2v_core.store import ArtifactRef, ArtifactStore

__all__ = ["REGISTRY", "STAGES", "Context", "ShardSpec", "Stage", "closure", "run_pipeline", "run_stage"]

# In a runnable order: every stage after its inputs.
REGISTRY: dict[str, Stage] = {
    m.STAGE.name: m.STAGE
    for m in (synth, ingest, tokenize, annotate, embed, frames, match, train, render, evaluate)
}
STAGES = tuple(REGISTRY)


def closure(stages: Sequence[str]) -> list[str]:
    """The stages needed to produce ``stages``, in a runnable order."""
    need: set[str] = set()

    def visit(s: str) -> None:
        if s not in REGISTRY:
            raise ValueError(f"unknown stage {s!r}; stages: {', '.join(STAGES)}")
        if s not in need:
            need.add(s)
            for d in REGISTRY[s].inputs:
                visit(d)

    for s in stages:
        visit(s)
    return [s for s in STAGES if s in need]


def inputs_of(stage: Stage, refs: dict[str, ArtifactRef | None]) -> dict[str, ArtifactRef]:
    """The input references a stage reads, from what the run has built so far (synth is
    None when a manifest replaces it)."""
    return {name: ref for name in stage.inputs if (ref := refs.get(name)) is not None}


def run_stage(ctx: Context, name: str, refs: dict[str, ArtifactRef | None],
              **options: Any) -> tuple[ArtifactRef | None, list[ArtifactRef]]:
    """Build (or reuse) one stage from its inputs in ``refs``; returns its artifact and, for
    a sharded stage, its shards' artifacts."""
    stage = REGISTRY[name]
    unknown = sorted(set(options) - set(stage.options))
    if unknown:
        raise ValueError(f"stage {name!r} takes no option {unknown}; its options: {list(stage.options) or 'none'}")
    inputs = inputs_of(stage, refs)
    if stage.sharded:
        assert stage.plan is not None and stage.combine is not None
        shards = [stage.build(ctx, item) for item in stage.plan(ctx, inputs)]
        return stage.combine(ctx, shards), shards
    return stage.build(ctx, inputs, **options), []


def run_pipeline(profile: Profile, workspace: str | Path, stages: Sequence[str] = STAGES,
                 progress: Progress | None = None,
                 options: dict[str, dict[str, Any]] | None = None) -> dict[str, ArtifactRef]:
    """Run ``stages`` and what they need, in this process and sequentially (no Prefect).
    ``options``: keyword options per stage (``{"render": {"catalog": path}}``).

    The Prefect flows run the same stage functions through tasks and map the shards
    concurrently; this is the plain version for benchmarks and library use."""
    ctx = Context(profile, ArtifactStore(workspace), progress)
    refs: dict[str, ArtifactRef | None] = {}
    for name in closure(stages):
        refs[name] = run_stage(ctx, name, refs, **(options or {}).get(name, {}))[0]
    return {k: v for k, v in refs.items() if v is not None}
