from prefect import task

from t2v_core import pipeline
from t2v_core.config import Profile
from tasks._common import context, finish


@task(name="synth", retries=1)
def synth_task(profile: Profile, workspace: str):
    """Write the built-in Moving Shapes corpus."""
    return finish(pipeline.synth(context(profile, workspace)))
