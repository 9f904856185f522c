"""What the trainer and the evaluation read: ``TrainData`` and its batches, and the joins
over stage artifacts that make it (clips by video hash, captions with their token ids and
clips), for the training side and for the val and test sides."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from t2v_core.config import ModelConfig
from t2v_core.corpus.manifests import CorpusError
from t2v_core.store import ArtifactRef, digest_json


@dataclass
class TrainData:
    clips: np.ndarray  # (M, T, H, W, 3) uint8, may be a memmap
    caption_clip: np.ndarray  # (N,) int64: clip row of each training caption
    token_ids: np.ndarray  # (N, L) int32, 0 = pad, 1 = unk
    lengths: np.ndarray  # (N,) int32
    embeddings: np.ndarray  # (V, D) float32, row i = vector of vocab[i]
    vocab: list[str]
    data_id: str  # identity of data + vectors (artifact keys), stored in checkpoints

    def validate(self, cfg: ModelConfig) -> None:
        """Clear errors for data that does not fit the model, before any step runs."""
        m = self.clips.shape[0]
        if self.clips.ndim != 5 or self.clips.shape[-1] != 3 or self.clips.dtype != np.uint8:
            raise ValueError(f"clips must be uint8 (M, T, H, W, 3), got {self.clips.dtype} {self.clips.shape}")
        if self.clips.shape[1:4] != (cfg.frames, cfg.height, cfg.width):
            raise ValueError(
                f"clips are (T, H, W) = {self.clips.shape[1:4]} but the model makes "
                f"{(cfg.frames, cfg.height, cfg.width)}; make [frames] and [model] agree"
            )
        n = len(self.caption_clip)
        if n == 0:
            raise ValueError("no training captions")
        if self.token_ids.shape[0] != n or self.lengths.shape != (n,):
            raise ValueError(
                f"caption_clip ({n},), token_ids {self.token_ids.shape} and lengths "
                f"{self.lengths.shape} must have one row per caption"
            )
        if self.caption_clip.min() < 0 or self.caption_clip.max() >= m:
            raise ValueError(f"caption_clip must index the {m} clips")
        if self.embeddings.shape != (len(self.vocab), cfg.word_dim):
            raise ValueError(
                f"embeddings {self.embeddings.shape} must be (len(vocab), word_dim) = "
                f"{(len(self.vocab), cfg.word_dim)}; set [model] word_dim = [embed] vector_size"
            )
        if self.token_ids.min() < 0 or self.token_ids.max() >= len(self.vocab):
            raise ValueError("token ids outside the vocabulary")


def fill_model_config(cfg: ModelConfig, data: TrainData) -> ModelConfig:
    """vocab_size comes from the data; a config that names a different size is an error."""
    if cfg.vocab_size not in (0, len(data.vocab)):
        raise ValueError(f"model vocab_size {cfg.vocab_size} != vocabulary size {len(data.vocab)}")
    return dataclasses.replace(cfg, vocab_size=len(data.vocab))



def sample_batch(data: TrainData, batch: int, gen: torch.Generator,
                 part: slice = slice(None)) -> dict[str, torch.Tensor]:
    """Caption rows, their clips, and mismatched captions (a caption of a different clip).

    The whole batch is drawn whatever ``part`` is, so the draws (and the generator's state
    after them) do not depend on it; ``video`` holds only the clips of the rows in ``part``
    (one rank's slice), the token fields every row (the generated half and the terms over
    the whole batch need them)."""
    n = len(data.caption_clip)
    idx = torch.randint(n, (batch,), generator=gen).numpy()
    wrong = torch.randint(n, (batch,), generator=gen).numpy()
    # A wrong caption must describe another clip; shifting by one row fixes the rare clash.
    same = data.caption_clip[wrong] == data.caption_clip[idx]
    wrong[same] = (wrong[same] + 1) % n
    rows = data.caption_clip[idx[part]]
    clips = torch.from_numpy(np.ascontiguousarray(data.clips[rows]))
    video = clips.permute(0, 1, 4, 2, 3).float().div(127.5).sub(1)  # (b, T, 3, H, W) in [-1, 1]
    return {
        "video": video,
        "ids": torch.from_numpy(data.token_ids[idx].astype(np.int64)),
        "lengths": torch.from_numpy(data.lengths[idx].astype(np.int64)),
        "wrong_ids": torch.from_numpy(data.token_ids[wrong].astype(np.int64)),
        "wrong_lengths": torch.from_numpy(data.lengths[wrong].astype(np.int64)),
    }


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
