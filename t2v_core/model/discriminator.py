"""Discriminator D(video, text): a video branch over space and time and a frame branch,
both conditioned on the caption by projection."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from t2v_core.config import ModelConfig, check_frame_size
from t2v_core.model.text_encoder import TextEncoder


class ProjectionHead(nn.Module):
    """logit = w . phi + b + <W s, phi> (Miyato & Koyama's projection discriminator). The
    inner product with the text makes "does this video match this caption" part of the
    score, which is what the mismatched-caption loss trains."""

    def __init__(self, feat_dim: int, text_dim: int):
        super().__init__()
        self.linear = spectral_norm(nn.Linear(feat_dim, 1))
        self.embed = spectral_norm(nn.Linear(text_dim, feat_dim, bias=False))

    def forward(self, phi: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return self.linear(phi).squeeze(-1) + (self.embed(s) * phi).sum(-1)


def _video_branch(cfg: ModelConfig, n_down: int) -> nn.Sequential:
    """3D convolutions: each layer halves height and width, and time while T allows it,
    so direction and smoothness of motion are visible to D."""
    layers: list[nn.Module] = []
    c_in, t = 3, cfg.frames
    for i in range(n_down):
        c_out = cfg.d_channels * min(2**i, 4)
        st = 2 if (i > 0 and t >= 2) else 1
        t = (t + st - 1) // st if st == 2 else t
        layers += [spectral_norm(nn.Conv3d(c_in, c_out, (3, 4, 4), (st, 2, 2), (1, 1, 1))),
                   nn.LeakyReLU(0.2)]
        c_in = c_out
    return nn.Sequential(*layers)


def _frame_branch(cfg: ModelConfig, n_down: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    c_in = 3
    for i in range(n_down):
        c_out = cfg.d_channels * min(2**i, 4)
        layers += [spectral_norm(nn.Conv2d(c_in, c_out, 4, 2, 1)), nn.LeakyReLU(0.2)]
        c_in = c_out
    return nn.Sequential(*layers)


def _word_branch(cfg: ModelConfig) -> nn.Sequential:
    """The word classifier's trunk, built like the evaluation's feature net (features.py),
    which learns shape in a few hundred steps: a 3x3 convolution per frame at full
    resolution (small shapes differ by a corner pixel), group norm (without it shape takes
    many times longer), then space and time together for motion. No spectral norm: it is a
    classifier trained on real clips only, not a critic G plays against."""
    c1, c2 = max(4, cfg.d_channels // 2), 2 * cfg.d_channels
    # No bias before a group norm: the norm subtracts it again, so its gradient is float
    # rounding, and Adam (which scales each step to about the learning rate) would walk it
    # at random.
    return nn.Sequential(
        nn.Conv3d(3, c1, (1, 3, 3), padding=(0, 1, 1), bias=False), nn.GroupNorm(4, c1), nn.ReLU(),
        nn.MaxPool3d((1, 2, 2)),
        nn.Conv3d(c1, c2, 3, stride=2, padding=1, bias=False), nn.GroupNorm(4, c2), nn.ReLU(),
        nn.Conv3d(c2, c2, 3, padding=1), nn.ReLU(),
    )


class Discriminator(nn.Module):
    """forward(video (B, T, 3, H, W), ids, lengths) -> (video logits (B,), frame logits (B, T)).

    Spectral norm on every layer keeps D Lipschitz, which is what lets a small GAN train
    stably in a few hundred steps without tuning R1.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        n_down = check_frame_size(cfg)  # down to 4x4, mirroring the generator
        self.text = TextEncoder(cfg)
        feat = cfg.d_channels * min(2 ** (n_down - 1), 4)
        self.video = _video_branch(cfg, n_down)
        self.frame = _frame_branch(cfg, n_down)
        self.video_head = ProjectionHead(feat, cfg.text_dim)
        self.frame_head = ProjectionHead(feat, cfg.text_dim)
        # Which words a caption of this video would use (TAC-GAN's auxiliary classifier,
        # with the caption's words as labels): unlike "does this caption match", every word
        # gets its own signal, so shape is learned even when colour alone would tell the
        # captions of a batch apart. It has its own trunk (see _word_branch): on the shared,
        # Lipschitz-bounded features it named the shape of a real clip only about 60% of
        # the time after 3,000 steps, and G cannot learn a shape its critic cannot see.
        self.word_branch = _word_branch(cfg)
        word_feat = 2 * self.word_branch[-2].out_channels
        self.word_head = nn.Linear(word_feat, cfg.vocab_size)
        # A third critic on the word branch's features (which the critic does not train),
        # as Projected GANs judge on a fixed feature network's: those features see the
        # shape and sharpness of small objects that the spectrally normed branches blur.
        self.word_critic = ProjectionHead(word_feat, cfg.text_dim) if cfg.word_critic else None
        # The twin of word_head (TAC-GAN, Gong et al. 2019): the same classifier learnt on G's
        # videos instead of real ones. A classifier's loss alone rewards G for the videos it
        # names most surely (each direction drawn from one corner, the same for every z);
        # G also raising the twin's loss cancels that pull (the conditional entropy of its
        # own videos), so the words stay right without one video per caption.
        self.word_twin = nn.Linear(word_feat, cfg.vocab_size) if cfg.word_twin else None

    def encode_text(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.text(ids, lengths)[2]

    def features(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """video (B, T, 3, H, W) -> (video features (B, C), frame features (B, T, C)).
        Computed once per video, then scored against any number of captions."""
        cfg = self.cfg
        b = video.shape[0]
        assert video.shape[1:] == (cfg.frames, 3, cfg.height, cfg.width), video.shape
        # Channels-last inputs take oneDNN's fast convolutions on CPU (measured 1.4x for both
        # branches, forward and backward, on the demo profile's shapes).
        clip = video.transpose(1, 2).contiguous(memory_format=torch.channels_last_3d)
        phi_v = self.video(clip).sum(dim=(2, 3, 4))
        frames = video.reshape(b * cfg.frames, 3, cfg.height, cfg.width)
        phi_f = self.frame(frames.contiguous(memory_format=torch.channels_last)).sum(dim=(2, 3))
        phi_f = phi_f.view(b, cfg.frames, -1)
        return phi_v, phi_f

    def score(self, feats: tuple[torch.Tensor, torch.Tensor], s: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Features and sentence vectors (B, text_dim) -> (video logits (B,), frame logits (B, T))."""
        phi_v, phi_f = feats
        b, t, c = phi_f.shape
        video_logit = self.video_head(phi_v, s)
        frame_logit = self.frame_head(phi_f.reshape(b * t, c), s.repeat_interleave(t, dim=0))
        return video_logit, frame_logit.view(b, t)

    def match(self, feats: tuple[torch.Tensor, torch.Tensor], s: torch.Tensor) -> torch.Tensor:
        """(B, B) text-video match scores: entry (i, j) says how well video i fits caption j,
        from the text-dependent part of both projection heads. Cross-entropy along each row
        (the contrastive loss of XMC-GAN, Zhang et al. 2021) gives every video B - 1 wrong
        captions per step instead of one."""
        phi_v, phi_f = feats
        return phi_v @ self.video_head.embed(s).T + phi_f.mean(1) @ self.frame_head.embed(s).T

    def word_features(self, video: torch.Tensor) -> torch.Tensor:
        """video (B, T, 3, H, W) -> the word branch's pooled features (B, C)."""
        # channels-last is oneDNN's fast path for 3D convolutions on CPU
        x = video.transpose(1, 2).contiguous(memory_format=torch.channels_last_3d)
        h = self.word_branch(x)
        # Mean pooling keeps how much (colour, size), max pooling whether there is a corner
        # or a point anywhere (shape), which averaging washes out.
        return torch.cat([h.mean(dim=(2, 3, 4)), h.amax(dim=(2, 3, 4))], -1)

    def words(self, video: torch.Tensor) -> torch.Tensor:
        """video (B, T, 3, H, W) -> (B, vocab_size) logits: does a caption of this video
        contain word j?"""
        return self.word_head(self.word_features(video))

    def forward(
        self, video: torch.Tensor, ids: torch.Tensor, lengths: torch.Tensor,
        s: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (video logits (B,), frame logits (B, T))."""
        if s is None:
            s = self.encode_text(ids, lengths)
        return self.score(self.features(video), s)
