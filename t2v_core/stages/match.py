"""match: the text-video matching model behind R-precision, Frechet distance and variety."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from t2v_core.stages.base import Context, Stage, build_artifact
from t2v_core.store import ArtifactRef


def build(ctx: Context, inputs: dict[str, ArtifactRef]) -> ArtifactRef:
    """Trained on the training side's real clips, with its R-precision on real val and test
    clips (the ceiling) and with shuffled captions (chance)."""
    import torch

    from t2v_core import matching, scoring
    from t2v_core.datasets import side_data, train_data

    cfg = ctx.profile.match
    ingest_ref, embed_ref, frames_ref = inputs["ingest"], inputs["embed"], inputs["frames"]

    def build_into(out: Path) -> dict[str, int]:
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        data = train_data(ingest_ref, embed_ref, frames_ref)
        model, losses = matching.train_match(data.clips, data.caption_clip, data.token_ids, data.lengths,
                                             data.embeddings, cfg)
        matching.save_match(model, out / matching.FILE)
        report = {"steps": cfg.steps, "loss_first": losses[0] if losses else None,
                  "loss_last": float(np.mean(losses[-20:])) if losses else None}
        for side in ("val", "test"):
            report[side] = scoring.calibration(model, side_data(ingest_ref, embed_ref, frames_ref, side), cfg.seed)
        (out / "match.json").write_text(json.dumps(report, indent=2))
        return {"train_videos": int(len(np.unique(data.caption_clip))), "train_captions": int(len(data.caption_clip))}

    keys = {"ingest": ingest_ref.key, "embed": embed_ref.key, "frames": frames_ref.key}
    return build_artifact(ctx, "match", ctx.settings(STAGE), keys, build_into)


STAGE = Stage("match", ("ingest", "embed", "frames"), ("match",), build,
              "a text-video matching model trained on real clips: the yardstick of the generic metrics")
