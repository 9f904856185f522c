"""tokenize: captions -> spaCy tokens, in fixed-size shards of the corpus."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow.parquet as pq

from t2v_core.stages.base import (Context, ShardSpec, Stage, build_artifact, concat_parquet, link, read,
                                  shard_inputs)
from t2v_core.store import ArtifactRef, digest_json, write_parquet


def plan(ctx: Context, inputs: dict[str, ArtifactRef]) -> list[ShardSpec]:
    """Fixed-size shards in manifest order; each keyed by its captions' content, so a corpus
    that grows at its end changes only its last shards."""
    ingest_ref = inputs["ingest"]
    corpus = read(ingest_ref, "corpus.parquet", ["caption_id", "caption"])
    size = ctx.profile.ingest.shard_size
    specs = []
    for i, start in enumerate(range(0, corpus.num_rows, size)):
        part = corpus.slice(start, size)
        digest = digest_json([part.column("caption_id").to_pylist(), part.column("caption").to_pylist()])
        specs.append(ShardSpec("tokenize", i, ingest_ref.path, start, start + part.num_rows, digest))
    return specs


def build_shard(ctx: Context, shard: ShardSpec) -> ArtifactRef:
    from t2v_core import text

    cfg = ctx.profile.tokenize

    def build_into(out: Path) -> dict[str, int]:
        corpus = pq.read_table(Path(shard.source) / "corpus.parquet", columns=["caption_id", "caption"])
        part = corpus.slice(shard.start, shard.stop - shard.start)
        nlp = text.cached_pipeline(cfg.spacy_model, "tokenizer")
        tokens, rejects = text.tokenize_captions(
            nlp, part.column("caption_id").to_pylist(), part.column("caption").to_pylist(), cfg
        )
        write_parquet(tokens, out / "tokens.parquet", text.TOKENS_SCHEMA)
        write_parquet(rejects, out / "rejects.parquet", text.TEXT_REJECTS_SCHEMA)
        n_ok = len(set(tokens.column("caption_id").to_pylist()))
        return {"captions_in": part.num_rows, "captions_out": n_ok, "rejected": rejects.num_rows,
                "tokens": tokens.num_rows}

    params = {**ctx.settings(STAGE), "model": text.resolve_model_name(cfg.spacy_model)}
    return build_artifact(ctx, "tokenize-shard", params, {"shard": shard.digest}, build_into)


def combine(ctx: Context, shard_refs: Sequence[ArtifactRef]) -> ArtifactRef:
    def build_into(out: Path) -> dict[str, int]:
        for i, ref in enumerate(shard_refs):
            link(ref.file("tokens.parquet"), out / "tokens" / f"part-{i:05d}.parquet")
        rejected = concat_parquet([r.file("rejects.parquet") for r in shard_refs], out / "rejects.parquet")
        counts = [r.manifest()["counts"] for r in shard_refs]
        return {"shards": len(shard_refs), "captions_out": sum(c["captions_out"] for c in counts),
                "rejected": rejected, "tokens": sum(c["tokens"] for c in counts)}

    return build_artifact(ctx, "tokenize", ctx.settings(STAGE), shard_inputs(shard_refs), build_into)


STAGE = Stage("tokenize", ("ingest",), ("tokenize",), build_shard,
              "spaCy tokens of every caption, with a rejects row for each caption it cannot take",
              plan=plan, combine=combine)
