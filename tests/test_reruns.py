"""Rerunning failed stages: a failed shard is the only shard redone, a failed training run
resumes from its newest checkpoint (through `prefect flow-run retry`), and a run killed with
SIGKILL mid-stage completes on rerun without ever reading a partial file as a result.

All three share one workspace, so each later test also checks that the earlier stages come
back as cache hits; the counts are of task runs, as the UI shows them."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest
import torch

from flows.pipeline import pipeline_flow
from t2v_core import pipeline
from t2v_core.store import MANIFEST, ArtifactStore, digest_file
from tasks._common import PROGRESS_SINKS

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
UPSTREAM = {"synth": 1, "ingest": 1, "tokenize-shard": 3, "tokenize": 1, "annotate-shard": 3,
            "annotate": 1, "embed": 1, "frames-shard": 3, "frames": 1, "match": 1}


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("reruns")


def _api_env(home: Path) -> dict[str, str]:
    """A child process's environment pointing at the session's Prefect API."""
    from prefect.settings import PREFECT_API_URL

    return {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_HOME": str(home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}


def _task_runs_since(flow_run_id, since: datetime) -> tuple[Counter, Counter]:
    """(completed, cached) task-run counts by task name, for runs started after ``since``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def read():
        async with get_client() as client:
            return await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))

    ran, cached = Counter(), Counter()
    for tr in asyncio.run(read()):
        # start_time, not created: task runs reach the API as events, inserted later.
        started = tr.start_time or tr.expected_start_time
        if started is None or started < since or not tr.state.is_completed():
            continue
        name = tr.name.rsplit("-", 1)[0]  # "frames-shard-1" / "synth-a1b" -> task name
        (cached if tr.state.name == "Cached" else ran)[name] += 1
    return ran, cached


def _verify_store(root: Path) -> int:
    """Every committed artifact's files match the digests in its manifest, and no
    temporary file sits inside one; returns how many artifacts were checked."""
    n = 0
    for manifest in (root / "artifacts").glob("*/*/" + MANIFEST):
        folder = manifest.parent
        files = json.loads(manifest.read_text())["files"]
        assert not [p for p in folder.rglob("*") if ".tmp-" in p.name], folder
        for name, meta in files.items():
            assert digest_file(folder / name) == meta["sha256"], folder / name
        n += 1
    return n


def test_failed_shard_is_the_only_shard_redone(ws, monkeypatch):
    real = pipeline.REGISTRY["frames"]

    def broken(ctx, shard):
        if shard.index == 1:
            raise OSError("injected: decoder crashed on shard 1")
        return real.build(ctx, shard)

    monkeypatch.setitem(pipeline.REGISTRY, "frames", dataclasses.replace(real, build=broken))
    state = pipeline_flow(profile="tiny", workspace=str(ws), return_state=True)
    assert state.is_failed()
    store = ArtifactStore(ws)
    assert len(store.list("frames-shard")) == 2 and store.list("frames") == []
    monkeypatch.undo()

    result = pipeline_flow(profile="tiny", workspace=str(ws))
    assert result["ran"]["frames-shard"] == 1
    assert result["cached"] == {**{k: v for k, v in UPSTREAM.items() if k not in ("frames", "match")},
                                "frames-shard": 2}
    assert {"frames", "match", "train", "render", "evaluate"} <= set(result["ran"])


def test_failed_training_resumes_from_its_newest_checkpoint_via_flow_run_retry(ws, tmp_path):
    over = {"train": {"seed": 1}}  # a new training run; everything upstream is cached

    def crash_at_step_4(stage: str, done: int, total: int | None) -> None:
        if stage == "train" and done == 4:
            raise RuntimeError("injected: out of memory at step 4")

    PROGRESS_SINKS.append(crash_at_step_4)
    try:
        state = pipeline_flow(profile="tiny", workspace=str(ws), overrides=over, return_state=True)
    finally:
        PROGRESS_SINKS.remove(crash_at_step_4)
    assert state.is_failed()
    flow_run_id = state.state_details.flow_run_id
    unfinished = [d for d in (ws / "artifacts" / "train").iterdir() if not (d / MANIFEST).exists()]
    assert len(unfinished) == 1
    assert sorted(p.name for p in unfinished[0].glob("ckpt-*.pt")) == ["ckpt-000003.pt"]

    # What the docs tell a user to type (the run has no deployment, so it names the flow).
    since = datetime.now(timezone.utc)
    cmd = [sys.executable, "-m", "prefect", "flow-run", "retry", str(flow_run_id),
           "--entrypoint", "flows/pipeline.py:pipeline_flow"]
    done = subprocess.run(cmd, cwd=REPO, env=_api_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    summary = json.loads((unfinished[0] / "summary.json").read_text())
    assert summary["resumed_from"] == 3 and summary["steps"] == 6
    assert (unfinished[0] / MANIFEST).is_file()
    ran, cached = _task_runs_since(flow_run_id, since)
    assert cached == Counter(UPSTREAM)
    assert set(ran) == {"train", "render", "evaluate"}


def test_sigkill_mid_training_then_rerun_completes_without_reading_partial_files(ws, tmp_path):
    over = {"train": {"seed": 2, "steps": 300, "ckpt_every": 3}}
    code = ("from flows.pipeline import pipeline_flow\n"
            f"pipeline_flow(profile='tiny', workspace={str(ws)!r}, overrides={over!r})\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=_api_env(tmp_path),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    train_dir = ws / "artifacts" / "train"
    victim = None
    try:
        deadline = time.monotonic() + 240
        while victim is None and time.monotonic() < deadline and proc.poll() is None:
            for d in train_dir.iterdir():
                if not (d / MANIFEST).exists() and list(d.glob("ckpt-*.pt")):
                    victim = d
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert victim is not None, "training never wrote a checkpoint before the deadline"
    assert not (victim / MANIFEST).exists(), "training finished before the kill; raise steps"

    result = pipeline_flow(profile="tiny", workspace=str(ws), overrides=over)
    assert result["cached"] == UPSTREAM
    assert set(result["ran"]) == {"train", "render", "evaluate"}
    summary = json.loads((victim / "summary.json").read_text())
    assert summary["resumed_from"] > 0 and summary["steps"] == 300
    for ckpt in victim.glob("ckpt-*.pt"):  # every checkpoint left behind is whole
        assert torch.load(ckpt, weights_only=True)["step"] > 0
    assert _verify_store(ws) >= 20
