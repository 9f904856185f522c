"""Claim: where a model misses the direction, the generator fails, not the critic it learns from.

G learns the direction word only through D: D's word classifier names the words of a video,
and G is trained to make its videos name their caption's words. If D could not tell the
directions of real clips apart, G would have nothing to learn from. This script reads a
training run's checkpoints and prints, for each:

- D's direction accuracy on real training clips (the baseline: what D can see), and on G's
  videos of the same clips' canonical prompts ("a large cyan circle moves to the left"),
  with the ratio of the two. The accuracy is the argmax over the four direction words only,
  so chance is 0.25.
- G's mean travel per direction word, first to last frame, in pixels (x right, y down):
  a model that has learnt the word moves "left" by a negative x and little y.
- "at bound": the share of G's centre coordinates (all frames) beyond 0.95 of
  [model] path_reach, where tanh's slope is under 0.10 and the path passes little of its
  gradient on to G's weights.

    .venv/bin/python benchmarks/direction_probe.py WORKSPACE/artifacts/train/KEY          # every checkpoint
    .venv/bin/python benchmarks/direction_probe.py WORKSPACE/artifacts/train/KEY/ckpt-001750.pt
    .venv/bin/python benchmarks/direction_probe.py WORKSPACE/artifacts/train/KEY --gradients

With ``--gradients``, also which of G's terms pushes the object along its direction word: for
the training G (not the EMA) of each checkpoint, the gradient of each term with respect to
the path, and of it the part that stretches the travel (later frames one way, earlier ones
the other) along the caption's direction. "along" is that part's share of the gradient, in
[-1, 1], averaged over the clips (positive: gradient descent moves the object the way its
word says); "size" is the mean norm of the term's gradient on the path.

The run folder's _manifest.json names the ingest, embed and frames artifacts it was trained on;
they are read from the same workspace. The profile (``--profile``) only sets the tokenizer.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import torch  # noqa: E402

from t2v_core.config import load_profile  # noqa: E402
from t2v_core.corpus.synthetic import DIRECTIONS, prompt_for  # noqa: E402
from t2v_core.datasets import load_clips  # noqa: E402
from t2v_core.embeddings import encode_tokens, prompt_tokens  # noqa: E402
from t2v_core.checkpoints import load_checkpoint, model_config_from_dict  # noqa: E402
from t2v_core.generate import Text2Video  # noqa: E402
from t2v_core.model import Discriminator, Generator, bag_of_words, g_loss, word_loss  # noqa: E402
from t2v_core.store import ArtifactRef  # noqa: E402
from t2v_core.text import load_annotator, load_tokenizer, resolve_model_name  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path, help="a checkpoint, or a training run's folder: each of its checkpoints")
    ap.add_argument("--profile", default="demo", help="for the tokenizer and the embed token form")
    ap.add_argument("--clips", type=int, default=256, help="training clips to read (and prompts to draw)")
    ap.add_argument("--seed", type=int, default=0, help="the noise of G's draws")
    ap.add_argument("--gradients", action="store_true", help="also each G term's push along the direction")
    args = ap.parse_args()
    run_dir = args.checkpoint if args.checkpoint.is_dir() else args.checkpoint.parent
    paths = sorted(run_dir.glob("ckpt-*.pt")) if args.checkpoint.is_dir() else [args.checkpoint]
    if not paths:
        raise SystemExit(f"no checkpoints in {run_dir}")
    inputs = json.loads((run_dir / "_manifest.json").read_text())["inputs"]
    artifacts = run_dir.parent.parent
    refs = {s: ArtifactRef(s, inputs[s], str(artifacts / s / inputs[s])) for s in ("ingest", "frames")}

    corpus = pq.read_table(refs["ingest"].file("corpus.parquet"),
                           columns=["video_sha256", "split", "colour", "shape", "size", "direction"]).to_pandas()
    clips, clip_row = load_clips(refs["frames"])
    rows = corpus[(corpus["split"] == "train") & corpus["video_sha256"].isin(clip_row.keys())]
    rows = rows.drop_duplicates("video_sha256").head(args.clips)
    real = torch.from_numpy(np.stack([clips[clip_row[h]] for h in rows["video_sha256"]]))
    real = real.permute(0, 1, 4, 2, 3).float().div(127.5).sub(1)  # (N, T, 3, H, W) in [-1, 1]
    truth = torch.tensor([DIRECTIONS.index(d) for d in rows["direction"]])
    prompts = [prompt_for(c, s, z, d) for c, s, z, d in
               rows[["colour", "shape", "size", "direction"]].itertuples(index=False)]

    profile = load_profile(args.profile)
    load = load_tokenizer if profile.embed.token_form == "lower" else load_annotator  # as the evaluation reads prompts
    tokens = prompt_tokens(load(resolve_model_name(profile.tokenize.spacy_model)), prompts, profile.embed.token_form)
    print(f"{len(rows)} training clips and their prompts; directions {({k: int(v) for k, v in rows['direction'].value_counts().items()})}")
    print(f"{'checkpoint':16} {'D on real':>10} {'D on G':>8} {'ratio':>6} {'at bound':>9}   "
          "G's mean travel (x, y) px per direction word")
    for path in paths:
        ckpt = load_checkpoint(path)
        cfg = model_config_from_dict(ckpt["model_config"])
        disc = Discriminator(cfg)
        disc.load_state_dict(ckpt["discriminator"])
        disc.eval()
        vocab = {w: i for i, w in enumerate(ckpt["vocab"])}
        ids, lengths, _ = encode_tokens(tokens, vocab, profile.embed.max_len)
        ids, lengths = torch.as_tensor(ids).long(), torch.as_tensor(lengths).long()
        z = torch.randn(len(ids), cfg.z_dim, generator=torch.Generator().manual_seed(args.seed))
        probe(path, disc, vocab, real, truth, ids, lengths, z)
        if args.gradients:
            pushes(ckpt, disc, truth, ids, lengths, z)


@torch.no_grad()
def probe(path: Path, disc: Discriminator, vocab: dict[str, int], real: torch.Tensor, truth: torch.Tensor,
          ids: torch.Tensor, lengths: torch.Tensor, z: torch.Tensor) -> None:
    """D's direction accuracy on real clips and on the EMA G's videos, and G's travel."""
    cfg = disc.cfg
    words = [vocab.get(d) for d in DIRECTIONS]
    if None in words:
        raise SystemExit(f"{path}: the vocabulary lacks a direction word of {DIRECTIONS}")
    model = Text2Video.from_checkpoint(path, device="cpu")  # the EMA generator, as evaluated
    drawn = model.generator.draw(ids, lengths, z)

    def accuracy(video: torch.Tensor) -> float:
        named = torch.cat([disc.words(part)[:, words] for part in video.split(64)]).argmax(1)
        return float((named == truth).float().mean())

    on_real, on_fake = accuracy(real), accuracy(drawn.video)
    travel, bound = "", float("nan")
    if drawn.path is not None:
        # The share of centre coordinates pressed against tanh's bound, where the slope
        # (1 - 0.95^2 = 0.10 at most) leaves the path's gradient little to pass on.
        bound = float((drawn.path.abs() > 0.95 * cfg.path_reach).float().mean())
        px = (drawn.path[:, -1] - drawn.path[:, 0]) * torch.tensor([cfg.width / 2, cfg.height / 2])
        travel = "  ".join(f"{d} ({px[truth == k, 0].mean():+.1f}, {px[truth == k, 1].mean():+.1f})"
                           for k, d in enumerate(DIRECTIONS))
    print(f"{path.name:16} {on_real:10.2f} {on_fake:8.2f} {on_fake / max(on_real, 1e-9):6.2f} {bound:9.2f}   {travel}")


