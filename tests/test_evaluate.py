"""Metrics on real Moving Shapes clips: accuracy, coherence, variety and Frechet distance."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from t2v_core import evaluate as ev
from t2v_core.corpus import synthetic as syn
from t2v_core.features import video_features

ATTRS = ("colour", "shape", "size", "direction")
VOCAB = {"colour": list(syn.COLOURS), "shape": list(syn.SHAPES), "size": list(syn.SIZES), "direction": list(syn.DIRECTIONS)}


def corpus_clips(n: int, seed: int, side: int = 32, frames: int = 8) -> tuple[np.ndarray, list[dict]]:
    combos = syn.sample_combinations(n, np.random.default_rng(seed))
    clips = np.stack([
        syn.render_clip(*c, height=side, width=side, frames=frames, rng=np.random.default_rng([seed, i]))
        for i, c in enumerate(combos)
    ])
    rows = [dict(zip(ATTRS, c, strict=True), split=syn.split_of(c[0], c[1])) for c in combos]
    return clips, rows


def test_registry_names_the_metrics():
    assert {"attribute_accuracy", "temporal_coherence", "variety", "frechet_distance"} <= set(ev.METRICS)
    assert ev.METRICS["variety"] is ev.variety
    with pytest.raises(ValueError, match="already registered"):
        ev.metric("variety")(lambda: 0.0)


def test_evaluate_clips_on_ground_truth_and_on_shuffled_expectations():
    clips, rows = corpus_clips(96, seed=0)
    result = ev.evaluate_clips(clips, rows)
    json.dumps(result, allow_nan=False)  # plain JSON, no NaN
    for part in ("seen", "held_out"):
        assert result[part]["n"] > 0
        assert all(result[part][a] == 1.0 for a in (*ATTRS, "all_correct")), result[part]
    assert result["seen"]["n"] + result["held_out"]["n"] == 96
    assert result["coherence"]["coherent_share"] == 1.0
    assert result["coherence"]["smoothness"] < 0.05
    assert result["seen"]["coherent"] == result["seen"]["correct_and_coherent"] == 1.0

    rng = np.random.default_rng(1)
    shuffled = [rows[i] for i in rng.permutation(len(rows))]
    worse = ev.attribute_accuracy(ev.judge_many(clips), shuffled)
    assert worse["all_correct"] < 0.2 and worse["colour"] < 0.5


def test_attribute_accuracy_counts_unreadable_clips_as_wrong_and_checks_lengths():
    blank = ev.judge_many(np.zeros((2, 4, 16, 16, 3), np.uint8))
    rows = [{"colour": "red", "shape": "circle", "size": "small", "direction": "up"}] * 2
    acc = ev.attribute_accuracy(blank, rows)
    assert acc["colour"] == 0.0 and acc["all_correct"] == 0.0 and acc["n"] == 2
    assert ev.attribute_accuracy([], [])["colour"] is None
    with pytest.raises(ValueError, match="judgements"):
        ev.attribute_accuracy(blank, rows[:1])


def test_temporal_coherence_separates_real_from_broken_clips():
    clips, _ = corpus_clips(8, seed=2)
    broken = clips.copy()
    broken[:, ::2] = 0  # the object blinks out every other frame
    good, bad = ev.temporal_coherence(ev.judge_many(clips)), ev.temporal_coherence(ev.judge_many(broken))
    assert good["coherent_share"] == 1.0 and bad["coherent_share"] == 0.0
    assert bad["object_frame_share"] == pytest.approx(0.5)


def test_correct_and_coherent_needs_both_per_split():
    """A clip whose majority reading is right but whose object blinks out is correct, not
    coherent; a steady clip of the wrong colour is coherent, not correct."""
    clips, rows = corpus_clips(8, seed=4)
    rows = [dict(r, split="train") for r in rows]
    clips[0, ::4] = 0  # two frames of eight lost: the majority still reads the clip right
    rows[1] = dict(rows[1], colour=next(c for c in syn.COLOURS if c != rows[1]["colour"]))
    seen = ev.evaluate_clips(clips, rows)["seen"]
    assert seen["all_correct"] == pytest.approx(7 / 8)
    assert seen["coherent"] == pytest.approx(7 / 8)
    assert seen["correct_and_coherent"] == pytest.approx(6 / 8)


def test_variety_identical_versus_different_clips():
    clips, rows = corpus_clips(12, seed=3)
    assert ev.variety(clips, clips.copy()) == 0.0
    # same prompts, different start positions and speeds: what a generator should produce
    again = np.stack([
        syn.render_clip(*(r[a] for a in ATTRS), height=32, width=32, frames=8, rng=np.random.default_rng([99, i]))
        for i, r in enumerate(rows)
    ])
    assert ev.variety(clips, again) >= 0.75
    # faint noise is not a visible difference
    noise = np.random.default_rng(4).integers(0, 12, clips.shape, dtype=np.uint8)
    assert ev.variety(clips, np.clip(clips.astype(int) + noise, 0, 255).astype(np.uint8)) == 0.0
    with pytest.raises(ValueError, match="pairs"):
        ev.variety(clips, clips[:3])


def test_frechet_distance_is_zero_for_same_features_and_grows_with_a_shift():
    feats = np.random.default_rng(5).normal(size=(200, 8))
    assert ev.frechet_distance(feats, feats) == pytest.approx(0.0, abs=1e-6)
    near = ev.frechet_distance(feats, feats + 0.1)
    far = ev.frechet_distance(feats, feats + 1.0)
    assert near == pytest.approx(8 * 0.01, rel=1e-3) and far == pytest.approx(8.0, rel=1e-3)
    # fewer rows than dimensions: singular covariances still give a finite value
    few = ev.frechet_distance(feats[:5], feats[5:10] + 1.0)
    assert np.isfinite(few) and few > 0
    with pytest.raises(ValueError):
        ev.frechet_distance(feats, feats[:, :4])


@pytest.fixture
def one_thread():
    # Two OpenMP threads on a machine shared with other jobs spin-wait and run ~10x slower
    # than one; the setting is restored after the test.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_feature_net_learns_and_its_features_separate_splits(one_thread):
    clips, rows = corpus_clips(336, seed=6, side=16, frames=4)
    labels = {a: np.array([VOCAB[a].index(r[a]) for r in rows]) for a in ATTRS}
    state = torch.random.get_rng_state()
    net = ev.train_feature_net(clips[:252], {a: y[:252] for a, y in labels.items()}, steps=120, seed=0)
    assert torch.equal(state, torch.random.get_rng_state())  # the caller's RNG is untouched
    pred = net.predict(clips[252:])
    acc = {a: float((pred[a] == labels[a][252:]).mean()) for a in ATTRS}
    chance = {a: 1 / len(VOCAB[a]) for a in ATTRS}
    # 16 px shapes are 4 px wide: shape needs more steps than this fast test takes
    assert all(acc[a] > chance[a] + 0.3 for a in ("colour", "size", "direction")), acc
    assert acc["shape"] > chance["shape"], acc
    feats = video_features(net, clips)
    assert feats.shape == (336, net.cfg.feature_dim) and feats.dtype == np.float64
    # real against real is closer than real against a blacked-out corpus
    dimmed = (clips // 4).astype(np.uint8)
    same = ev.frechet_distance(feats[:168], feats[168:])
    other = ev.frechet_distance(feats[:168], video_features(net, dimmed[168:]))
    assert other > 2 * same


@pytest.mark.slow
def test_feature_net_reads_every_attribute_at_32px(one_thread):
    clips, rows = corpus_clips(500, seed=7)
    labels = {a: np.array([VOCAB[a].index(r[a]) for r in rows]) for a in ATTRS}
    net = ev.train_feature_net(clips[:400], {a: y[:400] for a, y in labels.items()}, steps=200, seed=0)
    pred = net.predict(clips[400:])
    acc = {a: float((pred[a] == labels[a][400:]).mean()) for a in ATTRS}
    assert all(v >= 0.9 for v in acc.values()), acc


def test_feature_net_rejects_bad_labels():
    clips = np.zeros((4, 4, 16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match="labels"):
        ev.train_feature_net(clips, {"colour": np.array([0, 1])}, steps=1, seed=0)
    with pytest.raises(ValueError, match="uint8"):
        ev.train_feature_net(clips.astype(np.float32), {"colour": np.zeros(4, int)}, steps=1, seed=0)
