"""Evaluation metrics: a registry of small functions, each registered by name.

Everything here reads pixels, through the features of the corpus's text-video matching model
(t2v_core.matching: the generic metrics, for every corpus) or through an image-analysis judge
(t2v_core.judge, where a corpus has ground truth); nothing looks inside the generator. Every
metric returns plain JSON-able values (float, int, None where a metric is undefined, e.g. an
accuracy over zero clips).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
from scipy import linalg

from t2v_core.judge import Judgement, judge_clip, judge_many

__all__ = [
    "METRICS",
    "metric",
    "attribute_accuracy",
    "temporal_coherence",
    "variety",
    "frechet_distance",
    "kid",
    "r_precision",
    "motion",
    "feature_variety",
    "evaluate_clips",
]

ATTRIBUTES = ("colour", "shape", "size", "direction")
F = TypeVar("F", bound=Callable[..., Any])
METRICS: dict[str, Callable[..., Any]] = {}


def metric(name: str) -> Callable[[F], F]:
    """Register a metric function under ``name`` (names are unique)."""

    def register(fn: F) -> F:
        if name in METRICS:
            raise ValueError(f"metric {name!r} is already registered")
        METRICS[name] = fn
        return fn

    return register


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


@metric("attribute_accuracy")
def attribute_accuracy(judgements: Sequence[Judgement], expected: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Share of clips whose judged colour, shape, size and direction match what was asked
    for; ``all_correct`` needs all four. A clip the judge cannot read counts as wrong.
    ``coherent`` is the share of these clips with one unchanging object in every frame, and
    ``correct_and_coherent`` needs both, which is what a user of one video sees."""
    if len(judgements) != len(expected):
        raise ValueError(f"{len(judgements)} judgements but {len(expected)} expectations")
    out: dict[str, Any] = {"n": len(judgements)}
    hits = np.array(
        [[getattr(j, a) == e[a] for a in ATTRIBUTES] for j, e in zip(judgements, expected, strict=True)],
        dtype=bool,
    ).reshape(len(judgements), len(ATTRIBUTES))
    for i, a in enumerate(ATTRIBUTES):
        out[a] = _mean(hits[:, i])
    out["all_correct"] = _mean(hits.all(axis=1))
    coherent = np.array([j.coherent for j in judgements], dtype=bool)
    out["coherent"] = _mean(coherent)
    out["correct_and_coherent"] = _mean(hits.all(axis=1) & coherent)
    return out


@metric("temporal_coherence")
def temporal_coherence(judgements: Sequence[Judgement]) -> dict[str, Any]:
    """``coherent_share``: clips with one object of one colour and shape in every frame.
    ``smoothness``: mean std/mean of centroid steps (0 = constant speed) over the clips where
    it is defined (an object in at least three consecutive frames)."""
    smooth = [j.smoothness for j in judgements if np.isfinite(j.smoothness)]
    return {
        "n": len(judgements),
        "coherent_share": _mean([float(j.coherent) for j in judgements]),
        "smoothness": _mean(smooth),
        "smoothness_n": len(smooth),
        "object_frame_share": _mean([j.n_frames_with_object / len(j.frame_colours) for j in judgements]),
    }


# "Visibly different", precisely. A pair of clips differs visibly when either
#  - the judge finds the object in the same frame of both clips at places more than
#    VARIETY_SHIFT of the frame's side apart (1.6 px at 32 px: a jump anyone sees when
#    flicking between the two; codec noise moves a decoded centroid by < 0.3 px), or
#  - more than VARIETY_PIXELS of all pixels change by more than a quarter of full scale in
#    some channel (catches a different colour or shape, or clips without a readable
#    object; faint noise never reaches a quarter of full scale).
# Moving Shapes draws the start position and speed at random, so the real corpus is varied
# by this measure; a generator that ignores its noise scores 0.
VARIETY_SHIFT = 0.05
VARIETY_PIXELS = 0.02
VARIETY_LEVEL = 64


def _pair_differs(a: np.ndarray, b: np.ndarray) -> bool:
    changed = (np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=-1) > VARIETY_LEVEL).mean()
    if changed > VARIETY_PIXELS:
        return True
    ca, cb = judge_clip(a).centroids, judge_clip(b).centroids
    both = ~np.isnan(ca[:, 0]) & ~np.isnan(cb[:, 0])
    if not both.any():
        return False
    apart = np.linalg.norm(ca[both] - cb[both], axis=1).max()
    return bool(apart > VARIETY_SHIFT * min(a.shape[1:3]))


