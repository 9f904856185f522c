from prefect import task

from t2v_core import pipeline
from t2v_core.config import Profile
from t2v_core.store import ArtifactRef
from tasks._common import context, finish


@task(name="match")
def match_task(profile: Profile, workspace: str, ingest: ArtifactRef, embed: ArtifactRef, frames: ArtifactRef):
    """Train the text-video matching model on the training side's real clips, and calibrate it."""
    return finish(pipeline.match(context(profile, workspace), ingest, embed, frames))
