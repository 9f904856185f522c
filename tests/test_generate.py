"""Generation from a checkpoint: self-contained loading, determinism per seed, clear errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from t2v_core.checkpoints import newest_checkpoint, published_checkpoint
from t2v_core.generate import Text2Video, resolve_device
from t2v_core.text import resolve_model_name
from t2v_core.train import train

from test_train import MODEL, TRAIN, tiny_data


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("run")
    train(tiny_data(), MODEL, dataclasses.replace(TRAIN, steps=2, ckpt_every=1), path,
          prompt_reader={"spacy_model": resolve_model_name(""), "token_form": "lower"})
    return path


def test_newest_checkpoint_orders_by_step_and_ignores_temporaries(run_dir, tmp_path):
    assert newest_checkpoint(run_dir).name == "ckpt-000002.pt"
    assert newest_checkpoint(tmp_path) is None
    assert newest_checkpoint(tmp_path / "missing") is None
    (tmp_path / "ckpt-000010.pt").write_bytes(b"")
    (tmp_path / "ckpt-000900.pt.tmp").write_bytes(b"")
    (tmp_path / ".ckpt-002000.pt.tmp-1.pt").write_bytes(b"")
    (tmp_path / "ckpt-000009.pt").write_bytes(b"")
    assert newest_checkpoint(tmp_path).name == "ckpt-000010.pt"


def test_published_checkpoint_is_the_selected_one_else_the_newest(tmp_path):
    for step in (1, 2, 3):
        (tmp_path / f"ckpt-{step:06d}.pt").write_bytes(b"")
    assert published_checkpoint(tmp_path).name == "ckpt-000003.pt"
    (tmp_path / "best.json").write_text('{"checkpoint": "ckpt-000002.pt", "step": 2}')
    assert published_checkpoint(tmp_path).name == "ckpt-000002.pt"
    (tmp_path / "ckpt-000002.pt").unlink()
    with pytest.raises(FileNotFoundError, match="ckpt-000002.pt"):
        published_checkpoint(tmp_path)  # never silently the newest instead


def test_from_checkpoint_needs_nothing_else(run_dir):
    """The one-call API: a checkpoint reads prompts by itself, with the spaCy model and token
    form it stores, and renders uint8 (N, T, H, W, 3)."""
    model = Text2Video.from_checkpoint(newest_checkpoint(run_dir), device="cpu")
    data = tiny_data()
    assert model.vocab == {w: i for i, w in enumerate(data.vocab)}
    assert model.model_config.vocab_size == len(data.vocab)
    assert model.reader == {"spacy_model": resolve_model_name(""), "token_form": "lower"}
    ids, lengths, tokens = model.read(["A small red Circle, zebra"])
    assert tokens == [["a", "small", "red", "circle", "zebra"]]  # punctuation is dropped, as in captions
    assert ids.shape == (1, model.max_len) and lengths.tolist() == [5]
    assert ids[0, 4] == 1 and ids[0, 3] == model.vocab["circle"]  # unknown word -> <unk>

    videos = model.generate(["a small red circle moves left", "a blue square moves up"], seeds=[0, 5])
    assert videos.shape == (2, MODEL.frames, MODEL.height, MODEL.width, 3) and videos.dtype == np.uint8
    ids, lengths, _ = model.read(["a small red circle moves left"])
    np.testing.assert_array_equal(videos[0], model.generate_ids(ids, lengths, [0])[0])
    np.testing.assert_array_equal(model.generate(["a blue square moves up"])[0],
                                  model.generate_ids(*model.read(["a blue square moves up"])[:2], [0])[0])
    with pytest.raises(ValueError, match="no word this model knows"):
        model.generate(["zebra giraffe"], seeds=[0])
    with pytest.raises(ValueError, match="2 prompts but 1 seeds"):
        model.generate(["a red circle", "a blue square"], seeds=[0])


def test_generate_is_deterministic_per_seed_and_varies_across_seeds(run_dir):
    model = Text2Video.from_checkpoint(newest_checkpoint(run_dir), device="cpu")
    data = tiny_data()
    ids, lengths = data.token_ids[:3], data.lengths[:3]
    a = model.generate_ids(ids, lengths, [7, 8, 9])
    assert a.shape == (3, MODEL.frames, MODEL.height, MODEL.width, 3) and a.dtype == np.uint8
    b = model.generate_ids(ids, lengths, [7, 8, 9])
    assert np.array_equal(a, b)
    # Batching does not matter: the second video alone equals the second of the batch.
    alone = model.generate_ids(ids[1:2], lengths[1:2], [8])
    assert np.array_equal(alone[0], a[1])
    other = model.generate_ids(ids, lengths, [17, 18, 19])
    assert not np.array_equal(a, other)
    same_caption = model.generate_ids(ids[[0, 0]], lengths[[0, 0]], [1, 2])
    assert not np.array_equal(same_caption[0], same_caption[1])


def test_ema_and_raw_generators_both_load(run_dir):
    path = newest_checkpoint(run_dir)
    ema = Text2Video.from_checkpoint(path, device="cpu", use_ema=True)
    raw = Text2Video.from_checkpoint(path, device="cpu", use_ema=False)
    ema_w = dict(ema.generator.named_parameters())
    raw_w = dict(raw.generator.named_parameters())
    assert any(not torch.equal(ema_w[k], raw_w[k]) for k in raw_w if raw_w[k].requires_grad)


def test_a_checkpoint_with_attention_key_biases_loads_and_renders_the_same(run_dir, tmp_path):
    """Earlier versions gave the attention keys a bias, which the softmax cancels: such a
    checkpoint loads without it and renders what it rendered, to float rounding."""
    from t2v_core.checkpoints import load_checkpoint, save_checkpoint

    path = newest_checkpoint(run_dir)
    ckpt = load_checkpoint(path)
    keys = [k[: -len("weight")] + "bias" for k in ckpt["generator_ema"] if k.endswith(".k.weight")]
    assert len(keys) == 2  # the global and the spatial attention
    for net in ("generator", "generator_ema"):
        for k in keys:
            ckpt[net][k] = torch.randn(ckpt[net][k[: -len("bias")] + "weight"].shape[0])
    old = save_checkpoint(ckpt, tmp_path / "ckpt-000002.pt")
    prompts = ["a large red circle moves to the left", "a small blue square moves up"]
    now = Text2Video.from_checkpoint(path, device="cpu").generate(prompts, [3, 4])
    before = Text2Video.from_checkpoint(old, device="cpu").generate(prompts, [3, 4])
    assert np.abs(now.astype(int) - before.astype(int)).max() <= 1  # float rounding at most


def test_bad_inputs_get_clear_errors(run_dir):
    model = Text2Video.from_checkpoint(newest_checkpoint(run_dir), device="cpu")
    ids = np.zeros((2, 5), np.int32)
    with pytest.raises(ValueError, match="B seeds"):
        model.generate_ids(ids, np.array([1, 1]), [0])
    with pytest.raises(ValueError, match="token ids"):
        model.generate_ids(ids + 10_000, np.array([1, 1]), [0, 1])
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA"):
            resolve_device("cuda")
    assert resolve_device("auto").type in ("cpu", "cuda")
