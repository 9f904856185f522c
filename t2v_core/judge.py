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
- shape: circle, square or triangle if the outline is that corpus shape, else OTHER (below).
- size: the outline's bounding box's longer side relative to the frame.
- centroid: brightness-weighted, so it moves by fractions of a pixel like the shape does.
Per clip: colour and shape by majority over frames, size by the median extent, direction by a
least-squares line through the centroids. A clip is coherent when every frame shows one object
of the same colour and the same corpus shape (a run of OTHER is not).

The shape test (read_outline) must not be fooled by near-misses: a lumpy blob or a pentagon
is no circle, a triangle with concave sides or rounded corners is no triangle, a square with
rounded corners is no square. So each corpus shape is drawn as the corpus draws it
(synthetic._shape_mask) at the size and place that the object's outline gives (its area
and centroid), and the two outlines are compared point by point:
- Both coverages are blurred by BLUR px, upsampled and cut at 50%. The blur is there for VP8:
  its 4:2:0 chroma carries red and blue edges at half resolution, so a decoded outline is a
  2 px staircase; the template goes through the same blur, so corners round alike.
- Along the measured outline, the signed distance to the template's outline is smoothed over
  ARC_SMOOTH px of outline (what is left of the staircase averages out; a lump, a flat side
  or a rounded corner spans several pixels and stays) and taken at its largest.
- The corpus shape with the smallest such deviation wins if it is within TOLERANCE px;
  otherwise the shape is OTHER. Holes and second pieces of the outline count as outline.
On 336 real videos a size decoded from WebM (8,064 frames at 32x32 and 64x64), 99% of frames
deviate from their own shape by at most 0.37 px and all but two by at most 0.42 px (those
two, large at 64x64, by 0.43 and 0.50 px; their clips' majorities still read right).

What a near-miss departs by is its perturbation in pixels, so what can be caught depends on
the size. At the large size at 32x32 (a 14 px box) and both sizes at 64x64 (16 and 29 px),
lumpy circles, pentagons, ellipses, half-discs, concave or rounded triangles, rounded squares
and diamonds read OTHER; hexagons and octagons only from 29 px (below, they stay within about
0.4 px of a circle). At the small size at 32x32 (an 8 px box) no near-miss departs by more
than the codec moves a real outline (a lumpy circle or a pentagon by about 0.25 px), so
there the test only picks the best-fitting corpus shape, as the fill-ratio test before it
did. At 16x16 (the tiny test profile; no bar covers it) the 7 px large shapes still read
right, but of the 4 px small ones many read as another shape or OTHER: the shape is right in
71% of decoded 16x16 videos, against 89% with the fill-ratio test.
benchmarks/judge_nearmiss.py and benchmarks/judge_agreement.py measure all of this.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np

from t2v_core.corpus.synthetic import COLOURS, SIZE_FRACTION, _shape_mask

OBJECT_LEVEL = 100  # brightest-channel value that makes a pixel part of an object
MIN_AREA_FRACTION = 0.002  # smaller components are codec specks (2 px at 32x32)
CORE_SHARE = 0.7  # colour is read from pixels at least this bright relative to the peak
UPSAMPLED_SIDE = 128  # outlines are traced after upsampling their patch to about this size
PATCH_BORDER = 3  # black pixels around an object's patch: room for the blur and the templates
OTHER = "other"  # the shape of an outline that no corpus shape fits
BLUR = 0.7  # px; see the module docstring
ARC_SMOOTH = 0.7  # px along the outline; see the module docstring
TOLERANCE = 0.42  # px: the most that the best template's outline may be off; see the module docstring
# Each template's side from the outline's area A (circle: pi/4 side^2, square: side^2,
# triangle: side^2 / 2) and how far its box's centre sits above the centroid, as a share of
# the side (an upward triangle's centroid is 1/6 of its height below its box's centre).
_FIT = {"circle": (2 / np.sqrt(np.pi), 0.0), "square": (1.0, 0.0), "triangle": (np.sqrt(2.0), 1 / 6)}
_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], np.uint8)
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
    coherent: bool  # one object in every frame, same colour and corpus shape throughout (not OTHER)
    smoothness: float  # std / mean of centroid steps; 0 = constant speed; nan if < 2 steps
    centroids: np.ndarray  # (T, 2) x, y in pixels; nan where no object
    objects_per_frame: list[int] = field(default_factory=list)
    frame_extents: list[float] = field(default_factory=list)  # bbox side / frame side; nan if none
    # px by which the outline misses the nearest corpus shape (read_outline); nan if none.
    # A continuous figure beside the shape's yes or no: real clips' median is about 0.17.
    frame_deviations: list[float] = field(default_factory=list)

    def attributes(self) -> dict[str, str | None]:
        return {"colour": self.colour, "shape": self.shape, "size": self.size, "direction": self.direction}


@dataclass
class _FrameReading:
    n_objects: int
    colour: str | None = None
    shape: str | None = None
    extent: float = float("nan")
    centroid: tuple[float, float] = (float("nan"), float("nan"))
    deviation: float = float("nan")


def nearest_colour(rgb: np.ndarray) -> str:
    """The palette colour nearest to an RGB triple once brightness is divided out."""
    rgb = np.asarray(rgb, np.float32)
    peak = float(rgb.max())
    if peak <= 0:
        raise ValueError("black has no colour")
    d = np.linalg.norm(_PALETTE - rgb / peak, axis=1)
    return _PALETTE_NAMES[int(np.argmin(d))]


