"""The built-in Moving Shapes corpus: one coloured shape per clip, moving in a straight line.

Spec (issue tracker): one shape per video on a black background; circle, square or
triangle; pure saturated colours; small or large; moving left, right, up or down at a
constant speed and staying inside the frame for the whole clip. Start position and speed are
random within those bounds, so one caption fits many videos. Captions come from many
templates with synonyms, so the text stages have real language to work on. Five
(colour, shape) pairs never appear in training: they form the test split, which measures
composition rather than recall.

Clips are rendered with sub-pixel precision (anti-aliased from exact signed distances), so
the centroid path is truly linear and small and large stay distinguishable down to 16x16.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np

from t2v_core.config import SynthConfig
from t2v_core.corpus.info import write_info
from t2v_core.store import atomic_write_text
from t2v_core.writers import write_video

# Pure, saturated RGB colours: every channel is 0 or 255, so hue survives codec shifts.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 255, 0),
    "cyan": (0, 255, 255),
    "magenta": (255, 0, 255),
    "white": (255, 255, 255),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
SIZES: tuple[str, ...] = ("small", "large")
DIRECTIONS: tuple[str, ...] = ("left", "right", "up", "down")

# (colour, shape) pairs kept out of training; each colour and shape still appears there.
HELD_OUT: frozenset[tuple[str, str]] = frozenset(
    {
        ("red", "triangle"),
        ("green", "circle"),
        ("blue", "square"),
        ("yellow", "circle"),
        ("white", "triangle"),
    }
)

# Side of the shape's bounding box as a share of the frame's shorter side. The gap between
# them (ratio 1.8) survives codec blur even at 16 px, where small is 4 px and large 7 px.
SIZE_FRACTION: dict[str, float] = {"small": 0.25, "large": 0.45}
# Net travel as a share of the room the shape has; the lower bound keeps the direction
# unmistakable, the randomness gives one caption many videos.
MIN_TRAVEL, MAX_TRAVEL = 0.35, 1.0
SUPERSAMPLE = 4  # distance samples per pixel side when anti-aliasing
CONTAINERS = ("webm", "mp4", "avi")
MANIFEST_COLUMNS = ("video_id", "video_path", "caption", "colour", "shape", "size", "direction", "split")

_STEP = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}


def split_of(colour: str, shape: str) -> str:
    """'test' for a held-out (colour, shape) composition, else 'train'."""
    return "test" if (colour, shape) in HELD_OUT else "train"


VAL_EVERY = 10  # every 10th video of a seen composition is on the validation side


def _side(colour: str, shape: str, index: int) -> str:
    """test for held-out compositions; of the rest, every VAL_EVERY-th video is val."""
    split = split_of(colour, shape)
    return "val" if split == "train" and index % VAL_EVERY == VAL_EVERY - 1 else split


def _check_attributes(colour: str, shape: str, size: str, direction: str) -> None:
    for value, allowed, what in (
        (colour, tuple(COLOURS), "colour"),
        (shape, SHAPES, "shape"),
        (size, SIZES, "size"),
        (direction, DIRECTIONS, "direction"),
    ):
        if value not in allowed:
            raise ValueError(f"unknown {what} {value!r}; expected one of {list(allowed)}")


# --------------------------------------------------------------------------- rendering


def _shape_mask(shape: str, cx: float, cy: float, side: float, height: int, width: int) -> np.ndarray:
    """Coverage in [0, 1] (H, W) float32 of one shape centred at (cx, cy) in pixel units.

    Coverage is read off the signed distance to the outline at SUPERSAMPLE^2 points per
    pixel (a ramp one sample wide across the edge) and averaged. It is continuous in
    (cx, cy), so the shape moves by fractions of a pixel at constant speed. Drawing with
    OpenCV, or plain supersampling, snaps edges to a grid and makes the motion jerky."""
    ss = SUPERSAMPLE
    # sample points (ss x ss per pixel), in pixels from the shape's centre
    xs = (np.arange(width * ss, dtype=np.float64)[None, :] + 0.5) / ss - cx
    ys = (np.arange(height * ss, dtype=np.float64)[:, None] + 0.5) / ss - cy
    half = side / 2
    if shape == "circle":
        distance = np.hypot(xs, ys) - half
    elif shape == "square":
        distance = np.maximum(np.abs(xs), np.abs(ys)) - half
    elif shape == "triangle":
        # Pointing up, base at the bottom of the bounding box: width and height both `side`.
        # Inside = inside all three edges: the base and two sides of slope 2.
        below_apex = ys + half
        sides = (2 * np.abs(xs) - below_apex) / np.sqrt(5.0)
        distance = np.maximum(ys - half, sides)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    sample = np.clip(0.5 - distance * ss, 0.0, 1.0)  # a ramp one sample wide
    return sample.reshape(height, ss, width, ss).mean(axis=(1, 3)).astype(np.float32)


def render_clip(
    colour: str,
    shape: str,
    size: str,
    direction: str,
    *,
    height: int,
    width: int,
    frames: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """One clip, RGB uint8 (T, H, W, 3): the shape moves at constant speed along
    ``direction`` and stays wholly inside the frame; start and speed come from ``rng``."""
    _check_attributes(colour, shape, size, direction)
    if height < 8 or width < 8 or frames < 2:
        raise ValueError(f"clips need at least 8x8 pixels and 2 frames, got {height}x{width}x{frames}")
    side = SIZE_FRACTION[size] * min(height, width)
    half = side / 2
    dx, dy = _STEP[direction]
    along_room = (width if dx else height) - side  # how far the centre can travel
    across_room = (height if dx else width) - side
    travel = rng.uniform(MIN_TRAVEL, MAX_TRAVEL) * along_room
    start = rng.uniform(0.0, along_room - travel)  # distance from the edge it moves away from
    across = half + rng.uniform(0.0, across_room)
    t = np.linspace(0.0, 1.0, frames)
    if dx:
        xs = (half + start + travel * t) if dx > 0 else (width - half - start - travel * t)
        ys = np.full(frames, across)
    else:
        ys = (half + start + travel * t) if dy > 0 else (height - half - start - travel * t)
        xs = np.full(frames, across)
    rgb = np.array(COLOURS[colour], np.float32)
    clip = np.empty((frames, height, width, 3), np.uint8)
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        cover = _shape_mask(shape, float(x), float(y), side, height, width)
        clip[i] = np.rint(cover[..., None] * rgb).astype(np.uint8)
    return clip


# --------------------------------------------------------------------------- captions

_SHAPE_WORDS = {"circle": ("circle", "ball", "disc"), "square": ("square", "box", "block"), "triangle": ("triangle",)}
_SIZE_WORDS = {"small": ("small", "tiny", "little"), "large": ("large", "big", "huge")}
_DIRECTION_WORDS = {
    "left": ("to the left", "left", "leftward", "leftwards", "towards the left"),
    "right": ("to the right", "right", "rightward", "rightwards", "towards the right"),
    "up": ("up", "upward", "upwards", "towards the top"),
    "down": ("down", "downward", "downwards", "towards the bottom"),
}
# (present tense, -ing form): all say "moves", none implies a speed or a path
_VERBS = (
    ("moves", "moving"),
    ("slides", "sliding"),
    ("drifts", "drifting"),
    ("glides", "gliding"),
    ("travels", "travelling"),
    ("floats", "floating"),
)
# Every size, colour and shape word starts with a consonant, so "a" is always right.
TEMPLATES: tuple[str, ...] = (
    "a {size} {colour} {shape} {verb} {dir}",
    "the {size} {colour} {shape} {verb} {dir}",
    "a {size} {colour} {shape} is {verbing} {dir}",
    "there is a {size} {colour} {shape} {verbing} {dir}",
    "a {size} {colour} {shape} {verbing} {dir} on a black background",
    "watch the {size} {colour} {shape} {verb} {dir}",
    "a {size} {shape} in {colour} {verb} {dir}",
    "a {colour} {shape}, {size} in size, {verb} {dir}",
    "the {colour} {shape} is {size} and {verb} {dir}",
    "one {size} {colour} {shape} {verb} {dir} across the frame",
    "a video of a {size} {colour} {shape} {verbing} {dir}",
    "{size} {colour} {shape} {verbing} {dir}",
    "a {size} {colour} {shape} that {verb} {dir}",
    "here a {size} {colour} {shape} {verb} {dir}",
    "a {size} {colour} {shape} {verb} steadily {dir}",
    "a {size} {colour} {shape} {verb} {dir} at a constant speed",
    "against a black background, a {size} {colour} {shape} {verb} {dir}",
    "we see a {size} {colour} {shape} {verbing} {dir}",
    "the {size} {colour} {shape} keeps {verbing} {dir}",
    "a {size} {colour} {shape} {verb} {dir} in a straight line",
    "a single {size} {colour} {shape} {verb} {dir}",
    "a {size} {shape}, coloured {colour}, {verb} {dir}",
    "on a dark screen a {size} {colour} {shape} {verb} {dir}",
    "this clip shows a {size} {colour} {shape} {verbing} {dir}",
)


def caption_for(colour: str, shape: str, size: str, direction: str, rng: np.random.Generator) -> str:
    """A varied caption: a random template, synonyms and casing; the facts stay exact."""
    _check_attributes(colour, shape, size, direction)

    def pick(options: tuple[str, ...]) -> str:
        return options[int(rng.integers(len(options)))]

    verb, verbing = pick(_VERBS)
    text = pick(TEMPLATES).format(
        size=pick(_SIZE_WORDS[size]),
        colour=colour,
        shape=pick(_SHAPE_WORDS[shape]),
        dir=pick(_DIRECTION_WORDS[direction]),
        verb=verb,
        verbing=verbing,
    )
    if rng.random() < 0.5:  # half the captions read as sentences, as in scraped corpora
        text = text[0].upper() + text[1:] + "."
    return text


def prompt_for(colour: str, shape: str, size: str, direction: str) -> str:
    """The canonical prompt used by evaluation: 'a small red circle moves to the left'."""
    _check_attributes(colour, shape, size, direction)
    where = {"left": "to the left", "right": "to the right", "up": "up", "down": "down"}[direction]
    return f"a {size} {colour} {shape} moves {where}"


# --------------------------------------------------------------------------- the corpus


def all_combinations() -> list[tuple[str, str, str, str]]:
    """Every (colour, shape, size, direction), in a fixed order."""
    return list(itertools.product(COLOURS, SHAPES, SIZES, DIRECTIONS))


def sample_combinations(n: int, rng: np.random.Generator) -> list[tuple[str, str, str, str]]:
    """``n`` combinations in which every one appears floor(n/168) or ceil(n/168) times:
    whole shuffled passes over all combinations, the last one cut short."""
    combos = all_combinations()
    out: list[tuple[str, str, str, str]] = []
    while len(out) < n:
        out.extend(combos[i] for i in rng.permutation(len(combos)))
    return out[:n]


def write_corpus(
    cfg: SynthConfig,
    out_dir: Path,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Render ``cfg.n_videos`` clips to ``out_dir/videos/<video_id>.<container>`` and write
    ``out_dir/manifest.csv`` (last, atomically); returns the manifest's path. The same
    ``cfg`` gives the same manifest bytes and the same frames."""
    if cfg.container not in CONTAINERS:
        raise ValueError(f"unknown container {cfg.container!r}; expected one of {list(CONTAINERS)}")
    if cfg.n_videos < 1 or cfg.captions_per_video < 1:
        raise ValueError("n_videos and captions_per_video must be at least 1")
    out_dir = Path(out_dir)
    combos = sample_combinations(cfg.n_videos, np.random.default_rng([cfg.seed, 0]))
    rows: list[dict[str, str]] = []
    for i, (colour, shape, size, direction) in enumerate(combos):
        # One generator per video: a video's content depends on (seed, index) only.
        rng = np.random.default_rng([cfg.seed, 1, i])
        video_id = f"ms{i:06d}"
        rel = f"videos/{video_id}.{cfg.container}"
        clip = render_clip(
            colour, shape, size, direction, height=cfg.height, width=cfg.width, frames=cfg.frames, rng=rng
        )
        write_video(out_dir / rel, clip, cfg.fps)
        for _ in range(cfg.captions_per_video):
            rows.append(
                {
                    "video_id": video_id,
                    "video_path": rel,
                    "caption": caption_for(colour, shape, size, direction, rng),
                    "colour": colour,
                    "shape": shape,
                    "size": size,
                    "direction": direction,
                    "split": _side(colour, shape, i),
                }
            )
        if progress is not None:
            progress(i + 1, cfg.n_videos)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    # The corpus names its judge; its identity carries the clip size, so the demo and full
    # profiles' models are promoted separately.
    write_info(out_dir, f"moving-shapes-{cfg.width}x{cfg.height}x{cfg.frames}", "shapes")
    manifest = out_dir / "manifest.csv"
    atomic_write_text(manifest, buf.getvalue())
    return manifest
