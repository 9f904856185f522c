"""The training loop on a tiny seeded Moving Shapes problem: it learns something, writes its
run folder, refuses bad data, and resumes to exactly the weights of an uninterrupted run."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from t2v_core.config import ModelConfig, TrainConfig
from t2v_core.corpus.synthetic import caption_for, render_clip
from t2v_core.checkpoints import (list_checkpoints, load_checkpoint, model_config_from_dict, newest_checkpoint,
                                  published_checkpoint)
from t2v_core.datasets import TrainData
from t2v_core.model import Generator
from t2v_core.model.text_encoder import centre_vectors
from t2v_core.train import train

COMBOS = [("red", "circle", "small", "left"), ("blue", "triangle", "large", "up"),
          ("green", "square", "small", "down"), ("white", "circle", "large", "right")]
# A bare recipe, each term switched on by the test that needs it (the defaults are the
# shipped recipe, with D's word terms, the twin and the warm-up).
MODEL = ModelConfig(frames=4, height=16, width=16, word_dim=8, text_dim=16, z_dim=8,
                    hidden=16, attn_heads=2, g_channels=4, d_channels=4, finetune_words=False,
                    word_critic=False, word_twin=False)
TRAIN = TrainConfig(steps=4, batch_size=4, ckpt_every=2, eval_every=2, threads=1, seed=3, select_by="",
                    lr_g=2e-4, lr_d=2e-4, beta2=0.999, diversity_weight=0.0, contrastive_weight=0.0,
                    word_weight=0.0, word_twin_weight=1.0, word_warmup=0)


def tiny_data(n_clips: int = 8) -> TrainData:
    """Real synthetic clips and captions; word vectors are seeded random (the embed stage's
    own tests cover word2vec), with a whitespace vocabulary."""
    clips, captions = [], []
    for i in range(n_clips):
        rng = np.random.default_rng(i)
        combo = COMBOS[i % len(COMBOS)]
        clips.append(render_clip(*combo, height=16, width=16, frames=4, rng=rng))
        captions.append(caption_for(*combo, rng).lower().replace(",", "").rstrip(".").split())
    vocab = ["<pad>", "<unk>"] + sorted({w for c in captions for w in c})
    index = {w: i for i, w in enumerate(vocab)}
    L = max(len(c) for c in captions)
    ids = np.zeros((n_clips, L), np.int32)
    for i, c in enumerate(captions):
        ids[i, : len(c)] = [index[w] for w in c]
    vectors = np.random.default_rng(0).standard_normal((len(vocab), 8)).astype(np.float32)
    return TrainData(
        clips=np.stack(clips), caption_clip=np.arange(n_clips, dtype=np.int64), token_ids=ids,
        lengths=np.array([len(c) for c in captions], np.int32), embeddings=vectors,
        vocab=vocab, data_id="tiny-test",
    )


def _state(path: Path) -> dict:
    return load_checkpoint(path)


def test_training_changes_weights_and_writes_the_run_folder(tmp_path):
    data = tiny_data()
    seen: list[tuple[int, int]] = []
    evals: list[int] = []

    def eval_fn(model):
        evals.append(1)
        videos = model.generate_ids(data.token_ids[:2], data.lengths[:2], [0, 1])
        return {"mean_pixel": float(videos.mean())}

    summary = train(data, MODEL, TRAIN, tmp_path, progress=lambda s, t, _l: seen.append((s, t)),
                    eval_fn=eval_fn)
    assert summary["steps"] == 4 and summary["resumed_from"] == 0
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert len(evals) == 2
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt-000002.pt", "ckpt-000004.pt"]
    for name in ("metrics.parquet", "loss.png", "config.json", "samples-000002.png", "samples-000004.png"):
        assert (tmp_path / name).is_file(), name
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind
    metrics = pd.read_parquet(tmp_path / "metrics.parquet")
    assert metrics["step"].tolist() == [1, 2, 3, 4]
    assert np.isfinite(metrics[["loss_d", "loss_g"]].to_numpy()).all()
    assert metrics["eval_mean_pixel"].notna().tolist() == [False, True, False, True]
    assert json.loads((tmp_path / "config.json").read_text())["model"]["vocab_size"] == len(data.vocab)

    first, last = _state(tmp_path / "ckpt-000002.pt"), _state(tmp_path / "ckpt-000004.pt")
    for net in ("generator", "discriminator"):
        moved = [not torch.equal(first[net][k], last[net][k]) for k in last[net]
                 if last[net][k].is_floating_point() and "embed.weight" not in k]
        assert any(moved), f"{net} did not change"
    # Frozen word vectors stay exactly what the embed stage gave.
    assert np.array_equal(last["generator"]["text.embed.weight"].numpy(), centre_vectors(data.embeddings))
    assert last["data_id"] == "tiny-test" and last["step"] == 4 and last["vocab"] == data.vocab


def test_checkpoint_holds_everything_and_loads_weights_only(tmp_path):
    train(tiny_data(), MODEL, TRAIN, tmp_path)
    ckpt = torch.load(newest_checkpoint(tmp_path), weights_only=True)
    assert {"generator", "discriminator", "generator_ema", "opt_g", "opt_d", "step",
            "model_config", "train_config", "vocab", "data_id"} <= set(ckpt)
    assert ckpt["model_config"] == dataclasses.asdict(dataclasses.replace(MODEL, vocab_size=len(ckpt["vocab"])))
    assert ckpt["train_config"]["beta1"] == TRAIN.beta1


def test_resumed_training_reaches_the_same_weights(tmp_path):
    """4 steps straight == 2 steps, a 'kill', then a rerun that resumes at step 2 (CPU, seed)."""
    data = tiny_data()
    straight = tmp_path / "straight"
    train(data, MODEL, TRAIN, straight)

    resumed = tmp_path / "resumed"
    train(data, MODEL, dataclasses.replace(TRAIN, steps=2), resumed)
    summary = train(data, MODEL, TRAIN, resumed)
    assert summary["resumed_from"] == 2 and summary["steps"] == 4

    a, b = _state(straight / "ckpt-000004.pt"), _state(resumed / "ckpt-000004.pt")
    for net in ("generator", "discriminator", "generator_ema"):
        assert a[net].keys() == b[net].keys()
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k} differs after resume"
    for opt in ("opt_g", "opt_d"):
        for pid, st in a[opt]["state"].items():
            assert torch.equal(st["exp_avg"], b[opt]["state"][pid]["exp_avg"])
    metrics = pd.read_parquet(resumed / "metrics.parquet")
    assert metrics["step"].tolist() == [1, 2, 3, 4]  # one row per step, none doubled


def test_resume_skips_a_damaged_newest_checkpoint(tmp_path):
    data = tiny_data()
    train(data, MODEL, TRAIN, tmp_path)
    (tmp_path / "ckpt-000004.pt").write_bytes(b"torn")
    summary = train(data, MODEL, TRAIN, tmp_path)
    assert summary["resumed_from"] == 2 and summary["steps"] == 4


def test_a_finished_run_is_not_trained_again(tmp_path):
    data = tiny_data()
    train(data, MODEL, TRAIN, tmp_path)
    summary = train(data, MODEL, TRAIN, tmp_path)
    assert summary["resumed_from"] == 4 and summary["steps"] == 4
    assert summary["checkpoint"].endswith("ckpt-000004.pt")


def test_resume_refuses_checkpoints_of_other_data(tmp_path):
    data = tiny_data()
    train(data, MODEL, dataclasses.replace(TRAIN, steps=2), tmp_path)
    with pytest.raises(ValueError, match="trained on data"):
        train(dataclasses.replace(data, data_id="other"), MODEL, TRAIN, tmp_path)


def test_bad_data_gets_clear_errors(tmp_path):
    data = tiny_data()
    with pytest.raises(ValueError, match="word_dim"):
        train(data, dataclasses.replace(MODEL, word_dim=9), TRAIN, tmp_path)
    with pytest.raises(ValueError, match=r"\(T, H, W\)"):
        train(data, dataclasses.replace(MODEL, frames=8), TRAIN, tmp_path)
    with pytest.raises(ValueError, match="index the"):
        train(dataclasses.replace(data, caption_clip=data.caption_clip + 5), MODEL, TRAIN, tmp_path)
    with pytest.raises(ValueError, match="vocab_size"):
        train(data, dataclasses.replace(MODEL, vocab_size=3), TRAIN, tmp_path)
    assert not list_checkpoints(tmp_path)


def test_contrastive_diversity_and_no_ema_settings_train(tmp_path):
    cfg = dataclasses.replace(TRAIN, ema_decay=0.0, steps=2, contrastive_weight=1.0, diversity_weight=0.1,
                              word_weight=1.0)
    summary = train(tiny_data(), MODEL, cfg, tmp_path)
    assert summary["steps"] == 2 and np.isfinite(summary["final_losses"]["loss_d"])
    assert load_checkpoint(newest_checkpoint(tmp_path))["generator_ema"] is None


def test_the_word_critic_trains_and_resumes_exactly(tmp_path):
    """The demo profile's D (word branch with its critic): the word branch learns only from
    the word loss on real clips, and a resumed run still reaches the same weights as an
    uninterrupted one."""
    model = dataclasses.replace(MODEL, word_critic=True)
    cfg = dataclasses.replace(TRAIN, word_weight=1.0, contrastive_weight=1.0, diversity_weight=0.1)
    full = train(tiny_data(), model, cfg, tmp_path / "full")
    assert full["steps"] == 4 and np.isfinite(full["final_losses"]["loss_g"])
    train(tiny_data(), model, dataclasses.replace(cfg, steps=2), tmp_path / "cut")
    train(tiny_data(), model, cfg, tmp_path / "cut")
    a, b = _state(tmp_path / "full" / "ckpt-000004.pt"), _state(tmp_path / "cut" / "ckpt-000004.pt")
    assert any(k.startswith("word_critic.") for k in a["discriminator"])
    for part in ("generator", "discriminator"):
        for k, v in a[part].items():
            assert torch.equal(v, b[part][k]), (part, k)


def test_word_twin_learns_on_fakes_without_touching_the_real_word_classifier(tmp_path):
    """word_twin: the twin classifier learns from G's videos on detached features, so the
    word branch and its real-clip classifier train exactly as without it, while G, which
    now also works against the twin, does not. Without the word loss it is refused."""
    model = MODEL
    cfg = dataclasses.replace(TRAIN, word_weight=1.0)
    runs = {name: _state(Path(train(tiny_data(), dataclasses.replace(model, word_twin=twin), cfg,
                                    tmp_path / name)["checkpoint"]))
            for name, twin in (("single", False), ("twin", True))}
    d_single, d_twin = runs["single"]["discriminator"], runs["twin"]["discriminator"]
    assert any(k.startswith("word_twin.") for k in d_twin) and not any(k.startswith("word_twin.") for k in d_single)
    for k, v in d_single.items():
        if k.startswith(("word_branch.", "word_head.")):
            assert torch.equal(v, d_twin[k]), k
    g = runs["single"]["generator"]
    assert not all(torch.equal(v, runs["twin"]["generator"][k]) for k, v in g.items())
    # The twin's term runs from the first step: a run cut at step 2 resumes to the same weights.
    train(tiny_data(), dataclasses.replace(model, word_twin=True), dataclasses.replace(cfg, steps=2), tmp_path / "cut")
    cut = _state(Path(train(tiny_data(), dataclasses.replace(model, word_twin=True), cfg, tmp_path / "cut")["checkpoint"]))
    for part in ("generator", "discriminator"):
        for k, v in runs["twin"][part].items():
            assert torch.equal(v, cut[part][k]), (part, k)
    with pytest.raises(ValueError, match="word_twin_weight"):
        train(tiny_data(), dataclasses.replace(model, word_twin=True),
              dataclasses.replace(cfg, word_twin_weight=-1.0), tmp_path / "negative")
    with pytest.raises(ValueError, match="word_twin.*word_weight"):
        train(tiny_data(), dataclasses.replace(model, word_twin=True), dataclasses.replace(cfg, word_weight=0.0),
              tmp_path / "no-words")


def test_word_warmup_trains_only_the_word_classifier_and_resumes_exactly(tmp_path):
    """The warm-up steps train D's word branch and head on real clips before the first GAN
    step and nothing else, and a run with them killed after step 2 resumes to the weights
    of an uninterrupted one."""
    model = MODEL
    cfg = dataclasses.replace(TRAIN, word_weight=1.0, word_warmup=5)
    warm = train(tiny_data(), model, dataclasses.replace(cfg, steps=0), tmp_path / "warm")
    cold = train(tiny_data(), model, dataclasses.replace(cfg, steps=0, word_warmup=0), tmp_path / "cold")
    a = _state(Path(warm["checkpoint"]))["discriminator"]
    b = _state(Path(cold["checkpoint"]))["discriminator"]
    changed = {k for k in a if not torch.equal(a[k], b[k])}
    assert changed and all(k.startswith(("word_branch.", "word_head.")) for k in changed), changed
    full = train(tiny_data(), model, cfg, tmp_path / "full")
    train(tiny_data(), model, dataclasses.replace(cfg, steps=2), tmp_path / "cut")
    train(tiny_data(), model, cfg, tmp_path / "cut")
    a, b = _state(Path(full["checkpoint"])), _state(tmp_path / "cut" / "ckpt-000004.pt")
    for part in ("generator", "discriminator"):
        for k, v in a[part].items():
            assert torch.equal(v, b[part][k]), (part, k)
    with pytest.raises(ValueError, match="word_warmup.*word_weight"):
        train(tiny_data(), model, dataclasses.replace(cfg, word_weight=0.0), tmp_path / "no-words")


def _first_frame_spread(checkpoint: str, data: TrainData) -> float:
    """Mean pixel distance between the first frames that two noise draws give each caption."""
    ckpt = load_checkpoint(checkpoint)
    gen = Generator(model_config_from_dict(ckpt["model_config"]))
    gen.load_state_dict(ckpt["generator"])
    gen.eval()
    ids, lengths = torch.from_numpy(data.token_ids).long(), torch.from_numpy(data.lengths).long()
    z = torch.randn(2, len(ids), gen.cfg.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = (gen(ids, lengths, zi)[0][:, 0] for zi in z)
    return float((a - b).abs().mean())


def test_mode_seeking_spreads_the_draws_of_a_caption(tmp_path):
    """The mode-seeking term (diversity_weight) pulls the first frames that two noise draws
    give one caption apart: further than the same run without it. Same seed, same steps."""
    cfg = dataclasses.replace(TRAIN, steps=20, ckpt_every=20, eval_every=0, lr_g=1e-2)
    spread = {w: _first_frame_spread(train(tiny_data(), MODEL, dataclasses.replace(cfg, diversity_weight=w),
                                           tmp_path / str(w))["checkpoint"], tiny_data())
              for w in (0.0, 1.0)}
    assert spread[1.0] > 1.5 * spread[0.0], spread


def test_word_critic_without_the_word_loss_is_refused(tmp_path):
    model = dataclasses.replace(MODEL, word_critic=True)
    with pytest.raises(ValueError, match="word_weight"):
        train(tiny_data(), model, dataclasses.replace(TRAIN, word_weight=0.0), tmp_path)
    assert not list_checkpoints(tmp_path)


def _scripted(values: list[float]):
    """An evaluation that reports ``values`` in turn (the judge itself is tested on real
    renders in test_evaluate.py and through the pipeline in test_pipeline.py)."""
    it = iter(values)
    return lambda model: {"seen_all_correct": next(it), "held_out_all_correct": 1.0}


def test_select_by_publishes_the_best_evaluated_checkpoint_and_survives_resume(tmp_path):
    cfg = dataclasses.replace(TRAIN, steps=6, ckpt_every=3, eval_every=2, select_by="seen_all_correct")
    # Evaluations at steps 2 and 4; the run is killed after step 4.
    train(tiny_data(), MODEL, dataclasses.replace(cfg, steps=4), tmp_path, eval_fn=_scripted([0.2, 0.9]))
    # Step 4 is not a ckpt_every step: it was saved because it was the best so far.
    assert json.loads((tmp_path / "best.json").read_text())["checkpoint"] == "ckpt-000004.pt"
    summary = train(tiny_data(), MODEL, cfg, tmp_path, eval_fn=_scripted([0.5]))  # step 6: worse
    assert summary["resumed_from"] == 4 and summary["steps"] == 6
    assert summary["selected"] == {"checkpoint": "ckpt-000004.pt", "step": 4,
                                   "metric": "seen_all_correct", "value": 0.9}
    assert newest_checkpoint(tmp_path).name == "ckpt-000006.pt"
    assert published_checkpoint(tmp_path).name == "ckpt-000004.pt"  # what render and evaluate load
    metrics = pd.read_parquet(tmp_path / "metrics.parquet").dropna(subset=["eval_seen_all_correct"])
    assert metrics["eval_seen_all_correct"].tolist() == [0.2, 0.9, 0.5]


def test_select_by_refuses_held_out_metrics_and_needs_an_evaluation(tmp_path):
    with pytest.raises(ValueError, match="held-out"):
        train(tiny_data(), MODEL, dataclasses.replace(TRAIN, select_by="held_out_all_correct"),
              tmp_path, eval_fn=_scripted([1.0, 1.0]))
    with pytest.raises(ValueError, match="eval_every"):
        train(tiny_data(), MODEL, dataclasses.replace(TRAIN, select_by="seen_all_correct"), tmp_path)
    with pytest.raises(KeyError, match="not one of"):
        train(tiny_data(), MODEL, dataclasses.replace(TRAIN, select_by="accuracy"), tmp_path,
              eval_fn=_scripted([1.0, 1.0]))
    assert not (tmp_path / "best.json").exists()


def test_the_attention_ablation_of_each_profile_trains(tmp_path):
    """Profile.without_attention, the accuracy benchmark's baseline: each shipped profile's
    model and training terms at the tiny test size, with attention off, train."""
    from t2v_core.config import load_profile

    data = tiny_data()
    size = {f: getattr(MODEL, f) for f in ("frames", "height", "width", "word_dim", "text_dim",
                                           "z_dim", "hidden", "g_channels", "d_channels")}
    for name in ("demo", "full", "digits-demo", "shapes2"):
        profile = load_profile(name)
        assert profile.model.word_twin
        ablated = profile.without_attention()
        assert not ablated.model.attention and ablated.train == profile.train
        run = dataclasses.replace(ablated.train, steps=2, batch_size=4, ckpt_every=2, eval_every=0,
                                  select_by="", word_warmup=0, threads=1, max_minutes=0.0)
        summary = train(data, dataclasses.replace(ablated.model, **size), run, tmp_path / name)
        assert summary["steps"] == 2 and np.isfinite(summary["final_losses"]["loss_g"])


def test_wall_clock_budget_stops_and_checkpoints(tmp_path):
    cfg = dataclasses.replace(TRAIN, steps=1000, max_minutes=1e-9)
    summary = train(tiny_data(), MODEL, cfg, tmp_path)
    assert summary["stopped_early"] and summary["steps"] == 1
    assert newest_checkpoint(tmp_path).name == "ckpt-000001.pt"


def test_the_step_a_budget_stops_on_is_evaluated_and_can_be_selected(tmp_path):
    # eval_every = 2 would first evaluate at step 2; the budget ends the run at step 1.
    cfg = dataclasses.replace(TRAIN, steps=1000, eval_every=2, max_minutes=1e-9,
                              select_by="seen_all_correct")
    summary = train(tiny_data(), MODEL, cfg, tmp_path, eval_fn=_scripted([0.7]))
    assert summary["stopped_early"] and summary["steps"] == 1
    assert summary["selected"] == {"checkpoint": "ckpt-000001.pt", "step": 1,
                                   "metric": "seen_all_correct", "value": 0.7}
    metrics = pd.read_parquet(tmp_path / "metrics.parquet")
    assert metrics.set_index("step")["eval_seen_all_correct"].to_dict() == {1: 0.7}


def grown(data: TrainData) -> TrainData:
    """The same corpus after the vocabulary grew by one word that sorts first: every old
    word's id moves by one, as after a nightly re-embed."""
    ids = np.where(data.token_ids >= 2, data.token_ids + 1, data.token_ids).astype(np.int32)
    new_row = np.random.default_rng(9).standard_normal((1, data.embeddings.shape[1]))
    vectors = np.concatenate([data.embeddings[:2], new_row.astype(np.float32), data.embeddings[2:]])
    return dataclasses.replace(data, token_ids=ids, embeddings=vectors,
                               vocab=data.vocab[:2] + ["aardvark"] + data.vocab[2:], data_id="grown")


