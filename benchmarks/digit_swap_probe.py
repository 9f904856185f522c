"""Which of the generator's inputs decides the digit that a held-out Moving Digits prompt
gets? A probe of a trained checkpoint, without retraining.

For each held-out one-digit composition ("the digit 0 moves to the left": digit 0 never moved
left in training) and a set of noise seeds, the generator renders the prompt with some of its
inputs taken from a seen donor caption instead:

- same digit: "the digit 0 moves to the right" (seen), the opposite direction;
- same direction: "the digit 5 moves to the left" (seen), another digit.

The generator's inputs (t2v_core/model/generator.py, convlstm.py) are: the GRU trajectory's
per-frame states and global attention contexts (the per-frame condition of every ConvLSTM
step), the token states that each location's spatial attention reads, and the sentence vector
s, from which the content code and the first frame's state are made. The digits judge
(t2v_core/judge_objects.py) reads each clip; the table gives the share of clips in which a
tracked object shows the held-out prompt's digit, the digit of the same-direction donor, the
held-out direction and the opposite one. Whichever swap moves the digit is where the digit is
decided. The last rows feed the per-frame condition and the rest from two different seen
captions: "contexts <- same digit, rest <- same direction" asks for the held-out digit and
direction from two captions that each hold one of them, which a generator that keeps the
digit and the motion apart would draw.

    .venv/bin/python benchmarks/digit_swap_probe.py CKPT --manifest WS/artifacts/synth/<key>/manifest.csv

The manifest locates the corpus's digit classifier (written beside it by `t2v corpus synth`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from t2v_core import assess_objects as ao
from t2v_core import judge_objects as jo
from t2v_core.corpus import digits as dg
from t2v_core.generate import Text2Video, to_uint8

OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}
# Which caption each input is taken from, per row: H = the held-out prompt, S = same digit,
# opposite direction (seen), R = same direction, another digit (seen).
SWAPS = {
    "held-out prompt, every input": dict(states="H", contexts="H", tokens="H", s="H"),
    "same-digit donor, every input": dict(states="S", contexts="S", tokens="S", s="S"),
    "s (content code, first state) <- same digit": dict(states="H", contexts="H", tokens="H", s="S"),
    "spatial attention's words <- same digit": dict(states="H", contexts="H", tokens="S", s="H"),
    "s and spatial words <- same digit": dict(states="H", contexts="H", tokens="S", s="S"),
    "GRU states <- same digit": dict(states="S", contexts="H", tokens="H", s="H"),
    "global contexts <- same digit": dict(states="H", contexts="S", tokens="H", s="H"),
    "trajectory (states, contexts) <- same digit": dict(states="S", contexts="S", tokens="H", s="H"),
    "trajectory <- same direction, rest <- same digit": dict(states="R", contexts="R", tokens="S", s="S"),
    "trajectory <- same digit, rest <- same direction": dict(states="S", contexts="S", tokens="R", s="R"),
    "contexts <- same digit, rest <- same direction": dict(states="R", contexts="S", tokens="R", s="R"),
}


def prompts(seeds: int) -> tuple[dict[str, list[str]], list[tuple[str, str, str]]]:
    """The H, S and R prompts (one row per held-out composition and seed), and per row the
    expected (digit, direction, same-direction donor's digit)."""
    rows: dict[str, list[str]] = {"H": [], "S": [], "R": []}
    expected = []
    for ((d, r),) in dg.compositions(1)["test"]:
        # Donors of the same direction: digits that moved that way, and the opposite one, in training.
        donors = [x for x in dg.DIGITS if x != d and dg.HELD_OUT_DIRECTION[x] not in (r, OPPOSITE[r])]
        for k in range(seeds):
            d2 = donors[k % len(donors)]
            rows["H"].append(dg.prompt_for(((d, r),)))
            rows["S"].append(dg.prompt_for(((d, OPPOSITE[r]),)))
            rows["R"].append(dg.prompt_for(((d2, r),)))
            expected.append((str(d), r, str(d2)))
    return rows, expected


def share(read: list[list[dict]], expected: list[tuple[str, str, str]],
          test: Callable[[list[dict], tuple[str, str, str]], bool]) -> float:
    """The share of clips whose judged objects (their attributes) pass ``test`` against the row's
    expected (digit, direction, donor digit)."""
    return float(np.mean([test(objs, e) for objs, e in zip(read, expected, strict=True)]))


@torch.no_grad()
def render(model: Text2Video, captions: dict[str, tuple[torch.Tensor, torch.Tensor]], swap: dict[str, str],
           z: torch.Tensor) -> np.ndarray:
    """Clips (N, T, H, W, 3) uint8 whose generator inputs come from the captions ``swap`` names."""
    g = model.generator
    text = {k: g.text(*captions[k]) for k in set(swap.values())}
    traj = {k: g.trajectory(*captions[k], z, text[k])[:2] for k in {swap["states"], swap["contexts"]}}
    tokens, mask, _ = text[swap["tokens"]]
    video, _ = g.convlstm(traj[swap["states"]][0], traj[swap["contexts"]][1], tokens, mask,
                          text[swap["s"]][2], z)
    return to_uint8(video)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--manifest", type=Path, required=True, help="the Moving Digits corpus's manifest.csv")
    ap.add_argument("--seeds", type=int, default=12, help="noise seeds per held-out composition")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    model = Text2Video.from_checkpoint(args.checkpoint)
    classifier = ao.classifier_for("digits", args.manifest)
    rows, expected = prompts(args.seeds)
    captions = {}
    for k, texts in rows.items():
        ids, lengths, _, _ = model.encode(texts)
        captions[k] = (torch.as_tensor(ids, dtype=torch.long, device=model.device), torch.as_tensor(lengths))
    z_dim = model.model_config.z_dim
    z = torch.stack([torch.randn(z_dim, generator=torch.Generator().manual_seed(1000 + i % args.seeds))
                     for i in range(len(expected))]).to(model.device)

    # The probe's own forward must be the generator's: with every input from one caption it
    # renders exactly what Text2Video renders.
    first = {k: (ids[:8], lengths[:8]) for k, (ids, lengths) in captions.items()}
    same = render(model, first, SWAPS["held-out prompt, every input"], z[:8])
    with torch.no_grad():
        ref = to_uint8(model.generator(*first["H"], z[:8])[0])
    assert np.abs(same.astype(int) - ref.astype(int)).max() <= 1, "the probe does not reproduce the generator"

    out = {}
    print(f"{len(expected)} clips per row ({len(expected) // args.seeds} held-out compositions x {args.seeds} seeds)")
    print(f"{'inputs':50} {'digit':>6} {'donor digit':>11} {'direction':>9} {'opposite':>8} {'one obj':>7}")
    for name, swap in SWAPS.items():
        judged = [jo.judge_digits(c, classifier) for c in render(model, captions, swap, z)]
        read = [[o.attributes for o in j.objects] for j in judged]
        fig = {"digit": share(read, expected, lambda objs, e: any(o.get("digit") == e[0] for o in objs)),
               "donor_digit": share(read, expected, lambda objs, e: any(o.get("digit") == e[2] for o in objs)),
               "direction": share(read, expected, lambda objs, e: any(o.get("direction") == e[1] for o in objs)),
               "opposite": share(read, expected, lambda objs, e: any(o.get("direction") == OPPOSITE[e[1]] for o in objs)),
               "one_object": float(np.mean([j.count == 1 for j in judged]))}
        out[name] = fig
        print(f"{name:50} {fig['digit']:6.2f} {fig['donor_digit']:11.2f} {fig['direction']:9.2f} "
              f"{fig['opposite']:8.2f} {fig['one_object']:7.2f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
