"""Claim: seconds per training step of the full profile (64x64, 16 frames) on this machine,
against the demo profile (32x32, 8 frames) measured in the same run; and from it, how many
steps the full profile's time budget buys here.

Both profiles train through t2v_core.train.train on real Moving Shapes clips at their own
size (rendered straight from render_clip) with word vectors drawn at random: the step's cost
does not depend on what the vectors say. Each profile runs a short and a longer training;
the difference divided by the extra steps is one step, without the start-up.

    .venv/bin/python benchmarks/train_step_time.py
    .venv/bin/python benchmarks/train_step_time.py --threads 1 --full-steps 4 12
    .venv/bin/python benchmarks/train_step_time.py --profiles demo digits-demo

``--profiles`` times other profiles (shipped names or TOML paths) in the same run, each
against the first; one at the demo's clip size or smaller takes the demo's window, a larger
one the full profile's.

The first few dozen steps of a run are cheaper than later ones (0.23 s/step over steps
10-60 of the demo profile, 0.26 over 20-120), so the demo's window is the longer one.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import tempfile
import time

import numpy as np

from t2v_core.config import Profile, load_profile
from t2v_core.corpus import synthetic as syn
from t2v_core.datasets import TrainData
from t2v_core.train import train


def clip_data(profile: Profile, n: int = 96) -> TrainData:
    """``n`` real clips at the profile's size with their captions, and random word vectors."""
    m = profile.model
    combos = syn.sample_combinations(n, np.random.default_rng(0))
    clips, captions = [], []
    for i, combo in enumerate(combos):
        rng = np.random.default_rng(i)
        clips.append(syn.render_clip(*combo, height=m.height, width=m.width, frames=m.frames, rng=rng))
        captions.append(syn.caption_for(*combo, rng).lower().replace(",", "").rstrip(".").split())
    vocab = ["<pad>", "<unk>"] + sorted({w for c in captions for w in c})
    index = {w: i for i, w in enumerate(vocab)}
    ids = np.zeros((n, max(map(len, captions))), np.int32)
    for i, c in enumerate(captions):
        ids[i, : len(c)] = [index[w] for w in c]
    vectors = np.random.default_rng(0).standard_normal((len(vocab), m.word_dim)).astype(np.float32)
    return TrainData(np.stack(clips), np.arange(n, dtype=np.int64), ids,
                     np.array([len(c) for c in captions], np.int32), vectors, vocab, "step-time")


def seconds_per_step(profile: Profile, steps: tuple[int, int], threads: int) -> float:
    data = clip_data(profile)
    model = dataclasses.replace(profile.model, vocab_size=len(data.vocab))
    took = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in steps:
            cfg = dataclasses.replace(profile.train, steps=n, ckpt_every=max(steps) * 10, eval_every=0,
                                      word_warmup=0, select_by="", max_minutes=0.0, threads=threads,
                                      device="cpu")
            start = time.perf_counter()
            train(data, model, cfg, os.path.join(tmp, f"{profile.name}-{n}"))
            took.append(time.perf_counter() - start)
    return (took[1] - took[0]) / (steps[1] - steps[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--demo-steps", type=int, nargs=2, default=(20, 120), metavar=("SHORT", "LONG"))
    ap.add_argument("--full-steps", type=int, nargs=2, default=(3, 13), metavar=("SHORT", "LONG"))
    ap.add_argument("--profiles", nargs="+", default=["demo", "full"], metavar="PROFILE",
                    help="profiles to time, each against the first (default: demo full)")
    args = ap.parse_args()
    for name in ("demo_steps", "full_steps"):
        short, long_ = getattr(args, name)
        if not 0 < short < long_:
            raise SystemExit(f"--{name.replace('_', '-')} needs SHORT < LONG, both above 0")
    print(f"hardware: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, "
          f"{args.threads} torch thread(s), CPU (device = cpu)")
    demo = load_profile("demo")
    demo_size = demo.model.frames * demo.model.height * demo.model.width
    profiles = [load_profile(name) for name in args.profiles]
    took = {}
    for p in profiles:
        small = p.model.frames * p.model.height * p.model.width <= demo_size
        took[p.name] = seconds_per_step(p, tuple(args.demo_steps if small else args.full_steps), args.threads)
        if took[p.name] <= 0:
            raise SystemExit(f"{p.name}: {took[p.name]:.3f} s/step: a window this short is all noise; "
                             "take more steps")
    first = profiles[0]
    for p in profiles:
        m = p.model
        print(f"{p.name} profile ({m.height}x{m.width}x{m.frames}, batch "
              f"{p.train.batch_size}): {took[p.name]:.3f} s/step"
              + ("" if p is first else f", {took[p.name] / took[first.name]:.2f}x {first.name}'s"))
    if "demo" in took and "full" in took:
        full, full_s = next(p for p in profiles if p.name == "full"), took["full"]
        print(f"full profile: 1,500 steps (where the demo is selected) take {full_s * 1500 / 60:.0f} min "
              f"here, and its {full.train.max_minutes:g}-minute budget buys about "
              f"{full.train.max_minutes * 60 / full_s:,.0f} steps")


if __name__ == "__main__":
    main()
