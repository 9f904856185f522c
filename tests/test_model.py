"""The networks: shapes at module boundaries, attention, the discriminator's text path."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from t2v_core.config import ModelConfig
from t2v_core.model import Discriminator, Generator, TextEncoder, TokenAttention, bag_of_words, d_loss, g_loss, word_loss
from t2v_core.model.augment import draw_shifts, translate
from t2v_core.model.text_encoder import centre_vectors

CFG = ModelConfig(frames=4, height=16, width=16, word_dim=8, vocab_size=12, text_dim=16,
                  z_dim=8, hidden=16, attn_heads=2, g_channels=4, d_channels=4, finetune_words=False,
                  word_critic=False, word_twin=False)


def _batch(b: int = 3, L: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(2, CFG.vocab_size, (b, L), generator=g)
    lengths = torch.tensor([L, 4, 1][:b])
    for i, n in enumerate(lengths):
        ids[i, n:] = 0
    return ids, lengths


def test_text_encoder_shapes_and_padding_is_ignored():
    torch.manual_seed(0)
    enc = TextEncoder(CFG)
    ids, lengths = _batch()
    v, mask, s = enc(ids, lengths)
    assert v.shape == (3, 6, 16) and s.shape == (3, 16) and mask.shape == (3, 6)
    assert mask.sum(1).tolist() == lengths.tolist()
    # Changing what sits in the padding must not change the encoding of a caption.
    noisy = ids.clone()
    noisy[1, 4:] = 5
    _, _, s2 = enc(noisy, lengths)
    assert torch.allclose(s[1], s2[1])


def test_text_encoder_rejects_vectors_of_the_wrong_shape():
    enc = TextEncoder(CFG)
    with pytest.raises(ValueError, match="word_dim"):
        enc.load_vectors(np.zeros((CFG.vocab_size, CFG.word_dim + 1), np.float32))
    vecs = np.random.default_rng(0).standard_normal((CFG.vocab_size, CFG.word_dim)).astype(np.float32)
    enc.load_vectors(vecs)
    loaded = enc.embed.weight.detach().numpy()
    assert np.allclose(loaded, centre_vectors(vecs))
    assert np.allclose(loaded[1:].mean(0), 0, atol=1e-5) and (loaded[0] == 0).all()
    # Centring keeps the geometry: differences between words only change scale.
    scale = np.linalg.norm(loaded[3] - loaded[2]) / np.linalg.norm(vecs[3] - vecs[2])
    assert np.allclose(loaded[5] - loaded[4], scale * (vecs[5] - vecs[4]), atol=1e-5)
    assert not enc.embed.weight.requires_grad  # frozen unless finetune_words


def test_attention_weights_sum_to_one_over_real_tokens():
    torch.manual_seed(0)
    attn = TokenAttention(query_dim=10, value_dim=16, dim=16, heads=4)
    v = torch.randn(3, 6, 16)
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] + [0] * 5], dtype=torch.bool)
    ctx, w = attn(torch.randn(3, 10), v, mask)
    assert ctx.shape == (3, 16) and w.shape == (3, 4, 6)
    assert torch.allclose(w.sum(-1), torch.ones(3, 4), atol=1e-6)
    assert (w[~mask[:, None, :].expand_as(w)] == 0).all()
    assert torch.allclose(w[2, :, 0], torch.ones(4))  # one token: all weight on it


def test_generator_shapes_and_attention_switch():
    torch.manual_seed(0)
    ids, lengths = _batch()
    z = torch.randn(3, CFG.z_dim)
    video, w = Generator(CFG)(ids, lengths, z)
    assert video.shape == (3, 4, 3, 16, 16)
    assert video.min() >= -1 and video.max() <= 1
    assert w.shape == (3, 4, 2, 6)  # (B, T, heads, L)
    assert torch.allclose(w.sum(-1), torch.ones(3, 4, 2), atol=1e-6)
    off = Generator(dataclasses.replace(CFG, attention=False))
    video_off, w_off = off(ids, lengths, z)
    assert video_off.shape == video.shape and w_off is None
    assert off.attn is None and not any(n.startswith("attn.") for n, _ in off.named_parameters())


def test_generator_output_depends_on_text_and_on_z():
    torch.manual_seed(0)
    gen = Generator(CFG).eval()
    ids, lengths = _batch()
    z = torch.randn(3, CFG.z_dim)
    with torch.no_grad():
        base, _ = gen(ids, lengths, z)
        other_z, _ = gen(ids, lengths, torch.randn(3, CFG.z_dim))
        other_text, _ = gen(ids.flip(0), lengths.flip(0), z)
    assert (base - other_z).abs().mean() > 1e-4
    assert (base - other_text).abs().mean() > 1e-4


def test_frame_size_must_be_a_square_power_of_two():
    with pytest.raises(ValueError, match="power of two"):
        Discriminator(dataclasses.replace(CFG, height=24, width=24))


def test_discriminator_scores_and_text_conditioning():
    torch.manual_seed(0)
    disc = Discriminator(CFG)
    ids, lengths = _batch()
    video = torch.rand(3, 4, 3, 16, 16) * 2 - 1
    v_logit, f_logit = disc(video, ids, lengths)
    assert v_logit.shape == (3,) and f_logit.shape == (3, 4)
    # The mismatch path: the same videos with other captions get other scores, so the
    # matching-aware loss has something to train.
    v_wrong, f_wrong = disc(video, ids.flip(0), lengths.flip(0))
    assert not torch.allclose(v_logit, v_wrong)
    assert not torch.allclose(f_logit, f_wrong)
    with pytest.raises(AssertionError):
        disc(video[:, :3], ids, lengths)  # wrong number of frames


def test_discriminator_match_matrix_and_feature_reuse():
    torch.manual_seed(0)
    disc = Discriminator(CFG).eval()  # eval: spectral norm's power iteration stays put
    ids, lengths = _batch()
    video = torch.rand(3, 4, 3, 16, 16) * 2 - 1
    feats = disc.features(video)
    s = disc.encode_text(ids, lengths)
    assert feats[0].shape[0] == 3 and feats[1].shape[:2] == (3, 4)
    match = disc.match(feats, s)
    assert match.shape == (3, 3)
    # Scoring cached features is the same as a full forward pass.
    v1, f1 = disc.score(feats, s)
    v2, f2 = disc(video, ids, lengths)
    assert torch.allclose(v1, v2) and torch.allclose(f1, f2)


def test_word_head_learns_which_words_a_video_shows():
    """The auxiliary word classifier: a few steps on two fixed videos make D predict the
    words of each one's caption above the other's."""
    torch.manual_seed(0)
    disc = Discriminator(CFG)
    ids = torch.tensor([[2, 3, 4, 0], [2, 5, 6, 7]])
    bag = bag_of_words(ids, CFG.vocab_size)
    assert bag.shape == (2, CFG.vocab_size) and bag[:, :2].sum() == 0
    assert bag[0].nonzero().flatten().tolist() == [2, 3, 4]
    video = torch.rand(2, 4, 3, 16, 16) * 2 - 1
    opt = torch.optim.Adam(disc.parameters(), lr=2e-3)
    first = None
    for _ in range(30):
        loss = word_loss(disc.words(video), bag)
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < first
    with torch.no_grad():
        p = torch.sigmoid(disc.words(video))
    assert p[0, 3] > p[1, 3] and p[1, 5] > p[0, 5]  # each video's own words


def test_discriminator_learns_to_reject_mismatched_captions():
    """A few steps of the matching-aware loss on fixed videos make D score (video, right
    caption) above (video, wrong caption): the mismatch path carries a gradient."""
    torch.manual_seed(0)
    disc = Discriminator(CFG)
    ids, lengths = _batch()
    video = torch.rand(3, 4, 3, 16, 16) * 2 - 1
    fake = torch.rand(3, 4, 3, 16, 16) * 2 - 1
    wrong_ids, wrong_lengths = ids.roll(1, 0), lengths.roll(1, 0)
    opt = torch.optim.Adam(disc.parameters(), lr=2e-3)
    for _ in range(30):
        rv, _ = disc(video, ids, lengths)
        fv, _ = disc(fake, ids, lengths)
        mv, _ = disc(video, wrong_ids, wrong_lengths)
        loss = d_loss(rv, fv, mv)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        right, _ = disc(video, ids, lengths)
        wrong, _ = disc(video, wrong_ids, wrong_lengths)
    assert (right > wrong).all()


def test_losses_prefer_the_right_answer():
    good = d_loss(torch.full((4,), 3.0), torch.full((4,), -3.0), torch.full((4,), -3.0))
    bad = d_loss(torch.full((4,), -3.0), torch.full((4,), 3.0), torch.full((4,), 3.0))
    assert good < bad
    assert g_loss(torch.full((4,), 3.0)) < g_loss(torch.full((4,), -3.0))


def test_bce_is_the_minimax_objective():
    real, fake = torch.tensor([0.3, -1.2]), torch.tensor([0.5, 2.0])
    expected = -(torch.log(torch.sigmoid(real)).mean() + torch.log(1 - torch.sigmoid(fake)).mean())
    assert torch.allclose(d_loss(real, fake, None), expected, atol=1e-6)
    assert torch.allclose(g_loss(fake), -torch.log(torch.sigmoid(fake)).mean(), atol=1e-6)


# The ConvLSTM generator (t2v_core/model/convlstm.py) with a few more channels.
GENERAL = dataclasses.replace(CFG, g_channels=8)


def _general(cfg: ModelConfig = GENERAL, seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    return Generator(cfg).eval()


def test_convlstm_draws_whole_frames_in_range():
    gen = _general()
    ids, lengths = _batch()
    z = torch.randn(3, CFG.z_dim)
    video, w = gen(ids, lengths, z)
    assert video.shape == (3, 4, 3, 16, 16)
    assert video.min() >= -1 and video.max() <= 1
    assert video.std() > 1e-3  # not a blank canvas
    assert w.shape == (3, 4, 2, 6)  # the global attention's weights (B, T, heads, L)
    with pytest.raises(ValueError, match="divisible by 8"):
        Generator(dataclasses.replace(CFG, height=18, width=18))


def test_convlstm_decoder_starts_without_a_checkerboard():
    """Every sub-pixel convolution starts with one filter for all four pixels of a 2x2 block
    (ICNR): at initialisation each frame is made of 2x2 blocks of one colour. Independent
    filters per block position paint a periodic pattern that training has to unlearn."""
    gen = _general()
    ids, lengths = _batch()
    with torch.no_grad():
        video, _ = gen(ids, lengths, torch.randn(3, CFG.z_dim))
    corner = video[..., ::2, ::2]
    for dy, dx in ((0, 1), (1, 0), (1, 1)):
        assert torch.allclose(video[..., dy::2, dx::2], corner, atol=1e-6)
    assert (video[..., ::2, 2::2] - video[..., ::2, :-2:2]).abs().max() > 1e-3  # the blocks differ


def test_convlstm_every_frame_follows_a_changed_word_and_the_noise():
    """Changing one word of a caption changes every frame of its video, not only the first
    (the words reach each step), and another z changes the video too."""
    gen = _general()
    ids, lengths = _batch()
    z = torch.randn(3, CFG.z_dim)
    other = ids.clone()
    other[0, 2] = 2 if ids[0, 2] != 2 else 3
    with torch.no_grad():
        base, _ = gen(ids, lengths, z)
        changed, _ = gen(other, lengths, z)
        noise, _ = gen(ids, lengths, torch.randn(3, CFG.z_dim))
    per_frame = (base[0] - changed[0]).abs().flatten(1).mean(1)  # (T,)
    assert (per_frame > 1e-4).all(), per_frame
    assert torch.equal(base[1:], changed[1:])  # the other captions' videos are untouched
    assert ((base - noise).abs().flatten(2).mean(2) > 1e-4).all()


def test_convlstm_spatial_attention_sums_to_one_over_real_tokens_at_every_location():
    gen = _general()
    ids, lengths = _batch()
    z = torch.randn(3, CFG.z_dim)
    v, mask, s = text = gen.text(ids, lengths)
    states, contexts, _ = gen.trajectory(ids, lengths, z, text)
    video, w = gen.convlstm(states, contexts, v, mask, s, z, weights=True)
    side = CFG.height // 4
    assert w.shape == (3, CFG.frames, CFG.attn_heads, side * side, 6)  # (B, T, heads, S * S, L)
    assert torch.allclose(w.sum(-1), torch.ones(w.shape[:-1]), atol=1e-6)
    pad = ~mask[:, None, None, None, :].expand_as(w)
    assert (w[pad] == 0).all()
    assert torch.allclose(w[2, ..., 0], torch.ones(w.shape[1:-1]))  # a one-word caption
    # Locations read different words: the attention is spatial, not one read per frame.
    assert (w[0].std(dim=2) > 0).any()
    assert torch.equal(video, gen(ids, lengths, z)[0])


def test_convlstm_gradients_reach_the_recurrence_and_both_attentions():
    gen = _general()
    gen.train()
    ids, lengths = _batch()
    video, _ = gen(ids, lengths, torch.randn(3, CFG.z_dim))
    video.square().mean().backward()
    # The content code's scale and shift start at zero (plain batch norm), so the first
    # gradient reaches their weights and not yet the code itself.
    for name in ("convlstm.init.0.weight", "convlstm.init_up.0.weight", "convlstm.decoder.films.0.weight",
                 "convlstm.cell.hidden.weight", "convlstm.cell.context.weight",
                 "convlstm.cell.cond.weight", "convlstm.spatial.q.weight", "convlstm.spatial.k.weight",
                 "convlstm.spatial.v.weight", "convlstm.decoder.to_rgb.0.weight", "attn.q.weight",
                 "attn.k.weight", "attn.v.weight", "cell.weight_ih", "text.gru.weight_ih_l0"):
        grad = dict(gen.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_convlstm_ablations_remove_the_attention_they_name():
    """spatial_attention = False: no per-location attention, every location reads the
    sentence vector, the global attention stays; attention = False: neither. With the shared
    weights the same, each ablation draws other frames than the full model."""
    full = _general()
    ids, lengths = _batch()
    z = torch.randn(3, CFG.z_dim)
    no_spatial = _general(dataclasses.replace(GENERAL, spatial_attention=False))
    no_attn = _general(dataclasses.replace(GENERAL, attention=False))
    assert full.convlstm.spatial is not None and full.attn is not None
    assert no_spatial.convlstm.spatial is None and no_spatial.attn is not None
    assert no_attn.convlstm.spatial is None and no_attn.attn is None
    state = full.state_dict()
    for ablated in (no_spatial, no_attn):
        missing, unexpected = ablated.load_state_dict(state, strict=False)
        assert not missing or missing == ["no_attn.weight", "no_attn.bias"], missing
        assert all(k.startswith(("convlstm.spatial.", "attn.")) for k in unexpected), unexpected
    with torch.no_grad():
        video, w = full(ids, lengths, z)
        video_ns, w_ns = no_spatial(ids, lengths, z)
        video_na, w_na = no_attn(ids, lengths, z)
        text = no_spatial.text(ids, lengths)
        states, contexts, _ = no_spatial.trajectory(ids, lengths, z, text)
        _, spatial_w = no_spatial.convlstm(states, contexts, *text, z, weights=True)
    assert w_ns is not None and torch.allclose(w_ns, w) and w_na is None and spatial_w is None
    assert (video - video_ns).abs().mean() > 1e-4
    assert (video - video_na).abs().mean() > 1e-4


def test_convlstm_trains_and_round_trips_through_a_checkpoint(tmp_path):
    """Two training steps, then Text2Video.from_checkpoint draws exactly what the trained
    EMA generator draws; a checkpoint of a deleted generator fails with one sentence."""
    from test_train import MODEL, TRAIN, tiny_data
    from t2v_core.checkpoints import newest_checkpoint, save_checkpoint
    from t2v_core.generate import Text2Video, to_uint8
    from t2v_core.train import train

    cfg = dataclasses.replace(TRAIN, steps=2, ckpt_every=2, eval_every=0, diversity_weight=0.01,
                              contrastive_weight=1.0, word_weight=1.0)
    data = tiny_data()
    summary = train(data, MODEL, cfg, tmp_path / "run")
    assert summary["steps"] == 2 and np.isfinite(list(summary["final_losses"].values())).all()
    path = newest_checkpoint(tmp_path / "run")
    loaded = Text2Video.from_checkpoint(path, device="cpu")
    assert loaded.model_config.spatial_attention
    ckpt = torch.load(path, weights_only=True)
    gen = Generator(loaded.model_config)
    gen.load_state_dict(ckpt["generator_ema"])
    ids, lengths = data.token_ids[:3], data.lengths[:3]
    out = loaded.generate_ids(ids, lengths, [0, 1, 2])
    z = torch.stack([torch.randn(MODEL.z_dim, generator=torch.Generator().manual_seed(s)) for s in (0, 1, 2)])
    with torch.no_grad():
        video, _ = gen.eval()(torch.as_tensor(ids, dtype=torch.long), torch.as_tensor(lengths, dtype=torch.long), z)
    assert out.shape == (3, 4, 16, 16, 3) and np.array_equal(out, to_uint8(video))

    # A checkpoint written with a generator this version no longer has.
    old = dict(ckpt, model_config={**ckpt["model_config"], "decoder": "coord", "look": "parts"})
    save_checkpoint(old, tmp_path / "old" / "ckpt-000100.pt")
    with pytest.raises(ValueError) as err:
        Text2Video.from_checkpoint(tmp_path / "old" / "ckpt-000100.pt", device="cpu")
    assert str(err.value) == ("ckpt-000100.pt was trained with decoder 'coord', which this version "
                              "no longer has; retrain")
    # ... and one of this generator from before those settings were retired still loads.
    kept = dict(ckpt, model_config={**ckpt["model_config"], "decoder": "convlstm", "look": "clip"})
    save_checkpoint(kept, tmp_path / "kept" / "ckpt-000100.pt")
    assert Text2Video.from_checkpoint(tmp_path / "kept" / "ckpt-000100.pt", device="cpu").model_config == loaded.model_config


def test_translate_moves_every_frame_of_a_clip_by_its_own_offset():
    video = torch.full((2, 3, 3, 8, 8), -1.0)
    video[:, :, :, 3, 4] = 1.0  # one bright pixel at x = 4, y = 3 in every frame
    moved = translate(video, torch.tensor([[2, -1], [0, 0]]))
    assert moved.shape == video.shape
    assert torch.equal(moved[1], video[1])  # a zero offset leaves the clip alone
    ys, xs = torch.nonzero(moved[0, :, 0] > 0, as_tuple=True)[1:]
    assert ys.tolist() == [2, 2, 2] and xs.tolist() == [6, 6, 6]  # every frame alike
    # what comes in from outside is black, and a pixel pushed out is gone
    edge = torch.full((1, 1, 3, 4, 4), -1.0)
    edge[..., 0, 0] = 1.0
    assert (translate(edge, torch.tensor([[-1, 0]])) == -1.0).all()
    # differentiable: a generated clip's gradient flows back through the shift
    g = video.clone().requires_grad_(True)
    translate(g, torch.tensor([[1, 1], [-1, 0]])).sum().backward()
    assert g.grad is not None and g.grad.abs().sum() > 0


def test_augment_shifts_stay_within_their_share_of_the_side():
    shifts = draw_shifts(4096, 32, 0.125, torch.Generator().manual_seed(0))
    assert shifts.abs().max() == 4 and shifts.min() == -4
    assert set(shifts.flatten().tolist()) == set(range(-4, 5))
