"""The generator's frames: a convolutional LSTM over feature maps, one
step per frame, that attends over the caption's words, and a convolutional decoder to RGB.

Nothing here knows what a corpus looks like: there is no mask, box, colour, canvas or path.
The frame is whatever the decoder paints from the ConvLSTM's state, which is how the
published text-to-video GANs (TFGAN, IRC-GAN, MoCoGAN) serve every dataset with one
generator. The text steers each frame twice (DESIGN.md "Model"):

- globally: the GRU latent trajectory of ``Generator.trajectory``, whose state queries the
  token states V each frame, gives one vector per frame; it enters every gate of every
  location (a 1x1 convolution of a map that is constant over space is a per-channel bias);
- spatially (AttnGAN): each location of the previous state queries V on its own, so two
  things named in one caption can each be drawn where they belong.

With ``attention = False`` both contexts are the sentence vector s; with ``spatial_attention
= False`` the spatial one is (the two ablations the benchmark runs).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from t2v_core.config import ModelConfig
from t2v_core.model.attention import TokenAttention

# The feature maps are a quarter of the frame's side (8x8 for 32x32, 16x16 for 64x64): fine
# enough for the spatial attention to place words, coarse enough for the recurrence to be cheap
# (the ConvLSTM runs once per frame; the decoder's two upsamplings are shared by all frames).
UPSAMPLINGS = 2
# ConvLSTM channels per [model] g_channels (32 in the demo profile). At 2 the generator's
# forward and backward took 0.55 s a step against 0.29 at 1 (demo size, one thread);
# docs/experiments.md "A general generator: first ConvLSTM run".
WIDTH = 1


def icnr_(conv: nn.Conv2d, scale: int = 2) -> nn.Conv2d:
    """Initialise a convolution that feeds ``PixelShuffle(scale)`` so that the scale**2
    sub-pixels of each output block start with one and the same filter (ICNR, Aitken et al.
    2017): the layer starts as nearest-neighbour upsampling followed by a convolution, with
    no checkerboard. With independent initial filters each position in a block is painted by
    its own filter, the checkerboard of Odena et al. (2016); training can still pull the four
    apart, and at 3,000 demo steps this did not make outlines measurably cleaner
    (docs/experiments.md "Twin from the first step, and ICNR: a 2x2 at 3,000 steps")."""
    out = conv.out_channels // scale**2
    with torch.no_grad():
        w = conv.weight.view(out, scale**2, *conv.weight.shape[1:])
        w.copy_(w[:, :1].expand_as(w))
        if conv.bias is not None:
            b = conv.bias.view(out, scale**2)
            b.copy_(b[:, :1].expand_as(b))
    return conv


class SpatialWordAttention(TokenAttention):
    """TokenAttention with one query per feature-map location.

    The keys and values of a caption's tokens are projected once per video (``project``)
    and read by every location of every frame (``attend``): recomputing them per location
    would cost a projection of B * S * S * L token states per frame instead of B * L.
    """

    def project(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """values (B, L, value_dim) -> keys, values (B, heads, L, head_dim) each."""
        b, L, _ = values.shape
        k = self.k(values).view(b, L, self.heads, self.head_dim).transpose(1, 2)
        v = self.v(values).view(b, L, self.heads, self.head_dim).transpose(1, 2)
        return k, v

    def attend(self, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
               mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, Q, query_dim), projected keys/values (B, heads, L, head_dim), mask (B, L)
        -> context (B, Q, dim), weights (B, heads, Q, L), each location's weights summing
        to 1 over the caption's real tokens."""
        b, n, _ = query.shape
        L = keys.shape[2]
        assert keys.shape == values.shape == (b, self.heads, L, self.head_dim), (keys.shape, values.shape)
        assert mask.shape == (b, L), mask.shape
        q = self.q(query).view(b, n, self.heads, self.head_dim).transpose(1, 2)  # (B, H, Q, hd)
        scores = (q @ keys.transpose(-1, -2)) / math.sqrt(self.head_dim)  # (B, H, Q, L)
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
        weights = scores.softmax(dim=-1)
        context = (weights @ values).transpose(1, 2).reshape(b, n, self.dim)
        return context, weights

    def forward(self, query: torch.Tensor, values: torch.Tensor,  # type: ignore[override]
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """query (B, Q, query_dim), values (B, L, value_dim), mask (B, L) -> see ``attend``."""
        return self.attend(query, *self.project(values), mask)


class ConvLSTMCell(nn.Module):
    """A convolutional LSTM cell (Shi et al. 2015) whose input is the frame's word contexts.

    gates = conv3x3(h) + conv1x1(spatial context) + linear(global condition): the same as one
    convolution over [h, spatial context, global condition broadcast], with 1x1 kernels on
    the contexts. A 3x3 kernel on the state is what moves content by up to one cell (a
    quarter of the frame's side / S) per frame; the contexts say what to draw where, which
    needs no neighbourhood, and 1x1 keeps them cheap (the step's cost is in these convs).
    """

    def __init__(self, channels: int, context_dim: int, cond_dim: int):
        super().__init__()
        self.channels = channels
        self.hidden = nn.Conv2d(channels, 4 * channels, 3, padding=1)
        self.context = nn.Conv2d(context_dim, 4 * channels, 1, bias=False)
        self.cond = nn.Linear(cond_dim, 4 * channels, bias=False)
        with torch.no_grad():
            # Forget-gate bias 1 (Jozefowicz et al. 2015): the state is kept by default,
            # so the first frame's content lasts through the clip from the first step.
            self.hidden.bias.zero_()
            self.hidden.bias[channels:2 * channels] = 1.0

    def forward(self, context: torch.Tensor, cond: torch.Tensor,
                state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """context (B, context_dim, S, S), cond (B, cond_dim), state (h, c) (B, C, S, S) each
        -> the next (h, c)."""
        h, c = state
        gates = self.hidden(h) + self.context(context) + self.cond(cond)[:, :, None, None]
        i, f, o, g = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class FrameDecoder(nn.Module):
    """Feature maps (N, C, S, S) and a content code (N, content_dim) -> RGB frames
    (N, 3, 4S, 4S) in [-1, 1], shared over frames.

    Each doubling is a sub-pixel convolution (ESPCN, Shi et al. 2016): a 3x3 convolution at
    the lower resolution makes four times the channels, and a pixel shuffle lays them out
    as 2x2 blocks. The last one makes RGB, so no convolution runs at the frame's own
    resolution: with nearest upsampling and convolutions there, the layers at 32x32 with 8
    and 3 channels took 0.2 of the generator's 0.48 s per step (forward and backward, one
    thread), for a quarter of its multiply-adds. Every doubling keeps the state's width:
    the last one paints the edges, and at half the width small shapes came out as blobs.

    Between doublings, batch norm whose scale and shift are read from the content code
    (conditional batch norm, as BigGAN's generator; the code is MoCoGAN's content, one per
    video), then ReLU. The state says where things are; the code, the same in every frame,
    says how they are painted, so an outline cannot drift from frame to frame with the
    state. Batch norm runs over all frames of the batch, and in eval mode on its stored
    statistics, so a video does not depend on its batch.
    """

    def __init__(self, channels: int, content_dim: int, upsamplings: int = UPSAMPLINGS):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Sequential(icnr_(nn.Conv2d(channels, 4 * channels, 3, padding=1, bias=False)), nn.PixelShuffle(2))
            for _ in range(upsamplings - 1))
        self.norms = nn.ModuleList(nn.BatchNorm2d(channels, affine=False) for _ in range(upsamplings - 1))
        self.films = nn.ModuleList(nn.Linear(content_dim, 2 * channels) for _ in range(upsamplings - 1))
        for film in self.films:
            nn.init.zeros_(film.weight)  # starts as plain batch norm: scale 1, shift 0
            nn.init.zeros_(film.bias)
        self.to_rgb = nn.Sequential(icnr_(nn.Conv2d(channels, 4 * 3, 3, padding=1)), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        assert x.shape[0] == content.shape[0], (x.shape, content.shape)
        for conv, norm, film in zip(self.convs, self.norms, self.films, strict=True):
            scale, shift = film(content)[:, :, None, None].chunk(2, dim=1)
            x = torch.relu(norm(conv(x)) * (1 + scale) + shift)
        return torch.tanh(self.to_rgb(x))


class ConvLSTMDecoder(nn.Module):
    """The frames of ``Generator``, from the GRU trajectory's
    per-frame states and global contexts, the caption's token states, and z.

    z and s set two things, as MoCoGAN splits a video into content and motion:
    - the content code, one vector per video that the decoder reads at every frame (see
      FrameDecoder): what is drawn, the same in every frame;
    - the initial state (h0, c0): one linear map to a map of half the state's side, then a
      sub-pixel convolution to the state's side (DCGAN's projection). Neighbouring
      locations then share weights; a linear map to every location of the state, each with
      its own weights, painted the first frame with specks.
    Each frame then takes one ConvLSTM step, whose input is the frame's global condition
    ([GRU state, global context]; the GRU also sees z at every step, which is where the
    noise enters the motion) and its spatial context, in which each location of the
    previous state queries the words. The decoder paints every state into a frame.

    Per-frame noise drawn inside the model would make a video depend on more than its
    caption and seed (``Text2Video.generate``) and break exact resume; the GRU's z input
    plays that part.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.side = cfg.height // 2 ** UPSAMPLINGS
        if cfg.height != cfg.width or self.side < 2 or self.side % 2 or self.side * 2 ** UPSAMPLINGS != cfg.height:
            raise ValueError(f"the generator needs square frames whose side is divisible by "
                             f"{2 ** (UPSAMPLINGS + 1)}, got {cfg.height}x{cfg.width}")
        d, ch = cfg.text_dim, WIDTH * cfg.g_channels
        self.channels = ch
        self.content = nn.Sequential(nn.Linear(cfg.z_dim + d, d), nn.LeakyReLU(0.2))
        self.init = nn.Sequential(nn.Linear(cfg.z_dim + d, ch * (self.side // 2) ** 2), nn.LeakyReLU(0.2))
        self.init_up = nn.Sequential(icnr_(nn.Conv2d(ch, 4 * 2 * ch, 3, padding=1)), nn.PixelShuffle(2))
        self.spatial = (SpatialWordAttention(ch, d, d, cfg.attn_heads)
                        if cfg.attention and cfg.spatial_attention else None)
        self.cell = ConvLSTMCell(ch, d, cfg.hidden + d)
        self.decoder = FrameDecoder(ch, d)

    def forward(self, states: torch.Tensor, contexts: torch.Tensor, tokens: torch.Tensor,
                mask: torch.Tensor, s: torch.Tensor, z: torch.Tensor, weights: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """states (B, T, hidden) and contexts (B, T, text_dim) from ``Generator.trajectory``;
        tokens (B, L, text_dim), mask (B, L) and s (B, text_dim) from the text encoder;
        z (B, z_dim) -> frames (B, T, 3, H, W) in [-1, 1], and with ``weights`` the spatial
        attention's weights (B, T, heads, S * S, L), else (or without spatial attention) None."""
        cfg, side, ch = self.cfg, self.side, self.channels
        b, t = states.shape[:2]
        L, d = tokens.shape[1], cfg.text_dim
        assert t == cfg.frames and states.shape == (b, t, cfg.hidden), states.shape
        assert contexts.shape == (b, t, d) and tokens.shape == (b, L, d), (contexts.shape, tokens.shape)
        assert mask.shape == (b, L) and s.shape == (b, d) and z.shape == (b, cfg.z_dim), (mask.shape, s.shape, z.shape)
        zs = torch.cat([z, s], -1)
        seed = self.init(zs).view(b, ch, side // 2, side // 2)
        h, c = self.init_up(seed).chunk(2, dim=1)
        h = torch.tanh(h)  # in the range of the states the cell gives
        cond = torch.cat([states, contexts], -1)  # (B, T, hidden + text_dim)
        if self.spatial is not None:
            keys, values = self.spatial.project(tokens)
        else:
            # The ablation: every location of every frame reads the sentence vector.
            context = s[:, :, None, None].expand(b, d, side, side)
        hs, ws = [], []
        for i in range(t):
            if self.spatial is not None:
                # Each location of the previous state queries the words (AttnGAN): the
                # state says what is drawn there, and the words what should be.
                query = h.flatten(2).transpose(1, 2)  # (B, S * S, C)
                read, w = self.spatial.attend(query, keys, values, mask)
                context = read.transpose(1, 2).reshape(b, d, side, side)
                if weights:
                    ws.append(w)
            h, c = self.cell(context, cond[:, i], (h, c))
            hs.append(h)
        # All frames of all videos decode as one batch of B * T feature maps.
        content = self.content(zs).repeat_interleave(t, dim=0)
        frames = self.decoder(torch.stack(hs, 1).flatten(0, 1), content)
        video = frames.view(b, t, 3, cfg.height, cfg.width)
        return video, (torch.stack(ws, 1) if ws else None)
