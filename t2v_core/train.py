"""The training loop: Adam on G and D, EMA generator, atomic checkpoints, exact resume.

Every random draw of step k (the batch, the mismatched captions, z) comes from a generator
seeded with (seed, k), so a run killed after step k and resumed from its checkpoint draws
exactly what the uninterrupted run would have: resumed training reaches the same weights.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.nn.utils import parametrize

from t2v_core.config import ModelConfig, TrainConfig, check_training
from t2v_core.checkpoints import (
    SELECTED,
    list_checkpoints,
    load_checkpoint,
    load_selection,
    resume_point,
    save_checkpoint,
)
from t2v_core.datasets import TrainData, fill_model_config, sample_batch
from t2v_core.distributed import World, sync_batch_norm
from t2v_core.generate import Text2Video, resolve_device
from t2v_core.model import Discriminator, Generator, bag_of_words, d_loss, g_loss, mode_seeking, word_loss
from t2v_core.model.augment import draw_shifts, translate
from t2v_core.model.convlstm import UPSAMPLINGS
from t2v_core import run_records
from t2v_core.store import atomic_write_text

# Seed offset of the word classifier's warm-up draws, apart from every step's (step_rng).
WARMUP_STREAM = 104_729
# The three ways a step shows clips to D, each with its own DiffAugment offsets: the real
# clips and the generated ones in D's step, the generated ones in G's step.
SEEN_AS = ("real", "fake_d", "fake_g")
# State-dict tensors with one row per vocabulary word: a warm start copies them by token.
BY_TOKEN = ("text.embed.weight", "word_head.weight", "word_head.bias", "word_twin.weight", "word_twin.bias")


Progress = Callable[[int, int, dict], None]
EvalFn = Callable[[Text2Video], dict]


def step_rng(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


@torch.no_grad()
def update_ema(ema: Generator, gen: Generator, decay: float, step: int) -> None:
    # A warm-up on the decay: a fixed 0.999 would average over ~1000 steps, longer than a
    # demo run, and leave the EMA mostly made of early, poor weights.
    d = min(decay, (1 + step) / (10 + step))
    # One fused call over all tensors, as torch.optim.swa_utils updates its averages.
    torch._foreach_lerp_(list(ema.parameters()), list(gen.parameters()), 1 - d)
    torch._foreach_copy_(list(ema.buffers()), list(gen.buffers()))


class _Run:
    """The networks, optimizers and step: everything a checkpoint holds."""

    def __init__(self, data: TrainData, model_cfg: ModelConfig, train_cfg: TrainConfig,
                 device: torch.device, reader: dict[str, str] | None = None, world: World = World()):
        torch.manual_seed(train_cfg.seed)
        self.cfg, self.tcfg, self.device, self.world = model_cfg, train_cfg, device, world
        self.reader = dict(reader or {})  # how prompts are read (Text2Video): spaCy model, token form
        self.G = Generator(model_cfg)
        self.D = Discriminator(model_cfg)
        self.G.text.load_vectors(data.embeddings)
        self.D.text.load_vectors(data.embeddings)
        self.G.to(device)
        self.D.to(device)
        self.ema = None
        if train_cfg.ema_decay > 0:
            self.ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        # What a step calls: G's forward and D's loss, wrapped in DistributedDataParallel
        # when there are several ranks (its gradient average is armed by the wrapped
        # module's forward, which is why D's loss is one module, _DiscriminatorLoss).
        self.G_fwd: nn.Module = self.G
        self.D_loss: nn.Module = _DiscriminatorLoss(self.D, train_cfg, world)
        if world.distributed:
            sync_batch_norm(self.G, device)
            ids = [device.index] if device.type == "cuda" else None
            self.G_fwd = DistributedDataParallel(self.G, device_ids=ids)
            # The word warm-up trains only D's word classifier: the rest of D is unused then.
            self.D_loss = DistributedDataParallel(self.D_loss, device_ids=ids, find_unused_parameters=True)
        betas = (train_cfg.beta1, train_cfg.beta2)
        # foreach: one kernel per step for all tensors (torch's default on CUDA only); on CPU
        # the per-tensor loop costs more than the arithmetic for these small networks.
        self.opt_g = torch.optim.Adam([p for p in self.G.parameters() if p.requires_grad],
                                      lr=train_cfg.lr_g, betas=betas, foreach=True)
        self.opt_d = torch.optim.Adam([p for p in self.D.parameters() if p.requires_grad],
                                      lr=train_cfg.lr_d, betas=betas, foreach=True)
        self.step = 0
        self.init_from: str | None = None  # the checkpoint a warm start copied weights from

    def state(self, data: TrainData) -> dict[str, Any]:
        return {
            "generator": self.G.state_dict(),
            "discriminator": self.D.state_dict(),
            "generator_ema": self.ema.state_dict() if self.ema is not None else None,
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "step": self.step,
            "model_config": dataclasses.asdict(self.cfg),
            "train_config": dataclasses.asdict(self.tcfg),
            "vocab": list(data.vocab),
            "max_len": int(data.token_ids.shape[1]),
            "data_id": data.data_id,
            "init_from": self.init_from,
            "reader": self.reader,
        }

    def load(self, ckpt: dict[str, Any], data: TrainData) -> None:
        if ckpt["data_id"] != data.data_id:
            raise ValueError(
                f"checkpoint was trained on data {ckpt['data_id']!r}, not {data.data_id!r}; "
                "use a fresh run folder"
            )
        if ckpt["model_config"] != dataclasses.asdict(self.cfg):
            raise ValueError("checkpoint model_config differs from this run's; use a fresh run folder")
        self.G.load_state_dict(ckpt["generator"])
        self.D.load_state_dict(ckpt["discriminator"])
        if self.ema is not None:
            self.ema.load_state_dict(ckpt["generator_ema"] or ckpt["generator"])
        self.opt_g.load_state_dict(ckpt["opt_g"])
        self.opt_d.load_state_dict(ckpt["opt_d"])
        self.step = int(ckpt["step"])
        self.init_from = ckpt.get("init_from")

    def warm_start(self, ckpt: dict[str, Any], data: TrainData, source: str) -> int:
        """Copy every G, D and EMA tensor of ``ckpt`` whose name and shape match this run's
        (weights and buffers); the optimizers and the step stay fresh. Word-embedding rows
        are copied by token (and so are D's word-head rows), so a vocabulary that grew keeps
        the learned rows of its old words and the embed stage's vectors for new ones; a
        frozen table (finetune_words off) is the embed stage's and is left alone. Returns
        the number of tensors copied."""
        old_index = {w: i for i, w in enumerate(ckpt["vocab"])}
        pairs = [(i, old_index[w]) for i, w in enumerate(data.vocab) if w in old_index]
        new_rows = torch.tensor([p[0] for p in pairs], dtype=torch.long)
        old_rows = torch.tensor([p[1] for p in pairs], dtype=torch.long)
        targets = [(self.G, ckpt["generator"]), (self.D, ckpt["discriminator"])]
        if self.ema is not None:
            targets.append((self.ema, ckpt.get("generator_ema") or ckpt["generator"]))
        copied = 0
        with torch.no_grad():
            for net, old in targets:
                for name, t in net.state_dict().items():  # tensors that share storage with net
                    if name not in old:
                        continue
                    src = old[name].to(t.device)
                    if name in BY_TOKEN:
                        learned = name != "text.embed.weight" or self.cfg.finetune_words
                        if learned and len(pairs) and src.shape[1:] == t.shape[1:]:
                            t[new_rows] = src[old_rows].to(t.dtype)
                            copied += 1
                    elif src.shape == t.shape:
                        t.copy_(src)
                        copied += 1
        if copied == 0:
            raise ValueError(f"init_from checkpoint {source} shares no tensor with this model")
        self.init_from = source
        return copied

    def sampler(self, data: TrainData) -> Text2Video:
        """The generator to evaluate and sample: the EMA copy when there is one."""
        return Text2Video(self.ema if self.ema is not None else self.G, data.vocab, self.device,
                          max_len=int(data.token_ids.shape[1]), reader=self.reader)

    def warm_up_words(self, data: TrainData, steps: int) -> float:
        """Train D's word classifier alone on real clips and their captions for ``steps``
        steps, before the first GAN step; returns its last loss. G learns shape only from
        this classifier; from scratch it told small circles from squares at chance after
        100 steps (and at 0.64-0.85 after 400), while G's masks settle into shapes they are
        slow to leave. The draws come from their own seeded stream, so a rerun repeats them."""
        loss = torch.zeros(())
        for i in range(steps):
            loss = self.D_loss(self.rows(data, step_rng(self.tcfg.seed + WARMUP_STREAM, i)))
            self.opt_d.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_d.step()
        return float(loss.detach())

    def rows(self, data: TrainData, gen: torch.Generator) -> _Rows:
        """This rank's rows of the batch that ``gen`` draws (the whole batch is drawn on
        every rank, so the data do not depend on the number of ranks)."""
        cfg, tcfg, dev = self.cfg, self.tcfg, self.device
        batch = tcfg.batch_size
        part = self.world.part(batch)
        b = sample_batch(data, batch, gen, part)
        z_all = torch.randn(batch, cfg.z_dim, generator=gen)
        half = batch // 2
        # The generated rows, as indices into the batch, and those with distinct captions.
        order = unique = torch.arange(batch)
        paired = tcfg.diversity_weight > 0 and half > 0
        if paired:
            # Generated videos come in pairs: caption i with two different z, so the
            # mode-seeking term can compare them. Real videos keep their own captions.
            order = torch.cat([order[:half], order[:half], order[2 * half:]])
            unique = torch.cat([unique[:half], unique[2 * half:]])
        ids, lens = b["ids"], b["lengths"]
        rows = _Rows(real=b["video"].to(dev), ids=ids[part].to(dev), lens=lens[part],
                     wrong_ids=b["wrong_ids"][part].to(dev), wrong_lens=b["wrong_lengths"][part],
                     gen_ids=ids[order][part].to(dev), gen_lens=lens[order][part], z=z_all[part].to(dev),
                     z_all=z_all.to(dev), unique=unique.to(dev), paired=paired, half=half)
        if tcfg.augment_shift > 0:
            # One offset per clip and use, drawn for the whole batch on every rank, after the
            # batch and its noise (which stay as they are with the augmentation off).
            aug = torch.Generator().manual_seed(int(torch.randint(2**62, (1,), generator=gen)))
            rows.shifts = [draw_shifts(batch, cfg.height, tcfg.augment_shift, aug)[part] for _ in SEEN_AS]
        if tcfg.word_weight > 0:
            # The word loss divides by the words per caption of the whole batch, not the slice's.
            real, generated = bag_of_words(ids, cfg.vocab_size), bag_of_words(ids[order], cfg.vocab_size)
            rows.bag, rows.gen_bag = real[part].to(dev), generated[part].to(dev)
            rows.per_caption, rows.gen_per_caption = real.sum(1).mean(), generated.sum(1).mean()
        return rows

    def train_step(self, data: TrainData) -> dict[str, float]:
        """One D step and one G step on the step's batch; this rank computes its rows
        (t2v_core/distributed.py says how N ranks add up to one process)."""
        tcfg, dev, world, D = self.tcfg, self.device, self.world, self.D
        r = self.rows(data, step_rng(tcfg.seed, self.step))
        amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda")

        # Each of D's spectrally normed weights is normalised once per step and pass (one
        # power iteration), not at every call: D scores a batch against three captions.
        with amp, parametrize.cached():
            fake, _ = self.G_fwd(r.gen_ids, r.gen_lens, r.z)
            loss_d, (rv, fv, mv) = self.D_loss(r, fake.detach())
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        # G step (non-saturating for bce), against the updated D. D is called unwrapped:
        # the gradients this gives D's weights are not used (the next D step zeroes them).
        with amp, parametrize.cached():
            s_gen = D.encode_text(r.gen_ids, r.gen_lens).detach()
            seen = r.augment(fake, "fake_g")
            fake_feats = D.features(seen)
            gv, gf = D.score(fake_feats, s_gen)
            loss_g = g_loss(gv) + g_loss(gf)
            if tcfg.contrastive_weight > 0:
                u = r.unique
                match = D.match((world.gather(fake_feats[0])[u], world.gather(fake_feats[1])[u]),
                                world.gather(s_gen)[u]).float()
                loss_g = loss_g + tcfg.contrastive_weight * torch.nn.functional.cross_entropy(
                    match, torch.arange(len(u), device=dev))
            if tcfg.word_weight > 0:
                fake_w = D.word_features(seen)
                loss_g = loss_g + tcfg.word_weight * word_loss(D.word_head(fake_w), r.gen_bag, r.gen_per_caption)
                if D.word_critic is not None:
                    loss_g = loss_g + g_loss(D.word_critic(fake_w, s_gen))
                if D.word_twin is not None:
                    loss_g = loss_g - tcfg.word_twin_weight * tcfg.word_weight * word_loss(
                        D.word_twin(fake_w), r.gen_bag, r.gen_per_caption)
            if r.paired:
                # Mode seeking (MSGAN) on the first frames of two draws of each caption, at
                # the resolution of the ConvLSTM's state (block means): where things are,
                # not pixel texture, which a decoder of whole frames can vary with z at no
                # cost to anything else (on pixels, z bought speckles and coherence fell).
                first = world.gather(torch.nn.functional.avg_pool2d(fake[:, 0], 2 ** UPSAMPLINGS))
                h = r.half
                loss_g = loss_g + tcfg.diversity_weight * mode_seeking(
                    first[:h], first[h:2 * h], r.z_all[:h], r.z_all[h:2 * h])
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        if self.ema is not None:
            update_ema(self.ema, self.G, tcfg.ema_decay, self.step)
        self.step += 1
        with torch.no_grad():
            return world.mean({
                "loss_d": float(loss_d), "loss_g": float(loss_g),
                "d_real": float(torch.sigmoid(rv.float()).mean()),
                "d_fake": float(torch.sigmoid(fv.float()).mean()),
                "d_mismatch": float(torch.sigmoid(mv.float()).mean()),
            })


@dataclass
class _Rows:
    """One rank's rows of a step's batch, on the device (the whole batch for one process)."""

    real: torch.Tensor  # (b, T, 3, H, W) real clips in [-1, 1]
    ids: torch.Tensor  # their captions (b, L), and lengths (b,) on CPU
    lens: torch.Tensor
    wrong_ids: torch.Tensor  # a caption of another clip for each real one
    wrong_lens: torch.Tensor
    gen_ids: torch.Tensor  # what G draws: captions and noise
    gen_lens: torch.Tensor
    z: torch.Tensor
    z_all: torch.Tensor  # the whole batch's noise (mode seeking compares pairs across ranks)
    unique: torch.Tensor  # rows of the whole batch's generated videos with distinct captions
    paired: bool  # mode seeking is on: generated rows i and half + i share a caption
    half: int
    bag: torch.Tensor | None = None  # words of the real and of the generated captions
    gen_bag: torch.Tensor | None = None
    per_caption: torch.Tensor | None = None  # words per caption over the whole batch
    gen_per_caption: torch.Tensor | None = None
    shifts: list[torch.Tensor] | None = None  # DiffAugment offsets: real and fake in D's step, fake in G's

    def augment(self, video: torch.Tensor, use: str) -> torch.Tensor:
        """``video`` as D sees it: shifted by the offsets of ``use`` (one of SEEN_AS)."""
        return video if self.shifts is None else translate(video, self.shifts[SEEN_AS.index(use)])


class _DiscriminatorLoss(nn.Module):
    """D's loss for one step, as a module's forward so that DistributedDataParallel can wrap
    it. Without ``fake``: the word classifier's warm-up loss.

    Real + caption -> real; fake + caption and real + wrong caption -> fake; the contrastive
    matrix over the whole batch (gathered from every rank); the word classifier on real
    clips, its twin on G's, and the critic on the word features. Every clip, real or
    generated, is seen through the step's DiffAugment shifts (t2v_core/model/augment.py),
    here and in G's step: without them D learns its training clips by heart."""

    def __init__(self, D: Discriminator, tcfg: TrainConfig, world: World):
        super().__init__()
        self.D = D
        self.tcfg, self.world = tcfg, world

    def forward(self, r: _Rows, fake: torch.Tensor | None = None) -> Any:
        D, tcfg = self.D, self.tcfg
        real = r.augment(r.real, "real")
        if fake is None:
            return tcfg.word_weight * word_loss(D.words(real), r.bag, r.per_caption)
        fake = r.augment(fake, "fake_d")
        s = D.encode_text(r.ids, r.lens)
        s_gen = D.encode_text(r.gen_ids, r.gen_lens)
        s_wrong = D.encode_text(r.wrong_ids, r.wrong_lens)
        real_feats = D.features(real)
        rv, rf = D.score(real_feats, s)
        fv, ff = D.score(D.features(fake), s_gen)
        mv, mf = D.score(real_feats, s_wrong)  # the same real features, wrong text
        loss = d_loss(rv, fv, mv, tcfg.mismatch_weight) + d_loss(rf, ff, mf, tcfg.mismatch_weight)
        if tcfg.contrastive_weight > 0:
            gather = self.world.gather
            match = D.match((gather(real_feats[0]), gather(real_feats[1])), gather(s)).float()
            target = torch.arange(match.shape[0], device=match.device)
            loss = loss + tcfg.contrastive_weight * torch.nn.functional.cross_entropy(match, target)
        if tcfg.word_weight > 0:
            # Learned from real videos only: a fake must earn its words.
            real_w = D.word_features(real)
            loss = loss + tcfg.word_weight * word_loss(D.word_head(real_w), r.bag, r.per_caption)
            fake_w = None
            if D.word_twin is not None:
                # The twin learns the words of G's videos, on features it does not train.
                fake_w = D.word_features(fake).detach()
                loss = loss + tcfg.word_weight * word_loss(D.word_twin(fake_w), r.gen_bag, r.gen_per_caption)
            if D.word_critic is not None:
                # The critic on top of the word features; it does not train them.
                if fake_w is None:
                    fake_w = D.word_features(fake).detach()
                critic = D.word_critic
                loss = loss + d_loss(critic(real_w.detach(), s), critic(fake_w, s_gen),
                                     critic(real_w.detach(), s_wrong), tcfg.mismatch_weight)
        return loss, (rv, fv, mv)


