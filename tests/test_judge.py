"""The image-analysis judge, on real corpus videos decoded from their files, on near-misses
(shapes no corpus clip holds) and on frames that a trained model drew wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from t2v_core import judge_objects as jo
from t2v_core.config import SynthConfig
from t2v_core.corpus import nearmiss as nm
from t2v_core.corpus import synthetic as syn
from t2v_core.assess import outline_deviation
from t2v_core.judge import OTHER, TOLERANCE, Judgement, judge_clip, judge_many, nearest_colour
from t2v_core.video import read_video
from t2v_core.writers import write_video

FIXTURES = Path(__file__).parent / "fixtures" / "judge"
# (height = width, frames, size): where a near-miss is visible, a 14, 16 and 29 px box
VISIBLE = ((32, 8, "large"), (64, 4, "small"), (64, 4, "large"))

ATTRS = ("colour", "shape", "size", "direction")


def agreement(tmp_path, cfg: SynthConfig) -> tuple[dict[str, float], list[Judgement]]:
    manifest = syn.write_corpus(cfg, tmp_path)
    df = pd.read_csv(manifest)
    judged = judge_many(read_video(tmp_path / p) for p in df["video_path"])
    agree = {a: float(np.mean([getattr(j, a) == v for j, v in zip(judged, df[a], strict=True)])) for a in ATTRS}
    return agree, judged


def test_judge_agrees_with_ground_truth_on_decoded_webm_32px(tmp_path):
    # 168 = one video per combination, decoded from VP8 WebM files as the pipeline does
    agree, judged = agreement(tmp_path, SynthConfig(n_videos=168, height=32, width=32, frames=8, seed=11))
    assert all(v >= 0.99 for v in agree.values()), agree
    assert np.mean([j.coherent for j in judged]) >= 0.99
    smooth = np.array([j.smoothness for j in judged])
    assert np.nanmedian(smooth) < 0.1  # constant speed survives the codec


@pytest.mark.slow
def test_judge_agrees_with_ground_truth_on_decoded_webm_64px(tmp_path):
    agree, _ = agreement(tmp_path, SynthConfig(n_videos=168, height=64, width=64, frames=16, seed=12))
    assert all(v >= 0.99 for v in agree.values()), agree


def test_judge_is_sensible_on_the_16px_test_profile(tmp_path):
    # accuracy is not a requirement at 16x16x4, but colour, size and direction stay readable
    agree, judged = agreement(tmp_path, SynthConfig(n_videos=84, height=16, width=16, frames=4, seed=13))
    assert agree["colour"] >= 0.95 and agree["size"] >= 0.9 and agree["direction"] >= 0.95, agree
    assert agree["shape"] > 0.5  # well above the 1/3 of guessing
    assert all(j.n_frames_with_object == 4 for j in judged)


def test_judge_reads_raw_rendered_clips_exactly():
    rng = np.random.default_rng(0)
    for colour in syn.COLOURS:
        for shape in syn.SHAPES:
            clip = syn.render_clip(colour, shape, "large", "down", height=32, width=32, frames=8, rng=rng)
            j = judge_clip(clip)
            assert (j.colour, j.shape, j.size, j.direction) == (colour, shape, "large", "down")
            assert j.coherent and j.smoothness < 0.05
            assert j.centroids.shape == (8, 2) and np.all(np.diff(j.centroids[:, 1]) > 0)


def test_blank_clip_has_no_attributes():
    j = judge_clip(np.zeros((8, 32, 32, 3), np.uint8))
    assert (j.colour, j.shape, j.size, j.direction) == (None, None, None, None)
    assert j.n_frames_with_object == 0 and not j.coherent
    assert np.isnan(j.smoothness) and np.isnan(j.centroids).all()


def test_two_objects_are_not_coherent():
    rng = np.random.default_rng(1)
    # two 32x14 clips side by side with a 4 px black gap, so the shapes never touch
    a = syn.render_clip("red", "square", "large", "up", height=32, width=14, frames=8, rng=rng)
    b = syn.render_clip("blue", "circle", "large", "down", height=32, width=14, frames=8, rng=rng)
    both = np.concatenate([a, np.zeros((8, 32, 4, 3), np.uint8), b], axis=2)
    assert judge_clip(a).coherent and judge_clip(b).coherent
    j = judge_clip(both)
    assert j.objects_per_frame == [2] * 8
    assert not j.coherent


def test_object_that_changes_colour_is_not_coherent():
    rng = np.random.default_rng(2)
    clip = syn.render_clip("green", "circle", "large", "up", height=32, width=32, frames=8, rng=rng)
    clip[4:] = clip[4:][..., [2, 0, 1]]  # green -> blue halfway through
    j = judge_clip(clip)
    assert j.frame_colours[:4] == ["green"] * 4 and j.frame_colours[4:] == ["blue"] * 4
    assert not j.coherent


def test_jerky_motion_scores_worse_smoothness():
    rng = np.random.default_rng(3)
    clip = syn.render_clip("white", "square", "small", "right", height=32, width=32, frames=8, rng=rng)
    jerky = clip[[0, 1, 1, 1, 4, 5, 7, 7]]
    assert judge_clip(jerky).smoothness > judge_clip(clip).smoothness + 0.3


def test_nearest_colour_ignores_brightness_and_codec_bleed():
    assert nearest_colour(np.array([120, 0, 0])) == "red"
    assert nearest_colour(np.array([97, 193, 195])) == "cyan"  # a decoded VP8 edge pixel
    assert nearest_colour(np.array([230, 240, 235])) == "white"
    with pytest.raises(ValueError):
        nearest_colour(np.zeros(3))


def test_judge_rejects_wrong_input():
    with pytest.raises(ValueError, match="uint8"):
        judge_clip(np.zeros((8, 32, 32, 3), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        judge_clip(np.zeros((32, 32, 3), np.uint8))


def webm(clip: np.ndarray, folder: Path) -> np.ndarray:
    """The clip as the corpus stores it (VP8 WebM), decoded again."""
    return read_video(write_video(folder / "clip.webm", clip, 8.0))


def near_miss(name: str, side: int, frames: int, size: str, k: int) -> np.ndarray:
    colour = tuple(syn.COLOURS)[k % len(syn.COLOURS)]
    return nm.render_clip(name, colour, size, syn.DIRECTIONS[k % 4], height=side, width=side, frames=frames,
                          rng=np.random.default_rng(k))


@pytest.mark.parametrize("side,frames,size", VISIBLE)
def test_near_misses_read_other_where_they_are_visible(side, frames, size):
    for k, (name, (_, _, from_px)) in enumerate(nm.NEAR_MISSES.items()):
        if syn.SIZE_FRACTION[size] * side < from_px:
            continue
        j = judge_clip(near_miss(name, side, frames, size, k))
        assert j.shape == OTHER, (name, side, size, j.frame_shapes)
        assert not j.coherent  # one steady object, but of no corpus shape
        assert j.colour == tuple(syn.COLOURS)[k % len(syn.COLOURS)] and j.size == size


def test_near_misses_read_other_after_the_webm_round_trip(tmp_path):
    # the codec's blur and 2x2 chroma blocks must not turn a near-miss into a corpus shape
    cases = [(name, 32, 8, "large") for name in ("lumpy circle", "pentagon", "concave triangle",
                                                 "rounded triangle", "rounded square")]
    cases += [("lumpy circle", 64, 4, "small"), ("rounded square", 64, 4, "small"), ("octagon", 64, 4, "large")]
    for k, (name, side, frames, size) in enumerate(cases):
        j = judge_clip(webm(near_miss(name, side, frames, size, k), tmp_path))
        assert j.shape == OTHER, (name, side, size, j.frame_shapes)


@pytest.mark.parametrize("side,frames", [(32, 8), (64, 4)])
def test_real_shapes_read_right_at_both_sizes_and_after_webm(tmp_path, side, frames):
    for k, (colour, shape, size) in enumerate(
            (c, s, z) for c in ("red", "blue", "white") for s in syn.SHAPES for z in syn.SIZES):
        clip = syn.render_clip(colour, shape, size, syn.DIRECTIONS[k % 4], height=side, width=side,
                               frames=frames, rng=np.random.default_rng(k))
        for seen in (clip, webm(clip, tmp_path)):
            j = judge_clip(seen)
            assert (j.shape, j.size) == (shape, size), (colour, shape, size, side, j.frame_shapes)
            assert j.coherent
            assert max(j.frame_deviations) <= TOLERANCE


def test_outline_deviation_says_how_far_a_near_miss_is():
    real = [judge_clip(syn.render_clip("red", s, "large", "left", height=32, width=32, frames=8,
                                       rng=np.random.default_rng(k))) for k, s in enumerate(syn.SHAPES)]
    misses = [judge_clip(near_miss(name, 32, 8, "large", k))
              for k, name in enumerate(("lumpy circle", "pentagon", "rounded square"))]
    real_dev, miss_dev = outline_deviation(real), outline_deviation(misses)
    assert real_dev["within_tolerance"] == 1.0 and real_dev["median"] < 0.3
    assert miss_dev["within_tolerance"] == 0.0 and miss_dev["median"] > TOLERANCE
    blank = judge_clip(np.zeros((4, 32, 32, 3), np.uint8))
    assert np.isnan(blank.frame_deviations).all() and outline_deviation([blank])["median"] is None


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.png")), ids=lambda p: p.stem)
def test_frames_a_trained_model_drew_wrong_read_other(path):
    # lumpy circles, rounded squares and wedge triangles of the ConvLSTM generator (README there)
    frame = np.asarray(Image.open(path).convert("RGB"))
    assert frame.shape == (32, 32, 3)
    assert judge_clip(frame[None]).shape == OTHER


def test_the_fixtures_are_there():
    names = {p.stem.rsplit("-", 1)[0] for p in FIXTURES.glob("*.png")}
    assert names == {"lumpy-circle", "rounded-square", "wedge-triangle"}


def test_two_object_judge_reads_a_near_miss_as_other():
    # a rounded square beside a real circle, 3 px apart as shapes2 keeps them
    rng = np.random.default_rng(5)
    a = nm.render_clip("rounded square", "yellow", "large", "up", height=64, width=30, frames=4, rng=rng)
    b = syn.render_clip("red", "circle", "large", "down", height=64, width=30, frames=4, rng=rng)
    scene = jo.judge_shapes2(np.concatenate([a, np.zeros((4, 64, 4, 3), np.uint8), b], axis=2))
    shapes = sorted(o.attributes["shape"] for o in scene.objects)
    assert scene.count == 2 and shapes == ["circle", OTHER]
    assert not scene.coherent


def test_unknown_near_miss_is_refused():
    with pytest.raises(ValueError, match="unknown near-miss"):
        nm.render_clip("star", "red", "large", "up", height=32, width=32, frames=2, rng=np.random.default_rng(0))
