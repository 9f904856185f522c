from prefect import task

from t2v_core import pipeline
from t2v_core.config import Profile
from t2v_core.store import ArtifactRef
from tasks._common import context, finish


@task(name="evaluate")
def evaluate_task(profile: Profile, workspace: str, train: ArtifactRef, match: ArtifactRef,
                  ingest: ArtifactRef, embed: ArtifactRef, frames: ArtifactRef):
    """Generate the test side's captions and measure them: metrics.json and a side-by-side page."""
    return finish(pipeline.evaluate(context(profile, workspace), train, match, ingest, embed, frames))
