"""Retention (t2v_core.gc, `t2v gc`) and the per-corpus model commands (`t2v model`) on a
small but real artifact store: committed artifacts whose manifests chain their inputs the
way the pipeline's do."""

from __future__ import annotations

import os
import time

import pytest
from typer.testing import CliRunner

from flows.cli import app
from t2v_core import gc, promote
from t2v_core.store import MANIFEST, ArtifactRef, ArtifactStore

DIGEST = "9" * 64  # a file digest among the inputs: not an artifact, never followed
OLD = time.time() - 2 * 86400


def _commit(store: ArtifactStore, stage: str, key: str, **inputs: str) -> ArtifactRef:
    w = store.open(stage, key)
    (w.path / "data.bin").write_bytes(b"x" * 1000)
    ref = w.commit(inputs=inputs)
    os.utime(ref.file(MANIFEST), (OLD, OLD))  # committed two days ago
    return ref


def _key(name: str) -> str:
    return (name * 16)[:16]


@pytest.fixture
def ws(tmp_path):
    """A workspace with a shared corpus chain, four models and two run records.

    kept:    synth <- ingest; tokenize-shard x2 -> tokenize -> embed; frames-shard -> frames;
             A (corpus "shapes" default) with its evaluate and render (newest run record);
             P (the model A replaced: what rollback returns to);
             C (pinned for corpus "footage"), warm-started from X;
             a fresh render (younger than gc's minimum age) and its model Y.
    garbage: X (C's init_from only) and its embed/tokenize/shard chain; P's evaluate
             (listed only by the older run record)."""
    store = ArtifactStore(tmp_path / "ws")
    s = _commit(store, "synth", _key("s"))
    i = _commit(store, "ingest", _key("i"), synth=s.key)
    t0 = _commit(store, "tokenize-shard", _key("t0"), source=i.key)
    t1 = _commit(store, "tokenize-shard", _key("t1"), source=i.key)
    t = _commit(store, "tokenize", _key("t"), **{"shard-00000": t0.key, "shard-00001": t1.key})
    e = _commit(store, "embed", _key("e"), tokenize=t.key, glove=DIGEST)
    f0 = _commit(store, "frames-shard", _key("f0"), source=i.key)
    f = _commit(store, "frames", _key("f"), **{"shard-00000": f0.key})
    p = _commit(store, "train", _key("p"), ingest=i.key, embed=e.key, frames=f.key)
    ev_p = _commit(store, "evaluate", _key("vp"), train=p.key, frames=f.key, ingest=i.key)
    a = _commit(store, "train", _key("a"), ingest=i.key, embed=e.key, frames=f.key)
    ev_a = _commit(store, "evaluate", _key("va"), train=a.key, frames=f.key, ingest=i.key)
    r_a = _commit(store, "render", _key("ra"), train=a.key, catalog=DIGEST)
    tx = _commit(store, "tokenize-shard", _key("tx"), source=i.key)
    t_old = _commit(store, "tokenize", _key("to"), **{"shard-00000": tx.key})
    e_old = _commit(store, "embed", _key("eo"), tokenize=t_old.key)
    x = _commit(store, "train", _key("x"), ingest=i.key, embed=e_old.key, frames=f.key)
    c = _commit(store, "train", _key("c"), ingest=i.key, embed=e.key, frames=f.key, init_from=x.key)
    y = _commit(store, "train", _key("y"), ingest=i.key, embed=e.key, frames=f.key)
    w = store.open("render", _key("n"))
    (w.path / "data.bin").write_bytes(b"new")
    w.commit(inputs={"train": y.key})  # fresh: a run in progress has not recorded it yet
    # uncommitted folders are never touched: a build in progress, a training run's checkpoints
    (store.path("train", _key("u")) / "ckpt-000010.pt").parent.mkdir(parents=True)
    (store.path("train", _key("u")) / "ckpt-000010.pt").write_bytes(b"resume me")
    store.path("frames-shard", _key("z")).mkdir(parents=True)

    promote.promote(store, "shapes", p, {"text_video": {"r_precision": 0.5}}, None)
    promote.promote(store, "shapes", a, {"text_video": {"r_precision": 0.6}}, {"text_video": {"r_precision": 0.5}})
    promote.pin(store, "footage", c)
    gc.record_run(store, {"train": p, "evaluate": ev_p}, label="older")
    gc.record_run(store, {"train": a, "evaluate": ev_a, "render": r_a}, label="newest")
    return store


GARBAGE = {("train", _key("x")), ("embed", _key("eo")), ("tokenize", _key("to")),
           ("tokenize-shard", _key("tx")), ("evaluate", _key("vp"))}


