"""embed: word vectors (word2vec, GloVe), the vocabulary, token ids and sentence vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from t2v_core.stages.base import Context, Stage, build_artifact
from t2v_core.store import ArtifactRef, digest_file


def build(ctx: Context, inputs: dict[str, ArtifactRef]) -> ArtifactRef:
    from t2v_core import embeddings

    cfg = ctx.profile.embed
    tokenize_ref, annotate_ref = inputs["tokenize"], inputs["annotate"]

    def build_into(out: Path) -> dict[str, int]:
        token_files = sorted(Path(tokenize_ref.path, "tokens").glob("part-*.parquet"))
        ann_files = sorted(Path(annotate_ref.path, "annotations").glob("part-*.parquet"))
        ent_files = sorted(Path(annotate_ref.path, "entities").glob("part-*.parquet"))
        result = embeddings.train_embeddings(token_files, cfg, out, ann_files, ent_files)
        return {k: int(v) for k, v in result.items() if isinstance(v, (int, np.integer))}

    keys = {"tokenize": tokenize_ref.key, "annotate": annotate_ref.key}
    if cfg.glove_path:
        keys["glove"] = digest_file(Path(cfg.glove_path))
    return build_artifact(ctx, "embed", ctx.settings(STAGE), keys, build_into)


STAGE = Stage("embed", ("tokenize", "annotate"), ("embed",), build,
              "word vectors, vocabulary, caption token ids and sentence vectors")
