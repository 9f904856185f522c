"""Claim: rendering a prompt catalog takes flat memory in the number of rows.

Renders catalogs of 1,000 and 10,000 prompts (a few rejects mixed in) with a cheap but real
GenerateFn (a moving square per prompt, drawn with numpy) through t2v_core.render, each in a
fresh Python process, and prints each run's peak RSS (getrusage) and its growth over the RSS
after imports. Flat memory means the 10,000 / 1,000 ratio stays near 1.

    .venv/bin/python benchmarks/render_memory.py                  # 1,000 vs 10,000, WebM + GIF
    .venv/bin/python benchmarks/render_memory.py --sizes 500 5000 --formats webm
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def write_catalog(path: Path, n: int) -> None:
    """n rows in the demo's vocabulary; every 50th prompt is empty and every 97th unknown."""
    colours = ["red", "green", "blue", "yellow", "cyan", "magenta", "white"]
    shapes, sizes = ["circle", "square", "triangle"], ["small", "large"]
    directions = ["to the left", "to the right", "up", "down"]
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "prompt", "seed"])
        for i in range(n):
            if i % 50 == 49:
                prompt = ""
            elif i % 97 == 96:
                prompt = "zxqv blorf"
            else:
                prompt = (f"a {sizes[i % 2]} {colours[i % 7]} {shapes[i % 3]} "
                          f"moves {directions[(i // 3) % 4]}")
            w.writerow([f"p{i:06d}", prompt, i])


def child(catalog: Path, out: Path, formats: list[str]) -> None:
    """Runs in its own process, so ru_maxrss is this render's peak alone."""
    import numpy as np

    from t2v_core.config import RenderConfig
    from t2v_core.render import render_catalog

    def generate(prompts: list[str], seeds: list[int]) -> list:
        clips: list = []
        for prompt, seed in zip(prompts, seeds):
            if "zxqv" in prompt:
                clips.append("no known words")
                continue
            h = hashlib.sha256(prompt.encode()).digest()
            clip = np.zeros((8, 32, 32, 3), np.uint8)
            for t in range(8):
                x = (seed + 3 * t) % 24
                clip[t, 12:20, x:x + 8] = (h[0] | 64, h[1] | 64, h[2] | 64)
            clips.append(clip)
        return clips

    cfg = RenderConfig(formats=tuple(formats), batch_size=64)
    # Warm up every code path (codec, Pillow, pyarrow writer) on a tiny catalog first, so the
    # baseline counts the libraries' one-off allocations and the growth is the render's own.
    out.parent.mkdir(parents=True, exist_ok=True)
    warm = out.parent / "warm.csv"
    write_catalog(warm, 60)
    render_catalog(warm, out.parent / "warm", generate, cfg)
    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    result = render_catalog(catalog, out, generate, cfg)
    seconds = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    counts = {k: result[k] for k in ("rows", "ok", "rejected", "failed", "videos")}
    print(json.dumps({"base_kb": base_kb, "peak_kb": peak_kb, "seconds": seconds, **counts}))


def run_size(n: int, formats: list[str], tmp: Path) -> dict:
    catalog = tmp / f"catalog-{n}.csv"
    write_catalog(catalog, n)
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(catalog), str(tmp / f"out-{n}" / "render"),
         "--formats", *formats],
        cwd=REPO, capture_output=True, text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"render of {n} rows failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs=2, default=[1000, 10000], metavar=("SMALL", "LARGE"))
    ap.add_argument("--formats", nargs="+", default=["webm", "gif"])
    ap.add_argument("--child", nargs=2, metavar=("CATALOG", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        sys.path.insert(0, str(REPO))
        child(Path(args.child[0]), Path(args.child[1]), args.formats)
        return

    with tempfile.TemporaryDirectory(prefix="t2v-render-mem-") as tmp:
        runs = {n: run_size(n, args.formats, Path(tmp)) for n in args.sizes}
    print(f"formats: {', '.join(args.formats)}; batch_size 64; clips 8x32x32")
    print(f"{'rows':>7} {'ok':>6} {'rejected':>8} {'videos':>7} {'seconds':>8} {'peak RSS MiB':>13} {'growth MiB':>11}")
    for n, r in runs.items():
        growth = (r["peak_kb"] - r["base_kb"]) / 1024
        print(f"{r['rows']:>7} {r['ok']:>6} {r['rejected']:>8} {r['videos']:>7} {r['seconds']:>8.1f} "
              f"{r['peak_kb'] / 1024:>13.1f} {growth:>11.1f}")
        assert r["rows"] == r["ok"] + r["rejected"] + r["failed"] == n
    small, large = (runs[n] for n in args.sizes)
    print(f"peak RSS ratio {args.sizes[1]} / {args.sizes[0]} rows: {large['peak_kb'] / small['peak_kb']:.3f}")
    print(f"growth over the warmed-up baseline: {(small['peak_kb'] - small['base_kb']) / 1024:.1f} MiB "
          f"vs {(large['peak_kb'] - large['base_kb']) / 1024:.1f} MiB "
          f"for {args.sizes[1] // args.sizes[0]}x the rows")


if __name__ == "__main__":
    main()
