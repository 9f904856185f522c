"""Tracking judges for scenes of one or more objects: Moving Digits (``digits``) and
two-object Moving Shapes (``shapes2``). Like t2v_core.judge they read RGB frames
(T, H, W, 3) uint8 only, never the generator's own account of what it drew.

Per frame, the objects are found as 8-connected components of bright pixels (for digits, a
low cut, DIGIT_LEVEL, keeps the thin strokes of small digits in one piece). Each is read on its
own: a digit by the project's classifier (t2v_core.digit_classifier) on its crop; a shape's
colour, outline and extent by the Moving Shapes judge's functions (t2v_core.judge).

Tracking. The scene holds K objects, the largest count of objects that at least MIN_CLEAN
frames show. Two objects may cross, and a frame where they touch shows one blob: only frames
with exactly K objects (clean frames) are read. Clean frames are linked in time order by the
assignment of detections to tracks with the least cost: the distance from where each track
is predicted to be (a straight line through its positions so far), plus APPEARANCE_WEIGHT
times how unlike its appearance so far the detection looks (classifier probabilities, or
colour and shape). Each track then gives one object: its identity from all its crops (mean
probabilities; majority colour and shape; median extent) and its direction from a line
through its centroids.

Not fooled: a digit whose mean probability is NONE's, or below MIN_CONFIDENCE, is unreadable
(None); a shape whose outline fits no corpus shape within the Moving Shapes judge's tolerance
is shape "other" (t2v_core.judge.read_outline), and an object read so is not consistent; a
scene with more than MAX_OBJECTS objects is read as that count with no objects. Anything
unreadable counts as wrong.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from t2v_core import digit_classifier as dc
from t2v_core.corpus.synthetic import COLOURS, SHAPES
from t2v_core.judge import MIN_AREA_FRACTION, OTHER, SIZE_CUT, components, direction_of, measure_object

# Grey level that makes a pixel part of a digit's stroke: at 40, 0.1% of MNIST digits at 14-16 px
# fall apart into two components (0.4% at 64, 5% at 100)
DIGIT_LEVEL = 40
# A component under FRAGMENT_SHARE of the largest one's area, within JOIN_FRACTION of the
# frame's side of a larger one, is a piece of it (1.9 px at 32 px; the corpus keeps two
# digits' boxes 2.6 px apart at both ends, t2v_core.corpus.digits.GAP_FRACTION)
FRAGMENT_SHARE, JOIN_FRACTION = 0.4, 0.06
MIN_CLEAN = 2  # frames that must show K objects for the scene to hold K
MAX_OBJECTS = 3  # more objects than this are not read (a count that wrong is wrong anyway)
APPEARANCE_WEIGHT = 2.0  # how much a change of look costs against a frame side of distance
ATTRIBUTES = {"digits": ("digit", "direction"), "shapes2": ("colour", "shape", "size", "direction")}
_RIM = np.ones((3, 3), np.uint8)


@dataclass
class Detection:
    """One object in one frame."""

    centroid: tuple[float, float]  # x, y in pixels, brightness-weighted
    look: np.ndarray  # appearance, summing to 1: digit probabilities, or colour and shape one-hots
    reading: dict[str, str | None]  # what this frame alone says: digit, or colour and shape
    extent: float = float("nan")  # bounding box side / frame side (shapes)


@dataclass
class SceneObject:
    """One tracked object: its attributes (None = unreadable) and its path."""

    attributes: dict[str, str | None]
    centroids: np.ndarray  # (T, 2); nan in frames where it was not seen alone
    consistent: bool  # every clean frame read it the same way


@dataclass
class SceneJudgement:
    count: int  # K: how many objects the scene holds
    objects: list[SceneObject]
    objects_per_frame: list[int]
    coherent: bool = field(default=False)  # every frame shows K objects, each read the same throughout


# --------------------------------------------------------------------------- detection


def _min_area(frame: np.ndarray) -> int:
    return max(2, int(round(MIN_AREA_FRACTION * frame.shape[0] * frame.shape[1])))


def digit_candidates(frame: np.ndarray) -> list[tuple[np.ndarray, tuple[float, float]]]:
    """The crops (28x28, from dc.normalize_crop) and centroids of the digit-sized things in a
    frame: components of stroke pixels, broken strokes joined (``join_fragments``)."""
    value = frame.max(axis=2).astype(np.float32) / 255.0
    mask = (value >= DIGIT_LEVEL / 255.0).astype(np.uint8)
    labels = join_fragments(mask, JOIN_FRACTION * min(frame.shape[:2]))
    out = []
    for i in np.unique(labels[labels > 0]):
        inside = labels == i
        if int(inside.sum()) < _min_area(frame):
            continue
        # the stroke pixels and their faint rim, every other object blacked out
        rim = cv2.dilate(inside.astype(np.uint8), _RIM).astype(bool) & ((labels == 0) | inside)
        soft = np.where(rim, value, 0.0).astype(np.float32)
        ys, xs = np.nonzero(rim)
        patch = soft[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
        gy, gx = np.mgrid[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]
        total = float(patch.sum())
        out.append((dc.normalize_crop(patch), (float((gx * patch).sum() / total), float((gy * patch).sum() / total))))
    return out


def join_fragments(mask: np.ndarray, reach: float) -> np.ndarray:
    """Component labels of ``mask`` in which every fragment (less than FRAGMENT_SHARE of the
    largest component's area) within ``reach`` px of a larger component joins it: a thin
    stroke that the codec dims breaks a digit in two, and a piece of a digit is no digit."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 2:
        return labels
    area = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
    area[0] = 0
    for i in sorted(range(1, n), key=lambda c: area[c]):
        if area[i] >= FRAGMENT_SHARE * area.max():
            break
        # distance from every pixel to fragment i, read at the pixels of each larger component
        dist = cv2.distanceTransform((labels != i).astype(np.uint8), cv2.DIST_L2, 3)
        near = [(float(dist[labels == j].min()), j) for j in range(1, n) if j != i and area[j] > area[i]]
        if near and min(near)[0] <= reach:
            j = min(near)[1]
            labels[labels == i] = j
            area[j] += area[i]
            area[i] = 0
    return labels


def digit_detections(clip: np.ndarray, classifier: dc.DigitClassifier) -> list[list[Detection]]:
    """Per frame, the digits found and what the classifier reads in each (one batch a clip)."""
    found = [digit_candidates(frame) for frame in clip]
    crops = [c for frame in found for c, _ in frame]
    probs = classifier.probabilities(np.stack(crops)) if crops else np.zeros((0, dc.NONE + 1), np.float32)
    out, k = [], 0
    for frame in found:
        dets = []
        for _, centroid in frame:
            p = probs[k]
            k += 1
            best = int(p.argmax())
            digit = str(best) if best != dc.NONE and p[best] >= dc.MIN_CONFIDENCE else None
            dets.append(Detection(centroid, p, {"digit": digit}))
        out.append(dets)
    return out


_LOOK_NAMES = (*COLOURS, *SHAPES, OTHER)


def shape_detections(clip: np.ndarray) -> list[list[Detection]]:
    """Per frame, the shapes found, each measured as the Moving Shapes judge measures one."""
    out = []
    for frame in clip:
        value, labels, objects = components(frame, _min_area(frame))
        dets = []
        for i in objects:
            colour, shape, extent, centroid, _ = measure_object(frame, value, labels == i)
            look = np.array([n in (colour, shape) for n in _LOOK_NAMES], np.float32)
            dets.append(Detection(centroid, look / look.sum(), {"colour": colour, "shape": shape}, extent))
        out.append(dets)
    return out


# --------------------------------------------------------------------------- tracking


def _predict(track: list[tuple[int, Detection]], t: int) -> np.ndarray:
    """Where a track should be at frame ``t``: a straight line through its positions so far."""
    ts = np.array([s for s, _ in track], np.float64)
    xy = np.array([d.centroid for _, d in track], np.float64)
    if len(ts) < 2:
        return xy[-1]
    slope, offset = np.polyfit(ts, xy, 1)
    return slope * t + offset


def link(detections: Sequence[Sequence[Detection]], side: int) -> tuple[int, list[list[tuple[int, Detection]]]]:
    """K and, for each of the K objects, its (frame, detection) pairs over the clean frames."""
    counts = Counter(len(d) for d in detections)
    k = max((c for c, n in counts.items() if c > 0 and n >= MIN_CLEAN), default=0)
    if k == 0 or k > MAX_OBJECTS:
        return k, []
    clean = [t for t, d in enumerate(detections) if len(d) == k]
    tracks: list[list[tuple[int, Detection]]] = [[(clean[0], d)] for d in detections[clean[0]]]
    for t in clean[1:]:
        dets = detections[t]
        expected = [(_predict(tr, t), np.mean([d.look for _, d in tr], axis=0)) for tr in tracks]

        def cost(perm: tuple[int, ...]) -> float:
            total = 0.0
            for (where, look), j in zip(expected, perm, strict=True):
                total += float(np.linalg.norm(where - np.array(dets[j].centroid))) / side
                total += APPEARANCE_WEIGHT * (1.0 - float(np.minimum(look, dets[j].look).sum()))
            return total

        best = min(itertools.permutations(range(k)), key=cost)
        for tr, j in zip(tracks, best, strict=True):
            tr.append((t, dets[j]))
    return k, tracks


def _judge(clip: np.ndarray, detections: list[list[Detection]],
           read: Callable[[list[Detection]], dict[str, str | None]]) -> SceneJudgement:
    t, h, w, _ = clip.shape
    k, tracks = link(detections, min(h, w))
    objects = []
    for tr in tracks:
        centroids = np.full((t, 2), np.nan)
        for s, d in tr:
            centroids[s] = d.centroid
        attrs = read([d for _, d in tr])
        attrs["direction"] = direction_of(centroids, min(h, w))
        readings = {tuple(sorted(d.reading.items())) for _, d in tr}
        steady = len(readings) == 1 and all(v not in (None, OTHER) for _, v in next(iter(readings)))
        objects.append(SceneObject(attrs, centroids, steady))
    per_frame = [len(d) for d in detections]
    coherent = bool(objects) and all(c == k for c in per_frame) and all(o.consistent for o in objects)
    return SceneJudgement(k, objects, per_frame, coherent)


def _read_digit(dets: list[Detection]) -> dict[str, str | None]:
    mean = np.mean([d.look for d in dets], axis=0)
    best = int(mean.argmax())
    return {"digit": str(best) if best != dc.NONE and mean[best] >= dc.MIN_CONFIDENCE else None}


def _read_shape(dets: list[Detection]) -> dict[str, str | None]:
    def majority(name: str) -> str | None:
        seen = Counter(d.reading[name] for d in dets if d.reading[name] is not None)
        return seen.most_common(1)[0][0] if seen else None

    extents = [d.extent for d in dets if np.isfinite(d.extent)]
    size = None if not extents else ("small" if float(np.median(extents)) < SIZE_CUT else "large")
    return {"colour": majority("colour"), "shape": majority("shape"), "size": size}


def _check(clip: np.ndarray) -> None:
    if clip.ndim != 4 or clip.shape[-1] != 3 or clip.dtype != np.uint8:
        raise ValueError(f"a judge needs uint8 (T, H, W, 3), got {clip.dtype} {clip.shape}")


def judge_digits(clip: np.ndarray, classifier: dc.DigitClassifier) -> SceneJudgement:
    """The digits in a clip, each with its digit ('0'..'9' or None) and direction."""
    _check(clip)
    return _judge(clip, digit_detections(clip, classifier), _read_digit)


def judge_shapes2(clip: np.ndarray) -> SceneJudgement:
    """The shapes in a clip, each with its colour, shape, size and direction."""
    _check(clip)
    return _judge(clip, shape_detections(clip), _read_shape)


# --------------------------------------------------------------------------- scoring


def match(judged: SceneJudgement, expected: Sequence[dict[str, str]], attributes: Sequence[str]
          ) -> list[dict[str, bool]]:
    """Per expected object, which of its attributes the judge read right, under the
    pairing of judged and expected objects that gets the most right. An expected object
    with no judged one to pair gets all wrong."""
    found = judged.objects
    slots = list(range(len(found))) + [-1] * len(expected)  # -1: nothing found for it
    best: list[dict[str, bool]] = []
    best_hits = -1
    for perm in itertools.permutations(slots, len(expected)):
        if any(p >= 0 and perm.count(p) > 1 for p in perm):
            continue
        hits = [{a: p >= 0 and found[p].attributes.get(a) == e[a] for a in attributes}
                for p, e in zip(perm, expected, strict=True)]
        n = sum(sum(h.values()) for h in hits)
        if n > best_hits:
            best, best_hits = hits, n
    return best


def all_correct(judged: SceneJudgement, expected: Sequence[dict[str, str]], attributes: Sequence[str]) -> bool:
    """The right number of objects, each with every attribute right."""
    return judged.count == len(expected) and all(all(h.values()) for h in match(judged, expected, attributes))
