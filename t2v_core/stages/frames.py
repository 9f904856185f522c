"""frames: each unique video decoded, sampled and resized into uint8 clips, in shards."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from t2v_core.stages.base import Context, ShardSpec, Stage, build_artifact, link, read, shard_inputs
from t2v_core.store import ArtifactRef, digest_json, write_parquet


def plan(ctx: Context, inputs: dict[str, ArtifactRef]) -> list[ShardSpec]:
    """Unique videos (by content hash) in corpus order, in fixed-size shards."""
    ingest_ref = inputs["ingest"]
    corpus = read(ingest_ref, "corpus.parquet", ["video_sha256"])
    hashes = list(dict.fromkeys(corpus.column("video_sha256").to_pylist()))
    size = ctx.profile.frames.shard_size
    return [
        ShardSpec("frames", i, ingest_ref.path, s, s + len(hashes[s:s + size]),
                  digest_json(hashes[s:s + size]), tuple(hashes[s:s + size]))
        for i, s in enumerate(range(0, len(hashes), size))
    ]


def build_shard(ctx: Context, shard: ShardSpec) -> ArtifactRef:
    from t2v_core import video

    cfg = ctx.profile.frames

    def build_into(out: Path) -> dict[str, int]:
        corpus = pq.read_table(Path(shard.source) / "corpus.parquet",
                               columns=["video_sha256", "video_id", "video_path"]).to_pandas()
        first = corpus.drop_duplicates("video_sha256").set_index("video_sha256")
        videos = [(h, str(first.at[h, "video_id"]), str(first.at[h, "video_path"])) for h in shard.items]
        index = video.extract_shard(videos, cfg, out / "clips.npy", shard.index,
                                    ctx.report(f"frames-{shard.index}"))
        write_parquet(index, out / "clips.parquet", video.CLIPS_SCHEMA)
        ok = sum(1 for s in index.column("status").to_pylist() if s == "ok")
        return {"videos_in": len(videos), "clips_out": ok, "rejected": len(videos) - ok}

    return build_artifact(ctx, "frames-shard", ctx.settings(STAGE), {"videos": shard.digest}, build_into)


def combine(ctx: Context, shard_refs: Sequence[ArtifactRef]) -> ArtifactRef:
    from t2v_core import video

    def build_into(out: Path) -> dict[str, int]:
        tables = []
        for i, ref in enumerate(shard_refs):
            link(ref.file("clips.npy"), out / f"clips-{i:05d}.npy")
            t = pq.read_table(ref.file("clips.parquet"))
            # The shard's own number depends on where it sat when first built; renumber.
            tables.append(t.set_column(t.schema.get_field_index("shard"), "shard",
                                       pa.array([i] * t.num_rows, pa.int32())))
        index = pa.concat_tables(tables) if tables else video.CLIPS_SCHEMA.empty_table()
        write_parquet(index, out / "clips.parquet", video.CLIPS_SCHEMA)
        ok = sum(1 for s in index.column("status").to_pylist() if s == "ok")
        return {"shards": len(shard_refs), "clips_out": ok, "rejected": index.num_rows - ok}

    return build_artifact(ctx, "frames", ctx.settings(STAGE), shard_inputs(shard_refs), build_into)


STAGE = Stage("frames", ("ingest",), ("frames",), build_shard,
              "every video decoded into uint8 clips (T, H, W, 3), with a rejects row for each it cannot read",
              plan=plan, combine=combine)
