from prefect import task

from t2v_core import pipeline
from t2v_core.config import Profile
from t2v_core.store import ArtifactRef
from tasks._common import context, finish


@task(name="train")
def train_task(profile: Profile, workspace: str, ingest: ArtifactRef, embed: ArtifactRef,
               frames: ArtifactRef, match: ArtifactRef, init_from: ArtifactRef | None = None):
    """Train the GAN; a rerun resumes from the newest checkpoint in the artifact folder.
    ``init_from``: a previous training run to warm-start from."""
    return finish(pipeline.train(context(profile, workspace), ingest, embed, frames, match, init_from=init_from))
