"""Joins over stage artifacts that the trainer and the evaluation read: clips by video hash,
and captions with their token ids and clips. Part of the train and evaluate stages' code
version (t2v_core.pipeline.CODE), so a change here reruns them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from t2v_core.corpus.manifests import CorpusError
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
        raise CorpusError(f"no video of the corpus could be decoded into frames (frames artifact "
                          f"{frames_ref.key}); its clips.parquet gives each one's reason")
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
        raise CorpusError(f"no {split}-side caption has both token ids and frames; "
                          "see the ingest, tokenize and frames rejects")
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


@dataclass
class SideData:
    """One side (val or test) of a corpus, as the generic metrics read it: one clip and one
    caption per video, and the pool of the side's distinct caption texts that R-precision
    draws negatives from. Token ids are in the embed stage's vocabulary."""

    clips: np.ndarray  # (N, T, H, W, 3) uint8, one per video
    texts: list[str]  # (N) each video's caption (its first)
    token_ids: np.ndarray  # (N, L) int32
    lengths: np.ndarray  # (N,) int32
    pool_texts: list[str]  # (M) distinct caption texts of the side
    pool_ids: np.ndarray  # (M, L) int32
    pool_lengths: np.ndarray  # (M,) int32
    true: np.ndarray  # (N,) index into the pool of each video's caption
    exclude: np.ndarray  # (N, M) bool: captions of the video itself, never its negatives
    attributes: list[dict[str, str]]  # (N) each video's manifest attributes


def side_data(ingest_ref: ArtifactRef, embed_ref: ArtifactRef, frames_ref: ArtifactRef, split: str,
              max_videos: int = 0, seed: int = 0) -> SideData:
    """The videos of ``split`` that have frames and a tokenized caption; with ``max_videos``
    a seeded sample of them (the pool keeps every caption of the side)."""
    corpus = pq.read_table(ingest_ref.file("corpus.parquet"),
                           columns=["caption_id", "video_sha256", "caption", "split", "attributes"]).to_pandas()
    captions = pq.read_table(embed_ref.file("captions.parquet")).to_pandas()
    clips, clip_row = load_clips(frames_ref)
    joined = corpus[corpus["split"] == split].merge(captions, on="caption_id", how="inner")
    joined = joined[joined["video_sha256"].isin(clip_row.keys())].reset_index(drop=True)
    if joined.empty:
        raise CorpusError(f"no {split}-side video has both frames and a tokenized caption; "
                          "see the ingest, tokenize and frames rejects")
    token_ids = np.load(embed_ref.file("token_ids.npy"), mmap_mode="r")
    pool = joined.drop_duplicates("caption").reset_index(drop=True)
    pool_index = {t: i for i, t in enumerate(pool["caption"])}
    videos = joined.drop_duplicates("video_sha256").reset_index(drop=True)
    if max_videos and len(videos) > max_videos:
        pick = np.sort(np.random.default_rng(seed).choice(len(videos), max_videos, replace=False))
        videos = videos.iloc[pick].reset_index(drop=True)
    exclude = np.zeros((len(videos), len(pool)), dtype=bool)
    own = joined.groupby("video_sha256")["caption"].agg(list)
    for i, sha in enumerate(videos["video_sha256"]):
        exclude[i, [pool_index[t] for t in own[sha]]] = True
    rows = videos["row"].to_numpy()
    return SideData(
        clips=np.asarray(clips[videos["video_sha256"].map(clip_row).to_numpy()]),
        texts=videos["caption"].tolist(),
        token_ids=np.asarray(token_ids[rows], dtype=np.int32),
        lengths=videos["length"].to_numpy(np.int32),
        pool_texts=pool["caption"].tolist(),
        pool_ids=np.asarray(token_ids[pool["row"].to_numpy()], dtype=np.int32),
        pool_lengths=pool["length"].to_numpy(np.int32),
        true=videos["caption"].map(pool_index).to_numpy(np.int64),
        exclude=exclude,
        attributes=[json.loads(a or "{}") for a in videos["attributes"]],
    )
