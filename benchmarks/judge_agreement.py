"""Claim: the image-analysis judge agrees with the ground truth on >= 99% of real corpus
videos for each of colour, shape, size and direction, at 64x64x16 and 32x32x8.

The videos are written by write_corpus (VP8 WebM by default) and decoded from the files with
OpenCV, as the pipeline reads them. The baseline in the same run is the judge on the same
clips rendered losslessly (straight from render_clip, never encoded); the ratio
decoded / lossless shows what the codec costs.

    .venv/bin/python benchmarks/judge_agreement.py                # 1000 videos per size
    .venv/bin/python benchmarks/judge_agreement.py --n 300 --sizes 32x32x8 --container mp4
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from t2v_core.config import SynthConfig
from t2v_core.corpus import synthetic as syn
from t2v_core.judge import judge_clip
from t2v_core.video import read_video

ATTRS = ("colour", "shape", "size", "direction")


def lossless_clips(cfg: SynthConfig) -> list[np.ndarray]:
    """The corpus's clips exactly as write_corpus renders them, before encoding: same
    combinations, same per-video generators."""
    combos = syn.sample_combinations(cfg.n_videos, np.random.default_rng([cfg.seed, 0]))
    return [
        syn.render_clip(*combo, height=cfg.height, width=cfg.width, frames=cfg.frames,
                        rng=np.random.default_rng([cfg.seed, 1, i]))
        for i, combo in enumerate(combos)
    ]


def score(clips, truth: pd.DataFrame) -> tuple[dict[str, float], list[str]]:
    hits = {a: 0 for a in (*ATTRS, "all", "coherent")}
    misses = []
    for clip, row in zip(clips, truth.itertuples(index=False), strict=True):
        j = judge_clip(clip)
        ok = True
        for a in ATTRS:
            if getattr(j, a) == getattr(row, a):
                hits[a] += 1
            else:
                ok = False
                misses.append(f"{row.video_id} {a}: truth {getattr(row, a)}, judged {getattr(j, a)} "
                              f"({row.colour} {row.shape} {row.size} {row.direction})")
        hits["all"] += ok
        hits["coherent"] += j.coherent
    return {k: v / len(truth) for k, v in hits.items()}, misses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="videos per size")
    ap.add_argument("--sizes", default="64x64x16,32x32x8,16x16x4", help="HxWxT, comma-separated")
    ap.add_argument("--container", default="webm", choices=syn.CONTAINERS)
    ap.add_argument("--seed", type=int, default=2024)
    args = ap.parse_args()

    failed = False
    for spec in args.sizes.split(","):
        h, w, t = (int(v) for v in spec.split("x"))
        cfg = SynthConfig(n_videos=args.n, height=h, width=w, frames=t, container=args.container, seed=args.seed)
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            df = pd.read_csv(syn.write_corpus(cfg, Path(tmp))).drop_duplicates("video_id")
            written = time.perf_counter() - start
            decoded = [read_video(Path(tmp) / p) for p in df["video_path"]]
            start = time.perf_counter()
            on_files, misses = score(decoded, df)
            judged = time.perf_counter() - start
        baseline, _ = score(lossless_clips(cfg), df)
        print(f"\n{spec} {args.container}: {args.n} videos (write {written:.1f} s, judge {judged:.1f} s; "
              f"timings are on a shared machine)")
        print(f"{'':>10} {'decoded':>8} {'lossless':>8} {'ratio':>6}")
        for k in (*ATTRS, "all", "coherent"):
            ratio = on_files[k] / baseline[k] if baseline[k] else float("nan")
            print(f"{k:>10} {on_files[k]:8.4f} {baseline[k]:8.4f} {ratio:6.3f}")
        for m in misses[:10]:
            print("  miss", m)
        if h >= 32 and min(on_files[a] for a in ATTRS) < 0.99:
            failed = True
            print(f"  BELOW THE 99% BAR at {spec}")
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
