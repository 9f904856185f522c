"""Differentiable translation of whole clips, for everything the discriminator sees
(DiffAugment, Zhao et al. 2020).

On a corpus of a few thousand clips, each with its own caption, D learns the training pairs
rather than what a caption asks for: its score for real clips of seen compositions that it
never trained on falls as training goes on, while its score for its training clips rises, and
G, pulled toward the training clip of each caption, loses variety and stops improving
(docs/experiments.md "D learns its training pairs; shifting every clip it sees stops it").
Shifting every clip D sees, real and generated, in D's step and in G's, by a random offset
makes a clip's place worthless to memorise. One offset for all frames of a clip keeps what
captions name (colour, shape, size, motion); a flip, a colour jitter, a scale or a time
reversal would not. Real and generated clips go through the same shifts, so G is not asked to
draw shifted clips. The price: D sees less of where an object starts, so a larger shift
leaves less pressure on variety; the default share is where the measured trade-off sits.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def draw_shifts(batch: int, side: int, share: float, gen: torch.Generator) -> torch.Tensor:
    """(batch, 2) integer offsets (dx, dy), each uniform in [-r, r] with r = round(share * side)."""
    r = round(share * side)
    return torch.randint(-r, r + 1, (batch, 2), generator=gen)


def translate(video: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """video (B, T, C, H, W) in [-1, 1], shifts (B, 2) integer (dx, dy) -> each clip moved by
    its offset, every frame alike; what moves in from outside the frame is black (-1)."""
    b, t, c, h, w = video.shape
    assert shifts.shape == (b, 2), shifts.shape
    r = int(shifts.abs().max()) if b else 0
    if r == 0:
        return video
    padded = F.pad(video, (r, r, r, r), value=-1.0)
    return torch.stack([padded[i, :, :, r - dy:r - dy + h, r - dx:r - dx + w]
                        for i, (dx, dy) in enumerate(shifts.tolist())])