def train(
    data: TrainData,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    run_dir: Path,
    progress: Progress | None = None,
    eval_fn: EvalFn | None = None,
    init_from: Path | None = None,
    prompt_reader: dict[str, str] | None = None,
    world: World = World(),
) -> dict:
    """Train (or resume) in ``run_dir``; returns a summary of the run.

    ``world``: this process's rank among several (t2v_core/ddp.py, under torchrun). Every
    rank trains its slice of each batch; rank 0 alone evaluates, decides (the time budget,
    the selection) and writes, and the others follow its decisions. ``eval_fn`` and
    ``progress`` are only called on rank 0.

    ``prompt_reader`` (the spaCy model and token form that read the captions) goes into
    every checkpoint, so that the model reads prompts as its captions were read.

    ``init_from`` warm-starts a run that has no checkpoint yet (nightly retraining on a
    grown corpus): G, D and the EMA start from that checkpoint's matching tensors, the
    optimizers and the step from scratch (see ``_Run.warm_start``). A run folder that
    already has a checkpoint resumes from it and ignores ``init_from``.

    Writes ckpt-000500.pt ... every ``ckpt_every`` steps and at the end, metrics.parquet
    (losses per step, eval metrics every ``eval_every``), loss.png, samples-000500.png and
    config.json. Stops at ``steps`` or after ``max_minutes`` of training, whichever is first;
    the step a run stops on for time is evaluated (and may be selected) as well.

    With ``select_by`` (early stopping's model selection), an evaluation step whose metric
    is the best so far gets a checkpoint and becomes ``best.json``, the checkpoint that
    rendering and evaluation load (``checkpoints.published_checkpoint``). Adversarial training
    does not improve monotonically: a run that was right at step 2,500 drifted by 3,000.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    model_cfg = fill_model_config(model_cfg, data)
    data.validate(model_cfg)
    check_training(model_cfg, train_cfg)
    evaluates = eval_fn is not None or not world.main  # only rank 0 is given the evaluation
    if train_cfg.select_by and (not evaluates or train_cfg.eval_every <= 0):
        raise ValueError("[train] select_by picks a checkpoint by its evaluation; it needs "
                         "eval_every > 0 and an evaluation function")
    threads = train_cfg.threads
    if world.distributed:  # the ranks of one machine share its cores
        threads = max(1, (threads or torch.get_num_threads()) // world.local_size)
    if threads > 0:
        torch.set_num_threads(threads)
    device = resolve_device(train_cfg.device)
    if device.type == "cuda" and world.distributed:
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    run = _Run(data, model_cfg, train_cfg, device, prompt_reader, world)
    main = world.main
    rows: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None  # the selected checkpoint so far (best.json)
    # Every rank resumes from the checkpoint that rank 0 finds (saves are atomic, and no
    # rank writes before this agreement).
    ckpt = resume_point(run_dir) if main else None
    resume_step = world.broadcast(None if ckpt is None else int(ckpt["step"]))
    if resume_step is not None:
        if ckpt is None:
            ckpt = load_checkpoint(run_dir / f"ckpt-{resume_step:06d}.pt")
        run.load(ckpt, data)
        if main:
            rows = run_records.load_metrics(run_dir / "metrics.parquet", run.step)
            best = load_selection(run_dir, run.step)
    elif init_from is not None:
        if not Path(init_from).is_file():
            raise FileNotFoundError(f"init_from checkpoint {init_from} does not exist")
        run.warm_start(load_checkpoint(init_from), data, str(init_from))
    t0 = time.monotonic()  # the warm-up counts towards max_minutes
    if resume_step is None and train_cfg.word_warmup > 0:
        run.warm_up_words(data, train_cfg.word_warmup)
    resumed_from = run.step
    if main:
        atomic_write_text(run_dir / "config.json", json.dumps({
            "model": dataclasses.asdict(model_cfg), "train": dataclasses.asdict(train_cfg),
            "data_id": data.data_id, "device": str(device), "resumed_from": resumed_from,
            "init_from": run.init_from, "processes": world.size,
        }, indent=2))

    budget = train_cfg.max_minutes * 60 if train_cfg.max_minutes > 0 else math.inf
    last_ckpt: Path | None = None
    stopped_early = False
    losses: dict[str, float] = {}
    while run.step < train_cfg.steps:
        run.G.train()
        run.D.train()
        losses = run.train_step(data)
        out_of_time = False
        if main:
            out_of_time, last = _after_step(run, data, run_dir, rows, losses, t0, budget, eval_fn, best)
            if last is not None:
                last_ckpt, best = last
            if progress is not None:
                progress(run.step, train_cfg.steps, losses)
        # Rank 0's decisions for the next step; this is also where the others wait for it.
        out_of_time = world.broadcast(out_of_time)
        if out_of_time:
            stopped_early = True
            break
    if not main:
        return {"steps": run.step, "rank": world.rank}
    if last_ckpt is None:  # nothing left to train: the run was already complete
        found = list_checkpoints(run_dir)
        last_ckpt = found[-1] if found else _checkpoint(run, data, run_dir, rows)
    return {
        "steps": run.step,
        "resumed_from": resumed_from,
        "minutes": (time.monotonic() - t0) / 60,
        "stopped_early": stopped_early,
        "final_losses": losses,
        "checkpoint": str(last_ckpt),
        "selected": best,
        "device": str(device),
        "init_from": run.init_from,
        "captions": len(data.caption_clip),
    }


def _after_step(run: _Run, data: TrainData, run_dir: Path, rows: list[dict[str, Any]],
                losses: dict[str, float], t0: float, budget: float, eval_fn: EvalFn | None,
                best: dict[str, Any] | None,
                ) -> tuple[bool, tuple[Path, dict[str, Any] | None] | None]:
    """Rank 0's work after a step: log it, evaluate, select and checkpoint.
    Returns whether the time budget is spent, and (the checkpoint written, the selection)
    when one was written."""
    train_cfg = run.tcfg
    row: dict[str, Any] = {"step": run.step, **losses, "seconds": time.monotonic() - t0}
    improved = False
    scores: dict[str, float] = {}
    # The step the budget ends on is evaluated too: a run stopped at 1,629 steps would
    # otherwise publish nothing trained after step 1,500.
    late = time.monotonic() - t0 > budget
    if (eval_fn is not None and train_cfg.eval_every > 0
            and (run.step % train_cfg.eval_every == 0 or late)):
        scores = {k: float(v) for k, v in eval_fn(run.sampler(data)).items()}
        row.update({f"eval_{k}": v for k, v in scores.items()})
        if train_cfg.select_by:
            if train_cfg.select_by not in scores:
                raise KeyError(f"[train] select_by {train_cfg.select_by!r} is not one of the "
                               f"evaluation's metrics {sorted(scores)}")
            # Ties go to the later step: as good, and trained longer.
            improved = best is None or scores[train_cfg.select_by] >= best["value"]
    rows.append(row)
    out_of_time = late or time.monotonic() - t0 > budget
    if not (run.step % train_cfg.ckpt_every == 0 or run.step == train_cfg.steps or out_of_time
            or improved):
        return out_of_time, None
    path = _checkpoint(run, data, run_dir, rows)
    if improved:
        best = {"checkpoint": path.name, "step": run.step, "metric": train_cfg.select_by,
                "value": scores[train_cfg.select_by]}
        atomic_write_text(run_dir / SELECTED, json.dumps(best, indent=2))
    return out_of_time, (path, best)


def _checkpoint(run: _Run, data: TrainData, run_dir: Path, rows: list[dict[str, Any]]) -> Path:
    path = save_checkpoint(run.state(data), run_dir / f"ckpt-{run.step:06d}.pt")
    run_records.write_metrics(run_dir / "metrics.parquet", rows)
    run_records.plot_losses(run_dir / "loss.png", rows)
    run_records.sample_sheet(run_dir / f"samples-{run.step:06d}.png", run.sampler(data), data)
    return path
