"""Resolving what a flow runs with: the profile, the workspace folder, the task runner."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from t2v_core.config import Profile, load_profile

WORKSPACE_ENV = "T2V_WORKSPACE"


def workspace_path(workspace: str | Path = "") -> Path:
    """The flag wins, then $T2V_WORKSPACE, then ./workspace."""
    chosen = str(workspace) or os.environ.get(WORKSPACE_ENV, "") or "workspace"
    return Path(chosen).expanduser().resolve()


def resolve_profile(profile: str | Profile, overrides: dict[str, dict[str, Any]] | None = None) -> Profile:
    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    return prof.override(**overrides) if overrides else prof


def parse_set(items: list[str]) -> dict[str, dict[str, Any]]:
    """``["train.steps=10", "synth.n_videos=64"]`` -> ``{"train": {"steps": 10}, ...}``.
    Values are parsed as TOML scalars, so 10 is an int and 'x' or x a string."""
    import tomllib

    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot:
            raise ValueError(f"--set takes SECTION.NAME=VALUE, got {item!r}")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        out.setdefault(section, {})[name] = value
    return out


def task_runner_for(profile: Profile) -> Any:
    """The profile's [runner]: threads (default), processes, or Dask."""
    cfg = profile.runner
    if cfg.kind == "threads":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=cfg.workers)
    if cfg.kind == "processes":
        from prefect.task_runners import ProcessPoolTaskRunner

        return ProcessPoolTaskRunner(max_workers=cfg.workers)
    if cfg.kind == "dask":
        from prefect_dask import DaskTaskRunner

        if cfg.dask_address:
            return DaskTaskRunner(address=cfg.dask_address)
        import dask

        # The frames stage decodes with its own process pool; Dask's worker processes are
        # daemonic by default, and daemonic processes may not start children.
        dask.config.set({"distributed.worker.daemon": False})
        return DaskTaskRunner(cluster_kwargs={"n_workers": cfg.workers, "threads_per_worker": 1,
                                              "processes": True, "dashboard_address": None})
    raise ValueError(f"unknown [runner] kind {cfg.kind!r}: threads | processes | dask")