def test_warm_start_begins_from_the_given_weights(tmp_path):
    data = tiny_data()
    model = dataclasses.replace(MODEL, finetune_words=True)
    train(data, model, TRAIN, tmp_path / "old")
    source = newest_checkpoint(tmp_path / "old")
    old = _state(source)

    new_data = grown(data)
    start = train(new_data, model, dataclasses.replace(TRAIN, steps=0), tmp_path / "warm0",
                  init_from=source)
    assert start["steps"] == 0 and start["init_from"] == str(source)
    warm = _state(tmp_path / "warm0" / "ckpt-000000.pt")
    assert warm["init_from"] == str(source) and warm["vocab"] == new_data.vocab
    for net in ("generator", "discriminator", "generator_ema"):
        for k, v in warm[net].items():
            if k == "text.embed.weight":
                # Old words keep their fine-tuned rows under their new ids; the new word
                # gets the embed stage's vector.
                assert torch.equal(v[3:], old[net][k][2:]), net
                assert torch.allclose(v[2], torch.from_numpy(centre_vectors(new_data.embeddings)[2]))
            elif k.startswith("word_head."):
                assert torch.equal(v[3:], old[net][k][2:]), net
            else:
                assert torch.equal(v, old[net][k]), f"{net}.{k} not copied"

    # Training goes on from those weights with fresh optimizers from step 0, and its
    # resume point later is its own checkpoint, not init_from.
    summary = train(new_data, model, TRAIN, tmp_path / "warm", init_from=source)
    assert summary["steps"] == 4 and summary["resumed_from"] == 0
    ckpt = _state(tmp_path / "warm" / "ckpt-000004.pt")
    assert ckpt["init_from"] == str(source) and ckpt["step"] == 4
    assert all(st["step"] == 4 for st in ckpt["opt_g"]["state"].values())
    cold = train(new_data, model, TRAIN, tmp_path / "cold")
    assert cold["init_from"] is None
    cold_g = _state(tmp_path / "cold" / "ckpt-000004.pt")["generator"]
    assert any(not torch.equal(cold_g[k], ckpt["generator"][k]) for k in cold_g)
    again = train(new_data, model, TRAIN, tmp_path / "warm", init_from=tmp_path / "missing.pt")
    assert again["resumed_from"] == 4 and again["init_from"] == str(source)


def test_warm_start_refuses_a_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="init_from"):
        train(tiny_data(), MODEL, TRAIN, tmp_path, init_from=tmp_path / "nope.pt")
