"""Distributed execution: the sharded stages on a Dask LocalCluster (prefect-dask's
DaskTaskRunner, chosen by the profile's [runner]) give byte-identical artifacts to the
default thread runner's."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.pipeline import run
from flows.settings import resolve_profile, task_runner_for
from t2v_core.corpus.synthetic import write_corpus
from t2v_core.store import ArtifactStore

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]

SHARDED = ["tokenize", "annotate", "frames"]
COMPARED = ("tokenize-shard", "tokenize", "annotate-shard", "annotate", "frames-shard", "frames")


def _contents(ws: Path) -> dict[tuple[str, str], dict]:
    """(stage, key) -> {file: sha256} of every committed artifact of the compared stages."""
    store = ArtifactStore(ws)
    return {(stage, ref.key): {name: f["sha256"] for name, f in ref.manifest()["files"].items()}
            for stage in COMPARED for ref in store.list(stage)}


def test_profile_selects_the_dask_runner_with_a_local_cluster_or_an_address():
    from prefect_dask import DaskTaskRunner

    local = task_runner_for(resolve_profile("tiny", {"runner": {"kind": "dask", "workers": 2}}))
    remote = task_runner_for(resolve_profile("tiny", {"runner": {"kind": "dask", "dask_address": "tcp://10.0.0.5:8786"}}))
    assert isinstance(local, DaskTaskRunner) and local.address is None
    assert isinstance(remote, DaskTaskRunner) and remote.address == "tcp://10.0.0.5:8786"
    with pytest.raises(ValueError, match="unknown \\[runner\\] kind"):
        task_runner_for(resolve_profile("tiny", {"runner": {"kind": "spark"}}))


def test_sharded_stages_on_a_dask_local_cluster_match_the_thread_runner(tmp_path):
    # One corpus on disk for both runs: the WebM muxer stamps each written file differently,
    # so two synth stages would give the runners different videos to decode.
    manifest = write_corpus(resolve_profile("tiny").synth, tmp_path / "corpus")
    ingest = {"ingest": {"manifest": str(manifest)}}
    threads = run("tiny", SHARDED, str(tmp_path / "threads"), ingest)
    dask = run("tiny", SHARDED, str(tmp_path / "dask"), {**ingest, "runner": {"kind": "dask", "workers": 2}})
    # Both did all the work themselves (nothing shared between the two workspaces) ...
    assert dask["ran"] == threads["ran"]
    assert dask["ran"]["tokenize-shard"] == 3 and dask["ran"]["frames-shard"] == 3
    # ... and produced the same artifacts under the same keys, byte for byte.
    a, b = _contents(tmp_path / "threads"), _contents(tmp_path / "dask")
    assert len(a) == 12  # 3 shards + the combined dataset, for each of the three stages
    assert a == b
