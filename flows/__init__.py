"""Prefect flows and the `t2v` command.

Prefect's telemetry is switched off before Prefect is imported anywhere below: without a
network it would log errors on every run.
"""

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
