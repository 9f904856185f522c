"""The image-analysis judge: what a Moving Shapes clip shows, read from its pixels alone.

Evaluation must not trust the model's own account of what it drew, so the judge looks only at
RGB frames (T, H, W, 3) uint8 and answers in the corpus's vocabulary: colour, shape, size and
direction, plus whether the clip holds one consistent object moving smoothly.

Per frame: pixels whose brightest channel is at least OBJECT_LEVEL are object pixels (the
background is black, every palette colour has a channel at 255, and the threshold sits near
the 50% coverage line of anti-aliased edges); 8-connected components smaller than a speck
are codec noise. The largest component is measured:
- colour: the median of its bright core pixels, divided by its own brightest channel so that
  dim edges and codec gain do not matter, then the nearest palette colour. The median ignores
  the hue bleeding that VP8's 4:2:0 chroma subsampling puts on the edges.
- shape and size: the component's soft coverage is upsampled and cut at 50%, which recovers
  the drawn outline to a fraction of a pixel; the fill ratio (area over bounding box) is
  1 for a square, pi/4 for a circle and 1/2 for a triangle; the size is the bounding box's
  longer side relative to the frame.
- centroid: brightness-weighted, so it moves by fractions of a pixel like the shape does.
Per clip: colour and shape by majority over frames, size by the median extent, direction by a
least-squares line through the centroids.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np

from t2v_core.corpus.synthetic import COLOURS, SIZE_FRACTION

OBJECT_LEVEL = 100  # brightest-channel value that makes a pixel part of an object
MIN_AREA_FRACTION = 0.002  # smaller components are codec specks (2 px at 32x32)
CORE_SHARE = 0.7  # colour is read from pixels at least this bright relative to the peak
UPSAMPLED_SIDE = 64  # shapes are measured after upsampling their box to about this size
# An upward triangle's centroid sits 1/6 of its height below its box's centre; circles and
# squares are symmetric. This survives blur far better than the fill ratio does; the cut
# sits between the largest drop of a decoded 32 px circle (0.03) and the smallest of a
# decoded 32 px triangle (0.055).
TRIANGLE_DROP = 0.045
# Fill ratio cut between circle (pi/4 = 0.785) and square (1.0), nudged towards the circle
# because blur rounds square corners.
SQUARE_ABOVE = 0.84
# Small and large are drawn at 0.25 and 0.45 of the frame; cut at their geometric mean.
SIZE_CUT = float(np.sqrt(SIZE_FRACTION["small"] * SIZE_FRACTION["large"]))
MIN_MOVE = 0.04  # net displacement below this share of the frame counts as standing still

# Palette in brightness-free form: each colour divided by its brightest channel.
_PALETTE_NAMES = tuple(COLOURS)
_PALETTE = np.array([COLOURS[c] for c in _PALETTE_NAMES], np.float32) / 255.0


@dataclass
class Judgement:
    """What the judge saw in one clip. Attributes are None when it cannot tell."""

    colour: str | None
    shape: str | None
    size: str | None
    direction: str | None
    frame_colours: list[str | None]
    frame_shapes: list[str | None]
    n_frames_with_object: int
    coherent: bool  # one object in every frame, same colour and shape throughout
    smoothness: float  # std / mean of centroid steps; 0 = constant speed; nan if < 2 steps
    centroids: np.ndarray  # (T, 2) x, y in pixels; nan where no object
    objects_per_frame: list[int] = field(default_factory=list)
    frame_extents: list[float] = field(default_factory=list)  # bbox side / frame side; nan if none

    def attributes(self) -> dict[str, str | None]:
        return {"colour": self.colour, "shape": self.shape, "size": self.size, "direction": self.direction}


@dataclass
class _FrameReading:
    n_objects: int
    colour: str | None = None
    shape: str | None = None
    extent: float = float("nan")
    centroid: tuple[float, float] = (float("nan"), float("nan"))


def nearest_colour(rgb: np.ndarray) -> str:
    """The palette colour nearest to an RGB triple once brightness is divided out."""
    rgb = np.asarray(rgb, np.float32)
    peak = float(rgb.max())
    if peak <= 0:
        raise ValueError("black has no colour")
    d = np.linalg.norm(_PALETTE - rgb / peak, axis=1)
    return _PALETTE_NAMES[int(np.argmin(d))]


def classify_outline(fill: float, drop: float) -> str:
    """Shape from the fill ratio (area / bounding box) and the drop (how far the centroid
    sits below the box's centre, as a share of the box's height)."""
    if drop > TRIANGLE_DROP:
        return "triangle"
    return "square" if fill > SQUARE_ABOVE else "circle"


def _outline(soft: np.ndarray) -> tuple[float, float, float, float] | None:
    """Fill ratio, drop and bounding-box width and height (in original pixels) of a soft
    coverage patch (float, 0..1), measured on an upsampled copy cut at 50%."""
    h, w = soft.shape
    scale = max(4, int(np.ceil(UPSAMPLED_SIDE / max(h, w))))
    big = cv2.resize(soft, (w * scale, h * scale), interpolation=cv2.INTER_LINEAR)
    binary = (big >= 0.5).astype(np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    contour = max(contours, key=cv2.contourArea)
    _, by, bw, bh = cv2.boundingRect(contour)
    m = cv2.moments(contour)
    if m["m00"] <= 0:
        return None
    drop = (m["m01"] / m["m00"] - (by + bh / 2)) / bh
    return m["m00"] / float(bw * bh), drop, bw / scale, bh / scale


def measure_object(frame: np.ndarray, value: np.ndarray, inside: np.ndarray) -> tuple[str, str | None, float,
                                                                                   tuple[float, float]]:
    """Colour, shape, extent (bounding box side / frame side; nan if unreadable) and
    brightness-weighted centroid (x, y) of the object at ``inside`` (H, W) bool, from its
    frame (H, W, 3) uint8 and ``value``, the frame's brightest channel."""
    # Colour from the bright core: edges carry the codec's chroma bleeding.
    pixels = frame[inside].astype(np.float32)
    bright = pixels.max(axis=1)
    peak = float(bright.max())
    core = pixels[bright >= CORE_SHARE * peak]
    colour = nearest_colour(np.median(core, axis=0))

    # Soft coverage around the component (grown by 1 px for its anti-aliased rim), with
    # every other object masked out.
    grown = cv2.dilate(inside.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    soft = np.where(grown, value.astype(np.float32) / max(peak, 1.0), 0.0).astype(np.float32)
    ys, xs = np.nonzero(grown)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    patch = np.pad(soft[y0:y1, x0:x1], 1)  # a black border so the outline closes
    outline = _outline(np.clip(patch, 0.0, 1.0))
    shape, extent = None, float("nan")
    if outline is not None:
        fill, drop, bw, bh = outline
        shape = classify_outline(fill, drop)
        extent = max(bw, bh) / min(frame.shape[:2])

    weights = soft[y0:y1, x0:x1]
    total = float(weights.sum())
    gy, gx = np.mgrid[y0:y1, x0:x1]
    centroid = (float((gx * weights).sum() / total), float((gy * weights).sum() / total))
    return colour, shape, extent, centroid


def components(frame: np.ndarray, min_area: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The frame's brightest channel, its 8-connected component labels, and the labels of
    the components of at least ``min_area`` object pixels (largest first)."""
    value = frame.max(axis=2)
    mask = (value >= OBJECT_LEVEL).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    objects = sorted((i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= min_area),
                     key=lambda i: -stats[i, cv2.CC_STAT_AREA])
    return value, labels, objects


def _read_frame(frame: np.ndarray, min_area: int) -> _FrameReading:
    value, labels, objects = components(frame, min_area)
    if not objects:
        return _FrameReading(0)
    colour, shape, extent, centroid = measure_object(frame, value, labels == objects[0])  # the largest
    return _FrameReading(len(objects), colour, shape, extent, centroid)


def _majority(values: list[str | None]) -> str | None:
    seen = Counter(v for v in values if v is not None)
    return seen.most_common(1)[0][0] if seen else None


def direction_of(centroids: np.ndarray, frame_side: int) -> str | None:
    """Direction of the least-squares line through the centroids; None if it barely moves."""
    t = np.arange(len(centroids), dtype=np.float64)
    ok = ~np.isnan(centroids[:, 0])
    if ok.sum() < 2:
        return None
    span = t[ok][-1] - t[ok][0]
    dx = np.polyfit(t[ok], centroids[ok, 0], 1)[0] * span
    dy = np.polyfit(t[ok], centroids[ok, 1], 1)[0] * span
    if max(abs(dx), abs(dy)) < MIN_MOVE * frame_side:
        return None
    if abs(dx) >= abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"  # image rows grow downwards


def smoothness_of(centroids: np.ndarray) -> float:
    """Coefficient of variation of the steps between consecutive frames that both hold an
    object: 0 for constant speed, nan with fewer than two steps."""
    ok = ~np.isnan(centroids[:, 0])
    steps = np.linalg.norm(np.diff(centroids, axis=0), axis=1)[ok[1:] & ok[:-1]]
    if len(steps) < 2:
        return float("nan")
    mean = float(steps.mean())
    if mean < 1e-6:  # standing still is constant speed too; direction catches it
        return 0.0
    return float(steps.std() / mean)


def judge_clip(clip: np.ndarray) -> Judgement:
    """Judge one RGB uint8 clip (T, H, W, 3)."""
    if clip.ndim != 4 or clip.shape[-1] != 3 or clip.dtype != np.uint8:
        raise ValueError(f"judge_clip needs uint8 (T, H, W, 3), got {clip.dtype} {clip.shape}")
    t, h, w, _ = clip.shape
    min_area = max(2, int(round(MIN_AREA_FRACTION * h * w)))
    readings = [_read_frame(frame, min_area) for frame in clip]
    centroids = np.array([r.centroid for r in readings], np.float64).reshape(t, 2)
    extents = [r.extent for r in readings]
    frame_colours = [r.colour for r in readings]
    frame_shapes = [r.shape for r in readings]
    finite = [e for e in extents if np.isfinite(e)]
    size = None
    if finite:
        size = "small" if float(np.median(finite)) < SIZE_CUT else "large"
    coherent = (
        all(r.n_objects == 1 for r in readings)
        and len(set(frame_colours)) == 1
        and len(set(frame_shapes)) == 1
        and frame_shapes[0] is not None
    )
    return Judgement(
        colour=_majority(frame_colours),
        shape=_majority(frame_shapes),
        size=size,
        direction=direction_of(centroids, min(h, w)),
        frame_colours=frame_colours,
        frame_shapes=frame_shapes,
        n_frames_with_object=sum(r.n_objects > 0 for r in readings),
        coherent=coherent,
        smoothness=smoothness_of(centroids),
        centroids=centroids,
        objects_per_frame=[r.n_objects for r in readings],
        frame_extents=extents,
    )


def judge_many(clips: Iterable[np.ndarray]) -> list[Judgement]:
    """Judge each clip of a batch (N, T, H, W, 3) or of any iterable of clips."""
    return [judge_clip(np.asarray(c)) for c in clips]
