from prefect import task

from t2v_core import pipeline
from t2v_core.config import Profile
from t2v_core.pipeline import ShardSpec
from t2v_core.store import ArtifactRef
from tasks._common import context, finish


@task(name="tokenize-shard", task_run_name="tokenize-shard-{shard.index}", retries=1)
def tokenize_shard_task(profile: Profile, workspace: str, shard: ShardSpec):
    """spaCy tokenization of one shard of captions."""
    return finish(pipeline.tokenize_shard(context(profile, workspace), shard))


@task(name="tokenize")
def combine_tokenize_task(profile: Profile, workspace: str, shards: list[ArtifactRef]):
    """Join the shards into one Parquet dataset (one file per shard)."""
    return finish(pipeline.combine_tokenize(context(profile, workspace), shards))
