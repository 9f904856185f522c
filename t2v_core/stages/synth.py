"""synth: the built-in corpus of ``[synth] corpus`` (videos and manifest.csv)."""

from __future__ import annotations

from pathlib import Path

from t2v_core.stages.base import Context, Stage, build_artifact
from t2v_core.store import ArtifactRef


def build(ctx: Context, inputs: dict[str, ArtifactRef]) -> ArtifactRef | None:
    """Write the built-in corpus; None when the profile reads a manifest instead."""
    from t2v_core.corpus.builtin import write_builtin

    if ctx.profile.ingest.manifest:
        return None
    cfg = ctx.profile.synth

    def build_into(out: Path) -> dict[str, int]:
        write_builtin(cfg, out, progress=ctx.report("synth"))
        return {"videos": cfg.n_videos, "captions": cfg.n_videos * cfg.captions_per_video}

    return build_artifact(ctx, "synth", ctx.settings(STAGE), {}, build_into)


STAGE = Stage("synth", (), ("synth",), build,
              "the built-in corpus's videos and manifest (skipped when [ingest] manifest is set)")