def _edge_distance(mask: np.ndarray) -> np.ndarray:
    """Distance (in the mask's pixels) from every pixel to the mask's boundary pixels."""
    edge = mask & ~cv2.erode(mask, _CROSS, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return cv2.distanceTransform((edge == 0).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def _smooth_around(values: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian moving average (``sigma`` in samples) around a closed outline."""
    n = len(values)
    if sigma <= 0 or n < 3:
        return values
    k = np.arange(n)
    k = np.minimum(k, n - k)
    kernel = np.exp(-0.5 * (k / sigma) ** 2)
    return np.fft.irfft(np.fft.rfft(values) * np.fft.rfft(kernel / kernel.sum()), n)


@dataclass
class Outline:
    """What the shape test measured on one object's soft coverage."""

    shape: str  # the best-fitting corpus shape, or OTHER when even it misses by more than TOLERANCE
    deviations: dict[str, float]  # per corpus shape: the largest smoothed offset, in pixels
    width: float  # bounding box of the outline, in pixels
    height: float


def _blurred(soft: np.ndarray, scale: int) -> np.ndarray:
    """The outline's mask at ``scale`` times the resolution: blurred by BLUR, upsampled
    bilinearly, cut at 50% coverage."""
    soft = cv2.GaussianBlur(soft, (0, 0), BLUR)
    h, w = soft.shape
    big = cv2.resize(soft, (w * scale, h * scale), interpolation=cv2.INTER_LINEAR)
    return (big >= 0.5).astype(np.uint8)


def read_outline(soft: np.ndarray) -> Outline | None:
    """The shape of a soft coverage patch (float32 0..1, with a black border): each corpus
    shape, drawn by the corpus's own renderer at the size and place that the outline's area
    and centroid give, is processed as the patch is, and the measured outline's signed
    offset from its outline, smoothed along the outline, is taken at its largest. The
    smallest of the three wins if it is within TOLERANCE; otherwise the shape is OTHER.
    None when there is no outline."""
    h, w = soft.shape
    scale = max(4, int(np.ceil(UPSAMPLED_SIDE / max(h, w))))
    mask = _blurred(soft, scale)
    # every outline, holes included: a hole or a second piece is a departure like any other
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    m = cv2.moments(mask, binaryImage=True)
    if not contours or m["m00"] <= 0:
        return None
    points = [c[:, 0, :] for c in contours]  # (N, 2) x, y on the upsampled grid
    _, _, bw, bh = cv2.boundingRect(np.concatenate(points))
    area = m["m00"] / scale**2  # in original pixels
    # the centroid in original pixel units (a pixel's centre at +0.5, as the renderer has it)
    cx, cy = (m["m10"] / m["m00"] + 0.5) / scale, (m["m01"] / m["m00"] + 0.5) / scale
    deviations = {}
    for shape, (side_of_area, drop) in _FIT.items():
        side = side_of_area * np.sqrt(area)
        # A template that does not fit in the patch is cut at its border, PATCH_BORDER px or
        # more from the measured outline: a large deviation, as a template that far off has.
        template = _blurred(_shape_mask(shape, cx, cy - drop * side, side, h, w), scale)
        distance = _edge_distance(template) / scale
        worst = 0.0
        for p in points:
            inside = template[p[:, 1], p[:, 0]] > 0
            offset = np.where(inside, -1.0, 1.0) * distance[p[:, 1], p[:, 0]]
            steps = np.linalg.norm(np.diff(p, axis=0, append=p[:1]), axis=1).mean() / scale
            worst = max(worst, float(np.abs(_smooth_around(offset, ARC_SMOOTH / max(steps, 1e-6))).max()))
        deviations[shape] = worst
    best = min(deviations, key=deviations.__getitem__)
    return Outline(best if deviations[best] <= TOLERANCE else OTHER, deviations, bw / scale, bh / scale)


def measure_object(frame: np.ndarray, value: np.ndarray, inside: np.ndarray
                   ) -> tuple[str, str | None, float, tuple[float, float], float]:
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
    # a black border wide enough that the blur and the templates' rims fit inside
    patch = np.pad(soft[y0:y1, x0:x1], PATCH_BORDER)
    outline = read_outline(np.clip(patch, 0.0, 1.0))
    shape, extent, deviation = None, float("nan"), float("nan")
    if outline is not None:
        shape = outline.shape
        extent = max(outline.width, outline.height) / min(frame.shape[:2])
        deviation = min(outline.deviations.values())

    weights = soft[y0:y1, x0:x1]
    total = float(weights.sum())
    gy, gx = np.mgrid[y0:y1, x0:x1]
    centroid = (float((gx * weights).sum() / total), float((gy * weights).sum() / total))
    return colour, shape, extent, centroid, deviation


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
    colour, shape, extent, centroid, deviation = measure_object(frame, value, labels == objects[0])  # the largest
    return _FrameReading(len(objects), colour, shape, extent, centroid, deviation)


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
        and frame_shapes[0] not in (None, OTHER)  # an outline that fits no shape cannot be seen to keep it
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
        frame_deviations=[r.deviation for r in readings],
    )


def judge_many(clips: Iterable[np.ndarray]) -> list[Judgement]:
    """Judge each clip of a batch (N, T, H, W, 3) or of any iterable of clips."""
    return [judge_clip(np.asarray(c)) for c in clips]
