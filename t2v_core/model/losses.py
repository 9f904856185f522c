"""GAN losses: logits in, scalar out.

The design's minimax objective: D maximises E[log D(real)] + E[log(1 - D(fake))], written as
the equivalent binary cross-entropy to minimise; G uses the non-saturating form (maximise
log D(G(s, z))) because log(1 - D) has no gradient once D wins early.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def d_loss(real: torch.Tensor, fake: torch.Tensor, mismatch: torch.Tensor | None,
           mismatch_weight: float = 1.0) -> torch.Tensor:
    """D's loss over logits of (real video, its caption), (generated video, its caption) and
    (real video, a wrong caption). The mismatched pair counts as fake (GAN-INT-CLS), so D must
    check that text and video agree, not just that the video looks real. Fake and mismatch
    share the "fake" half of the loss so that mismatch_weight does not change its scale."""
    loss_real = F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
    loss_fake = F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    if mismatch is None or mismatch_weight <= 0:
        return loss_real + loss_fake
    loss_mis = F.binary_cross_entropy_with_logits(mismatch, torch.zeros_like(mismatch))
    return loss_real + (loss_fake + mismatch_weight * loss_mis) / (1 + mismatch_weight) * 2


def g_loss(fake: torch.Tensor) -> torch.Tensor:
    """G's non-saturating loss on D's logits for its videos."""
    return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))


def mode_seeking(video_a: torch.Tensor, video_b: torch.Tensor, z_a: torch.Tensor,
                 z_b: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """The mode-seeking term of MSGAN (Mao et al. 2019) for G: the same captions with two
    noise vectors should give videos as far apart as the noise is. Without it a short
    training run tends to learn one video per caption and ignore z."""
    ratio = (video_a - video_b).abs().mean() / (z_a - z_b).abs().mean()
    return 1.0 / (ratio + eps)


def bag_of_words(ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Token ids (B, L) -> (B, vocab_size) multi-hot of the words present; <pad> (0) and
    <unk> (1) are no words."""
    hot = torch.zeros(ids.shape[0], vocab_size, device=ids.device)
    hot.scatter_(1, ids.long(), 1.0)
    hot[:, :2] = 0
    return hot


def word_loss(logits: torch.Tensor, words: torch.Tensor, per_caption: torch.Tensor | None = None) -> torch.Tensor:
    """Multi-label BCE of word logits (B, V) against a bag of words (B, V), summed over the
    vocabulary and divided by the words per caption: about one BCE term per caption word,
    so the weight does not depend on the vocabulary's size. ``per_caption``: that divisor
    for the whole batch when ``words`` is one rank's slice of it (default: these rows')."""
    per = F.binary_cross_entropy_with_logits(logits.float(), words, reduction="none").sum(1)
    if per_caption is None:
        per_caption = words.sum(1).mean()
    return per.mean() / per_caption.to(per.device).clamp(min=1)
