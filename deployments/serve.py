"""Serve the project's deployments from one process with `prefect.serve`.

The same three deployments as deployments/prefect.yaml (which puts them on a process work
pool instead):

- ``nightly-retrain``: cron, 02:00 by default, in a configurable timezone; parameters: the
  corpus manifest and the profile.
- ``render-catalog``: a catalog path or prompts typed into the run form, a model (default:
  the promoted, else newest, trained model) and render settings (samples, formats). Its
  artifact links to the gallery at $T2V_GALLERY_URL, which the flow runs served here inherit
  from this process (`t2v dashboard` sets it to the gallery server it starts; without the
  dashboard, serve the galleries with `python -m flows.gallery` and pass --gallery-url).
- ``run-stage``: a stage name and a profile.

Settings come from arguments, or from the environment for `t2v dashboard`:
T2V_NIGHTLY_CRON (default "0 2 * * *"), T2V_TIMEZONE (default "UTC"), T2V_PROFILE
(default "demo") and T2V_WORKSPACE.

    python -m deployments.serve [--workspace DIR] [--timezone Europe/Paris] [--cron "0 2 * * *"]
                                [--gallery-url http://127.0.0.1:4201]
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import flows  # noqa: F401  (telemetry off before Prefect loads)

NIGHTLY_CRON = "0 2 * * *"
DEFAULT_TZ = "UTC"
NAMES = ("nightly-retrain", "render-catalog", "run-stage")


def build_deployments(workspace: str = "", profile: str = "", cron: str = "", timezone: str = "") -> list[Any]:
    """The RunnerDeployments, with the workspace and profile as parameter defaults, so a
    run triggered from the UI writes to the same workspace as the CLI."""
    from zoneinfo import ZoneInfo

    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    from flows.nightly import nightly_retrain_flow
    from flows.render import render_catalog_flow
    from flows.settings import WORKSPACE_ENV, workspace_path
    from flows.stage import run_stage_flow

    ws = str(workspace_path(workspace or os.environ.get(WORKSPACE_ENV, "")))
    profile = profile or os.environ.get("T2V_PROFILE", "demo")
    cron = cron or os.environ.get("T2V_NIGHTLY_CRON", NIGHTLY_CRON)
    timezone = timezone or os.environ.get("T2V_TIMEZONE", DEFAULT_TZ)
    ZoneInfo(timezone)  # an unknown zone is a clear error here, not a silent UTC schedule
    # Module paths, not file paths: the runner's child processes import the installed
    # package, whatever their working directory.
    common = {"entrypoint_type": EntrypointType.MODULE_PATH, "tags": ["t2v"]}
    return [
        nightly_retrain_flow.to_deployment(
            name="nightly-retrain", schedule=Cron(cron, timezone=timezone),
            parameters={"manifest": "", "profile": profile, "workspace": ws},
            description=f"Retrain on the grown corpus at {cron!r} ({timezone}); promote if not worse.",
            **common),
        render_catalog_flow.to_deployment(
            name="render-catalog", parameters={"profile": profile, "workspace": ws},
            description="Render a prompt catalog (CSV, JSONL, txt) or prompts typed here into videos "
                        "and a gallery; its artifact links to the gallery and flags unknown words.",
            **common),
        run_stage_flow.to_deployment(
            name="run-stage", parameters={"profile": profile, "workspace": ws},
            description="Run one stage and what it needs; cached inputs return at once.",
            **common),
    ]


def serve_all(workspace: str = "", profile: str = "", cron: str = "", timezone: str = "",
              limit: int | None = None) -> None:
    """Serve the deployments until interrupted (Ctrl-C pauses their schedules and returns)."""
    from prefect import serve

    serve(*build_deployments(workspace, profile, cron, timezone), limit=limit)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the t2v deployments.")
    parser.add_argument("--workspace", default="")
    parser.add_argument("--profile", default="")
    parser.add_argument("--cron", default="", help=f"nightly schedule (default {NIGHTLY_CRON!r})")
    parser.add_argument("--timezone", default="", help=f"IANA zone of the schedule (default {DEFAULT_TZ})")
    parser.add_argument("--gallery-url", default="", help="where the render galleries are served "
                        "(python -m flows.gallery); the render artifacts link there")
    args = parser.parse_args(argv)
    if args.gallery_url:
        from flows.gallery import GALLERY_URL_ENV

        os.environ[GALLERY_URL_ENV] = args.gallery_url  # inherited by the flow runs served
    serve_all(args.workspace, args.profile, args.cron, args.timezone)


if __name__ == "__main__":
    main()
