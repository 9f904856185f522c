"""Near-miss shapes: outlines that no Moving Shapes clip holds, drawn exactly as the corpus
draws its own (t2v_core.corpus.synthetic: same palette, sizes, anti-aliasing and motion), so
that a judge can be checked against them. A strict judge reads every one as shape "other".

Each near-miss is a perturbation of a real shape, at an amount that is visible at the
large size at 32x32 (a 14 px box) and at both sizes at 64x64 (16 and 29 px): a lumpy circle,
a pentagon, an ellipse, a half-disc, a triangle with concave sides, a triangle with rounded
corners, a square with rounded corners, and a diamond (the square turned by 45 degrees). A
hexagon and an octagon stay within 0.4 px of a circle below a 29 px box, less than VP8 moves
a real circle's outline, so they count only from the large size at 64x64 on.
``NEAR_MISSES`` lists them with the real shape each one imitates and the smallest box side at
which it must read "other". The tests (tests/test_judge.py) and
benchmarks/judge_nearmiss.py use them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from t2v_core.corpus import synthetic as syn

# A signed distance (negative inside, in pixels) of points (xs, ys) given relative to the
# centre of the shape's bounding box, for a box of side ``side``.
Distance = Callable[[np.ndarray, np.ndarray, float], np.ndarray]


def polygon_distance(xs: np.ndarray, ys: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Exact signed distance from points to a simple polygon (vertices (N, 2) in order)."""
    best = np.full(np.broadcast(xs, ys).shape, np.inf)
    inside = np.zeros(best.shape, bool)
    for (ax, ay), (bx, by) in zip(vertices, np.roll(vertices, -1, axis=0), strict=True):
        ex, ey = bx - ax, by - ay
        px, py = xs - ax, ys - ay
        t = np.clip((px * ex + py * ey) / (ex * ex + ey * ey), 0.0, 1.0)
        best = np.minimum(best, np.hypot(px - t * ex, py - t * ey))
        # even-odd crossing test on a ray to the right
        crosses = ((ay > ys) != (by > ys)) & (xs < ax + (ys - ay) * ex / np.where(ey == 0, 1e-12, ey))
        inside ^= crosses
    return np.where(inside, -best, best)


def _triangle_vertices(side: float) -> np.ndarray:
    h = side / 2  # the corpus's triangle: apex at the top centre, base along the box's bottom
    return np.array([(0.0, -h), (h, h), (-h, h)])


def _regular(n: int) -> Distance:
    """A regular n-gon with a vertex at the top, scaled so its bounding box's longer side is
    the box side and centred in it."""
    angles = -np.pi / 2 + 2 * np.pi * np.arange(n) / n
    unit = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    lo, hi = unit.min(axis=0), unit.max(axis=0)
    unit = (unit - (lo + hi) / 2) / (hi - lo).max()

    def distance(xs: np.ndarray, ys: np.ndarray, side: float) -> np.ndarray:
        return polygon_distance(xs, ys, unit * side)

    return distance


def lumpy_circle(lobes: int = 5, amount: float = 0.1) -> Distance:
    """A circle whose radius wobbles by +-``amount`` of itself, ``lobes`` times around."""

    def distance(xs: np.ndarray, ys: np.ndarray, side: float) -> np.ndarray:
        rho, theta = np.hypot(xs, ys), np.arctan2(ys, xs)
        base = side / 2 / (1 + amount)  # the largest radius is half the box side
        r = base * (1 + amount * np.cos(lobes * theta))
        slope = base * amount * lobes * np.sin(lobes * theta) / np.maximum(rho, 1e-6)
        return (rho - r) / np.sqrt(1 + slope**2)  # first-order distance to the wavy outline

    return distance


def concave_triangle(depth: float = 0.1) -> Distance:
    """The corpus triangle with each side bowed inwards by ``depth`` of the box side at its
    middle: the triangle minus three discs whose chords are its sides."""

    def distance(xs: np.ndarray, ys: np.ndarray, side: float) -> np.ndarray:
        verts = _triangle_vertices(side)
        out = polygon_distance(xs, ys, verts)
        centre = verts.mean(axis=0)
        d = depth * side
        for a, b in zip(verts, np.roll(verts, -1, axis=0), strict=True):
            half = np.linalg.norm(b - a) / 2
            radius = (half**2 + d**2) / (2 * d)
            mid = (a + b) / 2
            outward = (mid - centre) / np.linalg.norm(mid - centre)
            c = mid + outward * (radius - d)
            out = np.maximum(out, radius - np.hypot(xs - c[0], ys - c[1]))
        return out

    return distance


def rounded_triangle(radius: float = 0.15) -> Distance:
    """The corpus triangle with its corners rounded to ``radius`` of the box side (the
    triangle shrunk about its incentre, then grown back by the radius)."""

    def distance(xs: np.ndarray, ys: np.ndarray, side: float) -> np.ndarray:
        verts = _triangle_vertices(side)
        lengths = np.linalg.norm(np.roll(verts, -1, axis=0) - np.roll(verts, 1, axis=0), axis=1)
        incentre = (lengths[:, None] * verts).sum(axis=0) / lengths.sum()
        inradius = -float(polygon_distance(np.array(incentre[0]), np.array(incentre[1]), verts))
        r = radius * side
        shrunk = incentre + (verts - incentre) * (inradius - r) / inradius
        return polygon_distance(xs, ys, shrunk) - r

    return distance


