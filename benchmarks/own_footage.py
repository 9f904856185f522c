"""A profile on ordinary footage, from a clean workspace: the generic metrics beside their
real-clip ceilings and floors.

Writes the footage sample (t2v_core.corpus.footage: textures, pans, zooms, rotations, a Game
of Life, a fractal, a scrolling page; free-text captions), runs the whole pipeline on it with
the given profile (the demo profile trains for its 10 minutes), and prints what a user of
"Train on your own videos" would read in metrics.json.

    .venv/bin/python benchmarks/own_footage.py --profile demo --videos 1200
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from t2v_core.config import load_profile  # noqa: E402
from t2v_core.corpus.footage import write_footage  # noqa: E402
from t2v_core.pipeline import run_pipeline  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--videos", type=int, default=1200)
    ap.add_argument("--seed", type=int, default=0, help="training seed")
    ap.add_argument("--workspace", default="", help="default: a fresh temporary folder")
    args = ap.parse_args()
    root = Path(args.workspace or tempfile.mkdtemp(prefix="t2v-footage-"))
    if args.workspace and root.exists():
        shutil.rmtree(root)
    manifest = write_footage(root / "footage", n_videos=args.videos, height=48, width=48, frames=12)
    profile = load_profile(args.profile).override(ingest={"manifest": str(manifest)}, train={"seed": args.seed})
    t0 = time.monotonic()
    refs = run_pipeline(profile, root / "ws")
    wall = time.monotonic() - t0
    m = json.loads(refs["evaluate"].file("metrics.json").read_text())
    summary = json.loads(refs["train"].file("summary.json").read_text())
    match = json.loads(refs["match"].file("match.json").read_text())
    counts = refs["ingest"].manifest()["counts"]
    tv, fr, kid, mo = m["text_video"], m["frechet"], m["kid"], m["motion"]
    print(f"profile {args.profile}, {args.videos} footage videos: sides {counts}; pipeline {wall:.0f} s; "
          f"{summary.get('steps')} training steps in {summary.get('minutes', 0):.1f} min; "
          f"published {m['checkpoint']} (selected by {summary.get('selected')})")
    print(f"matching model on real clips: val R@1 {match['val']['r_precision_real']:.3f} (chance "
          f"{match['val']['r_precision_chance']:.3f}, pool {match['val']['pool']}), test "
          f"{match['test']['r_precision_real']:.3f} (chance {match['test']['r_precision_chance']:.3f}, "
          f"pool {match['test']['pool']})")
    print(f"R-precision of generated test videos: {tv['r_precision']:.3f} mean over {len(tv['r_precision_sets'])} "
          f"seed sets, worst {tv['r_precision_worst']:.3f}; real clips {tv['r_precision_real']:.3f}, "
          f"chance {tv['r_precision_chance']:.3f}, pool {tv['pool']}, {tv['videos']} test videos")
    if fr["generated"] is not None:
        print(f"Frechet: generated {fr['generated']:.3f}, real halves {fr['real_halves']:.3f} ({fr['per_half']} a half)")
    else:
        print(f"Frechet: {fr['note']}")
    print(f"KID: generated {kid['generated']:.4f}, real halves {kid['real_halves']:.4f} ({kid['per_half']} a half)")
    print(f"motion ratio {mo['ratio']:.3f}, flicker ratio {mo['flicker']:.3f}; variety {tv['variety']:.3f}")
    print(f"side-by-side page: {Path(refs['evaluate'].path) / 'side_by_side' / 'index.html'}")
    print(f"sample sheets: {refs['train'].path}")


if __name__ == "__main__":
    main()