def _committed(store: ArtifactStore) -> set[tuple[str, str]]:
    return {(m.parent.parent.name, m.parent.name) for m in store.artifacts.glob(f"*/*/{MANIFEST}")}


def test_plan_keeps_exactly_what_pointers_pins_rollback_and_recent_runs_need(ws):
    plan = gc.plan_gc(ws, keep_runs=1)
    assert {(g.stage, g.key) for g in plan} == GARBAGE
    assert all(g.bytes >= 1000 and g.path == str(ws.path(g.stage, g.key)) for g in plan)
    # the older run record protects P's evaluation too
    assert {(g.stage, g.key) for g in gc.plan_gc(ws, keep_runs=2)} == GARBAGE - {("evaluate", _key("vp"))}
    # with no minimum age, the fresh render and the model it used are garbage too
    no_age = {(g.stage, g.key) for g in gc.plan_gc(ws, keep_runs=1, min_age_s=0)}
    assert no_age == GARBAGE | {("render", _key("n")), ("train", _key("y"))}
    records = sorted((ws.root / "runs").glob("*.json"))
    assert len(records) == 2 and records[-1].name.endswith(".json") and "-" in records[-1].stem


def test_collect_deletes_the_plan_and_nothing_else(ws):
    before = _committed(ws)
    plan = gc.plan_gc(ws, keep_runs=1)
    freed = gc.collect(ws, plan)
    assert freed == sum(g.bytes for g in plan) > 0
    assert _committed(ws) == before - GARBAGE
    assert all(not ws.path(s, k).exists() for s, k in GARBAGE)
    assert (ws.path("train", _key("u")) / "ckpt-000010.pt").is_file()  # uncommitted: left alone
    assert ws.path("frames-shard", _key("z")).is_dir()
    assert promote.default_model(ws, "shapes").key == _key("a")
    assert promote.default_model(ws, "footage").key == _key("c")
    assert promote.rollback(ws, "shapes").key == _key("p")  # the rollback target survived
    assert gc.plan_gc(ws, keep_runs=1) == []  # nothing more to do
    assert gc.collect(ws, plan) == 0  # already gone


def test_gc_cli_lists_without_yes_and_deletes_with_it(ws, tmp_path):
    runner = CliRunner()
    before = _committed(ws)
    dry = runner.invoke(app, ["gc", "--keep-runs", "1", "-w", str(ws.root)])
    assert dry.exit_code == 0, dry.output
    assert f"train/{_key('x')}" in dry.output and "5 artifacts" in dry.output and "--yes" in dry.output
    assert _committed(ws) == before
    # keep_runs from the profile's [runner] section: 2 keeps P's evaluation
    profile = tmp_path / "keep2.toml"
    profile.write_text("[runner]\nkeep_runs = 2\n")
    two = runner.invoke(app, ["gc", "-p", str(profile), "-w", str(ws.root)])
    assert two.exit_code == 0, two.output
    assert "4 artifacts" in two.output and f"evaluate/{_key('vp')}" not in two.output
    wet = runner.invoke(app, ["gc", "--keep-runs", "1", "--yes", "-w", str(ws.root)])
    assert wet.exit_code == 0, wet.output
    assert "deleted 5 artifacts, freed" in wet.output
    assert _committed(ws) == before - GARBAGE
    again = runner.invoke(app, ["gc", "--keep-runs", "1", "--yes", "-w", str(ws.root)])
    assert "nothing to delete" in again.output


def test_model_cli_show_pin_unpin_rollback(ws):
    runner = CliRunner()

    def t2v(*args: str) -> str:
        result = runner.invoke(app, ["model", *args, "--corpus", "shapes", "-w", str(ws.root)])
        assert result.exit_code == 0, result.output
        return result.output

    shown = t2v("show")
    assert "corpus:  shapes" in shown and f"default: {_key('a')}" in shown and "pinned:  no" in shown
    assert f"rollback would restore: {_key('p')}" in shown
    assert f"pinned to {_key('c')}" in t2v("pin", _key("c"))
    assert f"pinned:  {_key('c')}" in t2v("show")
    refused = runner.invoke(app, ["model", "rollback", "--corpus", "shapes", "-w", str(ws.root)])
    assert refused.exit_code == 1 and "unpin it before rolling back" in refused.output
    assert "unpinned" in t2v("unpin")
    assert f"default is {_key('a')} again" in t2v("rollback")  # back from c to a
    unknown = runner.invoke(app, ["model", "pin", "nope", "--corpus", "shapes", "-w", str(ws.root)])
    assert unknown.exit_code == 1 and "no committed training run 'nope'" in unknown.output


def test_unreadable_run_record_stops_gc(ws):
    (ws.root / "runs" / "99999999T000000000000Z-broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="cannot be read"):
        gc.plan_gc(ws, keep_runs=1)