def rounded_square(radius: float = 0.3) -> Distance:
    """The corpus square with its corners rounded to ``radius`` of the box side."""

    def distance(xs: np.ndarray, ys: np.ndarray, side: float) -> np.ndarray:
        r = radius * side
        qx, qy = np.abs(xs) - (side / 2 - r), np.abs(ys) - (side / 2 - r)
        return np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0) - r

    return distance


def half_disc(xs: np.ndarray, ys: np.ndarray, side: float) -> np.ndarray:
    """The upper half of a disc as wide as the box (so half as tall), centred in it."""
    cy = side / 4  # the flat side's height, so that the box (side x side/2) is centred
    return np.maximum(np.hypot(xs, ys - cy) - side / 2, ys - cy)


def ellipse(aspect: float = 0.7) -> Distance:
    """An ellipse as wide as the box and ``aspect`` times as tall."""

    def distance(xs: np.ndarray, ys: np.ndarray, side: float) -> np.ndarray:
        a, b = side / 2, aspect * side / 2
        return (np.hypot(xs / a, ys / b) - 1) * b  # close to the true distance near the outline

    return distance


def diamond(xs: np.ndarray, ys: np.ndarray, side: float) -> np.ndarray:
    """The square turned by 45 degrees, its corners on the box's sides."""
    h = side / 2
    return polygon_distance(xs, ys, np.array([(0.0, -h), (h, 0.0), (0.0, h), (-h, 0.0)]))


# name -> (the real shape it imitates, its outline, the smallest box side in pixels from which
# a strict judge must read it "other": 14 = the large size at 32x32, 28 = the large at 64x64)
NEAR_MISSES: dict[str, tuple[str, Distance, float]] = {
    "lumpy circle": ("circle", lumpy_circle(), 14.0),
    "pentagon": ("circle", _regular(5), 14.0),
    "hexagon": ("circle", _regular(6), 28.0),
    "octagon": ("circle", _regular(8), 28.0),
    "ellipse": ("circle", ellipse(), 14.0),
    "half-disc": ("circle", half_disc, 14.0),
    "concave triangle": ("triangle", concave_triangle(), 14.0),
    "rounded triangle": ("triangle", rounded_triangle(), 14.0),
    "rounded square": ("square", rounded_square(), 14.0),
    "diamond": ("square", diamond, 14.0),
}


def coverage(distance: Distance, cx: float, cy: float, side: float, height: int, width: int) -> np.ndarray:
    """Coverage in [0, 1] (H, W) float32 of an outline centred at (cx, cy), anti-aliased as
    the corpus anti-aliases its shapes (synthetic._shape_mask: a ramp one sample wide at
    SUPERSAMPLE^2 samples per pixel)."""
    ss = syn.SUPERSAMPLE
    xs = (np.arange(width * ss, dtype=np.float64)[None, :] + 0.5) / ss - cx
    ys = (np.arange(height * ss, dtype=np.float64)[:, None] + 0.5) / ss - cy
    sample = np.clip(0.5 - distance(xs, ys, side) * ss, 0.0, 1.0)
    return sample.reshape(height, ss, width, ss).mean(axis=(1, 3)).astype(np.float32)


def render_clip(name: str, colour: str, size: str, direction: str, *, height: int, width: int, frames: int,
                rng: np.random.Generator) -> np.ndarray:
    """A clip (T, H, W, 3) uint8 of near-miss ``name`` moving like a corpus shape: constant
    speed along ``direction``, wholly inside the frame, start and travel from ``rng``."""
    if name not in NEAR_MISSES:
        raise ValueError(f"unknown near-miss {name!r}; expected one of {list(NEAR_MISSES)}")
    if direction not in syn.DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; expected one of {list(syn.DIRECTIONS)}")
    _, distance, _ = NEAR_MISSES[name]
    side = syn.SIZE_FRACTION[size] * min(height, width)
    half = side / 2
    horizontal = direction in ("left", "right")
    along = (width if horizontal else height) - side
    across = half + rng.uniform(0.0, (height if horizontal else width) - side)
    travel = rng.uniform(syn.MIN_TRAVEL, syn.MAX_TRAVEL) * along
    start = half + rng.uniform(0.0, along - travel)
    pos = start + travel * np.linspace(0.0, 1.0, frames)
    if direction in ("left", "up"):
        pos = (width if horizontal else height) - pos
    rgb = np.array(syn.COLOURS[colour], np.float32)
    clip = np.empty((frames, height, width, 3), np.uint8)
    for i, p in enumerate(pos):
        cx, cy = (p, across) if horizontal else (across, p)
        clip[i] = np.rint(coverage(distance, float(cx), float(cy), side, height, width)[..., None] * rgb)
    return clip
