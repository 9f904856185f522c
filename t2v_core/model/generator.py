"""Generator G(text, z): a GRU latent trajectory with attention over the words, beside a
convolutional LSTM that draws the frames (t2v_core/model/convlstm.py)."""

from __future__ import annotations

import torch
from torch import nn

from t2v_core.config import ModelConfig
from t2v_core.model.attention import TokenAttention
from t2v_core.model.convlstm import ConvLSTMDecoder
from t2v_core.model.text_encoder import TextEncoder


class Generator(nn.Module):
    """G(text, z) -> video (B, T, 3, H, W) in [-1, 1], and the global attention's weights.

    The text encoder gives token states V and a sentence vector s. A GRU cell unrolls one
    latent state per frame from s and the noise z (the motion's trajectory, which the noise
    enters at every step); each frame's state queries V with scaled dot-product attention
    for the frame's global context. The ConvLSTM decoder draws each frame from its feature
    maps, whose every location also queries V on its own (the spatial context). Nothing here
    knows what a corpus looks like: the frame is whatever the decoder paints.

    With ``attention = False`` the context is the sentence vector s for every frame and
    location (the ablation the benchmarks report); ``spatial_attention = False`` removes
    only the per-location attention.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.text = TextEncoder(cfg)
        d = cfg.text_dim
        self.init = nn.Linear(d + cfg.z_dim, cfg.hidden)
        self.cell = nn.GRUCell(d + cfg.z_dim + d, cfg.hidden)
        self.attn = TokenAttention(cfg.hidden, d, d, cfg.attn_heads) if cfg.attention else None
        self.no_attn = None if cfg.attention else nn.Linear(d, d)
        self.convlstm = ConvLSTMDecoder(cfg)

    def trajectory(
        self, ids: torch.Tensor, lengths: torch.Tensor, z: torch.Tensor,
        text: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The recurrent part: states (B, T, hidden), global contexts (B, T, text_dim) and
        attention weights (B, T, heads, L) or None. ``text``: the text encoder's (V, mask, s)
        for these captions, where the caller needs them too."""
        cfg = self.cfg
        assert z.shape == (ids.shape[0], cfg.z_dim), z.shape
        v, mask, s = self.text(ids, lengths) if text is None else text
        h = torch.tanh(self.init(torch.cat([s, z], -1)))
        ctx = torch.zeros_like(s)
        states, contexts, weights = [], [], []
        for _ in range(cfg.frames):
            # The previous frame's context feeds the next step, so what the state attends to
            # can steer the trajectory (the direction word moves the content).
            h = self.cell(torch.cat([s, z, ctx], -1), h)
            if self.attn is not None:
                ctx, w = self.attn(h, v, mask)
                weights.append(w)
            else:
                ctx = torch.tanh(self.no_attn(s))
            states.append(h)
            contexts.append(ctx)
        attn = torch.stack(weights, 1) if weights else None
        return torch.stack(states, 1), torch.stack(contexts, 1), attn

    def forward(
        self, ids: torch.Tensor, lengths: torch.Tensor, z: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """-> video (B, T, 3, H, W) in [-1, 1], attention weights (B, T, heads, L) or None."""
        text = self.text(ids, lengths)
        states, contexts, attn = self.trajectory(ids, lengths, z, text)
        video, _ = self.convlstm(states, contexts, *text, z)
        return video, attn
