"""Nightly retraining: the promotion rule on a real artifact store, and the nightly flow run
twice over a corpus that grew in between (only the new shards are computed)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from flows.nightly import nightly_retrain_flow
from flows.render import model_ref
from flows.settings import resolve_profile
from t2v_core import promote
from t2v_core.corpus.synthetic import write_corpus
from t2v_core.store import ArtifactRef, ArtifactStore


def _trained(store: ArtifactStore, key: str, accuracy: float | None) -> tuple[ArtifactRef, ArtifactRef]:
    """A committed training run and its committed evaluation with the given accuracy."""
    w = store.open("train", key)
    (w.path / "ckpt-000001.pt").write_bytes(b"weights")
    train = w.commit()
    e = store.open("evaluate", f"eval-{key}")
    metrics = {"held_out": {"all_correct": accuracy}} if accuracy is not None else {"seen": {}}
    (e.path / "metrics.json").write_text(json.dumps(metrics))
    return train, e.commit(inputs={"train": key})


def test_first_model_is_promoted_and_a_worse_one_is_not(tmp_path):
    store = ArtifactStore(tmp_path)
    first = promote.promote(store, *_trained(store, "a" * 16, 0.40))
    assert first.promoted and first.previous == ""
    worse = promote.promote(store, *_trained(store, "b" * 16, 0.25))
    assert not worse.promoted and worse.previous == "a" * 16 and worse.previous_accuracy == 0.40
    # render-catalog's default stays the better, older model although a newer one exists
    assert store.latest("train").key == "b" * 16
    assert model_ref(store).key == promote.default_model(store).key == "a" * 16
    # the kept model's accuracy is still the bar for the next candidate
    tie = promote.promote(store, *_trained(store, "c" * 16, 0.40))
    assert tie.promoted and tie.previous_accuracy == 0.40
    assert model_ref(store).key == "c" * 16
    assert [d["promoted"] for d in promote.history(store)] == [True, False, True]


def test_promotion_refuses_mismatched_or_unreadable_evaluations(tmp_path):
    store = ArtifactStore(tmp_path)
    train_a, eval_a = _trained(store, "a" * 16, 0.5)
    train_b, _ = _trained(store, "b" * 16, 0.5)
    with pytest.raises(ValueError, match="is not of training run"):
        promote.promote(store, train_b, eval_a)
    train_c, eval_c = _trained(store, "c" * 16, None)
    with pytest.raises(KeyError, match="held_out.all_correct"):
        promote.promote(store, train_c, eval_c)
    assert store.pointer(promote.POINTER) is None and promote.history(store) == []


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_nightly_twice_with_a_grown_corpus(tmp_path):
    corpus = tmp_path / "corpus"
    full = pd.read_csv(write_corpus(resolve_profile("tiny").synth, corpus))
    manifest = corpus / "nightly.csv"  # beside the videos, so relative paths resolve
    ws = str(tmp_path / "ws")

    full.iloc[:40].to_csv(manifest, index=False)
    first = nightly_retrain_flow(manifest=str(manifest), profile="tiny", workspace=ws)
    assert first["promotion"]["promoted"] and first["promotion"]["previous"] == ""
    assert first["ran"]["tokenize-shard"] == 3 and first["ran"]["frames-shard"] == 3

    full.to_csv(manifest, index=False)  # the corpus grew by 8 captions and videos overnight
    second = nightly_retrain_flow(manifest=str(manifest), profile="tiny", workspace=ws)
    # rows [0, 32) fill the same two shards as last night: only the last shard is new work
    for stage in ("tokenize-shard", "annotate-shard", "frames-shard"):
        assert second["ran"][stage] == 1 and second["cached"][stage] == 2, stage
    assert {"ingest", "embed", "train", "render", "evaluate"} <= set(second["ran"])
    assert second["refs"]["train"]["key"] != first["refs"]["train"]["key"]

    decision = second["promotion"]
    assert decision["previous"] == first["refs"]["train"]["key"]
    assert decision["previous_accuracy"] == first["promotion"]["candidate_accuracy"]
    expected = second if decision["candidate_accuracy"] >= decision["previous_accuracy"] else first
    assert decision["promoted"] == (expected is second)
    assert model_ref(ArtifactStore(ws)).key == expected["refs"]["train"]["key"]

    # A third night with continue_training: the new run warm-starts from the default model.
    default = model_ref(ArtifactStore(ws))
    third = nightly_retrain_flow(manifest=str(manifest), profile="tiny", workspace=ws,
                                 continue_training=True)
    assert {"tokenize-shard", "frames-shard", "embed"} <= set(third["cached"])
    assert third["ran"]["train"] == 1
    summary = json.loads((ArtifactStore(ws).get("train", third["refs"]["train"]["key"]).file("summary.json")).read_text())
    assert default.key in str(summary["init_from"])
    manifest_inputs = ArtifactStore(ws).get("train", third["refs"]["train"]["key"]).manifest()["inputs"]
    assert manifest_inputs["init_from"] == default.key
