from prefect import task

from t2v_core import pipeline
from t2v_core.config import Profile
from t2v_core.pipeline import ShardSpec
from t2v_core.store import ArtifactRef
from tasks._common import context, finish


@task(name="frames-shard", task_run_name="frames-shard-{shard.index}", retries=1)
def frames_shard_task(profile: Profile, workspace: str, shard: ShardSpec):
    """Decode, sample and resize one shard of videos into an .npy of clips."""
    return finish(pipeline.frames_shard(context(profile, workspace), shard))


@task(name="frames")
def combine_frames_task(profile: Profile, workspace: str, shards: list[ArtifactRef]):
    return finish(pipeline.combine_frames(context(profile, workspace), shards))
