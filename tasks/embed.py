from prefect import task

from t2v_core import pipeline
from t2v_core.config import Profile
from t2v_core.store import ArtifactRef
from tasks._common import context, finish


@task(name="embed")
def embed_task(profile: Profile, workspace: str, tokenize: ArtifactRef, annotate: ArtifactRef):
    """word2vec (or GloVe) vectors, vocab, caption token ids and sentence vectors."""
    return finish(pipeline.embed(context(profile, workspace), tokenize, annotate))
