"""The artifact store: content-keyed stage outputs with atomic, manifest-last commits.

Layout: ``<workspace>/artifacts/<stage>/<key>/`` holds a stage output's files and its
``_manifest.json``. The manifest is written last, through write-to-temp-then-rename, and an
output without a manifest does not exist: a crash leaves nothing a later run could mistake
for a result. Every data file is itself written to a temporary name and renamed, so a reader
never sees half a file either.

One process builds a key at a time (``building``, a lock file under ``<workspace>/locks/``):
a second run that needs the same output waits, then finds it committed.

A key digests the stage name, its config section, the keys of its input artifacts and the
code version (a digest of the t2v_core source files the stage uses). The same inputs give the
same key on any machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from filelock import FileLock

MANIFEST = "_manifest.json"
KEY_CHARS = 16


def digest_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest_json(obj: Any) -> str:
    """A stable digest of a JSON-able object (sorted keys, no whitespace)."""
    return digest_bytes(json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode())


def digest_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def stage_key(stage: str, params: dict[str, Any], input_keys: Iterable[str], code: str) -> str:
    return digest_json(
        {"stage": stage, "params": params, "inputs": list(input_keys), "code": code}
    )[:KEY_CHARS]


@dataclass(frozen=True)
class ArtifactRef:
    """What tasks pass between each other: a small reference, never the data."""

    stage: str
    key: str
    path: str  # absolute folder of the artifact
    cached: bool = False  # True when this run found it already built

    def file(self, name: str) -> Path:
        return Path(self.path) / name

    def manifest(self) -> dict[str, Any]:
        return json.loads(self.file(MANIFEST).read_text())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling path to write to; rename it onto ``path`` on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_parquet(table: pa.Table, path: Path, schema: pa.Schema | None = None) -> None:
    """Write a table atomically, cast to (and so checked against) ``schema`` if given."""
    if schema is not None:
        table = conform(table, schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Select and cast columns to ``schema``; a missing column is a clear error."""
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise ValueError(f"table lacks column(s) {missing} required by its schema")
    return table.select(schema.names).cast(schema)


class ArtifactWriter:
    """A stage output being built. Files go into ``path``; ``commit`` writes the manifest."""

    def __init__(self, store: ArtifactStore, stage: str, key: str, path: Path):
        self.store, self.stage, self.key, self.path = store, stage, key, path

    def file(self, name: str) -> Path:
        return self.path / name

    def commit(
        self,
        params: dict[str, Any] | None = None,
        inputs: dict[str, str] | None = None,
        counts: dict[str, int] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> ArtifactRef:
        files = {}
        for f in sorted(self.path.rglob("*")):
            if f.is_file() and f.name != MANIFEST and ".tmp-" not in f.name:
                files[str(f.relative_to(self.path))] = {
                    "bytes": f.stat().st_size,
                    "sha256": digest_file(f),
                }
        manifest = {
            "stage": self.stage,
            "key": self.key,
            "inputs": inputs or {},
            "params": params or {},
            "counts": counts or {},
            "files": files,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **(extra or {}),
        }
        atomic_write_text(self.path / MANIFEST, json.dumps(manifest, indent=2, default=str))
        return ArtifactRef(self.stage, self.key, str(self.path), cached=False)


class ArtifactStore:
    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.artifacts = self.root / "artifacts"

    def path(self, stage: str, key: str) -> Path:
        return self.artifacts / stage / key

    def get(self, stage: str, key: str) -> ArtifactRef | None:
        """The committed artifact, or None. An uncommitted folder does not count."""
        p = self.path(stage, key)
        if (p / MANIFEST).is_file():
            return ArtifactRef(stage, key, str(p), cached=True)
        return None

    @contextmanager
    def building(self, stage: str, key: str) -> Iterator[None]:
        """Hold the build lock of one artifact. Two runs sharing a workspace (a nightly
        retrain and a rerun from the dashboard) would otherwise build the same output at
        once, and ``open`` of the second wipes the first's half-built folder under it.
        Check ``get`` again once the lock is held: the other run may have committed."""
        lock = self.root / "locks" / stage / f"{key}.lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(lock):
            yield

    def open(self, stage: str, key: str, keep_partial: bool = False) -> ArtifactWriter:
        """Start building an artifact. Leftovers of a crashed attempt are wiped unless
        ``keep_partial`` (training keeps its checkpoints to resume from them)."""
        p = self.path(stage, key)
        if (p / MANIFEST).exists():
            raise FileExistsError(f"artifact {stage}/{key} is already committed")
        if p.exists() and not keep_partial:
            shutil.rmtree(p)
        p.mkdir(parents=True, exist_ok=True)
        return ArtifactWriter(self, stage, key, p)

    def list(self, stage: str) -> list[ArtifactRef]:
        """Committed artifacts of a stage, oldest first."""
        base = self.artifacts / stage
        if not base.is_dir():
            return []
        found = [d for d in base.iterdir() if (d / MANIFEST).is_file()]
        found.sort(key=lambda d: (d / MANIFEST).stat().st_mtime)
        return [ArtifactRef(stage, d.name, str(d), cached=True) for d in found]

    def latest(self, stage: str) -> ArtifactRef | None:
        refs = self.list(stage)
        return refs[-1] if refs else None

    def delete(self, stage: str, key: str | None = None) -> None:
        target = self.artifacts / stage if key is None else self.path(stage, key)
        if target.exists():
            shutil.rmtree(target)

    # Named pointers (e.g. the model that render-catalog uses by default).
    def set_pointer(self, name: str, ref: ArtifactRef) -> None:
        atomic_write_text(self.root / "pointers" / f"{name}.json", json.dumps(ref.to_dict()))

    def pointer(self, name: str) -> ArtifactRef | None:
        p = self.root / "pointers" / f"{name}.json"
        if not p.is_file():
            return None
        ref = ArtifactRef(**{**json.loads(p.read_text()), "cached": True})
        return ref if (Path(ref.path) / MANIFEST).is_file() else None
