"""What every task shares: building the core Context, Prefect progress artifacts, and
marking a task run whose artifact already existed as Cached.

The artifact store is the cache (see DESIGN.md): a task asks it for its key and returns at
once when the artifact is committed, even if Prefect's own records were wiped. Such runs
finish in a COMPLETED state named "Cached", so the UI shows what was reused.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.context import TaskRunContext
from prefect.states import Completed, State

from t2v_core.config import Profile
from t2v_core.pipeline import Context
from t2v_core.store import ArtifactRef, ArtifactStore

# Extra progress listeners in this process (the CLI's progress bars). Wiring, not core.
PROGRESS_SINKS: list[Callable[[str, int, int | None], None]] = []
_lock = threading.Lock()


class _PrefectProgress:
    """A progress callback that drives one Prefect progress artifact, throttled."""

    def __init__(self, every_s: float = 1.0):
        self.artifact_id: UUID | None = None
        self.every_s, self.last = every_s, 0.0

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        for sink in list(PROGRESS_SINKS):
            sink(stage, done, total)
        if not total or TaskRunContext.get() is None:
            return
        now = time.monotonic()
        if done < total and now - self.last < self.every_s:
            return
        self.last = now
        pct = 100.0 * done / total
        try:
            if self.artifact_id is None:
                self.artifact_id = create_progress_artifact(pct, description=f"{stage}: {done}/{total}")
            else:
                update_progress_artifact(self.artifact_id, pct, description=f"{stage}: {done}/{total}")
        except Exception:  # progress is a nicety; never fail a stage over it
            pass


def context(profile: Profile, workspace: str) -> Context:
    return Context(profile, ArtifactStore(workspace), _PrefectProgress())


def finish(ref: ArtifactRef | None) -> ArtifactRef | State | None:
    """Name the task run's final state after what happened to its artifact (None: a stage
    with nothing to do, synth when a manifest replaces it)."""
    if ref is not None and ref.cached:
        return Completed(data=ref, name="Cached", message=f"{ref.stage}/{ref.key} exists")
    return ref


def unwrap(value: Any) -> Any:
    return value.result() if isinstance(value, State) else value
