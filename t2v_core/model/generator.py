"""Generator G(s, z): a GRU latent trajectory, per-frame attention, a convolutional decoder."""

from __future__ import annotations

import math

import torch
from torch import nn

from t2v_core.config import ModelConfig
from t2v_core.model.attention import TokenAttention
from t2v_core.model.text_encoder import TextEncoder


DECODERS = ("object", "scaled", "sprite", "frame")


def check_frame_size(cfg: ModelConfig) -> int:
    """Number of 2x steps between 4x4 and the frame; frames must be square powers of two."""
    if cfg.height != cfg.width or cfg.height < 8 or cfg.height & (cfg.height - 1):
        raise ValueError(f"frames must be square, a power of two and >= 8, got {cfg.height}x{cfg.width}")
    return int(math.log2(cfg.height)) - 2


class FiLMBlock(nn.Module):
    """2x upsample, 3x3 conv, batch norm without its own affine, then a per-frame scale and
    shift predicted from the frame's condition (FiLM): the text steers every layer."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm = nn.BatchNorm2d(c_out, affine=False)
        self.film = nn.Linear(cond_dim, 2 * c_out)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = nn.functional.interpolate(x, scale_factor=2, mode="nearest")
        x = self.norm(self.conv(x))
        gamma, beta = self.film(cond).chunk(2, dim=-1)
        return torch.relu(x * (1 + gamma[:, :, None, None]) + beta[:, :, None, None])


class Generator(nn.Module):
    """G(text, z) -> video (B, T, 3, H, W) in [-1, 1].

    z seeds the initial recurrent state (variety: the same caption with another z starts the
    object elsewhere); a GRU cell unrolls one state per frame (temporal coherence comes from
    this shared trajectory); each frame's state queries the token states V for a context
    vector; a convolutional decoder turns [state, context] into the frame, FiLM-conditioning
    every layer on it. With ``attention = False`` the context is the sentence vector s for
    every frame, which is the ablation the accuracy benchmark reports.

    ``decoder = "sprite"`` (default) decodes each frame at half the frame's side and places
    it on the black canvas with a translation read from the frame's state (a spatial
    transformer): a quarter of the convolution work, and motion becomes a smooth 2-D path
    that D's video branch can teach directly. ``decoder = "frame"`` decodes whole frames.

    ``decoder = "object"`` decodes one half-size sprite per video, from the mean over frames
    of [state, context], as a mask times a colour, and moves it along the same per-frame
    path. The object cannot change colour or shape between frames (temporal coherence by
    construction), the convolutions run once per video instead of once per frame, and the
    mask has only shape and size to learn while colour is one linear read of the condition.
    ``decoder = "scaled"`` is "object" with the size taken out of the mask as well: the mask
    is drawn at the sprite's full resolution and scaled onto the canvas by a factor read
    from the condition (sampled at twice the resolution and averaged, so that shrinking
    does not alias), and the sprite's outermost ring is cleared so that its border cannot
    leave specks on the canvas.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.decoder not in DECODERS:
            raise ValueError(f"unknown decoder {cfg.decoder!r}; use one of {DECODERS}")
        placed = cfg.decoder in ("object", "scaled", "sprite")
        n_up = check_frame_size(cfg) - (1 if placed else 0)
        if n_up < 1:
            raise ValueError(f"the sprite decoder needs frames of at least 16x16, got {cfg.height}")
        self.text = TextEncoder(cfg)
        d = cfg.text_dim
        self.init = nn.Linear(d + cfg.z_dim, cfg.hidden)
        self.cell = nn.GRUCell(d + cfg.z_dim + d, cfg.hidden)
        self.attn = TokenAttention(cfg.hidden, d, d, cfg.attn_heads) if cfg.attention else None
        self.no_attn = None if cfg.attention else nn.Linear(d, d)
        cond = cfg.hidden + d
        base = cfg.g_channels
        chans = [base * min(2 ** (n_up - i), 4) for i in range(n_up + 1)]
        self.seed = nn.Linear(cond, chans[0] * 16)
        self.seed_norm = nn.BatchNorm2d(chans[0])
        self.blocks = nn.ModuleList(FiLMBlock(chans[i], chans[i + 1], cond) for i in range(n_up))
        self.object = cfg.decoder in ("object", "scaled")
        self.to_rgb = nn.Conv2d(chans[-1], 1 if self.object else 3, 3, padding=1)
        self.colour = nn.Linear(cond, 3) if self.object else None
        self.scale = nn.Linear(cond, 1) if cfg.decoder == "scaled" else None
        self.where = nn.Linear(cfg.hidden, 2) if placed else None

    def trajectory(
        self, ids: torch.Tensor, lengths: torch.Tensor, z: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The recurrent part: states (B, T, hidden), contexts (B, T, text_dim), attention
        weights (B, T, heads, L) or None."""
        cfg = self.cfg
        assert z.shape == (ids.shape[0], cfg.z_dim), z.shape
        v, mask, s = self.text(ids, lengths)
        h = torch.tanh(self.init(torch.cat([s, z], -1)))
        ctx = torch.zeros_like(s)
        states, contexts, weights = [], [], []
        for _ in range(cfg.frames):
            # The previous frame's context feeds the next step, so what the state attends to
            # can steer the trajectory (the direction word moves the object).
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
        """-> video (B, T, 3, H, W), attention weights (B, T, heads, L) or None."""
        cfg = self.cfg
        b = ids.shape[0]
        states, contexts, attn = self.trajectory(ids, lengths, z)
        cond = torch.cat([states, contexts], -1)  # (B, T, hidden + text_dim)
        if self.object:
            # One object per video: what it looks like comes from the whole clip's
            # condition, where it is from each frame's state.
            look = cond.mean(1)
            mask = torch.sigmoid(self._decode(look))  # (B, 1, H/2, W/2)
            scale = None
            if self.scale is not None:
                mask = nn.functional.pad(mask[:, :, 1:-1, 1:-1], (1, 1, 1, 1))
                # Between 0.4 and 1 of the sprite's side: room for both corpus sizes.
                scale = 0.4 + 0.6 * torch.sigmoid(self.scale(look)).repeat_interleave(cfg.frames, 0)
            sprite = mask * torch.sigmoid(self.colour(look))[:, :, None, None]
            frames = self._place(sprite.repeat_interleave(cfg.frames, dim=0), states, scale)
        else:
            # Decode all frames of all videos as one batch of B*T images.
            x = self._decode(cond.reshape(b * cfg.frames, -1))
            frames = torch.tanh(x) if self.where is None else self._place(torch.sigmoid(x), states)
        return frames.view(b, cfg.frames, 3, cfg.height, cfg.width), attn

    def _decode(self, cond: torch.Tensor) -> torch.Tensor:
        """Conditions (N, hidden + text_dim) -> images (N, C, side, side) before squashing."""
        x = torch.relu(self.seed_norm(self.seed(cond).view(cond.shape[0], -1, 4, 4)))
        for block in self.blocks:
            x = block(x, cond)
        return self.to_rgb(x)

    def centres(self, states: torch.Tensor) -> torch.Tensor:
        """Sprite centres (B, T, 2) as (x, y) in (-1/2, 1/2), normalised coordinates.

        Frame t's state gives a start (t = 0) or a step (t > 0), and the path is their
        running sum: a constant step, which the GRU can hold with a constant state, is a
        straight line at constant speed, so motion is smooth by construction and the
        direction word only has to set the sign of one step. tanh keeps the sprite inside.
        """
        raw = self.where(states)  # (B, T, 2)
        return 0.5 * torch.tanh(torch.cumsum(raw, dim=1))

    def _place(self, sprite: torch.Tensor, states: torch.Tensor,
               scale: torch.Tensor | None = None) -> torch.Tensor:
        """Put each half-size sprite (N = B * T, 3, H/2, W/2) in [0, 1] on a black full-size
        canvas at the centre read from the states (B, T, hidden) (see ``centres``), shrunk
        by ``scale`` (N, 1) in (0, 1] when given; the sprite stays inside the frame."""
        n = sprite.shape[0]
        centre = self.centres(states).reshape(n, 2)
        # affine_grid maps output coordinates to sprite coordinates: x_in = 2 x_out - 2 c.
        # With a scale s the sprite covers s of its usual side: x_in = (2 x_out - 2 c) / s.
        inv = 2.0 / (scale if scale is not None else torch.ones(n, 1, device=sprite.device))
        theta = torch.zeros(n, 2, 3, device=sprite.device, dtype=sprite.dtype)
        theta[:, 0, 0] = inv[:, 0]
        theta[:, 1, 1] = inv[:, 0]
        theta[:, :, 2] = -inv * centre.to(sprite.dtype)
        ss = 1 if scale is None else 2  # supersampling: a shrunk sprite is box-filtered
        size = [n, 3, self.cfg.height * ss, self.cfg.width * ss]
        grid = nn.functional.affine_grid(theta, size, align_corners=False)
        canvas = nn.functional.grid_sample(sprite, grid, mode="bilinear", padding_mode="zeros",
                                           align_corners=False)
        if ss > 1:
            canvas = nn.functional.avg_pool2d(canvas, ss)
        return canvas * 2 - 1
