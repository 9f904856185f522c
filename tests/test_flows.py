"""The pipeline under Prefect: the cache behaviour of DESIGN.md, proved by counting which
stage and shard task runs did work and which came back Cached."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from flows.pipeline import pipeline_flow
from t2v_core.pipeline import STAGES
from t2v_core.store import ArtifactStore

pytestmark = pytest.mark.usefixtures("prefect_harness")

ALL_BUILT = {"synth", "ingest", "tokenize-shard", "tokenize", "annotate-shard", "annotate", "embed",
             "frames-shard", "frames", "match", "train", "render", "evaluate"}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory) -> tuple[Path, dict]:
    ws = tmp_path_factory.mktemp("ws")
    return ws, pipeline_flow(profile="tiny", workspace=str(ws))


def test_first_run_builds_every_stage(first_run, judged_over_seed_sets):
    ws, result = first_run
    assert set(result["ran"]) == ALL_BUILT
    assert result["cached"] == {}
    assert result["ran"]["tokenize-shard"] == 3  # 48 captions in shards of 16
    refs = result["refs"]
    assert set(refs) == set(STAGES)
    gallery = Path(refs["render"]["path"]) / "index.html"
    assert gallery.is_file() and "<video" in gallery.read_text()
    metrics = json.loads((Path(refs["evaluate"]["path"]) / "metrics.json").read_text())
    judged_over_seed_sets(metrics["judge"], 2)  # the tiny profile's [evaluate] seed_sets
    # Training's validation: the generic R-precision on val-side captions, and the corpus
    # judge's figures on the seen prompts, which the tiny profile selects a checkpoint by.
    evals = pd.read_parquet(Path(refs["train"]["path"]) / "metrics.parquet").dropna(subset=["eval_seen_weakest"])
    assert len(evals) == 2  # steps 3 and 6
    assert evals["eval_r_precision"].between(0, 1).all() and evals["eval_variety"].ge(0).all()
    seen = evals[["eval_seen_all_correct", "eval_seen_coherent", "eval_seen_variety"]]
    assert (evals["eval_seen_weakest"] == seen.min(axis=1)).all()
    assert ((evals["eval_seen_correct_and_coherent"] <= evals["eval_seen_all_correct"])
            & (evals["eval_seen_correct_and_coherent"] <= evals["eval_seen_coherent"])).all()


def test_second_run_is_all_cache_hits(first_run):
    ws, first = first_run
    again = pipeline_flow(profile="tiny", workspace=str(ws))
    assert again["ran"] == {}
    assert again["cached"] == first["ran"]
    assert {k: v["key"] for k, v in again["refs"].items()} == {k: v["key"] for k, v in first["refs"].items()}


def test_changing_a_train_setting_reruns_train_and_downstream_only(first_run):
    ws, _ = first_run
    result = pipeline_flow(profile="tiny", workspace=str(ws), overrides={"train": {"steps": 4}})
    assert set(result["ran"]) == {"train", "render", "evaluate"}
    assert {"synth", "ingest", "tokenize", "annotate", "embed", "frames", "match"} <= set(result["cached"])


def test_deleting_the_frames_artifact_rebuilds_just_that(first_run):
    ws, first = first_run
    store = ArtifactStore(ws)
    store.delete("frames", first["refs"]["frames"]["key"])
    result = pipeline_flow(profile="tiny", stages=["frames"], workspace=str(ws))
    assert result["ran"] == {"frames": 1}
    assert result["cached"] == {"synth": 1, "ingest": 1, "frames-shard": 3}
    assert result["refs"]["frames"]["key"] == first["refs"]["frames"]["key"]


def test_grown_corpus_recomputes_only_the_changed_shard(first_run, tmp_path):
    """Tokenize a manifest, grow it by a few captions, rerun: one shard is new work."""
    ws, first = first_run
    synth_dir = Path(first["refs"]["synth"]["path"])
    rows = pd.read_csv(synth_dir / "manifest.csv")
    rows["video_path"] = [str(synth_dir / p) for p in rows["video_path"]]
    manifest = tmp_path / "manifest.csv"
    rows.iloc[:40].to_csv(manifest, index=False)
    before = pipeline_flow(profile="tiny", stages=["tokenize"], workspace=str(ws),
                           overrides={"ingest": {"manifest": str(manifest)}})
    # shards [0,16) [16,32) hold the same captions as the first run's: content-keyed, cached
    assert before["ran"]["tokenize-shard"] == 1 and before["cached"]["tokenize-shard"] == 2
    rows.iloc[:44].to_csv(manifest, index=False)
    after = pipeline_flow(profile="tiny", stages=["tokenize"], workspace=str(ws),
                          overrides={"ingest": {"manifest": str(manifest)}})
    assert after["ran"]["tokenize-shard"] == 1  # only [32,44) changed
    assert after["cached"]["tokenize-shard"] == 2
    shutil.rmtree(tmp_path, ignore_errors=True)
