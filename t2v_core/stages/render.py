"""render: a prompt catalog -> videos (WebM, GIF), renders.parquet and a gallery page."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from t2v_core.stages.base import Context, Stage, build_artifact
from t2v_core.store import ArtifactRef, digest_file

REPO_DATA = Path(__file__).resolve().parents[2] / "data"


def default_catalog(ctx: Context) -> Path:
    return Path(ctx.profile.render.catalog or REPO_DATA / "catalogs" / "demo.csv").resolve()


def build(ctx: Context, inputs: dict[str, ArtifactRef], catalog: Path | str | None = None) -> ArtifactRef:
    from t2v_core import render as renderer
    from t2v_core.checkpoints import require_published
    from t2v_core.generate import Text2Video

    cfg = ctx.profile.render
    train_ref = inputs["train"]
    catalog = Path(catalog).resolve() if catalog else default_catalog(ctx)
    if not catalog.is_file():
        raise FileNotFoundError(f"prompt catalog not found: {catalog}")

    def build_into(out: Path) -> dict[str, int]:
        model = Text2Video.from_checkpoint(require_published(Path(train_ref.path)), use_ema=cfg.use_ema)
        result = renderer.render_catalog(catalog, out, renderer.make_generate_fn(model), cfg,
                                         progress=ctx.report("render"))
        (out / "summary.json").write_text(json.dumps(result, indent=2, default=str))
        return {k: int(v) for k, v in result.items() if isinstance(v, (int, np.integer))}

    keys = {"train": train_ref.key, "catalog": digest_file(catalog)}
    return build_artifact(ctx, "render", {**ctx.settings(STAGE), "catalog": str(catalog)}, keys, build_into)


STAGE = Stage("render", ("train",), ("render",), build,
              "a prompt catalog rendered by the published model: videos, renders.parquet, index.html",
              options=("catalog",))
