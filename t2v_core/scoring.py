"""The generic metrics of a generator on one side of any corpus, read through the corpus's
text-video matching model (t2v_core.matching). The evaluate stage writes them into
metrics.json, validation during training uses the cheap part on the val side.

Every figure comes with its yardstick from real clips of the same side: R-precision with the
real clips' ceiling and the shuffled-caption chance, the Frechet distance (or KID) with the
distance between two halves of real clips, motion as a ratio to real clips' motion.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from t2v_core import evaluate as ev
from t2v_core.config import EvaluateConfig
from t2v_core.corpus.manifests import CorpusError
from t2v_core.datasets import SideData
from t2v_core.matching import MatchModel

# (rows of the side's videos, seeds) -> uint8 clips (N, T, H, W, 3), one per row
GenerateFn = Callable[[Sequence[int], Sequence[int]], np.ndarray]
POOL = 100  # AttnGAN's: the true caption among 99 others
CHANCE_SHUFFLES = 50


def seed_set(seed: int, k: int, n: int) -> list[int]:
    """The k-th fixed set of noise seeds for n videos: the same on every run and model."""
    return [int(s) for s in np.random.default_rng([seed, k]).integers(2**31, size=n)]


def _derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """Each video gets another video's caption: a random cycle through all of them."""
    order = rng.permutation(n)
    out = np.empty(n, dtype=np.int64)
    out[order] = order[(np.arange(n) + 1) % n]
    return out


def calibration(match: MatchModel, side: SideData, seed: int = 0) -> dict[str, Any]:
    """R-precision of real clips with their own captions (the ceiling a generator can reach
    on this side) and with shuffled captions (chance), and the pool size."""
    if len(side.texts) < 2:
        raise CorpusError(f"R-precision needs at least 2 videos with frames on a side, this one has "
                          f"{len(side.texts)}; see the ingest and frames rejects")
    sims = match.videos(side.clips) @ match.texts(side.pool_ids, side.pool_lengths).T
    real, pool = ev.r_precision(sims, side.true, side.exclude, POOL, seed)
    rng = np.random.default_rng(seed)
    chance = [ev.r_precision(sims, side.true[_derangement(len(side.true), rng)], side.exclude, POOL, seed + k)[0]
              for k in range(CHANCE_SHUFFLES)]
    return {"r_precision_real": real, "r_precision_chance": float(np.mean(chance)), "pool": pool,
            "videos": len(side.texts)}


def validator(match: MatchModel, side: SideData, seed: int,
              pairs: int = 16) -> Callable[[GenerateFn], dict[str, float]]:
    """What training logs at each evaluation: R-precision of generated val videos, and the
    variety of two noise draws of the first ``pairs`` captions. The caption and real-clip
    features do not change during a run, so they are computed once, here."""
    rows = list(range(len(side.texts)))
    seeds = seed_set(seed, 0, len(rows))
    pool = match.texts(side.pool_ids, side.pool_lengths)
    real = match.videos(side.clips[:64])
    k = min(pairs, len(rows))

    def score(generate: GenerateFn) -> dict[str, float]:
        feats = match.videos(generate(rows, seeds))
        rp, _ = ev.r_precision(feats @ pool.T, side.true, side.exclude, POOL, seed)
        again = match.videos(generate(rows[:k], [s + 1 for s in seeds[:k]]))
        variety = ev.feature_variety(feats[:k], again, real) if len(real) >= 2 else 0.0
        return {"r_precision": rp, "variety": variety}

    return score


def generic_metrics(match: MatchModel, side: SideData, generate: GenerateFn,
                    cfg: EvaluateConfig) -> tuple[dict[str, Any], np.ndarray]:
    """Every generic metric of ``metrics.json`` for the videos generated from ``side``'s
    captions (see the README's "Train on your own videos" for what each one means), and
    the first seed set's clips."""
    n = len(side.texts)
    rows = list(range(n))
    real_feats = match.videos(side.clips)
    pool = match.texts(side.pool_ids, side.pool_lengths)
    cal = calibration(match, side, cfg.seed)
    sets, first, first_feats = [], None, None
    for k in range(max(1, cfg.seed_sets)):
        clips = generate(rows, seed_set(cfg.seed, k, n))
        feats = match.videos(clips)
        sets.append(ev.r_precision(feats @ pool.T, side.true, side.exclude, POOL, cfg.seed)[0])
        if first is None:
            first, first_feats = clips, feats
    assert first is not None and first_feats is not None
    text_video: dict[str, Any] = {
        "r_precision": float(np.mean(sets)), "r_precision_worst": float(min(sets)),
        "r_precision_sets": sets, "r_precision_real": cal["r_precision_real"],
        "r_precision_chance": cal["r_precision_chance"], "pool": cal["pool"], "videos": n,
    }
    # Variety: a second draw of the first captions against the first set's.
    k = min(cfg.variety_pairs, n)
    again = match.videos(generate(rows[:k], [s + 1 for s in seed_set(cfg.seed, 0, n)[:k]]))
    text_video["variety"] = ev.feature_variety(first_feats[:k], again, real_feats)

    # Distances on equal sample sizes: generated videos of half B's captions against real
    # half A, beside real half B against real half A (the floor: what sampling alone gives).
    order = np.random.default_rng(cfg.seed).permutation(n)
    half = n // 2
    a, b = order[:half], order[half:2 * half]
    out: dict[str, Any] = {"text_video": text_video}
    dim = real_feats.shape[1]
    if half >= 2 * dim:
        out["frechet"] = {"generated": ev.frechet_distance(first_feats[b], real_feats[a]),
                          "real_halves": ev.frechet_distance(real_feats[b], real_feats[a]), "per_half": half}
    else:
        out["frechet"] = {"generated": None, "real_halves": None, "per_half": half,
                          "note": f"{half} clips per half are too few for a stable {dim}-dimensional "
                                  f"covariance (need {2 * dim}); see kid"}
    if half >= 2:
        out["kid"] = {"generated": ev.kid(first_feats[b], real_feats[a]),
                      "real_halves": ev.kid(real_feats[b], real_feats[a]), "per_half": half}
    else:
        out["kid"] = {"generated": None, "real_halves": None, "per_half": half,
                      "note": "fewer than 2 clips per half"}
    out["motion"] = ev.motion(first, side.clips)
    return out, first
