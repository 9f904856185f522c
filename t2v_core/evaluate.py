"""The generic evaluation metrics, for every corpus: a registry of small functions, each
registered by name.

They read pixels, or the features of the corpus's text-video matching model
(t2v_core.matching); nothing looks inside the generator, and nothing here knows a corpus.
The figures of a corpus judge live in t2v_core.assess. Every metric returns plain JSON-able
values (float, int, None where a metric is undefined).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from scipy import linalg

__all__ = [
    "METRICS",
    "metric",
    "frechet_distance",
    "kid",
    "r_precision",
    "motion",
    "feature_variety",
]

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
