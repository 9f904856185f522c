"""The render-catalog flow: a prompt catalog -> videos with a chosen (default: the newest
promoted) model, reported as Prefect artifacts: a progress bar, a table, and a link."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.settings import resolve_profile, workspace_path
from t2v_core import gc, pipeline, promote
from t2v_core.store import ArtifactRef, ArtifactStore
from tasks._common import unwrap
from tasks.render import render_task

TABLE_ROWS = 1000  # the table artifact shows the first rows; renders.parquet has them all


def model_ref(store: ArtifactStore, model: str = "", corpus_id: str = "") -> ArtifactRef:
    """A training run by key; else the default model of ``corpus_id``; else (no corpus
    given, or it has no default yet) the newest training run."""
    if model:
        ref = store.get("train", model)
        if ref is None:
            raise ValueError(f"no trained model {model!r} in {store.root}")
        return ref
    ref = (promote.default_model(store, corpus_id) if corpus_id else None) or store.latest("train")
    if ref is None:
        raise ValueError(f"no trained model in {store.root}: run `t2v run train` first")
    return ref


@flow(name="render-catalog", log_prints=True)
def render_catalog_flow(
    catalog: str,
    model: str = "",
    profile: str = "demo",
    workspace: str = "",
    samples: int = 0,
    formats: list[str] | None = None,
) -> dict[str, Any]:
    """Render every prompt of ``catalog`` (CSV, JSONL or text) with ``model`` (a training
    run's key; empty = the default model of the profile's corpus, else the newest one)."""
    render_over: dict[str, Any] = {}
    if samples:
        render_over["samples"] = samples
    if formats:
        render_over["formats"] = list(formats)
    prof = resolve_profile(profile, {"render": render_over} if render_over else None)
    ws = str(workspace_path(workspace))
    store = ArtifactStore(ws)
    try:
        corpus_id = promote.corpus_id_for(prof, store)
    except ValueError:  # the profile's corpus was never ingested here: no default model for it
        corpus_id = ""
    train_ref = model_ref(store, model, corpus_id)
    ref: ArtifactRef = unwrap(render_task(prof, ws, train_ref, str(Path(catalog).resolve())))
    gc.record_run(store, {"train": train_ref, "render": ref}, label="render-catalog")
    table = pq.read_table(ref.file("renders.parquet")).slice(0, TABLE_ROWS)
    rows = table.select(["id", "prompt", "status", "reason", "webm"]).to_pylist()
    create_table_artifact(rows, key="render-catalog-table", description=f"renders of {catalog}")
    gallery = ref.file("index.html")
    create_markdown_artifact(
        f"## Rendered `{Path(catalog).name}`\n\n"
        f"Gallery: [{gallery}](file://{gallery})\n\n"
        f"Model: `{train_ref.key}`; table: `{ref.file('renders.parquet')}`",
        key="render-catalog-gallery",
    )
    summary = ref.manifest()["counts"]
    print(f"rendered {summary} -> {gallery}")
    return {"render": ref.to_dict(), "gallery": str(gallery), "counts": summary}


__all__ = ["render_catalog_flow", "model_ref", "pipeline"]
