"""Which frames of a video to take, and how to fit them to the model's size: pure
functions on frame counts, timestamps and images, used by t2v_core.video's extraction."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import cv2
import numpy as np

from t2v_core.config import FramesConfig

SAMPLINGS = ("uniform", "fps")
RESIZES = ("crop", "letterbox")
SHORT_POLICIES = ("loop", "pad", "reject")
SEEKS = ("auto", "never", "always")


class Rejected(Exception):
    """A video that cannot become a clip; the message is the reason in the clips index."""


def sample_indices(n_frames: int, src_fps: float, cfg: FramesConfig, times: Sequence[float] | None = None) -> list[int]:
    """The T source-frame indices to keep, in output order (indices may repeat).

    uniform: T indices spread evenly over [0, n_frames - 1]. fps: one frame every
    1 / target_fps seconds from start_sec, the frame i / src_fps shows, or with ``times``
    (the n_frames decoded timestamps, increasing) the frame on screen then. A clip too
    short for T distinct frames follows cfg.short_policy: loop (repeat the sampled frames
    from the start), pad (repeat the last one) or reject.
    """
    t = cfg.frames
    if n_frames <= 0:
        raise Rejected("video has no frames")
    if cfg.sampling == "uniform":
        if n_frames >= t:
            return [int(i) for i in np.linspace(0, n_frames - 1, t).round()]
        available = list(range(n_frames))
    elif cfg.sampling == "fps":
        if not src_fps > 0:
            raise Rejected("source fps unknown, so sampling = fps cannot place frames; use uniform")
        at = [cfg.start_sec + i / cfg.target_fps for i in range(t)]
        wanted = [int(round(s * src_fps)) for s in at]
        if times and all(b > a for a, b in zip(times, times[1:])):  # else no usable clock
            half = 0.5 / src_fps  # to the nearest frame, as round() does at a constant rate
            wanted = [max(0, bisect.bisect_right(times, s + half) - 1) if s < times[-1] + half else n_frames for s in at]
        available = [i for i in wanted if i < n_frames]
        if not available:
            end = times[-1] + 1 / src_fps if times else n_frames / src_fps
            raise Rejected(f"start_sec {cfg.start_sec:g} is past the clip's end ({end:.2f} s)")
        if len(available) == t:
            return available
    else:
        raise ValueError(f"unknown sampling {cfg.sampling!r}; expected one of {SAMPLINGS}")
    return _short(available, t, cfg.short_policy)


def _short(available: list[int], t: int, policy: str) -> list[int]:
    k = len(available)
    if policy == "loop":
        return [available[i % k] for i in range(t)]
    if policy == "pad":
        return available + [available[-1]] * (t - k)
    if policy == "reject":
        raise Rejected(f"clip too short: {k} frame(s) to sample, {t} needed (short_policy = reject)")
    raise ValueError(f"unknown short_policy {policy!r}; expected one of {SHORT_POLICIES}")


def fit_frame(bgr: np.ndarray, height: int, width: int, mode: str) -> np.ndarray:
    """A decoded BGR frame -> RGB uint8 (height, width, 3). crop keeps the aspect ratio and
    cuts the centre; letterbox keeps the whole picture and pads with black."""
    sh, sw = bgr.shape[:2]
    if mode == "crop":
        # Crop to the target aspect first (a free view), so resize touches only kept pixels.
        if sw * height > sh * width:
            cw = max(1, round(sh * width / height))
            x0 = (sw - cw) // 2
            src = bgr[:, x0 : x0 + cw]
        else:
            ch = max(1, round(sw * height / width))
            y0 = (sh - ch) // 2
            src = bgr[y0 : y0 + ch]
        out = _resize(src, height, width)
    elif mode == "letterbox":
        scale = min(height / sh, width / sw)
        nh, nw = max(1, min(height, round(sh * scale))), max(1, min(width, round(sw * scale)))
        out = np.zeros((height, width, 3), np.uint8)
        y0, x0 = (height - nh) // 2, (width - nw) // 2
        out[y0 : y0 + nh, x0 : x0 + nw] = _resize(bgr, nh, nw)
    else:
        raise ValueError(f"unknown resize {mode!r}; expected one of {RESIZES}")
    # Colour conversion after the resize: a fraction of the pixels of the source frame.
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB)


def _resize(img: np.ndarray, height: int, width: int) -> np.ndarray:
    if img.shape[:2] == (height, width):
        return img
    shrinking = img.shape[0] >= height and img.shape[1] >= width
    if not shrinking:
        return cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)  # the better upscaler
    # INTER_AREA averages the pixels it drops (no aliasing), but with a large non-integer
    # factor (720 -> 64) it takes OpenCV's slow general path. A source at least 4x the target
    # is first box-averaged by an integer factor f to about 2x the target (INTER_AREA's fast
    # path for integer factors: the same averaging, a fraction of the cost), then finished
    # with INTER_AREA. Up to f - 1 source pixels (less than one intermediate pixel) are
    # trimmed from the edges, evenly, so the grid divides by f.
    f = min(img.shape[0] // (2 * height), img.shape[1] // (2 * width))
    if f >= 2:
        h, w = img.shape[0] // f * f, img.shape[1] // f * f
        y0, x0 = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
        img = cv2.resize(img[y0 : y0 + h, x0 : x0 + w], (w // f, h // f), interpolation=cv2.INTER_AREA)
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)


def check_config(cfg: FramesConfig) -> None:
    """A FramesConfig that cannot work is a clear error, raised before any decoding."""
    for name, allowed in (("sampling", SAMPLINGS), ("resize", RESIZES),
                          ("short_policy", SHORT_POLICIES), ("seek", SEEKS)):  # fmt: skip
        if getattr(cfg, name) not in allowed:
            raise ValueError(f"[frames] {name} = {getattr(cfg, name)!r}; expected one of {allowed}")
    if min(cfg.frames, cfg.height, cfg.width) < 1:
        raise ValueError(f"[frames] frames, height and width must be >= 1, got {cfg.frames}, {cfg.height}, {cfg.width}")
    if cfg.sampling == "fps" and not cfg.target_fps > 0:
        raise ValueError(f"[frames] target_fps must be > 0 with sampling = fps, got {cfg.target_fps}")
    if cfg.start_sec < 0:
        raise ValueError(f"[frames] start_sec must be >= 0, got {cfg.start_sec}")