# Unit vectors of the four directions in (x right, y down) pixels.
UNIT = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])


def pushes(ckpt: dict, disc: Discriminator, truth: torch.Tensor, ids: torch.Tensor,
           lengths: torch.Tensor, z: torch.Tensor) -> None:
    """Each G term's gradient on the training G's path, and its share along the direction."""
    cfg, tcfg = disc.cfg, ckpt["train_config"]
    gen = Generator(cfg)
    gen.load_state_dict(ckpt["generator"])
    drawn = gen.draw(ids, lengths, z)
    drawn.path.retain_grad()
    s = disc.encode_text(ids, lengths).detach()
    feats = disc.features(drawn.video)
    gv, gf = disc.score(feats, s)
    word_feats = disc.word_features(drawn.video)
    terms = {
        "adversarial": g_loss(gv, tcfg["loss"]) + g_loss(gf, tcfg["loss"]),
        "words": tcfg["word_weight"] * word_loss(disc.word_head(word_feats), bag_of_words(ids, cfg.vocab_size)),
    }
    if disc.word_critic is not None:
        terms["word critic"] = g_loss(disc.word_critic(word_feats, s), tcfg["loss"])
    t = cfg.frames
    trend = (torch.arange(t, dtype=torch.float32) - (t - 1) / 2)[None, :, None]  # stretches the travel
    unit = UNIT[truth][:, None, :]  # (N, 1, 2)
    parts = []
    for name, loss in terms.items():
        drawn.path.grad = None
        loss.backward(retain_graph=True)
        g = -drawn.path.grad * len(ids)  # descent, per clip (the losses are batch means)
        along = (g * trend * unit).sum(dim=(1, 2)) / (g.norm(dim=(1, 2)) * trend.norm() + 1e-12)
        parts.append(f"{name} along {float(along.mean()):+.3f} size {float(g.norm(dim=(1, 2)).mean()):.2e}")
    print(f"{'':16} push on the path: " + "; ".join(parts))


if __name__ == "__main__":
    main()
