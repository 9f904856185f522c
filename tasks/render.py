from pathlib import Path

from prefect import task

from t2v_core import pipeline
from t2v_core.config import Profile
from t2v_core.store import ArtifactRef
from tasks._common import context, finish


@task(name="render")
def render_task(profile: Profile, workspace: str, train: ArtifactRef, catalog: str = ""):
    """A prompt catalog -> WebM + GIF videos, renders.parquet and a gallery page."""
    ctx = context(profile, workspace)
    return finish(pipeline.render(ctx, train, Path(catalog) if catalog else None))
