"""The render-catalog flow: a prompt catalog, or prompts typed into the run form, -> videos
with a chosen (default: the newest promoted) model, reported as Prefect artifacts: a progress
bar, a table, and a markdown artifact that links to the gallery and shows its first GIFs.

Typed prompts become a CSV catalog in ``<workspace>/catalogs/``, named by a digest of its
content (t2v_core.catalog.typed_catalog), so typing the same prompts again is a cache hit.

The gallery's address: ``$T2V_GALLERY_URL`` (what `t2v dashboard` sets for the runs it serves,
flows/gallery.py) + ``/render/<key>/index.html``, with a link token when the Prefect API has
basic auth. Without T2V_GALLERY_URL the artifact gives the gallery's file path instead.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.gallery import GALLERY_URL_ENV, gallery_url
from flows.settings import resolve_profile, workspace_path
from t2v_core import gc, pipeline, promote
from t2v_core.catalog import typed_catalog
from t2v_core.store import ArtifactRef, ArtifactStore
from tasks._common import unwrap
from tasks.stages import stage_task

TABLE_ROWS = 1000  # the table artifact shows the first rows; renders.parquet has them all
PREVIEWS = 6  # GIFs shown inline in the markdown artifact
PREVIEW_PX = 96  # their size on the page
TYPED_DIR = "catalogs"  # under the workspace: catalogs written from typed prompts


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
    catalog: str = "",
    # Second, so the run form lists it below the catalog; a Sequence with () rather than
    # `list | None`, so the form shows a list to type into (the schema is an array of strings).
    prompts: Sequence[str] = (),
    model: str = "",
    profile: str = "demo",
    workspace: str = "",
    samples: int = 0,
    formats: list[str] | None = None,
) -> dict[str, Any]:
    """Render every prompt of ``catalog`` (a CSV, JSONL or text file on this machine) or the
    ``prompts`` typed here (one per item or line; each one's seed derives from its text)
    with ``model`` (a training run's key; empty = the default model of the profile's corpus,
    else the newest one). Give a catalog or prompts, not both."""
    typed = [str(p) for p in prompts if str(p).strip()]
    if bool(catalog.strip()) == bool(typed):
        raise ValueError("give either a catalog path or prompts to render, not both"
                         if typed else "nothing to render: give a catalog path or type prompts")
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
    source = typed_catalog(typed, store.root / TYPED_DIR) if typed else Path(catalog).resolve()
    ref: ArtifactRef = unwrap(stage_task("render")(prof, ws, "render", {"train": train_ref}, {"catalog": str(source)}))
    gc.record_run(store, {"train": train_ref, "render": ref}, label="render-catalog")

    counts = ref.manifest()["counts"]
    unknown = int(counts.get("with_unknown_words", 0))
    name = f"{counts.get('rows', 0)} typed prompts" if typed else Path(catalog).name
    table = pq.read_table(ref.file("renders.parquet")).slice(0, TABLE_ROWS)
    rows = [{**r, "unknown_words": ", ".join(r["unknown_words"] or [])} for r in
            table.select(["id", "prompt", "seed", "status", "reason", "unknown_words", "webm"]).to_pylist()]
    create_table_artifact(rows, key="render-catalog-table",
                          description=f"renders of {name}: {unknown} prompts with unknown words")
    base = os.environ.get(GALLERY_URL_ENV, "").strip()
    gallery = gallery_url(base, ref.key, auth_string=_auth_string()) if base else ""
    create_markdown_artifact(_markdown(ref, train_ref, name, counts, base), key="render-catalog-gallery",
                             description=f"gallery of {name}")
    if unknown:
        get_run_logger().warning(f"{unknown} of {counts['rows']} prompts have words the model does not "
                                 "know; they were rendered without them (column unknown_words)")
    where = gallery or str(ref.file("index.html"))
    print(f"rendered {counts} -> {where}")
    return {"render": ref.to_dict(), "gallery": str(ref.file("index.html")), "gallery_url": gallery,
            "counts": counts}


def _auth_string() -> str:
    """The Prefect API's basic-auth string, which the gallery server shares (link tokens)."""
    from prefect.settings import PREFECT_API_AUTH_STRING

    value = PREFECT_API_AUTH_STRING.value()
    return value.get_secret_value() if value is not None else ""


def _markdown(ref: ArtifactRef, train_ref: ArtifactRef, name: str, counts: dict[str, Any], base: str) -> str:
    """The gallery link, the counts and the first rows' GIFs inline (images on the gallery
    server: a file path would not load in a browser)."""
    auth = _auth_string()
    head = (f"## Rendered {_md(name)}\n\n{counts.get('videos', 0)} videos of {counts.get('rows', 0)} prompts: "
            f"{counts.get('ok', 0)} ok, {counts.get('rejected', 0)} rejected, {counts.get('failed', 0)} failed; "
            f"**{counts.get('with_unknown_words', 0)} with words the model does not know**.\n\n")
    tail = f"\n\nModel: `{train_ref.key}`; table: `{ref.file('renders.parquet')}`\n"
    if not base:
        gallery = ref.file("index.html")
        return (f"{head}Gallery: [{gallery}](file://{gallery}) (a file on the machine that rendered it; "
                f"`t2v dashboard` serves galleries over HTTP and links them here){tail}")
    lines = [f"{head}**[Open the gallery]({gallery_url(base, ref.key, auth_string=auth)})**\n"]
    table = pq.read_table(ref.file("renders.parquet"), columns=["prompt", "seed", "status", "unknown_words", "gif"])
    shown = table.filter(pc.and_(pc.equal(table.column("status"), "ok"), pc.is_valid(table.column("gif"))))
    shown = shown.slice(0, PREVIEWS).to_pylist()
    if shown:
        lines.append("| preview | prompt | seed | unknown words |\n| --- | --- | --- | --- |")
        for r in shown:
            image = gallery_url(base, ref.key, r["gif"], auth_string=auth)
            # An <img>, not ![](): markdown images show at the clip's size (16 to 64 pixels).
            lines.append(f'| <img src="{html.escape(image)}" alt="{html.escape(r["prompt"])}" width="{PREVIEW_PX}" '
                         f'height="{PREVIEW_PX}" style="image-rendering: pixelated"> | {_md(r["prompt"])} | '
                         f"{r['seed']} | {_md(', '.join(r['unknown_words'] or [])) or '-'} |")
    return "\n".join(lines) + tail


def _md(text: str) -> str:
    """User text inside markdown: no links, images, HTML or table cells of its own."""
    return re.sub(r"([\\`*_{}\[\]()<>#+!|~-])", r"\\\1", " ".join(str(text).split()))


__all__ = ["render_catalog_flow", "model_ref", "pipeline"]
