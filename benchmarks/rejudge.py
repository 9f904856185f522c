"""Re-score trained Moving Shapes models with the judge of this checkout, without
retraining: the judge section of the evaluate stage's metrics.json (the same prompts, seeds
and variety pairs as t2v_core.stages.evaluate.evaluate_model), for each checkpoint given.

The train stage's cache key covers the judge's code (validation selects the checkpoint with
it), so after a change of judge `t2v run evaluate` trains again. This script measures an
existing checkpoint instead, so that a model is compared under two judges: run it once with
this checkout on PYTHONPATH and once with another (the script imports t2v_core from
PYTHONPATH, not from its own folder).

    PYTHONPATH=. .venv/bin/python benchmarks/rejudge.py -p demo WORKSPACE/artifacts/train/<key>/ckpt-000750.pt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from t2v_core import judge
from t2v_core.assess import judge_model
from t2v_core.config import load_profile
from t2v_core.generate import Text2Video

ROWS = ("all_correct", "colour", "shape", "size", "direction", "coherent", "correct_and_coherent")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument("-p", "--profile", default="demo", help="the profile the model was trained and evaluated with")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    profile = load_profile(args.profile)
    cfg = profile.evaluate
    print(f"judge: {Path(judge.__file__).resolve()}")
    out = {}
    for ckpt in args.checkpoints:
        model = Text2Video.from_checkpoint(ckpt, use_ema=profile.render.use_ema)
        m, _, _ = judge_model(model, cfg.prompts_per_split, cfg.variety_pairs, cfg.seed)  # the model reads its prompts
        out[str(ckpt)] = m
        print(f"\n{ckpt}: {m['prompts']} prompts")
        print(f"{'':>22} {'seen':>6} {'held-out':>8}")
        for k in ROWS:
            print(f"{k:>22} {m['seen'][k]:6.3f} {m['held_out'][k]:8.3f}")
        print(f"coherence {m['coherence']['coherent_share']:.3f} (smoothness {m['coherence']['smoothness']:.3f}), "
              f"variety {m['variety']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
