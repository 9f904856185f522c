"""GAN losses behind one small interface (StyleGAN-style): logits in, scalar out.

``bce`` is the seed's minimax objective: D maximises E[log D(real)] + E[log(1 - D(fake))],
written as the equivalent binary cross-entropy to minimise; G uses the non-saturating form
(maximise log D(G(s, z))) because log(1 - D) has no gradient once D wins early.
``hinge`` is the hinge loss of SAGAN/BigGAN.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

LOSSES = ("bce", "hinge")


def _check(kind: str) -> None:
    if kind not in LOSSES:
        raise ValueError(f"unknown GAN loss {kind!r}; use one of {LOSSES}")


def d_loss(
    real: torch.Tensor, fake: torch.Tensor, mismatch: torch.Tensor | None, kind: str = "bce",
    mismatch_weight: float = 1.0,
) -> torch.Tensor:
    """D's loss over logits of (real video, its caption), (generated video, its caption) and
    (real video, a wrong caption). The mismatched pair counts as fake (GAN-INT-CLS), so D must
    check that text and video agree, not just that the video looks real. Fake and mismatch
    share the "fake" half of the loss so that mismatch_weight does not change its scale."""
    _check(kind)
    if kind == "bce":
        loss_real = F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
        loss_fake = F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
        loss_mis = (F.binary_cross_entropy_with_logits(mismatch, torch.zeros_like(mismatch))
                    if mismatch is not None else None)
    else:
        loss_real = F.relu(1 - real).mean()
        loss_fake = F.relu(1 + fake).mean()
        loss_mis = F.relu(1 + mismatch).mean() if mismatch is not None else None
    if loss_mis is None or mismatch_weight <= 0:
        return loss_real + loss_fake
    return loss_real + (loss_fake + mismatch_weight * loss_mis) / (1 + mismatch_weight) * 2


def g_loss(fake: torch.Tensor, kind: str = "bce") -> torch.Tensor:
    _check(kind)
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))  # non-saturating
    return -fake.mean()


def r1_penalty(real_logits: torch.Tensor, real_video: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): squared gradient norm of D on real data. ``real_video``
    must have requires_grad set before D ran on it."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real_video, create_graph=True)
    return grad.pow(2).reshape(grad.shape[0], -1).sum(1).mean()


def mode_seeking(video_a: torch.Tensor, video_b: torch.Tensor, z_a: torch.Tensor,
                 z_b: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """The mode-seeking term of MSGAN (Mao et al. 2019) for G: the same captions with two
    noise vectors should give videos as far apart as the noise is. Without it a short
    training run tends to learn one video per caption and ignore z."""
    ratio = (video_a - video_b).abs().mean() / (z_a - z_b).abs().mean()
    return 1.0 / (ratio + eps)


def across_motion(path_a: torch.Tensor, path_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Paths (N, T, 2) of pairs of clips -> each clip's start (N, 1) as its offset across the
    pair's motion: along the two clips' summed travel, detached and turned by 90 degrees.
    The corpus draws that offset uniformly over the frame, but the start along the motion
    only within the room its travel leaves, so a start pushed along the motion shortens
    the path that shows the direction word."""
    travel = (path_a[:, -1] - path_a[:, 0] + path_b[:, -1] - path_b[:, 0]).detach()
    unit = travel / travel.norm(dim=1, keepdim=True).clamp(min=1e-6)
    across = torch.stack([-unit[:, 1], unit[:, 0]], 1)
    return (path_a[:, 0] * across).sum(1, keepdim=True), (path_b[:, 0] * across).sum(1, keepdim=True)


def diversity_sensitivity(out_a: torch.Tensor, out_b: torch.Tensor, z_a: torch.Tensor,
                          z_b: torch.Tensor, tau: float) -> torch.Tensor:
    """The diversity-sensitive term of DSGAN (Yang et al. 2019) for G, per pair: how far two
    noise draws of one caption land apart, over how far their noise is, capped at ``tau``;
    G minimises its negative mean. Unlike ``mode_seeking``, whose batch-mean ratio stops
    pulling once most pairs are apart (its gradient falls as 1/ratio**2), a pair that
    collapsed is pushed with the same force whatever the others do, and pairs already
    ``tau`` apart are left to the other losses."""
    ratio = (out_a - out_b).abs().flatten(1).mean(1) / (z_a - z_b).abs().flatten(1).mean(1)
    return -ratio.clamp(max=tau).mean()


def bag_of_words(ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Token ids (B, L) -> (B, vocab_size) multi-hot of the words present; <pad> (0) and
    <unk> (1) are no words."""
    hot = torch.zeros(ids.shape[0], vocab_size, device=ids.device)
    hot.scatter_(1, ids.long(), 1.0)
    hot[:, :2] = 0
    return hot


def word_loss(logits: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
    """Multi-label BCE of word logits (B, V) against a bag of words (B, V), summed over the
    vocabulary and divided by the words per caption: about one BCE term per caption word,
    so the weight does not depend on the vocabulary's size."""
    per = F.binary_cross_entropy_with_logits(logits.float(), words, reduction="none").sum(1)
    return per.mean() / words.sum(1).mean().clamp(min=1)


def box_reach(reached: torch.Tensor, slack: float = 0.75) -> torch.Tensor:
    """A hinge on where the object's outline lies relative to the sides of its box (pixels,
    any shape; see CoordDecoder.reach): zero once it is within ``slack`` of every side, so
    the box is the object's bounding box. The slack is what a triangle's apex, a thin tip,
    needs in its worst sub-pixel position (0.75 px measured; squares and circles ~0)."""
    return F.relu(-slack - reached.float()).mean()


def path_bound(path_sum: torch.Tensor, at: float = 1.5) -> torch.Tensor:
    """A squared hinge on the object's path before tanh (Drawn.path_sum) beyond ``at``
    (tanh(1.5) = 0.905 of path_reach, slope 0.18). Its gradient does not pass through tanh,
    so it pulls back a path pressed against the bound, where the other terms' push along the
    direction dies: the full profile's sat there and never learnt the direction
    (benchmarks/direction_probe.py)."""
    return (path_sum.float().abs() - at).clamp(min=0).pow(2).mean()


def box_fill(filled: torch.Tensor, least: float = 0.4) -> torch.Tensor:
    """A hinge on the share of its box the object covers (see CoordDecoder.fill): zero
    from ``least`` up. Every corpus shape covers at least half of its bounding box (a
    triangle exactly half), a small one drawn inside a large box at most 0.31 of it."""
    return F.relu(least - filled.float()).mean()
