"""Two-object Moving Shapes (``[synth] objects = 2``): two shapes of different colours, each
with its own shape, size and direction, on black.

Everything one object is, it is as in Moving Shapes (t2v_core.corpus.synthetic: the same
palette, outlines, sizes, anti-aliased rendering and caption words). The two objects are
GAP_FRACTION of the frame apart in the first frame and in the last; they may cross in
between, the second drawn over the first (t2v_core.corpus.scenes says why). Two large
shapes side by side need a frame of at least 48x48.

Held out: the five (colour, shape) pairs of Moving Shapes stay held out for either object.
A test video holds at least one of them (TWO_OBJECT_TEST_SHARE of the videos, cycling through
the five); a training or validation video holds none.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from t2v_core.config import SynthConfig
from t2v_core.corpus import scenes
from t2v_core.corpus import synthetic as syn
from t2v_core.corpus.info import write_info
from t2v_core.corpus.scenes import Extent
from t2v_core.writers import write_video

Obj = tuple[str, str, str, str]  # (colour, shape, size, direction)
ATTRIBUTES = ("colour", "shape", "size", "direction")
# 3 px at 48x48: two large shapes (21.6 px) still fit side by side, and VP8 never joins them
GAP_FRACTION = 0.0625
MIN_SIDE = 48
MANIFEST_COLUMNS = ("video_id", "video_path", "caption", "objects",
                    *(f"{a}_{k}" for k in (1, 2) for a in ATTRIBUTES), "split")
SEEN_PAIRS: tuple[tuple[str, str], ...] = tuple(
    (c, s) for c in syn.COLOURS for s in syn.SHAPES if (c, s) not in syn.HELD_OUT
)
HELD_PAIRS: tuple[tuple[str, str], ...] = tuple(sorted(syn.HELD_OUT))
ALL_PAIRS: tuple[tuple[str, str], ...] = tuple(itertools.product(syn.COLOURS, syn.SHAPES))


def held_out(objs: Sequence[Obj]) -> bool:
    """A test composition: some object's (colour, shape) pair is held out."""
    return any((o[0], o[1]) in syn.HELD_OUT for o in objs)


def scene_with(pair: tuple[str, str], test: bool, rng: np.random.Generator) -> tuple[Obj, Obj]:
    """Two objects: one of colour-shape ``pair``, and one of another colour (any pair for a
    test scene, a seen one otherwise); sizes and directions at random, in random order."""
    a: Obj = (pair[0], pair[1], syn.SIZES[int(rng.integers(2))], syn.DIRECTIONS[int(rng.integers(4))])
    allowed = [p for p in (ALL_PAIRS if test else SEEN_PAIRS) if p[0] != pair[0]]
    c, s = allowed[int(rng.integers(len(allowed)))]
    b: Obj = (c, s, syn.SIZES[int(rng.integers(2))], syn.DIRECTIONS[int(rng.integers(4))])
    return (a, b) if rng.random() < 0.5 else (b, a)


def sample_scenes(n: int, rng: np.random.Generator) -> list[tuple[Obj, Obj]]:
    """``n`` pairs of objects: TWO_OBJECT_TEST_SHARE of them hold a held-out pair (cycling
    through the five) beside any other object; the rest hold two seen pairs (cycling through
    the sixteen for one of them). Neither position is where held-out pairs live."""
    n_test = int(round(scenes.TWO_OBJECT_TEST_SHARE * n))
    firsts = [(p, True) for p in scenes.balanced(HELD_PAIRS, n_test, rng)]
    firsts += [(p, False) for p in scenes.balanced(SEEN_PAIRS, n - n_test, rng)]
    return [scene_with(*firsts[int(k)], rng) for k in rng.permutation(n)]


# --------------------------------------------------------------------------- captions

_NAMES = ("a {size} {colour} {shape}", "the {size} {colour} {shape}", "one {size} {colour} {shape}",
          "a {size} {shape} in {colour}", "a {colour} {shape}, {size} in size,", "a {size} {shape} coloured {colour}")
_CLAUSES = ("{name} {verb} {dir}", "{name} is {verbing} {dir}", "{name} {verb} steadily {dir}")
_TEMPLATES = ("{joined}", "two shapes: {joined}", "{joined} on a black background", "in this clip {joined}",
              "against a black background, {joined}", "we see two shapes: {joined}", "a video where {joined}")


