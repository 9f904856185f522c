"""Metrics: the judge's on real Moving Shapes clips (accuracy, coherence, variety), and the
generic ones (R-precision, Frechet distance, KID, motion, feature variety, the matching model)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from t2v_core import assess
from t2v_core import evaluate as ev
from t2v_core.corpus import synthetic as syn

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
    assert {"frechet_distance", "kid", "r_precision", "motion", "feature_variety"} <= set(ev.METRICS)
    assert ev.METRICS["kid"] is ev.kid
    with pytest.raises(ValueError, match="already registered"):
        ev.metric("kid")(lambda: 0.0)


def test_evaluate_clips_on_ground_truth_and_on_shuffled_expectations():
    clips, rows = corpus_clips(96, seed=0)
    result = assess.evaluate_clips(clips, rows)
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
    worse = assess.attribute_accuracy(assess.judge_many(clips), shuffled)
    assert worse["all_correct"] < 0.2 and worse["colour"] < 0.5


def test_attribute_accuracy_counts_unreadable_clips_as_wrong_and_checks_lengths():
    blank = assess.judge_many(np.zeros((2, 4, 16, 16, 3), np.uint8))
    rows = [{"colour": "red", "shape": "circle", "size": "small", "direction": "up"}] * 2
    acc = assess.attribute_accuracy(blank, rows)
    assert acc["colour"] == 0.0 and acc["all_correct"] == 0.0 and acc["n"] == 2
    assert assess.attribute_accuracy([], [])["colour"] is None
    with pytest.raises(ValueError, match="judgements"):
        assess.attribute_accuracy(blank, rows[:1])


def test_temporal_coherence_separates_real_from_broken_clips():
    clips, _ = corpus_clips(8, seed=2)
    broken = clips.copy()
    broken[:, ::2] = 0  # the object blinks out every other frame
    good, bad = assess.temporal_coherence(assess.judge_many(clips)), assess.temporal_coherence(assess.judge_many(broken))
    assert good["coherent_share"] == 1.0 and bad["coherent_share"] == 0.0
    assert bad["object_frame_share"] == pytest.approx(0.5)


def test_correct_and_coherent_needs_both_per_split():
    """A clip whose majority reading is right but whose object blinks out is correct, not
    coherent; a steady clip of the wrong colour is coherent, not correct."""
    clips, rows = corpus_clips(8, seed=4)
    rows = [dict(r, split="train") for r in rows]
    clips[0, ::4] = 0  # two frames of eight lost: the majority still reads the clip right
    rows[1] = dict(rows[1], colour=next(c for c in syn.COLOURS if c != rows[1]["colour"]))
    seen = assess.evaluate_clips(clips, rows)["seen"]
    assert seen["all_correct"] == pytest.approx(7 / 8)
    assert seen["coherent"] == pytest.approx(7 / 8)
    assert seen["correct_and_coherent"] == pytest.approx(6 / 8)


def test_variety_identical_versus_different_clips():
    clips, rows = corpus_clips(12, seed=3)
    assert assess.variety(clips, clips.copy()) == 0.0
    # same prompts, different start positions and speeds: what a generator should produce
    again = np.stack([
        syn.render_clip(*(r[a] for a in ATTRS), height=32, width=32, frames=8, rng=np.random.default_rng([99, i]))
        for i, r in enumerate(rows)
    ])
    assert assess.variety(clips, again) >= 0.75
    # faint noise is not a visible difference
    noise = np.random.default_rng(4).integers(0, 12, clips.shape, dtype=np.uint8)
    assert assess.variety(clips, np.clip(clips.astype(int) + noise, 0, 255).astype(np.uint8)) == 0.0
    with pytest.raises(ValueError, match="pairs"):
        assess.variety(clips, clips[:3])


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


def test_r_precision_ranks_the_true_caption_among_a_sampled_pool():
    rng = np.random.default_rng(0)
    n, m = 30, 150
    sims = rng.normal(size=(n, m))
    true = np.arange(n)
    exclude = np.zeros((n, m), bool)
    sims[np.arange(n), true] = 10.0  # every true caption far ahead
    assert ev.r_precision(sims, true, exclude) == (1.0, 100)  # pool capped at 100
    sims[:10, :10] = -10.0  # the first ten now lose to any negative
    assert ev.r_precision(sims, true, exclude)[0] == pytest.approx(20 / 30)
    # a video's own other captions are never its negatives, and the pool shrinks with them
    own = exclude.copy()
    own[:, 30:] = True
    sims2 = rng.normal(size=(n, m))
    sims2[:, 30:] = 99.0  # would beat every true caption if they were negatives
    sims2[np.arange(n), true] = 5.0
    assert ev.r_precision(sims2, true, own) == (1.0, 30)
    with pytest.raises(ValueError, match="disagree"):
        ev.r_precision(sims, true[:5], exclude)


def test_kid_is_near_zero_for_one_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(200, 8)), rng.normal(size=(200, 8))
    same = ev.kid(a, b)
    shifted = ev.kid(a, b + 0.5)
    assert abs(same) < 0.05 and shifted > 10 * max(abs(same), 1e-3)
    with pytest.raises(ValueError):
        ev.kid(a[:1], b)


def test_motion_ratio_and_flicker_tell_motion_from_noise():
    clips, _ = corpus_clips(12, seed=3)
    still = np.repeat(clips[:, :1], clips.shape[1], axis=1)
    noise = np.random.default_rng(0).integers(0, 256, clips.shape, dtype=np.uint8)
    same = ev.motion(clips, clips)
    assert same["ratio"] == pytest.approx(1.0) and same["flicker"] == pytest.approx(1.0)
    assert ev.motion(still, clips)["ratio"] == 0.0
    loud = ev.motion(noise, clips)
    # noise changes a lot, and most of that change does not persist: flicker, not motion
    assert loud["ratio"] > 5 and loud["flicker"] > loud["ratio"]


def test_feature_variety_is_zero_for_identical_draws_and_one_for_random_clips():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(100, 16))
    assert ev.feature_variety(real[:20], real[:20], real) == 0.0
    assert ev.feature_variety(real[:50], real[50:], real) == pytest.approx(1.0, abs=0.15)


def test_matching_model_ranks_real_held_out_clips_far_above_chance(one_thread):
    """The yardstick itself: trained on Moving Shapes clips and their captions, it ranks
    held-out clips' own captions first far more often than shuffled captions."""
    from t2v_core.config import MatchConfig
    from t2v_core.datasets import SideData
    from t2v_core.matching import train_match
    from t2v_core.scoring import calibration

    clips, rows = corpus_clips(300, seed=6, side=16, frames=4)
    rng = np.random.default_rng(0)
    texts = [syn.caption_for(r["colour"], r["shape"], r["size"], r["direction"], rng) for r in rows]
    vocab = {"<pad>": 0, "<unk>": 1}
    tokens = [t.lower().split() for t in texts]
    for toks in tokens:
        for w in toks:
            vocab.setdefault(w, len(vocab))
    ids = np.zeros((len(texts), 16), np.int32)
    for i, toks in enumerate(tokens):
        ids[i, :len(toks[:16])] = [vocab[w] for w in toks[:16]]
    lengths = np.array([min(len(t), 16) for t in tokens], np.int32)
    vectors = np.random.default_rng(1).normal(size=(len(vocab), 16)).astype(np.float32)
    state = torch.random.get_rng_state()
    model, losses = train_match(clips[:240], np.arange(240), ids[:240], lengths[:240], vectors,
                                MatchConfig(dim=16, channels=8, text_dim=16, steps=150, batch_size=32))
    assert torch.equal(state, torch.random.get_rng_state())  # the caller's RNG is untouched
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])
    held = np.arange(240, 300)
    pool_texts = list(dict.fromkeys(texts[i] for i in held))
    index = {t: k for k, t in enumerate(pool_texts)}
    side = SideData(
        clips=clips[held], texts=[texts[i] for i in held], token_ids=ids[held], lengths=lengths[held],
        pool_texts=pool_texts, pool_ids=ids[[texts.index(t) for t in pool_texts]],
        pool_lengths=lengths[[texts.index(t) for t in pool_texts]],
        true=np.array([index[texts[i]] for i in held]),
        exclude=np.array([[t == texts[i] for t in pool_texts] for i in held]), attributes=[{}] * 60)
    cal = calibration(model, side, seed=0)
    assert cal["pool"] == len(pool_texts) and cal["videos"] == 60
    assert cal["r_precision_chance"] == pytest.approx(1 / len(pool_texts), abs=0.05)
    assert cal["r_precision_real"] >= 3 * cal["r_precision_chance"], cal
