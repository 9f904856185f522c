from prefect import task

from t2v_core import pipeline
from t2v_core.config import Profile
from t2v_core.store import ArtifactRef
from tasks._common import context, finish


@task(name="annotate-shard", retries=1)
def annotate_shard_task(profile: Profile, workspace: str, tokens: ArtifactRef):
    """POS, lemma, morphology and NER for one tokenize shard."""
    return finish(pipeline.annotate_shard(context(profile, workspace), tokens))


@task(name="annotate")
def combine_annotate_task(profile: Profile, workspace: str, shards: list[ArtifactRef]):
    return finish(pipeline.combine_annotate(context(profile, workspace), shards))
