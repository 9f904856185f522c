"""annotate: POS, lemma, morphology and named entities, one shard per tokenize shard."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow.parquet as pq

from t2v_core.stages.base import Context, Stage, build_artifact, link, shard_inputs, shards_of
from t2v_core.store import ArtifactRef, write_parquet


def plan(ctx: Context, inputs: dict[str, ArtifactRef]) -> list[ArtifactRef]:
    """The tokenize shards: each is annotated on its own, so a shard that did not change
    keeps its annotations."""
    return shards_of(ctx, inputs["tokenize"], "tokenize-shard")


def build_shard(ctx: Context, tokens_ref: ArtifactRef) -> ArtifactRef:
    from t2v_core import text

    cfg, model = ctx.profile.annotate, ctx.profile.tokenize.spacy_model

    def build_into(out: Path) -> dict[str, int]:
        nlp = text.cached_pipeline(model, "annotator")
        annotations, entities = text.annotate_tokens(nlp, pq.read_table(tokens_ref.file("tokens.parquet")), cfg)
        write_parquet(annotations, out / "annotations.parquet", text.ANNOTATIONS_SCHEMA)
        write_parquet(entities, out / "entities.parquet", text.ENTITIES_SCHEMA)
        return {"tokens": annotations.num_rows, "entities": entities.num_rows}

    params = {**ctx.settings(STAGE), "model": text.resolve_model_name(model)}
    return build_artifact(ctx, "annotate-shard", params, {"tokens": tokens_ref.key}, build_into)


def combine(ctx: Context, shard_refs: Sequence[ArtifactRef]) -> ArtifactRef:
    def build_into(out: Path) -> dict[str, int]:
        for i, ref in enumerate(shard_refs):
            link(ref.file("annotations.parquet"), out / "annotations" / f"part-{i:05d}.parquet")
            link(ref.file("entities.parquet"), out / "entities" / f"part-{i:05d}.parquet")
        counts = [r.manifest()["counts"] for r in shard_refs]
        return {"shards": len(shard_refs), "tokens": sum(c["tokens"] for c in counts),
                "entities": sum(c["entities"] for c in counts)}

    return build_artifact(ctx, "annotate", ctx.settings(STAGE), shard_inputs(shard_refs), build_into)


STAGE = Stage("annotate", ("tokenize",), ("annotate",), build_shard,
              "part-of-speech tags, lemmas and named entities into Parquet", plan=plan, combine=combine)
