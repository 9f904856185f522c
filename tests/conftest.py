"""Shared fixtures. Prefect runs against a temporary local API for the whole session."""

from __future__ import annotations

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect API (SQLite) for every flow test of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def _judged_over_seed_sets(judge: dict, sets: int) -> None:
    """The judge section of an evaluate metrics.json reports all-correct per noise-seed set,
    the first set being the one its other figures come from, with their mean and worst."""
    summary = judge["seed_sets"]
    assert summary["sets"] == sets
    for split in ("seen", "held_out"):
        values = summary[split]["all_correct"]
        assert len(values) == sets and all(0.0 <= v <= 1.0 for v in values)
        assert values[0] == judge[split]["all_correct"]
        assert summary[split]["worst"] == min(values)
        assert abs(summary[split]["mean"] - sum(values) / sets) < 1e-12


@pytest.fixture
def judged_over_seed_sets():
    """A check for the judge section's seed sets (see _judged_over_seed_sets)."""
    return _judged_over_seed_sets
