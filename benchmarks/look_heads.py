"""Claim: what a look = "parts" model's heads read decides whether its small squares are square.

With look = "parts" (t2v_core/model/generator.py) head 0 reads the colour, head 1's read sets
the object's box (its size) and heads 2.. draw the mask inside that box. The design assumes
head 1 finds the size word; if a mask head reads it instead, the mask can draw a small object
inside a box that does not shrink, and at 8 px such an object comes out rounded. This script
prints, for a trained checkpoint, how much each head reads each word of a few prompts, and
then measures the consequence: small squares drawn with their own mask read (the baseline)
against the same small boxes drawn with the mask read of the matching large square, as the
judge reads them.

    .venv/bin/python benchmarks/look_heads.py WORKSPACE/artifacts/train/KEY/ckpt-001250.pt
    .venv/bin/python benchmarks/look_heads.py WORKSPACE/artifacts/train/KEY --heads-only  # every checkpoint
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from t2v_core.config import Profile, load_profile  # noqa: E402
from t2v_core.embeddings import encode_tokens, prompt_tokens  # noqa: E402
from t2v_core.generate import Text2Video, to_uint8  # noqa: E402
from t2v_core.judge import judge_many  # noqa: E402
from t2v_core.text import load_annotator, load_tokenizer, resolve_model_name  # noqa: E402

COLOURS = ("red", "green", "blue", "yellow")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path, help="a checkpoint, or a training run's folder: each of its checkpoints")
    ap.add_argument("--profile", default="demo", help="for the tokenizer and the embed token form")
    ap.add_argument("--samples", type=int, default=8, help="noise draws per colour")
    ap.add_argument("--heads-only", action="store_true", help="print what the heads read, and draw nothing")
    args = ap.parse_args()
    profile = load_profile(args.profile)
    load = load_tokenizer if profile.embed.token_form == "lower" else load_annotator  # as the evaluation reads prompts
    nlp = load(resolve_model_name(profile.tokenize.spacy_model))
    paths = sorted(args.checkpoint.glob("ckpt-*.pt")) if args.checkpoint.is_dir() else [args.checkpoint]
    if not paths:
        raise SystemExit(f"no checkpoints in {args.checkpoint}")
    for path in paths:
        print(f"== {path.name}")
        report(path, profile, nlp, args)


def report(checkpoint: Path, profile: Profile, nlp: Any, args: argparse.Namespace) -> None:
    model = Text2Video.from_checkpoint(checkpoint, device="cpu")
    gen = model.generator
    if gen.cfg.look != "parts" or gen.look_attn is None:
        raise SystemExit(f"{checkpoint} has look = {gen.cfg.look!r}, attention = "
                         f"{gen.cfg.attention}; this script reads look = 'parts' heads")

    def encode(prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor, list[list[str]]]:
        tokens = prompt_tokens(nlp, prompts, profile.embed.token_form)
        ids, lengths, _ = encode_tokens(tokens, model.vocab, profile.embed.max_len)
        return torch.as_tensor(ids).long(), torch.as_tensor(lengths).long(), tokens

    names = ["colour", "size"] + [f"shape {i}" for i in range(1, gen.cfg.attn_heads - 1)]
    ids, lengths, tokens = encode(["a small red square moves to the left",
                                   "a large red square moves to the left"])
    weights = gen.look_weights(ids, lengths)
    for row, toks in enumerate(tokens):
        print(" ".join(toks))
        for h, name in enumerate(names):
            top = weights[row, h, : len(toks)].topk(2)
            reads = ", ".join(f"{toks[i]} {w:.2f}" for w, i in zip(top.values.tolist(), top.indices.tolist(), strict=True))
            print(f"  head {h} ({name}): {reads}")
    if args.heads_only:
        return

    # The small squares, then the large ones in the same order, with the same noise draws.
    small_prompts = [f"a small {c} square moves to the left" for c in COLOURS for _ in range(args.samples)]
    n = len(small_prompts)
    ids, lengths, _ = encode(small_prompts + [p.replace("small", "large") for p in small_prompts])
    z = torch.randn(n, gen.cfg.z_dim, generator=torch.Generator().manual_seed(0)).repeat(2, 1)
    small, large = torch.arange(n), torch.arange(n, 2 * n)
    size_dim = gen.coord.size_dim
    with torch.no_grad():
        states, _, _, (colour_read, look) = gen.trajectory(ids, lengths, z)
        colour = torch.sigmoid(gen.colour(colour_read))[:, :, None, None]
        path = gen.centres(gen.path_sum(states))
        swapped = look.clone()
        swapped[small, size_dim:] = look[large, size_dim:]  # small box, large square's mask read
        for label, reads in (("own mask read (baseline)", look), ("large square's mask read", swapped)):
            frames = gen._draw(reads, colour, path)[0]
            clips = to_uint8(frames.view(2 * n, gen.cfg.frames, 3, gen.cfg.height, gen.cfg.width))
            judged = judge_many(clips[:n])
            squares = sum(j.shape == "square" for j in judged)
            small_size = sum(j.size == "small" for j in judged)
            print(f"small squares drawn with the {label}: {squares} of {len(judged)} read as squares, "
                  f"{small_size} as small")
    gap = (look[small, size_dim:] - look[large, size_dim:]).norm(dim=1).mean()
    print(f"mask read, small vs large square: mean distance {gap:.2f}, mean norm "
          f"{look[large, size_dim:].norm(dim=1).mean():.2f}")


if __name__ == "__main__":
    main()
