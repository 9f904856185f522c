"""Claim: the pipeline's train stage runs at least 0.8x the steps of a bare training loop in
the same wall-clock budget.

Baseline: the bare loop, the same G, D, losses, optimisers and EMA (``t2v_core.train._Run``,
with the profile's word warm-up first, as the stage does), stepping until the budget is
spent, with no pipeline, metrics, validation, sample sheets or checkpoints. Measured: the
train stage through ``t2v_core.pipeline.run_pipeline`` with ``[train] max_minutes`` set to the
same budget, which also validates every ``eval_every`` steps, writes checkpoints, metrics and
sample sheets. Both read the same artifacts (the stages up to match are built first, and are
not timed). Prints both step counts and their ratio.

    .venv/bin/python benchmarks/train_overhead.py                    # demo profile, 10 minutes each
    .venv/bin/python benchmarks/train_overhead.py --minutes 3 --threads 1 --workspace /tmp/ovh
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from t2v_core.config import load_profile  # noqa: E402
from t2v_core.datasets import fill_model_config, train_data  # noqa: E402
from t2v_core.generate import resolve_device  # noqa: E402
from t2v_core.pipeline import run_pipeline  # noqa: E402
from t2v_core.train import _Run  # noqa: E402


def bare_steps(profile, refs, minutes: float) -> int:
    """Steps of the bare loop in ``minutes``, the word warm-up included in the time."""
    cfg = profile.train
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    data = train_data(refs["ingest"], refs["embed"], refs["frames"])
    model_cfg = fill_model_config(dataclasses.replace(profile.model, word_dim=int(data.embeddings.shape[1])), data)
    run = _Run(data, model_cfg, cfg, resolve_device(cfg.device))
    t0 = time.monotonic()
    if cfg.word_warmup > 0:
        run.warm_up_words(data, cfg.word_warmup)
    while time.monotonic() - t0 < minutes * 60:
        run.train_step(data)
    return run.step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--minutes", type=float, default=10.0, help="the budget of each of the two runs")
    ap.add_argument("--workspace", default="", help="default: a temporary folder")
    ap.add_argument("--threads", type=int, default=None, help="override [train] threads")
    args = ap.parse_args()
    profile = load_profile(args.profile)
    profile = profile.override(train={"max_minutes": args.minutes, "steps": 10**6,
                                      **({"threads": args.threads} if args.threads else {})})
    with tempfile.TemporaryDirectory() as tmp:
        ws = args.workspace or tmp
        refs = run_pipeline(profile, ws, ["match"])
        print(f"profile {profile.name}, {args.minutes:g} min each, {profile.train.threads} torch thread(s)")
        bare = bare_steps(profile, refs, args.minutes)
        print(f"bare loop:   {bare} steps")
        t0 = time.monotonic()
        train_ref = run_pipeline(profile, ws, ["train"])["train"]
        summary = json.loads(Path(train_ref.path, "summary.json").read_text())
        staged = int(summary["steps"])
        print(f"train stage: {staged} steps (stage wall time {time.monotonic() - t0:.0f} s, "
              f"evaluations every {profile.train.eval_every} steps)")
        print(f"ratio {staged / bare:.2f}x the bare loop's steps (goal >= 0.8)")


if __name__ == "__main__":
    main()
