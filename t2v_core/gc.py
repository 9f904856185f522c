"""Retention: which committed artifacts a workspace still needs, and deleting the rest.

Nightly retraining commits a new set of artifacts every night; without retention the
workspace only grows. An artifact is kept when something can still use it:

- a model a pointer names (``pointers/*.json``: every corpus's default model),
- a pinned model, and the model each corpus's ``rollback`` would return to,
- what the newest ``keep_runs`` pipeline runs used (their run records, ``runs/*.json``),
- anything committed less than ``min_age_s`` ago: a run still in progress has not written
  its run record yet, and deleting its outputs or their inputs under it would fail it (a run
  that has only found cached inputs so far is not protected by this: run ``t2v gc`` by hand
  while no pipeline runs; the nightly flow runs it after its own pipeline),

each closed over its inputs: a manifest's ``"inputs"`` values that are keys of committed
artifacts are followed (a combined artifact's ``shard-00000`` ... are its shards); other
values (file digests) are ignored. ``init_from`` is not followed: it records which model a
warm-started run began from, the run never reads it again, and following it would keep
every model of a continue-training chain forever.

Uncommitted folders (no ``_manifest.json``) are left alone: one may be a build in
progress, and an uncommitted ``train`` folder holds the checkpoints a failed run resumes
from. The next build of the same key wipes or resumes it.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from t2v_core import promote
from t2v_core.store import MANIFEST, ArtifactRef, ArtifactStore, atomic_write_text

RUNS = "runs"
MIN_AGE_S = 6 * 3600.0  # longer than a pipeline run takes between committing an input and its run record
NOT_FOLLOWED = frozenset({"init_from"})  # lineage, not data (see the module docstring)


@dataclass(frozen=True)
class Garbage:
    stage: str
    key: str
    path: str
    bytes: int


def record_run(store: ArtifactStore, refs: Mapping[str, ArtifactRef | dict[str, Any]], label: str = "") -> Path:
    """Write ``runs/<UTC timestamp>-<short id>.json`` listing the (stage, key) of every
    artifact a pipeline run used; ``keep_runs`` counts these records."""
    now = datetime.now(timezone.utc)
    artifacts = []
    for ref in refs.values():
        stage, key = (ref.stage, ref.key) if isinstance(ref, ArtifactRef) else (ref["stage"], ref["key"])
        artifacts.append({"stage": stage, "key": key})
    record = {"created": now.isoformat(timespec="seconds"), "label": label, "artifacts": artifacts}
    # Microseconds in the name: records sort by name in the order the runs ended.
    path = store.root / RUNS / f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{uuid.uuid4().hex[:8]}.json"
    atomic_write_text(path, json.dumps(record, indent=2))
    return path


def plan_gc(store: ArtifactStore, keep_runs: int, min_age_s: float = MIN_AGE_S) -> list[Garbage]:
    """Every committed artifact that nothing in the module docstring needs, sorted by stage
    and key. ``keep_runs``: how many of the newest run records protect what they list."""
    if keep_runs < 0:
        raise ValueError(f"keep_runs must be 0 or more, not {keep_runs}")
    committed = _committed(store)
    stages_of: dict[str, list[str]] = {}
    for stage, key in committed:
        stages_of.setdefault(key, []).append(stage)
    cutoff = time.time() - min_age_s
    fresh = {sk for sk, manifest in committed.items() if manifest.stat().st_mtime > cutoff}
    needed = _closure(store, _roots(store, keep_runs) | fresh, stages_of)
    garbage = []
    for (stage, key), manifest in sorted(committed.items()):
        if (stage, key) in needed:
            continue
        folder = manifest.parent
        garbage.append(Garbage(stage, key, str(folder), _size(folder)))
    return garbage


def collect(store: ArtifactStore, garbage: Iterable[Garbage]) -> int:
    """Delete the planned artifacts; the bytes freed."""
    freed = 0
    for g in garbage:
        folder = store.path(g.stage, g.key)
        if not (folder / MANIFEST).is_file():
            continue  # already gone, or rebuilt as a build in progress: not ours to delete
        # The manifest first: a crash midway leaves an uncommitted folder, which no reader
        # takes for a result, never a committed artifact with files missing.
        (folder / MANIFEST).unlink()
        shutil.rmtree(folder, ignore_errors=True)
        freed += g.bytes
    return freed


def human(n: int) -> str:
    """``1536`` -> ``1.5 KiB``."""
    if n < 1024:
        return f"{n} B"
    size, unit = float(n), "B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        size /= 1024
        if size < 1024:
            break
    return f"{size:.1f} {unit}"


# ------------------------------------------------------------------------------ internals


def _committed(store: ArtifactStore) -> dict[tuple[str, str], Path]:
    """(stage, key) -> manifest path of every committed artifact."""
    if not store.artifacts.is_dir():
        return {}
    return {(m.parent.parent.name, m.parent.name): m for m in store.artifacts.glob(f"*/*/{MANIFEST}")}


def _roots(store: ArtifactStore, keep_runs: int) -> set[tuple[str, str]]:
    roots: set[tuple[str, str]] = set()
    pointers = store.root / "pointers"
    for p in sorted(pointers.glob("*.json")) if pointers.is_dir() else []:
        ref = _read(p)
        roots.add((str(ref["stage"]), str(ref["key"])))
    for corpus_id in promote.corpora(store):
        for key in (promote.pinned(store, corpus_id), promote.rollback_target(store, corpus_id)):
            if key:
                roots.add(("train", key))
    runs = store.root / RUNS
    records = sorted(runs.glob("*.json")) if runs.is_dir() else []
    for p in records[len(records) - keep_runs:] if keep_runs else []:
        roots.update((str(a["stage"]), str(a["key"])) for a in _read(p)["artifacts"])
    return roots


def _closure(store: ArtifactStore, roots: set[tuple[str, str]],
             stages_of: dict[str, list[str]]) -> set[tuple[str, str]]:
    needed: set[tuple[str, str]] = set()
    todo = [r for r in roots if store.get(*r) is not None]
    while todo:
        stage, key = todo.pop()
        if (stage, key) in needed:
            continue
        needed.add((stage, key))
        inputs = _read(store.path(stage, key) / MANIFEST).get("inputs", {})
        for name, value in inputs.items():
            if name in NOT_FOLLOWED or not isinstance(value, str):
                continue
            todo += [(s, value) for s in stages_of.get(value, [])]
    return needed


def _read(path: Path) -> Any:
    # Unreadable bookkeeping must stop gc: guessing what it protected could delete a model.
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} cannot be read ({exc}); fix or remove it before `t2v gc`") from exc


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
