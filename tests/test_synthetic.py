"""The Moving Shapes corpus: rendering, captions, splits and the written corpus."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from t2v_core.config import SynthConfig
from t2v_core.corpus import synthetic as syn
from t2v_core.video import read_video


def test_constants_and_held_out_compositions():
    assert len(syn.COLOURS) == 7 and all(max(v) == 255 for v in syn.COLOURS.values())
    assert set(syn.SHAPES) == {"circle", "square", "triangle"}
    assert set(syn.DIRECTIONS) == {"left", "right", "up", "down"}
    assert syn.HELD_OUT == {
        ("red", "triangle"), ("green", "circle"), ("blue", "square"), ("yellow", "circle"), ("white", "triangle")
    }
    train_pairs = [(c, s) for c, s in itertools.product(syn.COLOURS, syn.SHAPES) if syn.split_of(c, s) == "train"]
    # every colour and every shape still appears in training with other partners
    assert {c for c, _ in train_pairs} == set(syn.COLOURS)
    assert {s for _, s in train_pairs} == set(syn.SHAPES)
    assert syn.split_of("red", "triangle") == "test" and syn.split_of("red", "circle") == "train"


@pytest.mark.parametrize("size", [(64, 64, 16), (32, 32, 8), (16, 16, 4)])
def test_render_clip_stays_in_frame_and_moves_at_constant_speed(size):
    h, w, t = size
    rng = np.random.default_rng(0)
    for colour, shape, sz, direction in itertools.product(["red", "white"], syn.SHAPES, syn.SIZES, syn.DIRECTIONS):
        clip = syn.render_clip(colour, shape, sz, direction, height=h, width=w, frames=t, rng=rng)
        assert clip.shape == (t, h, w, 3) and clip.dtype == np.uint8
        cover = clip.max(axis=3).astype(float)
        # the whole shape is inside every frame: its coverage sum is the same in every frame
        sums = cover.sum(axis=(1, 2))
        assert np.allclose(sums, sums[0], rtol=0.02), (shape, sz, direction, sums)
        # only the named colour's channels light up
        lit = np.array(syn.COLOURS[colour]) > 0
        assert clip[..., ~lit].max(initial=0) == 0
        # centroid moves in a straight line at constant speed, in the named direction: steps
        # agree to a twelfth of a pixel (uint8 rounding of anti-aliased edges is the rest)
        ys, xs = np.mgrid[:h, :w]
        cx = (cover * xs).sum(axis=(1, 2)) / sums
        cy = (cover * ys).sum(axis=(1, 2)) / sums
        step = np.stack([np.diff(cx), np.diff(cy)], axis=1)
        assert np.abs(step - step.mean(axis=0)).max() < 0.08, step
        expected = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}[direction]
        moved = step.mean(axis=0)
        expected = np.array(expected, float)
        assert np.abs(moved[expected == 0]).max() < 0.05  # no drift across the motion
        assert (moved[expected != 0] * expected[expected != 0]) > 0.2


def test_render_clip_varies_with_rng_and_rejects_bad_input():
    a = syn.render_clip("red", "circle", "small", "left", height=32, width=32, frames=8, rng=np.random.default_rng(1))
    b = syn.render_clip("red", "circle", "small", "left", height=32, width=32, frames=8, rng=np.random.default_rng(2))
    a2 = syn.render_clip("red", "circle", "small", "left", height=32, width=32, frames=8, rng=np.random.default_rng(1))
    assert not np.array_equal(a, b) and np.array_equal(a, a2)
    with pytest.raises(ValueError, match="colour"):
        syn.render_clip("orange", "circle", "small", "left", height=32, width=32, frames=8, rng=np.random.default_rng())
    with pytest.raises(ValueError, match="direction"):
        syn.prompt_for("red", "circle", "small", "sideways")


def test_small_and_large_differ_at_every_resolution():
    for side in (16, 32, 64):
        rng = np.random.default_rng(3)
        area = {
            s: (syn.render_clip("blue", "square", s, "up", height=side, width=side, frames=2, rng=rng)[0].max(axis=2) / 255).sum()
            for s in syn.SIZES
        }
        assert area["large"] > 2.5 * area["small"]


def test_captions_are_varied_and_name_the_attributes():
    rng = np.random.default_rng(0)
    assert len(syn.TEMPLATES) >= 20
    caps = [syn.caption_for("red", "square", "large", "up", rng) for _ in range(300)]
    assert len(set(caps)) > 100
    for c in caps:
        low = c.lower()
        assert "red" in low
        assert any(w in low for w in ("square", "box", "block"))
        assert any(w in low for w in ("large", "big", "huge"))
        assert any(w in low for w in ("up", "top"))
        # no synonym of another value sneaks in
        assert not any(w in low for w in ("circle", "ball", "disc", "triangle", "small", "tiny", "little", "left", "right", "down"))
    assert syn.prompt_for("red", "circle", "small", "left") == "a small red circle moves to the left"


def test_write_corpus_manifest_balance_and_determinism(tmp_path):
    cfg = SynthConfig(n_videos=336, captions_per_video=2, height=16, width=16, frames=4, seed=5)
    seen = []
    manifest = syn.write_corpus(cfg, tmp_path / "a", progress=lambda done, total: seen.append((done, total)))
    df = pd.read_csv(manifest)
    assert list(df.columns) == list(syn.MANIFEST_COLUMNS)
    assert len(df) == 672 and df["video_id"].nunique() == 336
    assert seen[-1] == (336, 336)
    # every combination gets exactly 336 / 168 = 2 videos
    per_combo = Counter(df.drop_duplicates("video_id")[["colour", "shape", "size", "direction"]].itertuples(index=False))
    assert len(per_combo) == 168 and set(per_combo.values()) == {2}
    # held-out pairs are exactly the test split
    held = [(c, s) in syn.HELD_OUT for c, s in zip(df["colour"], df["shape"], strict=True)]
    assert (df["split"] == np.where(held, "test", df["split"])).all() and set(df["split"][held]) == {"test"}
    # seen compositions are train, every 10th video of them val (the validation side)
    seen = df[~np.array(held)]
    assert set(seen["split"]) == {"train", "val"}
    assert (seen["split"] == "val").mean() == pytest.approx(0.1, abs=0.02)
    assert json.loads((tmp_path / "a" / "corpus.json").read_text())["judge"] == "shapes"
    assert all((tmp_path / "a" / p).is_file() for p in df["video_path"])
    # the same seed gives the same manifest bytes and the same frames
    again = syn.write_corpus(cfg, tmp_path / "b")
    assert manifest.read_bytes() == again.read_bytes()
    first = df["video_path"].iloc[0]
    assert np.array_equal(read_video(tmp_path / "a" / first), read_video(tmp_path / "b" / first))


@pytest.mark.parametrize("container", ["webm", "mp4", "avi"])
def test_written_videos_read_back_with_opencv(tmp_path, container):
    cfg = SynthConfig(n_videos=3, height=32, width=32, frames=8, container=container, seed=1)
    df = pd.read_csv(syn.write_corpus(cfg, tmp_path))
    assert df["video_path"].str.endswith("." + container).all()
    clip = read_video(tmp_path / df["video_path"].iloc[0])
    assert clip.shape == (8, 32, 32, 3)
    assert clip.max() > 200  # the shape survived the codec


def test_write_corpus_rejects_unknown_container(tmp_path):
    with pytest.raises(ValueError, match="container"):
        syn.write_corpus(SynthConfig(n_videos=1, container="mkv"), tmp_path)
