from prefect import task

from t2v_core import pipeline
from t2v_core.config import Profile
from t2v_core.store import ArtifactRef
from tasks._common import context, finish


@task(name="ingest", retries=1)
def ingest_task(profile: Profile, workspace: str, synth_ref: ArtifactRef | None):
    """Manifest -> validated corpus.parquet + rejects.parquet."""
    return finish(pipeline.ingest(context(profile, workspace), synth_ref))
