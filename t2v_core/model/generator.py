"""Generator G(s, z): a GRU latent trajectory, per-frame attention, a convolutional decoder."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from t2v_core.config import ModelConfig, check_frame_size
from t2v_core.model.attention import TokenAttention
from t2v_core.model.convlstm import ConvLSTMDecoder
from t2v_core.model.text_encoder import TextEncoder


DECODERS = ("object", "scaled", "coord", "sprite", "frame", "convlstm")
LOOKS = ("clip", "words", "parts")


class Drawn(NamedTuple):
    """What ``Generator.draw`` gives training: the video and what its losses read besides."""

    video: torch.Tensor  # (B, T, 3, H, W) in [-1, 1]
    attn: torch.Tensor | None  # (B, T, heads, L), None without attention
    reached: torch.Tensor | None  # (B, T, 4) how far the object reaches its box's sides; with reach only
    filled: torch.Tensor | None  # (B, T) the share of its box the object covers; with reach only
    path: torch.Tensor | None  # (B, T, 2) the object's centre per frame, (x, y) in (-path_reach, path_reach); placed decoders only
    path_sum: torch.Tensor | None = None  # (B, T, 2) the path before tanh (centres = path_reach * tanh(path_sum))


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


# CoordDecoder: a gain on its logits (8 measured worse: shapes collapsed to filled boxes) and
# the starting bias of its output (a filled box; see __init__).
GAIN = 4.0
OUT_BIAS = 1.0


class CoordDecoder(nn.Module):
    """The object's mask, drawn pixel by pixel from where each pixel is relative to the
    object's centre (CoordConv, Liu et al. 2018; conditionally independent pixel synthesis,
    Anokhin et al. 2021).

    The object lives in a centred square box whose half-side, a share of a quarter of the
    frame, is read from the condition. Each pixel sees its coordinates (x, y) relative to
    that box (+-1 on its edges), their absolute values, and its distance from the centre in
    the round (L2) and square (L-infinity) norms, so size is one number and the shape is a
    function of where the pixel lies in its box: an outline that is straight, pointed or
    round is a threshold on a linear mix of these (a disc on r, a box on the L-infinity
    norm, a wedge on |x| and y), and the shape is the same at every size. 1x1
    convolutions with the condition as a FiLM scale and shift on every layer draw it, and
    the logits are capped outside the box, so the object cannot drift off-centre or grow
    past it (both happened without the cap, and a clipped circle reads as a square).

    Coordinates are shifted by the centre's sub-pixel offset (``offset``), so a moving object
    is drawn afresh at its exact position in every frame, as the corpus renderer draws it,
    instead of being resampled, which blurred it by a different amount in every frame."""

    def __init__(self, cond_dim: int, frame_side: int, channels: int, layers: int = 3,
                 size_dim: int = 0):
        super().__init__()
        if not 0 <= size_dim < cond_dim:
            raise ValueError(f"size_dim must be in [0, cond_dim = {cond_dim}), got {size_dim}")
        self.cond_dim = cond_dim
        # size_dim > 0: the condition's first size_dim entries set the box and only the box,
        # the rest draw the mask, which then cannot depend on the size (see Generator, look
        # = "parts"); 0: both read all of it.
        self.size_dim = size_dim
        shape_dim = cond_dim - size_dim
        self.quarter = frame_side / 4  # the largest box's half-side, in pixels
        self.side = frame_side // 2 + 2  # the sprite: the largest object and a pixel of shift
        centres = torch.arange(self.side, dtype=torch.float32) + 0.5 - self.side / 2
        ys, xs = torch.meshgrid(centres, centres, indexing="ij")
        self.register_buffer("grid", torch.stack([xs, ys]), persistent=False)  # (2, S, S) pixels
        self.size = nn.Linear(size_dim or cond_dim, 1)
        # 1x1 convolutions, written as linear layers over the pixels (twice as fast on CPU).
        self.inp = nn.Linear(len(self.FEATURES), channels)
        self.hidden = nn.ModuleList(nn.Linear(channels, channels) for _ in range(layers - 1))
        self.films = nn.ModuleList(nn.Linear(shape_dim, 2 * channels) for _ in range(layers))
        self.out = nn.Linear(channels, 1)
        # Start from a filled box (a square): of the three corpus shapes the network carved
        # circles and triangles out of it readily, but when every shape started as a soft
        # blob it rounded squares' corners off for thousands of steps.
        nn.init.constant_(self.out.bias, OUT_BIAS)
        # Start with small boxes (half-side ~0.45 of the largest), as small as the corpus's
        # small objects: large ones then grow their box, and small ones keep the box's sharp
        # edges. Started in the middle, every box grew to the largest and small objects
        # were drawn as soft blobs inside it, which rounds small squares.
        nn.init.constant_(self.size.bias, -1.5)

    def split(self, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, cond_dim) -> (what sets the box, what draws the mask)."""
        if not self.size_dim:
            return cond, cond
        return cond[:, : self.size_dim], cond[:, self.size_dim:]

    def box(self, cond: torch.Tensor) -> torch.Tensor:
        """(N, cond_dim) -> the box's half-side in pixels (N, 1), at most 0.95 of a quarter
        of the frame (an object up to 0.475 of the frame's side)."""
        return (0.3 + 0.65 * torch.sigmoid(self.size(self.split(cond)[0]))) * self.quarter

    FEATURES = ("u", "v", "|u|", "|v|", "r", "max(|u|, |v|)")

    @staticmethod
    def features(uv: torch.Tensor) -> torch.Tensor:
        """(..., 2, S, S) box coordinates -> (..., 6, S, S), see FEATURES; scaled by 4 so
        the box spans +-4 and the first layer's ReLUs can cut anywhere in it."""
        a = uv.abs()
        return torch.cat([uv, a, uv.norm(dim=-3, keepdim=True), a.amax(dim=-3, keepdim=True)], -3) * 4

    def forward(self, cond: torch.Tensor, offset: torch.Tensor | None = None,
                reach: bool = False, half: torch.Tensor | None = None
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """cond (N, cond_dim), offset (N, 2) or (N, K, 2) pixels in [0, 1), or None -> mask
        logits (N * K, 1, S, S): object n drawn K times (one per frame), its centre
        ``offset[n, k]`` right of and below the sprite's. With ``reach``, also how far the
        object reaches towards each side of its box (N * K, 4), see ``reach``, and the share
        of the box it covers (N * K,), see ``fill``. ``half`` (N, 1) pixels draws in a box
        of that half-side instead of the one ``cond`` sets (``Generator.mask_size_share`` draws
        in one box)."""
        n, side = cond.shape[0], self.side
        if offset is None:
            offset = torch.zeros(n, 1, 2, device=cond.device, dtype=cond.dtype)
        elif offset.dim() == 2:
            offset = offset[:, None]
        k = offset.shape[1]
        half = (self.box(cond) if half is None else half)[:, :, None, None, None]  # (N, 1, 1, 1, 1)
        uv = (self.grid[None, None] - offset[..., None, None]) / half  # (N, K, 2, S, S): +-1 on the box's edges
        x = self.features(uv).permute(0, 1, 3, 4, 2).reshape(n, k * side * side, len(self.FEATURES))
        shape = self.split(cond)[1]
        for i, film in enumerate(self.films):
            # (x W + b)(1 + gamma) + beta, with the FiLM scale folded into per-object
            # weights (StyleGAN2's weight modulation): one batched matmul per layer for all
            # of an object's frames, instead of a matmul and two passes over every pixel.
            gamma, beta = film(shape).chunk(2, dim=-1)  # (N, C) each
            layer = self.inp if i == 0 else self.hidden[i - 1]
            weight = layer.weight.t()[None] * (1 + gamma)[:, None, :]  # (N, C_in, C)
            bias = layer.bias * (1 + gamma) + beta
            x = torch.relu(torch.baddbmm(bias[:, None, :], x, weight))
        # A gain on the network's logits: the corpus's objects are solid, and a mask that
        # must be driven far from 0 to be faint cannot settle into a soft blob (which small
        # objects did without it).
        logits = GAIN * self.out(x).reshape(n * k, 1, side, side)
        uv = uv.reshape(n * k, 2, side, side)
        half = half.repeat_interleave(k, 0).view(n * k, 1, 1, 1)
        # Nothing outside the box: its distance past the edge, in pixels, caps the logits
        # (0 on the edge, where a pixel is half covered; -6 one pixel out).
        inside = (1 - uv.abs().amax(dim=1, keepdim=True)) * half
        capped = torch.minimum(logits, 6 * inside)
        if not reach:
            return capped
        return capped, self.reach(logits, uv, half), self.fill(capped, half)

    @staticmethod
    def fill(capped: torch.Tensor, half: torch.Tensor) -> torch.Tensor:
        """(N,): the share of its box the object covers, from the capped logits (N, 1, S, S)
        and the box's half-side (N, 1, 1, 1) in pixels.

        Reaching the box's four sides (``reach``) does not make the box the object's
        bounding box on its own: a small object with thin tails out to the sides reaches
        them too, and runs drew small objects that way inside a box of the large size, so
        that the mask, not the box, carried the size (benchmarks/look_heads.py). Every
        corpus shape covers at least half of its bounding box (a square 1, a circle pi/4, a
        triangle 1/2), a small one in a large box at most (0.25 / 0.45)^2 = 0.31 of it, so
        a floor between the two on this share (``losses.box_fill``; [train] fill_weight)
        leaves the box as the only way to draw a small object."""
        return torch.sigmoid(capped.float()).flatten(1).sum(1) / (2 * half.flatten()).pow(2)

    @staticmethod
    def reach(logits: torch.Tensor, uv: torch.Tensor, half: torch.Tensor) -> torch.Tensor:
        """(N, 4): where the object's outline lies relative to each side of its box (right,
        left, bottom, top), in pixels: 0 on the side, -1 a pixel inside it.

        The box is meant to be the object's bounding box: the object touches all four of
        its sides. That holds for any solid shape (a square along each side, a circle at
        each side's middle, a triangle at its apex and base corners) and says nothing about
        which shape it is. The box size alone does not enforce it: a box larger than the
        object costs the generator nothing, every box grew to the largest, and small
        objects were drawn as soft shapes inside it, which rounds small squares. Asking
        the object to reach each side (a hinge on these, ``losses.box_reach``; [train]
        box_weight) keeps the box tight, and the cap then gives straight, sharp edges.

        A pixel's uncapped logit over 6 reads as its depth inside the object, on the cap's
        scale of 6 per pixel, counted up to one pixel so that a confident interior cannot
        stand in for the outline; depth minus the pixel's distance to the side estimates
        where the outline is, and each side takes its furthest estimate."""
        gaps = torch.cat([(1 - uv), (1 + uv)], 1) * half  # (N, 4, S, S) pixels to each side
        gaps = gaps[:, [0, 2, 1, 3]]  # right, left, bottom, top
        within = (uv.abs() <= 1).all(dim=1, keepdim=True)  # pixels inside the box
        outline = logits.clamp(max=6) / 6 - gaps
        return outline.masked_fill(~within, -1e4).flatten(2).amax(2)


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
    ``decoder = "coord"`` is "object" with the mask drawn by a CoordDecoder: each pixel is
    computed from its coordinates relative to the object's centre and the condition, which
    draws crisp, centred outlines whose shape does not depend on their size, afresh at the
    exact sub-pixel position of every frame (see CoordDecoder).
    ``decoder = "scaled"`` is "object" with the size taken out of the mask as well: the mask
    is drawn at the sprite's full resolution and scaled onto the canvas by a factor read
    from the condition (sampled at twice the resolution and averaged, so that shrinking
    does not alias), and the sprite's outermost ring is cleared so that its border cannot
    leave specks on the canvas.
    ``decoder = "convlstm"`` is the general generator: a ConvLSTM over feature maps beside the
    GRU, with global and spatial attention over the words, and a convolutional decoder to
    whole frames (t2v_core/model/convlstm.py).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.decoder not in DECODERS:
            raise ValueError(f"unknown decoder {cfg.decoder!r}; use one of {DECODERS}")
        if not 0 < cfg.path_reach <= 1:
            raise ValueError(f"[model] path_reach = {cfg.path_reach} is a share of the half frame; use (0, 1]")
        if not cfg.path_step_scale > 0:
            raise ValueError(f"[model] path_step_scale = {cfg.path_step_scale} multiplies each frame's step; use > 0")
        placed = cfg.decoder in ("object", "scaled", "coord", "sprite")
        n_up = check_frame_size(cfg) - (1 if placed else 0)
        if n_up < 1:
            raise ValueError(f"the sprite decoder needs frames of at least 16x16, got {cfg.height}")
        if cfg.look not in LOOKS:
            raise ValueError(f"unknown look {cfg.look!r}; use one of {LOOKS}")
        if not cfg.spatial_attention and cfg.decoder != "convlstm":
            raise ValueError(f"spatial_attention = false is the convlstm decoder's ablation; decoder {cfg.decoder!r} has none")
        self.text = TextEncoder(cfg)
        d = cfg.text_dim
        self.init = nn.Linear(d + cfg.z_dim, cfg.hidden)
        self.cell = nn.GRUCell(d + cfg.z_dim + d, cfg.hidden)
        self.attn = TokenAttention(cfg.hidden, d, d, cfg.attn_heads) if cfg.attention else None
        self.no_attn = None if cfg.attention else nn.Linear(d, d)
        cond = cfg.hidden + d
        base = cfg.g_channels
        chans = [base * min(2 ** (n_up - i), 4) for i in range(n_up + 1)]
        self.object = cfg.decoder in ("object", "scaled", "coord")
        # look = "words": the object's look is read from the caption's word vectors by
        # attention with learned queries (as DETR's object queries), one per head, and not
        # from the states, which carry the whole sentence and z. The first head's read sets
        # the colour and only the colour; the other heads' set the form (shape and size).
        # Each head learns to pick the words its part needs, so a colour never seen with a
        # shape cannot change how that shape is drawn (held-out compositions).
        # look = "parts" splits the form further: the second head's read sets the box (the
        # size) and only the box, the other heads' draw the mask (the shape), which is
        # computed in the box's own coordinates and so scales with the box. A shape
        # learnt at one size is then the same outline at the other (runs of "words" drew
        # every large circle as a triangle and small ones right). This holds only if head 1
        # finds the size word, which nothing forces: in runs where it read "a" instead, a
        # mask head read the size word, the box stayed one size, and the mask drew small
        # objects small inside it, with rounded corners (small squares read as circles;
        # benchmarks/look_heads.py shows which word each head reads). [model] look_content,
        # [train] fill_weight and mask_size_weight (mask_size_share) close those ways out.
        self.look_attn = None
        colour_dim = look_dim = cond
        size_dim = 0
        if cfg.look in ("words", "parts"):
            if cfg.decoder != "coord":
                raise ValueError(f"look = {cfg.look!r} is for the coord decoder, not {cfg.decoder!r}")
            need, parts = {"words": (2, "colour, the rest for form"),
                           "parts": (3, "colour, one for size, the rest for shape")}[cfg.look]
            if cfg.attn_heads < need:
                raise ValueError(f"look = {cfg.look!r} needs attn_heads >= {need}: one for {parts}")
            colour_dim = look_dim = d  # without attention (the ablation): the sentence vector s
            if cfg.attention:
                self.look_attn = TokenAttention(1, cfg.word_dim, d, cfg.attn_heads)
                # Queries start at zero: every head reads the whole caption evenly and moves
                # towards the words its part needs. From random queries a form head could
                # start on the colour word and never find the shape word (circles were
                # then drawn as triangles in every colour).
                nn.init.zeros_(self.look_attn.q.weight)
                nn.init.zeros_(self.look_attn.q.bias)
                if cfg.look_content:
                    # Which vocabulary words the look heads may read (set_stop_words): a
                    # word in every caption ("a") gives every caption the same read, and
                    # runs whose size head settled on it early never left it (the box then
                    # stayed one size; benchmarks/look_heads.py).
                    self.register_buffer("look_tokens", torch.ones(cfg.vocab_size, dtype=torch.bool))
                colour_dim = d // cfg.attn_heads
                look_dim = d - colour_dim
                size_dim = colour_dim if cfg.look == "parts" else 0
        self.coord = None
        # decoder = "convlstm": the general generator, t2v_core/model/convlstm.py.
        self.convlstm = ConvLSTMDecoder(cfg) if cfg.decoder == "convlstm" else None
        if cfg.decoder == "coord":
            self.coord = CoordDecoder(look_dim, cfg.height, base, size_dim=size_dim)
        elif self.convlstm is None:
            self.seed = nn.Linear(cond, chans[0] * 16)
            self.seed_norm = nn.BatchNorm2d(chans[0])
            self.blocks = nn.ModuleList(FiLMBlock(chans[i], chans[i + 1], cond) for i in range(n_up))
            self.to_rgb = nn.Conv2d(chans[-1], 1 if self.object else 3, 3, padding=1)
        self.colour = nn.Linear(colour_dim, 3) if self.object else None
        self.scale = nn.Linear(cond, 1) if cfg.decoder == "scaled" else None
        self.where = nn.Linear(cfg.hidden, 2) if placed else None

    def trajectory(
        self, ids: torch.Tensor, lengths: torch.Tensor, z: torch.Tensor,
        text: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, tuple[torch.Tensor, torch.Tensor]]:
        """The recurrent part: states (B, T, hidden), contexts (B, T, text_dim), attention
        weights (B, T, heads, L) or None, and the object's look: (colour input, form
        input), the same tensor unless look = "words" splits them. ``text``: the text
        encoder's (V, mask, s) for these captions, where the caller needs them too."""
        cfg = self.cfg
        assert z.shape == (ids.shape[0], cfg.z_dim), z.shape
        v, mask, s = self.text(ids, lengths) if text is None else text
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
        states_t, contexts_t = torch.stack(states, 1), torch.stack(contexts, 1)
        if self.look_attn is not None:
            read, _ = self._read_look(ids, mask)
            look = read.split([self.colour.in_features, self.coord.cond_dim], -1)
        elif cfg.look in ("words", "parts"):
            look = (s, s)
        else:
            # What it looks like comes from the whole clip's condition.
            clip = torch.cat([states_t, contexts_t], -1).mean(1)
            look = (clip, clip)
        return states_t, contexts_t, attn, look

    def set_stop_words(self, stop: torch.Tensor) -> None:
        """look_content: ``stop`` (vocab_size,) bool marks the words the look heads skip."""
        if not hasattr(self, "look_tokens"):
            raise ValueError("only look = 'words' or 'parts' with attention and look_content = true skips words")
        if stop.shape != self.look_tokens.shape:
            raise ValueError(f"stop flags {tuple(stop.shape)} must be (vocab_size,) = {tuple(self.look_tokens.shape)}")
        self.look_tokens.copy_(~stop.bool())

    def _read_look(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """look = words | parts: the look heads' read of the word vectors (B, text_dim) and
        their weights (B, heads, L); the queries are learned constants. With look_content
        they read only the caption's content words, or all of it where it has none."""
        ids = ids.long()
        if hasattr(self, "look_tokens"):
            content = mask & self.look_tokens[ids]
            mask = torch.where(content.any(1, keepdim=True), content, mask)
        words = self.text.embed(ids)
        return self.look_attn(torch.ones_like(words[:, 0, :1]), words, mask)

    def mask_size_share(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """look = "parts": the share of the drawn shapes' variance over the batch that lies
        along the box size (a loss, in [0, 1]). Each caption's shape is drawn in the
        largest box, so that only its outline in box coordinates counts, and its pixels are
        correlated with the caption's own box size, standardised and without gradient:
        the box keeps the size, and the shape is pushed to carry none of it.

        It needs no guess of which word is the size word. A swap of the size head's
        most-read word for another caption's (measured, and removed) gave nothing to swap
        when that head read "moves". In the corpus sizes and shapes are drawn
        independently, so a shape that correlates with the box size is a mask that draws
        the size a second time."""
        if self.cfg.look != "parts" or self.look_attn is None:
            raise ValueError("the mask's share of the size needs look = 'parts' with attention")
        dec = self.coord
        read, _ = self._read_look(ids, self.text.mask(ids, lengths))
        cond = read[:, self.colour.in_features:]
        half = dec.box(cond).detach().flatten()  # (B,) pixels
        # Damped by half a pixel: boxes that barely differ are not blown up into a size.
        size = (half - half.mean()) / (half.std(unbiased=False) + 0.5)
        largest = torch.full_like(half[:, None], 0.95 * dec.quarter)
        shape = torch.sigmoid(dec(cond, half=largest)).flatten(1)  # (B, S * S)
        shape = shape - shape.mean(0)
        along = (shape * size[:, None]).mean(0)  # (S * S,) covariance with the size
        return along.pow(2).sum() / (shape.pow(2).mean(0).sum() + 1e-6)

    @torch.no_grad()
    def look_weights(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, heads, L): how much each look head reads each token (head 0 the colour; with
        look = "parts", head 1 the size and the rest the shape). What a head reads is what
        its part can depend on, so this shows which word sets the box and which the mask."""
        if self.look_attn is None:
            raise ValueError(f"look = {self.cfg.look!r} with attention = {self.cfg.attention} "
                             "has no look heads; only look = 'words' or 'parts' with attention do")
        return self._read_look(ids, self.text.mask(ids, lengths))[1]

    def forward(
        self, ids: torch.Tensor, lengths: torch.Tensor, z: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """-> video (B, T, 3, H, W) in [-1, 1], attention weights (B, T, heads, L) or None."""
        drawn = self.draw(ids, lengths, z)
        return drawn.video, drawn.attn

    def draw(self, ids: torch.Tensor, lengths: torch.Tensor, z: torch.Tensor,
             reach: bool = False) -> Drawn:
        """The video with what training's losses read besides (see ``Drawn``). ``reach``
        (the coord decoder only) also measures how far each frame's object reaches towards
        the sides of its box and how much of the box it covers, see ``CoordDecoder.reach``
        and ``CoordDecoder.fill``; generation does not pay for them."""
        if reach and self.coord is None:
            raise ValueError(f"only the coord decoder has a box to reach, not {self.cfg.decoder!r}")
        cfg = self.cfg
        b = ids.shape[0]
        text = self.text(ids, lengths) if self.convlstm is not None else None
        states, contexts, attn, look = self.trajectory(ids, lengths, z, text)
        cond = torch.cat([states, contexts], -1)  # (B, T, hidden + text_dim)
        path_sum = None if self.where is None else self.path_sum(states)
        path = None if path_sum is None else self.centres(path_sum)  # where the object is
        reached = filled = None
        if self.object:
            # One object per video: what it looks like comes from ``look``, where it is
            # from each frame's state.
            look_colour, look = look
            colour = torch.sigmoid(self.colour(look_colour))[:, :, None, None]
            if self.coord is not None:
                frames, reached, filled = self._draw(look, colour, path, reach)
            else:
                mask = torch.sigmoid(self._decode(look))  # (B, 1, H/2, W/2)
                scale = None
                if self.scale is not None:
                    mask = nn.functional.pad(mask[:, :, 1:-1, 1:-1], (1, 1, 1, 1))
                    # Between 0.4 and 1 of the sprite's side: room for both corpus sizes.
                    scale = 0.4 + 0.6 * torch.sigmoid(self.scale(look)).repeat_interleave(cfg.frames, 0)
                sprite = mask * colour
                frames = self._place(sprite.repeat_interleave(cfg.frames, dim=0), path, scale)
        elif self.convlstm is not None:
            frames, _ = self.convlstm(states, contexts, *text, z)
        else:
            # Decode all frames of all videos as one batch of B*T images.
            x = self._decode(cond.reshape(b * cfg.frames, -1))
            frames = torch.tanh(x) if self.where is None else self._place(torch.sigmoid(x), path)
        video = frames.view(b, cfg.frames, 3, cfg.height, cfg.width)
        if reached is not None:
            reached, filled = reached.view(b, cfg.frames, 4), filled.view(b, cfg.frames)
        return Drawn(video, attn, reached, filled, path, path_sum)

    def _draw(self, look: torch.Tensor, colour: torch.Tensor, path: torch.Tensor,
              reach: bool = False
              ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """The coord decoder's frames (B * T, 3, H, W) in [-1, 1]: each frame's sprite is
        drawn at the centre's sub-pixel offset and pasted at its whole-pixel position. With
        ``reach``, also the object's reach towards its box's sides (B * T, 4) and the share
        of the box it covers (B * T,), else None and None (generation does not pay for them)."""
        cfg, dec = self.cfg, self.coord
        t = cfg.frames
        # Pixel position of the centre (x, y), from the left and top edges.
        centre = (path.reshape(-1, 2) + 1) * torch.tensor(
            [cfg.width / 2, cfg.height / 2], device=path.device, dtype=path.dtype)
        corner = centre - dec.side / 2  # the sprite's top-left corner
        whole = torch.floor(corner.detach())
        offsets = (corner - whole).view(-1, t, 2)  # (B, T, 2): one object, T positions
        logits, reached, filled = dec(look, offsets, reach=True) if reach else (dec(look, offsets), None, None)
        sprite = torch.sigmoid(logits) * colour.repeat_interleave(t, 0)  # (B*T, 3, S, S)
        return paste(sprite, whole.long(), cfg.height, cfg.width) * 2 - 1, reached, filled

    def _decode(self, cond: torch.Tensor) -> torch.Tensor:
        """Conditions (N, hidden + text_dim) -> images (N, C, side, side) before squashing."""
        x = torch.relu(self.seed_norm(self.seed(cond).view(cond.shape[0], -1, 4, 4)))
        for block in self.blocks:
            x = block(x, cond)
        return self.to_rgb(x)

    def centres(self, path_sum: torch.Tensor) -> torch.Tensor:
        """Sprite centres (B, T, 2) from the path before tanh (``path_sum``), as (x, y) in
        (-r, r), normalised coordinates (the frame is (-1, 1); r is [model] path_reach).

        tanh keeps the centre within path_reach. At 0.5 a 32-pixel frame's centres lie in
        (8, 24), where the corpus puts a small object's anywhere in [4, 28]: the starts then
        piled against the bound, where tanh is flat, and two draws of a caption met there
        (docs/experiments.md "Where variety goes"). [train] bound_weight pulls a path_sum
        back from the bound (losses.path_bound).
        """
        return self.cfg.path_reach * torch.tanh(path_sum)

    def path_sum(self, states: torch.Tensor) -> torch.Tensor:
        """The path before tanh (B, T, 2): the start plus the running sum of the steps.

        Frame t's state gives a start (t = 0) or a step (t > 0): a constant step, which the
        GRU can hold with a constant state, is a straight line at constant speed, so motion
        is smooth by construction and the direction word only has to set the sign of one
        step. path_step_scale multiplies each step: at init a step is ~0.15, so 16 unscaled
        steps sum to ~2, where tanh's slope is 0.26, and a 16-frame model did not learn the
        direction until this scale and the bound term came together (docs/experiments.md
        "The full profile").
        """
        raw = self.where(states)  # (B, T, 2)
        if self.cfg.path_step_scale != 1:
            raw = torch.cat([raw[:, :1], raw[:, 1:] * self.cfg.path_step_scale], 1)
        return torch.cumsum(raw, dim=1)

    def _place(self, sprite: torch.Tensor, path: torch.Tensor,
               scale: torch.Tensor | None = None) -> torch.Tensor:
        """Put each half-size sprite (N = B * T, 3, H/2, W/2) in [0, 1] on a black full-size
        canvas at its centre in ``path`` (B, T, 2), see ``centres``, shrunk
        by ``scale`` (N, 1) in (0, 1] when given; the sprite stays inside the frame."""
        n = sprite.shape[0]
        centre = path.reshape(n, 2)
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


def paste(sprite: torch.Tensor, corner: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Sprites (N, C, S, S) onto black canvases (N, C, height, width) with their top-left
    pixel at ``corner`` (N, 2) whole pixels (x, y); what falls outside is cut off. An exact
    copy (a gather), so it adds no blur; gradients flow to the sprite's pixels."""
    n, c, side, _ = sprite.shape
    dev = sprite.device
    rows = torch.arange(height, device=dev)[None] - corner[:, 1:2]  # (N, H): sprite row per canvas row
    cols = torch.arange(width, device=dev)[None] - corner[:, 0:1]
    valid = (((rows >= 0) & (rows < side))[:, :, None] & ((cols >= 0) & (cols < side))[:, None, :])
    idx = torch.arange(n, device=dev)[:, None, None]
    out = sprite.permute(0, 2, 3, 1)[idx, rows.clamp(0, side - 1)[:, :, None], cols.clamp(0, side - 1)[:, None, :]]
    return (out * valid[..., None].to(out.dtype)).permute(0, 3, 1, 2)
