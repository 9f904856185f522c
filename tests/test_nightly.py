"""Nightly retraining: the promotion rule on a real artifact store, and the nightly flow run
twice over a corpus that grew in between (only the new shards are computed)."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from flows.nightly import nightly_retrain_flow
from flows.render import model_ref
from flows.settings import resolve_profile
from t2v_core import promote
from t2v_core.config import Profile
from t2v_core.corpus.synthetic import write_corpus
from t2v_core.store import ArtifactRef, ArtifactStore


M = "text_video.r_precision"


def _train(store: ArtifactStore, key: str) -> ArtifactRef:
    """A committed training run."""
    w = store.open("train", key)
    (w.path / "ckpt-000001.pt").write_bytes(b"weights")
    return w.commit()


def _m(value: float) -> dict:
    """An evaluate metrics.json with the generic metric."""
    return {"text_video": {"r_precision": value}}


CORPUS = "my-footage"


def test_first_model_is_promoted_and_a_worse_one_is_not(tmp_path):
    store = ArtifactStore(tmp_path)
    a, b = _train(store, "a" * 16), _train(store, "b" * 16)
    first = promote.promote(store, CORPUS, a, _m(0.40), None)
    assert first.promoted and first.current == "" and first.metric == M
    assert first.decided_at and first.candidate_created
    worse = promote.promote(store, CORPUS, b, _m(0.25), _m(0.40))
    assert not worse.promoted and worse.current == a.key and worse.current_value == 0.40
    # render-catalog's default for the corpus stays the better, older model
    assert store.latest("train").key == b.key
    assert model_ref(store, corpus_id=CORPUS).key == promote.default_model(store, CORPUS).key == a.key
    assert model_ref(store).key == b.key  # no corpus: the newest run, as before
    c = _train(store, "c" * 16)
    tie = promote.promote(store, CORPUS, c, _m(0.40), _m(0.40))
    assert tie.promoted and "0.4000 >= 0.4000" in tie.reason
    assert promote.default_model(store, CORPUS).key == c.key
    again = promote.promote(store, CORPUS, c, _m(0.40), _m(0.40))
    assert again.promoted and again.reason == "already the default model"
    log = promote.history(store, CORPUS)
    assert [d["promoted"] for d in log] == [True, False, True, True]
    assert log[0]["current_value"] is None  # JSON has no NaN
    assert (tmp_path / "promotions" / f"{CORPUS}.json").is_file()
    assert (tmp_path / "pointers" / f"model--{CORPUS}.json").is_file()


def test_like_for_like_the_fresh_score_of_the_current_model_decides(tmp_path):
    store = ArtifactStore(tmp_path)
    a, b = _train(store, "a" * 16), _train(store, "b" * 16)
    promote.promote(store, CORPUS, a, _m(0.90), None)  # logged 0.90 under last night's evaluation
    # Tonight's evaluation is harder: the current model scores 0.50 in it, the candidate 0.60.
    # Against the remembered 0.90 the candidate would lose; like for like it wins.
    d = promote.promote(store, CORPUS, b, _m(0.60), _m(0.50))
    assert d.promoted and d.current_value == 0.50 and d.candidate_value == 0.60
    assert promote.default_model(store, CORPUS).key == b.key


def test_no_fresh_score_of_the_current_model_promotes_and_says_why(tmp_path):
    store = ArtifactStore(tmp_path)
    a, b = _train(store, "a" * 16), _train(store, "b" * 16)
    promote.promote(store, CORPUS, a, _m(0.9), None)
    d = promote.promote(store, CORPUS, b, _m(0.1), None)
    assert d.promoted and "not scored" in d.reason and math.isnan(d.current_value)


def test_corpora_have_separate_pointers_and_no_fallback(tmp_path):
    store = ArtifactStore(tmp_path)
    a, b = _train(store, "a" * 16), _train(store, "b" * 16)
    promote.promote(store, "shapes", a, _m(0.2), None)
    promote.promote(store, "footage", b, _m(0.1), None)
    assert promote.default_model(store, "shapes").key == a.key
    assert promote.default_model(store, "footage").key == b.key
    assert promote.default_model(store, "other") is None  # never the newest run of another corpus
    assert promote.corpora(store) == ["footage", "shapes"]
    with pytest.raises(ValueError, match="not a corpus id"):
        promote.default_model(store, "../evil")


def test_pin_blocks_promotion_until_unpinned(tmp_path):
    store = ArtifactStore(tmp_path)
    a, b, c = (_train(store, k * 16) for k in "abc")
    promote.promote(store, CORPUS, a, _m(0.5), None)
    promote.promote(store, CORPUS, b, _m(0.6), _m(0.5))
    assert promote.pin(store, CORPUS, a.key).key == a.key
    assert promote.pinned(store, CORPUS) == a.key and promote.default_model(store, CORPUS).key == a.key
    d = promote.promote(store, CORPUS, c, _m(0.99), _m(0.1))
    assert not d.promoted and "pinned" in d.reason and a.key in d.reason
    assert promote.default_model(store, CORPUS).key == a.key
    with pytest.raises(ValueError, match="pinned"):
        promote.rollback(store, CORPUS)
    assert promote.unpin(store, CORPUS) and promote.pinned(store, CORPUS) is None
    assert not promote.unpin(store, CORPUS)  # not pinned: nothing to do, nothing logged
    assert promote.promote(store, CORPUS, c, _m(0.99), _m(0.1)).promoted
    with pytest.raises(ValueError, match="no committed training run 'nope'"):
        promote.pin(store, CORPUS, "nope")
    assert [e["action"] for e in promote.history(store, CORPUS)] == [
        "promote", "promote", "pin", "promote", "unpin", "promote"]


def test_rollback_walks_back_through_the_defaults(tmp_path):
    store = ArtifactStore(tmp_path)
    a, b, c, d = (_train(store, k * 16) for k in "abcd")
    with pytest.raises(ValueError, match="no default model to roll back from"):
        promote.rollback(store, CORPUS)
    promote.promote(store, CORPUS, a, _m(0.1), None)
    with pytest.raises(ValueError, match="nothing to roll back to"):
        promote.rollback(store, CORPUS)
    promote.promote(store, CORPUS, b, _m(0.2), _m(0.1))
    promote.promote(store, CORPUS, c, _m(0.1), _m(0.2))  # not promoted: not a default
    promote.promote(store, CORPUS, c, _m(0.3), _m(0.2))
    assert promote.rollback_target(store, CORPUS) == b.key
    assert promote.rollback(store, CORPUS).key == b.key
    assert promote.rollback(store, CORPUS).key == a.key  # again: further back, not forth to c
    assert promote.default_model(store, CORPUS).key == a.key
    promote.promote(store, CORPUS, d, _m(0.4), _m(0.1))
    assert promote.rollback_target(store, CORPUS) == a.key
    # A logged promotion whose pointer move never happened (a crash in between) is skipped.
    store.set_pointer(promote.pointer_name(CORPUS), a)
    assert promote.rollback_target(store, CORPUS) is None


def test_promotion_refuses_unknown_runs_or_metrics(tmp_path):
    store = ArtifactStore(tmp_path)
    a = _train(store, "a" * 16)
    ghost = ArtifactRef("train", "f" * 16, str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="no committed training run"):
        promote.promote(store, CORPUS, ghost, _m(0.5), None)
    with pytest.raises(KeyError, match="text_video.r_precision"):
        promote.promote(store, CORPUS, a, {"held_out": {"all_correct": 0.5}}, None)
    assert promote.default_model(store, CORPUS) is None and promote.history(store, CORPUS) == []


def test_corpus_id_for_a_profile(tmp_path):
    store = ArtifactStore(tmp_path / "ws")
    manifest = tmp_path / "corpus" / "manifest.csv"
    manifest.parent.mkdir()
    manifest.write_text("video,caption\n")
    (manifest.parent / "corpus.json").write_text('{"name": "my footage"}')
    prof = Profile().override(ingest={"manifest": str(manifest)})
    assert promote.corpus_id_for(prof, store) == "my-footage"
    builtin = Profile()
    with pytest.raises(ValueError, match="run `t2v run ingest` first"):
        promote.corpus_id_for(builtin, store)
    s = store.open("synth", "s" * 16)
    (s.path / "manifest.csv").write_text("video,caption\n")
    (s.path / "corpus.json").write_text('{"name": "moving-shapes", "judge": "shapes"}')
    s.commit()
    store.open("ingest", "i" * 16).commit(inputs={"synth": "s" * 16})
    assert promote.corpus_id_for(builtin, store) == "moving-shapes"  # from the synth's corpus.json
    store.open("ingest", "j" * 16).commit(inputs={"synth": "s" * 16}, extra={"corpus": {"id": "recorded"}})
    assert promote.corpus_id_for(builtin, store) == "recorded"  # what the ingest stage recorded
    user = store.open("ingest", "k" * 16).commit(inputs={"manifest": "digest"})
    assert promote.corpus_id_for(builtin, store) == "recorded"  # a user corpus's ingest is skipped
    assert user.key == "k" * 16


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_nightly_twice_with_a_grown_corpus(tmp_path):
    corpus = tmp_path / "corpus"
    full = pd.read_csv(write_corpus(resolve_profile("tiny").synth, corpus))
    (corpus / "corpus.json").write_text('{"name": "nightly-shapes", "judge": "shapes"}')
    manifest = corpus / "nightly.csv"  # beside the videos, so relative paths resolve
    ws = str(tmp_path / "ws")

    full.iloc[:40].to_csv(manifest, index=False)
    first = nightly_retrain_flow(manifest=str(manifest), profile="tiny", workspace=ws)
    assert first["corpus"] == "nightly-shapes"
    assert first["promotion"]["promoted"] and first["promotion"]["current"] == ""
    assert first["ran"]["tokenize-shard"] == 3 and first["ran"]["frames-shard"] == 3
    assert first["gc"]["deleted"] == []  # everything is younger than gc's minimum age

    full.to_csv(manifest, index=False)  # the corpus grew by 8 captions and videos overnight
    second = nightly_retrain_flow(manifest=str(manifest), profile="tiny", workspace=ws)
    # rows [0, 32) fill the same two shards as last night: only the last shard is new work
    for stage in ("tokenize-shard", "annotate-shard", "frames-shard"):
        assert second["ran"][stage] == 1 and second["cached"][stage] == 2, stage
    assert {"ingest", "embed", "train", "render", "evaluate"} <= set(second["ran"])
    assert second["refs"]["train"]["key"] != first["refs"]["train"]["key"]

    # Like for like: last night's model is scored again by tonight's evaluation (tonight's
    # test side and matching model), and the two fresh scores decide.
    decision = second["promotion"]
    assert decision["corpus"] == "nightly-shapes" and decision["current"] == first["refs"]["train"]["key"]
    rescore = second["current_metrics"]
    assert rescore["checkpoint"] and rescore["text_video"]["pool"] >= 2
    assert decision["current_value"] == rescore["text_video"]["r_precision"]
    store = ArtifactStore(ws)
    rescored = [r for r in store.list("evaluate") if r.manifest()["inputs"]["train"] == first["refs"]["train"]["key"]
                and r.manifest()["inputs"]["match"] == second["refs"]["match"]["key"]]
    assert len(rescored) == 1
    assert decision["promoted"] == (decision["candidate_value"] >= decision["current_value"])
    winner = second["refs"]["train"]["key"] if decision["promoted"] else first["refs"]["train"]["key"]
    assert model_ref(store, corpus_id="nightly-shapes").key == winner
    if decision["promoted"]:
        assert promote.rollback_target(store, "nightly-shapes") == first["refs"]["train"]["key"]

    # A third night with continue_training: the new run warm-starts from the default model.
    default = model_ref(store, corpus_id="nightly-shapes")
    third = nightly_retrain_flow(manifest=str(manifest), profile="tiny", workspace=ws,
                                 continue_training=True)
    assert {"tokenize-shard", "frames-shard", "embed"} <= set(third["cached"])
    assert third["ran"]["train"] == 1
    summary = json.loads((store.get("train", third["refs"]["train"]["key"]).file("summary.json")).read_text())
    assert default.key in str(summary["init_from"])
    manifest_inputs = store.get("train", third["refs"]["train"]["key"]).manifest()["inputs"]
    assert manifest_inputs["init_from"] == default.key
