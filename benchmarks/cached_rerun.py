"""Claim: a rerun with everything cached takes a small fraction of the cold run.

Runs the given stages of a profile through the Prefect pipeline flow twice in a fresh
workspace — cold, then with every artifact cached — and prints both wall times and their
ratio. Prefect's temporary API server is started by a warm-up flow first, so neither timing
includes its start-up.

    .venv/bin/python benchmarks/cached_rerun.py --profile demo --stages tokenize annotate embed
    .venv/bin/python benchmarks/cached_rerun.py --profile demo            # every stage
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

from prefect import flow  # noqa: E402

from flows.pipeline import run  # noqa: E402
from flows.settings import parse_set  # noqa: E402


@flow
def _warm_up() -> None:
    """Starts Prefect's temporary server, so the timed runs don't pay for it."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--stages", nargs="*", default=None)
    ap.add_argument("--set", dest="sets", action="append", default=[])
    ap.add_argument("--workspace", default="")
    args = ap.parse_args()
    overrides = parse_set(args.sets) or None
    ws = args.workspace or tempfile.mkdtemp(prefix="t2v-bench-")
    _warm_up()
    timings = []
    for label in ("cold", "cached"):
        t0 = time.perf_counter()
        result = run(args.profile, args.stages, ws, overrides)
        timings.append(time.perf_counter() - t0)
        print(f"{label:7s} {timings[-1]:8.2f} s   ran={result['ran']} cached={result['cached']}")
    print(f"stages: {args.stages or 'all'}  profile: {args.profile}  workspace: {ws}")
    print(f"cached / cold = {timings[1] / timings[0]:.3%}")


if __name__ == "__main__":
    main()
