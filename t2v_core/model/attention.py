"""Scaled dot-product attention of a frame's recurrent state over the caption's tokens."""

from __future__ import annotations

import math

import torch
from torch import nn


class TokenAttention(nn.Module):
    """Multi-head scaled dot-product attention: query = the frame's state, keys/values =
    the token states V. Several heads let one head read the colour word while another reads
    the shape word, which is what lets unseen (colour, shape) pairs compose.

    forward(q (B, Dq), V (B, L, Dv), mask (B, L)) -> context (B, dim), weights (B, heads, L)
    with each head's weights summing to 1 over the caption's real tokens.
    """

    def __init__(self, query_dim: int, value_dim: int, dim: int, heads: int = 1):
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention dim {dim} is not divisible by heads {heads}")
        self.heads, self.head_dim, self.dim = heads, dim // heads, dim
        self.q = nn.Linear(query_dim, dim)
        # No key bias: it adds q . b to every token's score alike, which the softmax takes
        # away again, so its gradient is float rounding that Adam would walk at random.
        self.k = nn.Linear(value_dim, dim, bias=False)
        self.v = nn.Linear(value_dim, dim)

    def forward(
        self, query: torch.Tensor, values: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        b, L, _ = values.shape
        assert query.shape[0] == b and mask.shape == (b, L), (query.shape, values.shape, mask.shape)
        q = self.q(query).view(b, self.heads, 1, self.head_dim)
        k = self.k(values).view(b, L, self.heads, self.head_dim).transpose(1, 2)
        v = self.v(values).view(b, L, self.heads, self.head_dim).transpose(1, 2)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)  # (B, H, 1, L)
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
        weights = scores.softmax(dim=-1)
        context = (weights @ v).reshape(b, self.dim)
        return context, weights.squeeze(2)