@metric("variety")
def variety(clips_a: np.ndarray, clips_b: np.ndarray) -> float:
    """Share of pairs (clips_a[i], clips_b[i]), made from the same prompt with different
    noise, that are visibly different (defined above)."""
    if len(clips_a) != len(clips_b):
        raise ValueError(f"variety needs pairs: {len(clips_a)} clips against {len(clips_b)}")
    if len(clips_a) == 0:
        raise ValueError("variety needs at least one pair")
    for a, b in zip(clips_a, clips_b, strict=True):
        if a.shape != b.shape or a.dtype != np.uint8 or b.dtype != np.uint8 or a.ndim != 4:
            raise ValueError(f"pairs must be uint8 clips of one shape, got {a.dtype} {a.shape} / {b.dtype} {b.shape}")
    return float(np.mean([_pair_differs(a, b) for a, b in zip(clips_a, clips_b, strict=True)]))


def _sqrtm(m: np.ndarray) -> np.ndarray | None:
    """scipy's matrix square root, or None where it is not finite or not a root."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)  # judged below, not printed
        root = linalg.sqrtm(m)
    if not np.isfinite(root).all():
        return None
    scale = max(float(np.abs(m).max()), 1e-12)
    return root if float(np.abs(root @ root - m).max()) <= 1e-3 * scale else None


@metric("frechet_distance")
def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N, D):
    |mu_a - mu_b|^2 + tr(C_a + C_b - 2 (C_a C_b)^(1/2)), as in FID."""
    feats_a, feats_b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
    if feats_a.ndim != 2 or feats_b.ndim != 2 or feats_a.shape[1] != feats_b.shape[1]:
        raise ValueError(f"features must be (N, D) with one D, got {feats_a.shape} and {feats_b.shape}")
    if len(feats_a) < 2 or len(feats_b) < 2:
        raise ValueError("a covariance needs at least 2 feature rows on each side")
    mu_a, mu_b = feats_a.mean(axis=0), feats_b.mean(axis=0)
    cov_a = np.atleast_2d(np.cov(feats_a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(feats_b, rowvar=False))
    root = _sqrtm(cov_a @ cov_b)
    if root is None:
        # a singular product (fewer rows than dimensions): regularise as pytorch-fid does
        eps = 1e-6 * np.eye(len(cov_a))
        root = _sqrtm((cov_a + eps) @ (cov_b + eps))
        if root is None:
            raise ValueError("the feature covariances have no usable matrix square root")
    # the root of a product of PSD matrices is real up to rounding: drop the imaginary dust
    root = np.real(root)
    diff = mu_a - mu_b
    value = diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(root)
    return float(max(value, 0.0))  # rounding can push an exact match a hair below zero


def evaluate_clips(clips: np.ndarray, expected: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Judge generated clips (N, T, H, W, 3) uint8 against the rows they were made from
    (colour, shape, size, direction, split). ``seen`` covers compositions of the training
    split, ``held_out`` those of the test split (each with its own ``coherent`` share, so a
    checkpoint can be chosen on the seen compositions alone); ``coherence`` covers all clips."""
    if clips.ndim != 5 or clips.shape[-1] != 3 or clips.dtype != np.uint8:
        raise ValueError(f"clips must be uint8 (N, T, H, W, 3), got {clips.dtype} {clips.shape}")
    if len(clips) != len(expected):
        raise ValueError(f"{len(clips)} clips but {len(expected)} expected rows")
    unknown = sorted({str(e.get("split")) for e in expected} - {"train", "test"})
    if unknown:
        raise ValueError(f"expected rows need split 'train' or 'test', got {unknown}")
    judged = judge_many(clips)
    by_split = {
        name: [i for i, e in enumerate(expected) if e["split"] == split]
        for name, split in (("seen", "train"), ("held_out", "test"))
    }
    out: dict[str, Any] = {
        name: attribute_accuracy([judged[i] for i in idx], [expected[i] for i in idx])
        for name, idx in by_split.items()
    }
    out["coherence"] = temporal_coherence(judged)
    return out


@metric("kid")
def kid(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Kernel Inception Distance (Binkowski et al. 2018): the unbiased squared MMD with the
    cubic kernel (x.y / d + 1)^3. Unlike the Frechet distance it needs no covariance, so it
    stays unbiased with a few dozen clips."""
    a, b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise ValueError(f"KID needs two (N >= 2, D) feature sets, got {a.shape} and {b.shape}")
    d = a.shape[1]
    kxx, kyy, kxy = ((x @ y.T / d + 1) ** 3 for x, y in ((a, a), (b, b), (a, b)))
    m, n = len(a), len(b)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.mean())


@metric("r_precision")
def r_precision(sims: np.ndarray, true: np.ndarray, exclude: np.ndarray, pool: int = 100,
                seed: int = 0) -> tuple[float, int]:
    """AttnGAN's R-precision (R = 1): for each video i, its caption ``true[i]`` and up to
    ``pool - 1`` other captions drawn at random; a hit when the true caption scores highest.
    ``sims`` (N, M) are video-caption similarities over M distinct caption texts (duplicate
    texts removed), ``exclude`` (N, M) marks captions that may not be negatives of video i
    (its own video's other captions). Returns (R@1, the smallest pool any video had)."""
    n, m = sims.shape
    if true.shape != (n,) or exclude.shape != (n, m):
        raise ValueError(f"sims {sims.shape}, true {true.shape} and exclude {exclude.shape} disagree")
    if n == 0:
        raise ValueError("R-precision needs at least one video")
    rng = np.random.default_rng(seed)
    hits, sizes = [], []
    for i in range(n):
        allowed = ~exclude[i]
        allowed[true[i]] = False
        negatives = np.flatnonzero(allowed)
        if len(negatives) > pool - 1:
            negatives = rng.choice(negatives, pool - 1, replace=False)
        hits.append(bool(len(negatives) == 0 or sims[i, true[i]] > sims[i, negatives].max()))
        sizes.append(len(negatives) + 1)
    return float(np.mean(hits)), int(min(sizes))


def _changes(clips: np.ndarray) -> tuple[float, float]:
    """Mean absolute change between adjacent frames, and the part of it that does not
    persist over two frames: |d_t| + |d_t+1| - |x_t+2 - x_t| >= 0, zero when a pixel keeps
    moving one way, so flicker (a pixel that jumps and comes back) cannot pass for motion."""
    x = clips.astype(np.float32) / 255.0
    d = np.diff(x, axis=1)
    change = float(np.abs(d).mean())
    if x.shape[1] < 3:
        return change, 0.0
    back = np.abs(d[:, :-1]) + np.abs(d[:, 1:]) - np.abs(x[:, 2:] - x[:, :-2])
    return change, float(back.mean() / 2)


@metric("motion")
def motion(generated: np.ndarray, real: np.ndarray) -> dict[str, float | None]:
    """``ratio``: generated clips' mean change between adjacent frames over real clips';
    ``flicker``: the same ratio for the change that does not persist (see ``_changes``).
    1 is the real clips' amount; 0 is a still image."""
    g_change, g_flicker = _changes(generated)
    r_change, r_flicker = _changes(real)
    return {"ratio": g_change / r_change if r_change > 0 else None,
            "flicker": g_flicker / r_flicker if r_flicker > 0 else None,
            "generated_change": g_change, "real_change": r_change}


@metric("feature_variety")
def feature_variety(draw_a: np.ndarray, draw_b: np.ndarray, real: np.ndarray) -> float:
    """Mean feature distance between two noise draws of one caption, over the mean distance
    between two different real clips: 0 = every draw alike, 1 = as different as two clips
    of the corpus. Inputs are (N, D) features; ``real`` needs at least 2 rows."""
    if draw_a.shape != draw_b.shape or len(real) < 2:
        raise ValueError(f"variety needs paired draws and 2+ real clips, got {draw_a.shape}, {draw_b.shape}, {real.shape}")
    pair = float(np.linalg.norm(draw_a - draw_b, axis=1).mean())
    diff = real[:, None, :] - real[None, :, :]
    dist = np.linalg.norm(diff, axis=-1)
    spread = float(dist.sum() / (len(real) * (len(real) - 1)))
    return pair / spread if spread > 0 else 0.0
