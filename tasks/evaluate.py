from prefect import task

from t2v_core import pipeline
from t2v_core.config import Profile
from t2v_core.store import ArtifactRef
from tasks._common import context, finish


@task(name="evaluate")
def evaluate_task(profile: Profile, workspace: str, train: ArtifactRef, frames: ArtifactRef,
                  ingest: ArtifactRef):
    """Judge rendered held-out and seen prompts on their pixels: metrics.json."""
    return finish(pipeline.evaluate(context(profile, workspace), train, frames, ingest))
