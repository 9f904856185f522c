"""What every stage shares: the Stage declaration, the Context a stage runs in, and the
build-or-reuse step that commits its artifact.

A stage's key digests its name, its settings sections, the keys of its inputs, and its code
version: every t2v_core module that the stage's own module (``t2v_core.stages.<name>``)
imports, found from the imports (``t2v_core.imports``). So this module must stay small and
import no stage's machinery: whatever it imports is in every stage's key.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from t2v_core.config import Profile
from t2v_core.imports import code_digest
from t2v_core.store import ArtifactRef, ArtifactStore, stage_key

Progress = Callable[[str, int, int | None], None]  # (stage, done, total)


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline, declared once, at the end of its own module.

    An unsharded stage's ``build(ctx, inputs, **options)`` takes its inputs' references by
    stage name and returns its artifact (synth returns None when a manifest replaces it). A
    sharded stage's ``plan(ctx, inputs)`` lists its shards, ``build(ctx, shard)`` builds one
    (a ``<name>-shard`` artifact) and ``combine(ctx, shard_refs)`` joins them.
    """

    name: str
    inputs: tuple[str, ...]  # the stages whose artifacts it reads
    sections: tuple[str, ...]  # the profile sections whose settings are in its key
    build: Callable[..., Any]
    doc: str
    plan: Callable[..., list[Any]] | None = None
    combine: Callable[..., ArtifactRef] | None = None
    options: tuple[str, ...] = ()  # keyword options a run may pass to build (train: init_from)

    @property
    def sharded(self) -> bool:
        return self.plan is not None

    @property
    def module(self) -> str:
        return f"t2v_core.stages.{self.name}"


@dataclass
class Context:
    profile: Profile
    store: ArtifactStore
    progress: Progress | None = None
    _code: dict[str, str] = field(default_factory=dict)

    def code(self, stage: str) -> str:
        """The stage's code version (see the module docstring)."""
        if stage not in self._code:
            self._code[stage] = code_digest([f"t2v_core.stages.{stage}"])
        return self._code[stage]

    def settings(self, stage: Stage) -> dict[str, Any]:
        """The stage's settings sections, as its key digests them."""
        return {name: self.profile.section(name) for name in stage.sections}

    def report(self, stage: str) -> Callable[[int, int | None], None] | None:
        if self.progress is None:
            return None
        return lambda done, total: self.progress(stage, done, total)  # type: ignore[misc]


@dataclass(frozen=True)
class ShardSpec:
    """One shard of a sharded stage: small enough to pass between tasks."""

    stage: str
    index: int
    source: str  # path of the input artifact the rows come from
    start: int  # row range in that input
    stop: int
    digest: str  # digest of the shard's content: its cache identity
    items: tuple[str, ...] = ()  # for frames: the video hashes in this shard


def artifact_key(ctx: Context, stage: str, params: dict[str, Any], inputs: dict[str, str]) -> str:
    """The cache key of a stage's artifact: its settings, its inputs' keys and its code."""
    return stage_key(stage, params, sorted(inputs.items()), ctx.code(stage.removesuffix("-shard")))


def build_artifact(ctx: Context, stage: str, params: dict[str, Any], inputs: dict[str, str],
                   build: Callable[[Path], dict[str, int]], keep_partial: bool = False,
                   extra: dict[str, Any] | None = None) -> ArtifactRef:
    """Return the cached artifact for these inputs, or build and commit it. ``stage`` is the
    artifact's stage (``frames-shard`` for a shard of frames)."""
    key = artifact_key(ctx, stage, params, inputs)
    found = ctx.store.get(stage, key)
    if found is not None:
        return found
    with ctx.store.building(stage, key):
        found = ctx.store.get(stage, key)  # committed by another run while this one waited
        if found is not None:
            return found
        writer = ctx.store.open(stage, key, keep_partial=keep_partial)
        try:
            counts = build(writer.path)
        except BaseException:
            # Nothing of a failed build stays behind, except a training run's checkpoints,
            # which a rerun resumes from.
            if not keep_partial:
                shutil.rmtree(writer.path, ignore_errors=True)
            raise
        return writer.commit(params=params, inputs=inputs, counts=counts, extra=extra)


def link(src: Path, dst: Path) -> None:
    """Hard-link a finished shard file into a combined dataset (copy across devices)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def concat_parquet(paths: Sequence[Path], out: Path) -> int:
    """Stream small per-shard tables into one Parquet file, one row group per shard."""
    rows, writer, tmp = 0, None, out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        for p in paths:
            table = pq.read_table(p)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
            rows += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        return 0
    os.replace(tmp, out)
    return rows


def read(ref: ArtifactRef, name: str, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(ref.file(name), columns=columns)


def shard_inputs(shard_refs: Sequence[ArtifactRef]) -> dict[str, str]:
    """A combined artifact's inputs: its shards' keys, in order."""
    return {f"shard-{i:05d}": r.key for i, r in enumerate(shard_refs)}


def shards_of(ctx: Context, combined: ArtifactRef, shard_stage: str) -> list[ArtifactRef]:
    """The shard artifacts that a combined artifact was joined from, in order."""
    inputs = combined.manifest()["inputs"]
    refs = []
    for name in sorted(k for k in inputs if k.startswith("shard-")):
        ref = ctx.store.get(shard_stage, inputs[name])
        if ref is None:
            raise FileNotFoundError(f"{combined.stage}/{combined.key} was joined from {shard_stage}/"
                                    f"{inputs[name]}, which is no longer in the store; rerun {combined.stage}")
        refs.append(ref)
    return refs


def corpus_of(ingest_ref: ArtifactRef) -> dict[str, str]:
    """The corpus's identity, name and judge, as ingest recorded them (t2v_core.corpus.info)."""
    return dict(ingest_ref.manifest().get("corpus") or {"id": "", "name": "", "judge": ""})
