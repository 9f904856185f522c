"""Two-object Moving Shapes: the corpus (`[synth] objects = 2`), its held-out pairs, the
tracking judge on real decoded videos, the evaluate stage's scene figures, and a tiny run."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from t2v_core import assess_objects as ao
from t2v_core import judge_objects as jo
from t2v_core.config import SynthConfig, load_profile
from t2v_core.corpus import scenes
from t2v_core.corpus import shapes2 as s2
from t2v_core.corpus import synthetic as syn
from t2v_core.corpus.builtin import write_builtin
from t2v_core.corpus.info import read_info
from t2v_core.judge import components
from t2v_core.pipeline import run_pipeline
from t2v_core.video import read_video

CFG = SynthConfig(objects=2, n_videos=240, height=48, width=48, frames=8, seed=3)
ATTRS = jo.ATTRIBUTES["shapes2"]


@pytest.fixture(scope="module")
def lossless() -> list[tuple[int, tuple, np.ndarray, np.random.Generator]]:
    return list(s2.clips_of(CFG))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_builtin(dataclasses.replace(CFG, n_videos=150, seed=8), tmp_path_factory.mktemp("shapes2"))


def test_profiles_load():
    p = load_profile("shapes2")
    assert (p.synth.objects, p.synth.height, p.synth.width) == (2, 64, 64) and p.model.height == 64
    d = load_profile("digits-demo")
    assert (d.synth.corpus, d.synth.digit_px, d.synth.height, d.synth.frames) == ("digits", (14, 16), 32, 10)
    assert d.model.frames == d.frames.frames == 10
    full = load_profile("digits")
    assert (full.synth.digit_px, full.synth.height, full.model.width, full.synth.frames) == ((28, 28), 64, 64, 10)


def test_settings_that_cannot_be_made_are_refused(tmp_path):
    with pytest.raises(ValueError, match="one_object_share"):
        write_builtin(dataclasses.replace(CFG, one_object_share=0.5), tmp_path)
    with pytest.raises(ValueError, match="48x48"):
        write_builtin(dataclasses.replace(CFG, height=32, width=32), tmp_path)
    with pytest.raises(ValueError, match="corpus"):
        write_builtin(dataclasses.replace(CFG, corpus="letters"), tmp_path)


def test_two_colours_apart_at_the_ends_held_out_pairs_only_in_test(lossless):
    objects = Counter()
    tests = 0
    for i, objs, clip, _ in lossless:
        assert len(objs) == 2 and objs[0][0] != objs[1][0]
        held = [(o[0], o[1]) in syn.HELD_OUT for o in objs]
        side = scenes.side_of(s2.held_out(objs), i)
        assert (side == "test") == any(held)
        tests += side == "test"
        for frame in (clip[0], clip[-1]):
            assert len(components(frame, 4)[2]) == 2, f"video {i}: objects touch at an end"
        for o in objs:
            objects.update({("colour", o[0]), ("shape", o[1]), ("size", o[2]), ("direction", o[3])})
    assert abs(tests / len(lossless) - scenes.TWO_OBJECT_TEST_SHARE) < 0.01
    for attr, values in (("colour", syn.COLOURS), ("shape", syn.SHAPES), ("size", syn.SIZES),
                         ("direction", syn.DIRECTIONS)):
        counts = [objects[(attr, v)] for v in values]
        assert min(counts) > 0.5 * np.mean(counts), (attr, counts)


def test_every_pair_of_directions_fits_two_large_shapes_at_48px():
    rng = np.random.default_rng(0)
    for a in syn.DIRECTIONS:
        for b in syn.DIRECTIONS:
            objs = (("red", "square", "large", a), ("blue", "circle", "large", b))
            clip = s2.render_clip(objs, height=48, width=48, frames=8, rng=rng)
            assert clip.shape == (8, 48, 48, 3)


def test_captions_name_both_objects_in_either_order():
    rng = np.random.default_rng(1)
    objs = (("red", "circle", "small", "left"), ("blue", "square", "large", "up"))
    firsts = Counter()
    for _ in range(200):
        text = s2.caption_for(objs, rng).lower()
        assert "red" in text and "blue" in text
        firsts[text.index("red") < text.index("blue")] += 1
    assert firsts[True] > 50 and firsts[False] > 50
    assert s2.prompt_for(objs) == "a small red circle moves to the left and a large blue square moves up"


def test_manifest_columns_and_corpus_json(corpus):
    df = pd.read_csv(corpus, dtype=str, keep_default_na=False)
    assert list(df.columns) == list(s2.MANIFEST_COLUMNS)
    assert set(df["objects"]) == {"2"}
    info = read_info(corpus)
    assert info.judge == "shapes2" and info.id == "moving-shapes2-48x48x8"
    train = df[df["split"] != "test"]
    for k in (1, 2):
        pairs = set(zip(train[f"colour_{k}"], train[f"shape_{k}"], strict=True))
        assert not pairs & syn.HELD_OUT


def test_judge_agrees_with_the_manifest_on_real_decoded_videos(corpus):
    df = pd.read_csv(corpus, dtype=str, keep_default_na=False).drop_duplicates("video_id")
    rows = [{"objects": ao.manifest_objects(r, ATTRS), "split": r["split"]} for r in df.to_dict("records")]
    clips = [read_video(corpus.parent / p) for p in df["video_path"]]
    figures = ao.split_accuracy(ao.judge_clips("shapes2", clips, None), rows, ATTRS)
    assert figures["two"]["all_correct"] >= 0.97, figures
    assert all(figures[a] >= 0.98 for a in ATTRS), figures


def test_judge_reads_a_blank_and_a_missing_object_as_wrong():
    expected = [dict(zip(ATTRS, ("red", "circle", "large", "left"), strict=True)),
                dict(zip(ATTRS, ("blue", "square", "small", "up"), strict=True))]
    blank = np.zeros((8, 48, 48, 3), np.uint8)
    j = jo.judge_shapes2(blank)
    assert j.count == 0 and not jo.all_correct(j, expected, ATTRS)
    assert jo.match(j, expected, ATTRS) == [dict.fromkeys(ATTRS, False)] * 2
    one = syn.render_clip("red", "circle", "large", "left", height=48, width=48, frames=8, rng=np.random.default_rng(0))
    j = jo.judge_shapes2(one)
    assert j.count == 1 and not jo.all_correct(j, expected, ATTRS)
    assert jo.match(j, expected, ATTRS)[0] == dict.fromkeys(ATTRS, True)  # the one drawn is read right


def test_judge_follows_two_shapes_through_a_crossing():
    # on one line in opposite directions: apart at both ends, one over the other in between
    objs = (("red", "circle", "large", "right"), ("green", "triangle", "large", "left"))
    t = np.linspace(0, 1, 8)
    paths = [np.stack([11 + 26 * t, np.full(8, 24.0)], 1), np.stack([37 - 26 * t, np.full(8, 24.0)], 1)]
    clip = np.zeros((8, 48, 48, 3), np.float32)
    for (colour, shape, size, _), path in zip(objs, paths, strict=True):
        for t, (x, y) in enumerate(path):
            cover = syn._shape_mask(shape, x, y, 0.45 * 48, 48, 48)[..., None]
            clip[t] = cover * np.array(syn.COLOURS[colour]) + (1 - cover) * clip[t]
    j = jo.judge_shapes2(np.rint(clip).astype(np.uint8))
    got = sorted(tuple(o.attributes[a] for a in ATTRS) for o in j.objects)
    assert j.count == 2 and got == sorted(objs)


def test_evaluate_figures_of_real_clips_of_the_evaluation_prompts():
    rows = ao.evaluation_prompts("shapes2", 10, seed=4)
    assert Counter(r["split"] for r in rows) == {"train": 10, "test": 10}
    assert all(s2.held_out([tuple(o[a] for a in ATTRS) for o in r["objects"]]) == (r["split"] == "test")
               for r in rows)
    clips = np.stack([s2.render_clip([tuple(o[a] for a in ATTRS) for o in r["objects"]], height=48, width=48,
                                     frames=8, rng=np.random.default_rng(r["seed"])) for r in rows])
    figures = ao.evaluate_scenes("shapes2", clips, rows, None)
    assert figures["coherence"]["n"] == 20
    for split in ("seen", "held_out"):
        assert figures[split]["n"] == 10 and figures[split]["all_correct"] == 1.0, figures[split]
        assert figures[split]["two"]["count"] == 1.0


@pytest.mark.slow
def test_a_tiny_shapes2_run_writes_metrics_with_the_judge_section(tmp_path, judged_over_seed_sets):
    # 64x64: the smallest frame today's generator draws (square, a power of two) above 48x48
    profile = load_profile("tiny").override(
        synth={"objects": 2, "n_videos": 40, "height": 64, "width": 64, "frames": 4},
        frames={"height": 64, "width": 64, "frames": 4},
        model={"height": 64, "width": 64, "frames": 4},
    )
    refs = run_pipeline(profile, tmp_path)
    metrics = json.loads((Path(refs["evaluate"].path) / "metrics.json").read_text())
    assert metrics["judge"]["name"] == "shapes2"
    for split in ("seen", "held_out"):
        assert {"colour", "shape", "size", "direction", "count", "all_correct", "two"} <= set(metrics["judge"][split])
    judged_over_seed_sets(metrics["judge"], 2)
