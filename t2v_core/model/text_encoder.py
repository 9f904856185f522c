"""Text encoder: word vectors -> a GRU -> token states V and a sentence vector s."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from t2v_core.config import ModelConfig


def centre_vectors(vectors: np.ndarray) -> np.ndarray:
    """Remove the vocabulary's mean vector and scale to unit variance; row 0 (<pad>) stays 0.

    Skip-gram vectors share a large common direction (Mu & Viswanath, "All-but-the-top",
    2018), which centring removes while keeping the geometry. It does not separate words
    used in the same slot: word2vec learns a word from its contexts, and slot-mates have the
    same ones. On the demo's captions "red" / "green" are at cosine 0.93 before and 0.86
    after, "circle" / "triangle" 0.93 and 0.88; on Moving Digits' any two numerals at
    0.74-0.87. What tells them apart is a small remainder of the vector; whitening the table
    to make them distinct did not by itself fix held-out digit-direction pairs
    (docs/experiments.md, "Held-out digits come out as another digit").
    """
    x = np.asarray(vectors, dtype=np.float32).copy()
    if len(x) > 2:
        x[1:] -= x[1:].mean(axis=0, keepdims=True)
        x[1:] /= max(float(x[1:].std()), 1e-6)
    x[0] = 0.0
    return x


class TextEncoder(nn.Module):
    """A bidirectional GRU over the embed stage's word vectors.

    V (B, L, text_dim) are the token states the generator attends over: the GRU's output
    plus a linear map of the word's own vector. The residual keeps each word's identity in
    its state, so an attention head that picks the colour word reads the colour and not a
    mix with the shape next to it; that is what lets held-out (colour, shape) pairs compose.
    s (B, text_dim) is the mean of the token states over the caption: every word reaches s
    in one step, where a GRU's last state would have to carry a mid-caption colour word
    through the rest of the sentence (which costs the discriminator hundreds of steps).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.vocab_size < 2:
            raise ValueError("ModelConfig.vocab_size must be filled from the embed stage (>= 2)")
        if cfg.text_dim % 2:
            raise ValueError(f"text_dim must be even (two GRU directions), got {cfg.text_dim}")
        self.embed = nn.Embedding(cfg.vocab_size, cfg.word_dim, padding_idx=0)
        # Frozen word vectors by default: the embed stage owns them, and a frozen table keeps
        # words never seen in a training caption where word2vec put them.
        self.embed.weight.requires_grad_(cfg.finetune_words)
        self.gru = nn.GRU(cfg.word_dim, cfg.text_dim // 2, batch_first=True, bidirectional=True)
        self.skip = nn.Linear(cfg.word_dim, cfg.text_dim)
        self.out_dim = cfg.text_dim

    @torch.no_grad()
    def load_vectors(self, vectors: np.ndarray) -> None:
        """Copy the embed stage's (V, D) float32 matrix into the embedding table, centred
        and scaled (see ``centre_vectors``)."""
        if vectors.shape != tuple(self.embed.weight.shape):
            raise ValueError(
                f"word vectors {vectors.shape} do not match the model's "
                f"(vocab_size, word_dim) = {tuple(self.embed.weight.shape)}"
            )
        self.embed.weight.copy_(torch.from_numpy(centre_vectors(vectors)))


    @staticmethod
    def mask(ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, L) bool: the caption's real tokens; an empty caption counts its first token,
        as ``forward`` encodes it."""
        L = ids.shape[1]
        return torch.arange(L, device=ids.device)[None, :] < lengths.clamp(min=1, max=L).to(ids.device)[:, None]

    def forward(
        self, ids: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """ids (B, L) int, lengths (B,) -> V (B, L, text_dim), mask (B, L) bool, s (B, text_dim)."""
        assert ids.dim() == 2 and lengths.shape == ids.shape[:1], (ids.shape, lengths.shape)
        b, L = ids.shape
        # An empty caption would crash the packed GRU; it is encoded as one <unk> instead.
        lengths = lengths.clamp(min=1, max=L)
        x = self.embed(ids.long())
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed)
        v, _ = pad_packed_sequence(out, batch_first=True, total_length=L)
        mask = self.mask(ids, lengths)
        v = (v + self.skip(x)) * mask[..., None]
        s = v.sum(1) / lengths.to(v.device, v.dtype)[:, None]
        assert v.shape == (b, L, self.out_dim) and s.shape == (b, self.out_dim)
        return v, mask, s
