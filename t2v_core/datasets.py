"""Joins over stage artifacts that the trainer and the evaluation read: clips by video hash,
and captions with their token ids and clips. Part of the train and evaluate stages' code
version (t2v_core.pipeline.CODE), so a change here reruns them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from t2v_core.store import ArtifactRef, digest_json
from t2v_core.train import TrainData


def load_clips(frames_ref: ArtifactRef) -> tuple[np.ndarray, dict[str, int]]:
    """All ok clips as one (M, T, H, W, 3) array, and video hash -> row in it."""
    index = pq.read_table(frames_ref.file("clips.parquet")).to_pandas()
    index = index[index["status"] == "ok"]
    arrays, rows = [], {}
    for shard, part in index.groupby("shard", sort=True):
        mm = np.load(Path(frames_ref.path) / f"clips-{int(shard):05d}.npy", mmap_mode="r")
        arrays.append(np.asarray(mm[part["row"].to_numpy()]))
        for h in part["video_sha256"]:
            rows[h] = len(rows)
    if not arrays:
        raise ValueError(f"frames artifact {frames_ref.key} holds no usable clips")
    return np.concatenate(arrays), rows


def train_data(ingest_ref: ArtifactRef, embed_ref: ArtifactRef, frames_ref: ArtifactRef,
               split: str = "train") -> TrainData:
    """Join captions, token ids and clips into the trainer's input."""
    corpus = pq.read_table(ingest_ref.file("corpus.parquet"),
                           columns=["caption_id", "video_sha256", "split"]).to_pandas()
    captions = pq.read_table(embed_ref.file("captions.parquet")).to_pandas()
    clips, clip_row = load_clips(frames_ref)
    joined = corpus[corpus["split"] == split].merge(captions, on="caption_id", how="inner")
    joined = joined[joined["video_sha256"].isin(clip_row.keys())]
    if joined.empty:
        raise ValueError(f"no {split!r} captions have both token ids and frames")
    token_ids = np.load(embed_ref.file("token_ids.npy"), mmap_mode="r")
    vocab = pq.read_table(embed_ref.file("vocab.parquet")).to_pandas().sort_values("id")["token"].tolist()
    return TrainData(
        clips=clips,
        caption_clip=joined["video_sha256"].map(clip_row).to_numpy(np.int64),
        token_ids=np.asarray(token_ids[joined["row"].to_numpy()], dtype=np.int32),
        lengths=joined["length"].to_numpy(np.int32),
        embeddings=np.load(embed_ref.file("embedding_matrix.npy")),
        vocab=vocab,
        data_id=digest_json([ingest_ref.key, embed_ref.key, frames_ref.key])[:16],
    )