def caption_for(objs: Sequence[Obj], rng: np.random.Generator) -> str:
    """A varied caption naming both objects' colour, shape, size and direction, in either order."""
    for o in objs:
        syn._check_attributes(*o)

    def pick(options: Sequence[str]) -> str:
        return options[int(rng.integers(len(options)))]

    order = list(objs) if rng.random() < 0.5 else list(objs)[::-1]
    verb, verbing = syn._VERBS[int(rng.integers(len(syn._VERBS)))]
    clauses = []
    for colour, shape, size, direction in order:
        name = pick(_NAMES).format(size=pick(syn._SIZE_WORDS[size]), colour=colour, shape=pick(syn._SHAPE_WORDS[shape]))
        clauses.append(pick(_CLAUSES).format(name=name, verb=verb, verbing=verbing,
                                             dir=pick(syn._DIRECTION_WORDS[direction])))
    return scenes.sentence(pick(_TEMPLATES).format(joined=scenes.join_clauses(clauses, rng)), rng)


def prompt_for(objs: Sequence[Obj]) -> str:
    """The canonical prompt of evaluation: 'a small red circle moves up and a large blue
    square moves to the left'."""
    return " and ".join(syn.prompt_for(*o) for o in objs)


# --------------------------------------------------------------------------- rendering


def render_clip(objs: Sequence[Obj], *, height: int, width: int, frames: int, rng: np.random.Generator) -> np.ndarray:
    """One clip, RGB uint8 (T, H, W, 3), of one or two objects moving along their paths."""
    for o in objs:
        syn._check_attributes(*o)
    sides = [syn.SIZE_FRACTION[o[2]] * min(height, width) for o in objs]
    extents = [Extent(-s / 2, -s / 2, s / 2, s / 2) for s in sides]  # origin = the shape's centre
    paths = scenes.place([o[3] for o in objs], extents, height, width, frames, 0.0,
                         GAP_FRACTION * min(height, width), rng)
    clip = np.zeros((frames, height, width, 3), np.float32)
    for (colour, shape, _, _), side, path in zip(objs, sides, paths, strict=True):
        rgb = np.array(syn.COLOURS[colour], np.float32)
        for t, (x, y) in enumerate(path):
            cover = syn._shape_mask(shape, float(x), float(y), side, height, width)
            # painted over: where the two cross, the second hides the first, as objects do
            clip[t] = cover[..., None] * rgb + (1.0 - cover[..., None]) * clip[t]
    return np.rint(clip).astype(np.uint8)


def clips_of(cfg: SynthConfig) -> Iterator[tuple[int, tuple[Obj, Obj], np.ndarray, np.random.Generator]]:
    """The corpus's videos in order, rendered losslessly: (index, objects, clip, the
    video's own generator, which its captions go on drawing from)."""
    if cfg.n_videos < 1 or cfg.captions_per_video < 1:
        raise ValueError("n_videos and captions_per_video must be at least 1")
    if min(cfg.height, cfg.width) < MIN_SIDE:
        raise ValueError(f"two-object Moving Shapes needs at least {MIN_SIDE}x{MIN_SIDE} frames (two large "
                         f"shapes side by side), got {cfg.width}x{cfg.height}")
    for i, objs in enumerate(sample_scenes(cfg.n_videos, np.random.default_rng([cfg.seed, 0]))):
        rng = np.random.default_rng([cfg.seed, 1, i])  # a video depends on (seed, index) only
        yield i, objs, render_clip(objs, height=cfg.height, width=cfg.width, frames=cfg.frames, rng=rng), rng


def write_corpus(cfg: SynthConfig, out_dir: Path, progress: Callable[[int, int], None] | None = None) -> Path:
    """Render ``cfg.n_videos`` two-object clips to ``out_dir/videos/`` and write
    ``out_dir/manifest.csv`` (last, atomically); the same ``cfg`` gives the same bytes."""
    if cfg.container not in syn.CONTAINERS:
        raise ValueError(f"unknown container {cfg.container!r}; expected one of {list(syn.CONTAINERS)}")
    out_dir = Path(out_dir)
    rows: list[dict[str, str]] = []
    for i, objs, clip, rng in clips_of(cfg):
        video_id = f"mt{i:06d}"
        rel = f"videos/{video_id}.{cfg.container}"
        write_video(out_dir / rel, clip, cfg.fps)
        cells = {f"{a}_{k}": v for k, o in enumerate(objs, start=1) for a, v in zip(ATTRIBUTES, o, strict=True)}
        split = scenes.side_of(held_out(objs), i)
        for _ in range(cfg.captions_per_video):
            rows.append({"video_id": video_id, "video_path": rel, "caption": caption_for(objs, rng),
                         "objects": str(len(objs)), **cells, "split": split})
        if progress is not None:
            progress(i + 1, cfg.n_videos)
    write_info(out_dir, f"moving-shapes2-{cfg.width}x{cfg.height}x{cfg.frames}", "shapes2")
    return scenes.write_manifest(rows, MANIFEST_COLUMNS, out_dir)
