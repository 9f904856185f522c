"""The networks: shapes at module boundaries, attention, the discriminator's text path."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from t2v_core.config import ModelConfig
from t2v_core.text import is_stop_word
from t2v_core.model.text_encoder import centre_vectors
from t2v_core.model.generator import CoordDecoder, paste
from t2v_core.model import (
    Discriminator,
    Generator,
    TextEncoder,
    TokenAttention,
    across_motion,
    bag_of_words,
    box_fill,
    box_reach,
    d_loss,
    diversity_sensitivity,
    g_loss,
    mode_seeking,
    path_bound,
    r1_penalty,
    word_loss,
)

CFG = ModelConfig(frames=4, height=16, width=16, word_dim=8, vocab_size=12, text_dim=16,
                  z_dim=8, hidden=16, attn_heads=2, g_channels=4, d_channels=4)


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


@pytest.mark.parametrize("decoder", ["object", "scaled", "coord"])
def test_object_decoder_moves_one_unchanging_object(decoder):
    """decoder = "object" / "scaled" / "coord": every frame shows the same sprite (one colour, the
    same mass), only its position changes."""
    torch.manual_seed(0)
    cfg = dataclasses.replace(CFG, decoder=decoder)
    ids, lengths = _batch()
    video, w = Generator(cfg)(ids, lengths, torch.randn(3, cfg.z_dim))
    assert video.shape == (3, 4, 3, 16, 16) and w.shape == (3, 4, 2, 6)
    light = (video + 1) / 2  # (B, T, 3, H, W) in [0, 1]; black background
    per_channel = light.sum((3, 4))  # (B, T, 3)
    chroma = per_channel / per_channel.sum(-1, keepdim=True)
    assert torch.allclose(chroma, chroma[:, :1].expand_as(chroma), atol=1e-4)  # one colour
    mass = per_channel.sum(-1)
    # One sprite. "coord" draws it afresh at each frame's sub-pixel offset, so an untrained,
    # fuzzy mask is point-sampled at a different phase per frame and its mass moves more.
    rtol = 0.2 if decoder == "coord" else 0.05
    assert torch.allclose(mass, mass[:, :1].expand_as(mass), rtol=rtol)
    centroid_x = (light.sum(2).sum(2) * torch.arange(16.0)).sum(-1) / light.sum((2, 3, 4))
    assert (centroid_x[:, 1:] - centroid_x[:, :1]).abs().max() > 1e-3  # that moves


def test_coord_decoder_keeps_the_object_inside_its_centred_box():
    """The CoordDecoder's mask is zero past the box that its size head sets, whatever the
    condition, so the object stays centred in its sprite and cannot be clipped by it."""
    torch.manual_seed(0)
    dec = CoordDecoder(cond_dim=8, frame_side=32, channels=8)
    cond = torch.randn(5, 8) * 3
    with torch.no_grad():
        dec.out.bias.fill_(2.0)  # logits above the cap: the object fills its box
        dec.size.bias.fill_(-2.0)  # a small box
        mask = torch.sigmoid(dec(cond))[:, 0]
        half = dec.box(cond).squeeze(1)  # box half-side, pixels
    assert mask.shape == (5, dec.side, dec.side)
    centres = dec.grid[0, 0]  # pixel centres relative to the sprite's centre
    far = (centres.abs()[None, :, None] > half[:, None, None] + 1) | (
        centres.abs()[None, None, :] > half[:, None, None] + 1)  # > 1 px outside the box
    assert far.any() and float(mask[far].max()) < 0.01
    # The same condition with a bigger box draws a bigger object.
    with torch.no_grad():
        dec.size.bias.fill_(2.0)
        bigger = torch.sigmoid(dec(cond))[:, 0]
    assert (bigger.sum((1, 2)) > mask.sum((1, 2))).all()


def test_coord_decoder_draws_sub_pixel_shifts_without_blur():
    """A shift of the offset by a whole pixel is the same drawing one pixel over; a half
    pixel moves the mask's centroid by half a pixel."""
    torch.manual_seed(0)
    dec = CoordDecoder(cond_dim=8, frame_side=32, channels=8)
    cond = torch.randn(1, 8)
    with torch.no_grad():
        base = torch.sigmoid(dec(cond, torch.zeros(1, 2)))[0, 0]
        whole = torch.sigmoid(dec(cond, torch.tensor([[1.0, 0.0]])))[0, 0]
        half = torch.sigmoid(dec(cond, torch.tensor([[0.5, 0.0]])))[0, 0]
    assert torch.allclose(whole[:, 1:], base[:, :-1], atol=1e-5)
    xs = torch.arange(dec.side, dtype=torch.float32)
    cx = lambda m: float((m.sum(0) * xs).sum() / m.sum())  # noqa: E731
    assert abs(cx(half) - cx(base) - 0.5) < 0.05


def _shape_logits(shape: str, x: torch.Tensor, y: torch.Tensor, half: float) -> torch.Tensor:
    """Logits of the corpus renderer's shapes (t2v_core/corpus/synthetic.py) of bounding
    box half-side ``half``: 6 per pixel of signed distance inside the outline."""
    if shape == "circle":
        distance = torch.hypot(x, y) - half
    elif shape == "square":
        distance = torch.maximum(x.abs(), y.abs()) - half
    else:  # pointing up, base at the bottom of the box
        distance = torch.maximum(y - half, (2 * x.abs() - (y + half)) / 5 ** 0.5)
    return -6 * distance


@pytest.mark.parametrize("shape", ["circle", "square", "triangle"])
def test_box_reach_holds_for_every_shape_that_fills_its_box(shape):
    """Each corpus shape drawn at the size of its box reaches all four sides (no hinge
    loss), whatever its shape and sub-pixel offset; the same shape at half the box does
    not, so the loss asks for a tight box without saying which shape to draw."""
    dec = CoordDecoder(cond_dim=8, frame_side=32, channels=8)
    half = torch.tensor(4.0).view(1, 1, 1, 1)  # a small object: 8 px across
    for offset in ((0.0, 0.0), (0.3, 0.7), (0.5, 0.5), (0.75, 0.25)):
        grid = dec.grid[None] - torch.tensor(offset).view(1, 2, 1, 1)
        uv = grid / half
        tight = _shape_logits(shape, grid[:, :1], grid[:, 1:], 4.0)
        loose = _shape_logits(shape, grid[:, :1], grid[:, 1:], 2.0)
        reached = CoordDecoder.reach(tight, uv, half)
        assert reached.shape == (1, 4)
        assert float(box_reach(reached)) == 0.0, (shape, offset, reached)
        assert float(box_reach(CoordDecoder.reach(loose, uv, half))) > 0.5, (shape, offset)


def test_box_fill_tells_a_small_object_with_tails_from_one_that_fills_its_box():
    """A small square with thin tails out to the corners of a large box reaches all four
    sides, so box_reach passes it; box_fill does not, while every corpus shape drawn at the
    size of its box passes both (a triangle covers half its box, the least of the three)."""
    dec = CoordDecoder(cond_dim=8, frame_side=32, channels=8)
    half = torch.tensor(7.2).view(1, 1, 1, 1)  # a large box at 32 px
    uv = dec.grid[None] / half
    inside = (1 - uv.abs().amax(dim=1, keepdim=True)) * half

    def capped(logits):
        return torch.minimum(logits, 6 * inside)

    x, y = dec.grid[None, :1], dec.grid[None, 1:]
    for shape in ("circle", "square", "triangle"):
        tight = _shape_logits(shape, x, y, 7.2)
        assert float(box_fill(CoordDecoder.fill(capped(tight), half))) == 0.0, shape
    small = _shape_logits("square", x, y, 4.0)
    tails = -6 * ((x - y).abs() / 2 ** 0.5 - 0.3)  # a thin diagonal out to two corners
    tailed = torch.maximum(small, tails)
    assert float(box_reach(CoordDecoder.reach(tailed, uv, half))) == 0.0  # reach is fooled
    filled = CoordDecoder.fill(capped(tailed), half)
    assert float(filled) < 0.4 and float(box_fill(filled)) > 0.05, float(filled)


def test_path_reach_bounds_the_centres_and_lets_them_reach_the_corpus_range():
    """A small object's centre sits anywhere in [4, 28] of a 32-pixel corpus frame, (-0.75,
    0.75) normalised; the default reach of 0.5 cannot get there, 0.75 can."""
    ids, lengths = _batch()
    z = torch.randn(3, CFG.z_dim)
    for reach in (0.5, 0.75):
        gen = Generator(dataclasses.replace(CFG, decoder="coord", path_reach=reach))
        with torch.no_grad():  # every step pushes towards the corner
            gen.where.weight.zero_()
            gen.where.bias.fill_(3.0)
        path = gen.draw(ids, lengths, z).path
        assert float(path.abs().max()) <= reach and float(path[:, -1].abs().min()) > 0.98 * reach
    with pytest.raises(ValueError, match="path_reach"):
        Generator(dataclasses.replace(CFG, decoder="coord", path_reach=0.0))


def test_path_step_scale_scales_the_steps_and_keeps_the_start():
    """path_step_scale multiplies each frame's step, not the start: with the same weights,
    the scaled path starts where the unscaled one does, and its steps (before tanh) are the
    unscaled ones times the scale."""
    ids, lengths = _batch()
    z = torch.randn(3, CFG.z_dim)
    base = Generator(dataclasses.replace(CFG, decoder="coord", path_reach=1.0))
    scaled = Generator(dataclasses.replace(CFG, decoder="coord", path_reach=1.0, path_step_scale=0.25))
    scaled.load_state_dict(base.state_dict())
    with torch.no_grad():
        p1, p2 = base.draw(ids, lengths, z).path, scaled.draw(ids, lengths, z).path
    torch.testing.assert_close(p2[:, 0], p1[:, 0])
    s1, s2 = torch.atanh(p1).diff(dim=1), torch.atanh(p2).diff(dim=1)
    assert float(s1.abs().mean()) > 1e-3
    torch.testing.assert_close(s2, 0.25 * s1, atol=1e-4, rtol=1e-3)
    with pytest.raises(ValueError, match="path_step_scale"):
        Generator(dataclasses.replace(CFG, decoder="coord", path_step_scale=0.0))


def test_path_sum_is_the_path_before_tanh_and_the_bound_term_pulls_it_back():
    """Drawn.path_sum is what [train] bound_weight reads: the path is path_reach * tanh of
    it. A path driven into the corner (every step +3) is past bound_at, and the term's
    gradient on the steps' bias points back, where tanh's own would be ~0."""
    ids, lengths = _batch()
    z = torch.randn(3, CFG.z_dim)
    gen = Generator(dataclasses.replace(CFG, decoder="coord", path_reach=0.5))
    with torch.no_grad():
        gen.where.weight.zero_()
        gen.where.bias.fill_(3.0)
    drawn = gen.draw(ids, lengths, z)
    torch.testing.assert_close(drawn.path, 0.5 * torch.tanh(drawn.path_sum))
    assert float(drawn.path_sum.abs().min()) > 1.5
    loss = path_bound(drawn.path_sum, 1.5)
    assert float(loss) > 0
    loss.backward()
    assert bool((gen.where.bias.grad > 0).all())  # descent lowers the steps: back from the corner


def test_generator_reports_reach_only_for_the_coord_decoder():
    ids, lengths = _batch()
    gen = Generator(dataclasses.replace(CFG, decoder="coord"))
    drawn = gen.draw(ids, lengths, torch.randn(3, CFG.z_dim), reach=True)
    assert drawn.video.shape == (3, 4, 3, 16, 16) and drawn.reached.shape == (3, 4, 4)
    assert drawn.filled.shape == (3, 4) and bool(((drawn.filled > 0.5) & (drawn.filled < 1.25)).all())  # a filled box at first
    (box_reach(drawn.reached) + box_fill(drawn.filled)).backward()  # losses G can train on
    plain = gen.draw(ids, lengths, torch.randn(3, CFG.z_dim))
    assert plain.reached is None and plain.filled is None
    with pytest.raises(ValueError, match="coord"):
        Generator(dataclasses.replace(CFG, decoder="object")).draw(ids, lengths, torch.randn(3, CFG.z_dim), reach=True)


def test_look_from_words_reads_the_tokens_and_not_the_noise():
    """look = "words": what the object looks like is attention over the caption's tokens
    with learned queries, so another z moves the object elsewhere but draws the same one,
    and another caption draws another one."""
    torch.manual_seed(0)
    ids, lengths = _batch()
    gen = Generator(dataclasses.replace(CFG, decoder="coord", look="words")).eval()
    with torch.no_grad():
        *_, look_a = gen.trajectory(ids, lengths, torch.randn(3, CFG.z_dim))
        *_, look_b = gen.trajectory(ids, lengths, torch.randn(3, CFG.z_dim))
        *_, look_c = gen.trajectory(ids.flip(0), lengths.flip(0), torch.randn(3, CFG.z_dim))
    head = CFG.text_dim // CFG.attn_heads
    assert look_a[0].shape == (3, head) and look_a[1].shape == (3, CFG.text_dim - head)  # colour, form
    for a, b, c in zip(look_a, look_b, look_c, strict=True):
        assert torch.equal(a, b)
        assert not torch.allclose(a[0], a[1])  # another caption, another look
        assert torch.allclose(a, c.flip(0), atol=1e-6)  # the same captions, reordered
    with pytest.raises(ValueError, match="coord"):
        Generator(dataclasses.replace(CFG, decoder="object", look="words"))
    with pytest.raises(ValueError, match="unknown look"):
        Generator(dataclasses.replace(CFG, decoder="coord", look="sentence"))


def test_look_weights_show_which_tokens_each_look_head_reads():
    """Zero queries (the start) read every real token evenly; a head whose query matches
    one word's key reads that word. Models without look heads say so."""
    torch.manual_seed(0)
    ids, lengths = _batch()
    gen = Generator(dataclasses.replace(CFG, decoder="coord", look="parts", attn_heads=4)).eval()
    w = gen.look_weights(ids, lengths)
    assert w.shape == (3, 4, ids.shape[1])
    for i, n in enumerate(lengths.tolist()):
        assert torch.allclose(w[i, :, :n], torch.full((4, n), 1 / n))
        assert (w[i, :, n:] == 0).all()
    word = int(ids[0, 1])
    with torch.no_grad():  # head 0's first key channel: a large component along one word's vector
        u = torch.zeros(CFG.word_dim)
        u[0] = 1.0
        gen.text.embed.weight[word] = 100 * u
        gen.look_attn.k.weight.zero_()
        gen.look_attn.k.bias.zero_()
        gen.look_attn.k.weight[0] = u
        gen.look_attn.q.bias[0] = 1.0
    w = gen.look_weights(ids, lengths)
    assert w[0, 0][ids[0] == word].sum() > 0.99  # head 0 reads that word
    assert torch.allclose(w[0, 1, :6], torch.full((6,), 1 / 6))  # head 1 still reads evenly
    with pytest.raises(ValueError, match="no look heads"):
        Generator(CFG).look_weights(ids, lengths)


def test_look_content_keeps_the_look_heads_off_stop_words():
    """look_content: the look heads read a caption's content words only, evenly at the
    start; a caption of stop words alone is read whole rather than not at all. The
    trainer marks the stop words from spaCy's list."""
    ids = torch.tensor([[2, 3, 4, 5], [2, 3, 0, 0]])  # 2 and 3 are stop words below
    lengths = torch.tensor([4, 2])
    gen = Generator(dataclasses.replace(CFG, decoder="coord", look="parts", attn_heads=4,
                                        look_content=True)).eval()
    stop = torch.zeros(CFG.vocab_size, dtype=torch.bool)
    stop[[2, 3]] = True
    gen.set_stop_words(stop)
    w = gen.look_weights(ids, lengths)
    assert torch.allclose(w[0, :, 2:], torch.full((4, 2), 0.5)) and (w[0, :, :2] == 0).all()
    assert torch.allclose(w[1, :, :2], torch.full((4, 2), 0.5))  # nothing else to read
    assert "look_tokens" in gen.state_dict()  # the flags travel in the checkpoint
    with pytest.raises(ValueError, match="vocab_size"):
        gen.set_stop_words(stop[:5])
    with pytest.raises(ValueError, match="look_content"):
        Generator(dataclasses.replace(CFG, decoder="coord", look="parts", attn_heads=4)).set_stop_words(stop)
    words = ["<pad>", "<unk>", "a", "The", "small", "circle", "to", "left"]
    assert [is_stop_word(w) for w in words] == [False, False, True, True, False, False, True, False]


def test_mask_size_share_is_what_the_drawn_shape_carries_of_the_box_size():
    """The share of the drawn shapes' variance along the box size: 0 for a batch of one
    caption, in (0, 1] otherwise, and G can train it down without touching the box, whose
    size enters without gradient."""
    cfg = dataclasses.replace(CFG, decoder="coord", look="parts", attn_heads=4)
    torch.manual_seed(0)
    gen = Generator(cfg)
    with torch.no_grad():
        gen.look_attn.q.weight.normal_()
        gen.look_attn.q.bias.normal_()
        gen.coord.size.weight.normal_()  # boxes that differ between captions
    ids = torch.randint(2, cfg.vocab_size, (16, 6), generator=torch.Generator().manual_seed(1))
    lengths = torch.full((16,), 6)
    assert gen.mask_size_share(ids[:1].repeat(4, 1), lengths[:4]).item() == 0.0
    first = gen.mask_size_share(ids, lengths)
    assert 0 < first.item() <= 1
    box = gen.coord.size.weight.clone()
    opt = torch.optim.Adam(gen.parameters(), lr=1e-2)
    for _ in range(30):
        opt.zero_grad()
        gen.mask_size_share(ids, lengths).backward()
        opt.step()
    assert gen.mask_size_share(ids, lengths).item() < first.item() / 2
    assert torch.equal(gen.coord.size.weight, box)  # the box is not what gives way
    with pytest.raises(ValueError, match="parts"):
        Generator(dataclasses.replace(cfg, look="words")).mask_size_share(ids, lengths)


def test_parts_look_sets_the_box_from_one_head_and_the_shape_from_the_others():
    """look = "parts": the size head's read sets the box and nothing else, the shape heads'
    read draws the mask in box coordinates and nothing else, so a shape cannot depend on
    the size it is drawn at."""
    torch.manual_seed(0)
    cfg = dataclasses.replace(CFG, decoder="coord", look="parts", attn_heads=4)
    dec = Generator(cfg).coord
    head = cfg.text_dim // cfg.attn_heads
    assert dec.size_dim == head and dec.cond_dim == cfg.text_dim - head  # size, then shape
    cond = torch.randn(2, dec.cond_dim)
    other_size, other_shape = cond.clone(), cond.clone()
    other_size[:, :head] += 1.0
    other_shape[:, head:] += 1.0
    assert torch.equal(dec.box(cond), dec.box(other_shape))
    assert not torch.allclose(dec.box(cond), dec.box(other_size))
    with torch.no_grad():
        dec.size.weight.zero_()  # one box whatever the size read: the mask is all that is left
        assert torch.equal(dec(cond), dec(other_size))
        assert not torch.allclose(dec(cond), dec(other_shape))
    with pytest.raises(ValueError, match="attn_heads >= 3"):
        Generator(dataclasses.replace(cfg, attn_heads=2))


def test_paste_copies_a_sprite_exactly_and_cuts_what_falls_outside():
    sprite = torch.arange(2 * 1 * 3 * 3, dtype=torch.float32).view(2, 1, 3, 3)
    canvas = paste(sprite, torch.tensor([[1, 2], [-1, 0]]), 6, 5)
    assert canvas.shape == (2, 1, 6, 5)
    assert torch.equal(canvas[0, 0, 2:5, 1:4], sprite[0, 0]) and canvas[0].sum() == sprite[0].sum()
    assert torch.equal(canvas[1, 0, 0:3, 0:2], sprite[1, 0, :, 1:])  # left column cut off
    assert canvas[1].sum() == sprite[1, 0, :, 1:].sum()


def test_frame_size_must_be_a_square_power_of_two():
    with pytest.raises(ValueError, match="power of two"):
        Generator(dataclasses.replace(CFG, height=24, width=24))


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
        loss = d_loss(rv, fv, mv, "bce")
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        right, _ = disc(video, ids, lengths)
        wrong, _ = disc(video, wrong_ids, wrong_lengths)
    assert (right > wrong).all()


@pytest.mark.parametrize("kind", ["bce", "hinge"])
def test_losses_prefer_the_right_answer(kind):
    good = d_loss(torch.full((4,), 3.0), torch.full((4,), -3.0), torch.full((4,), -3.0), kind)
    bad = d_loss(torch.full((4,), -3.0), torch.full((4,), 3.0), torch.full((4,), 3.0), kind)
    assert good < bad
    assert g_loss(torch.full((4,), 3.0), kind) < g_loss(torch.full((4,), -3.0), kind)
    with pytest.raises(ValueError, match="unknown GAN loss"):
        g_loss(torch.zeros(2), "wgan")


def test_bce_is_the_minimax_objective():
    real, fake = torch.tensor([0.3, -1.2]), torch.tensor([0.5, 2.0])
    expected = -(torch.log(torch.sigmoid(real)).mean() + torch.log(1 - torch.sigmoid(fake)).mean())
    assert torch.allclose(d_loss(real, fake, None, "bce"), expected, atol=1e-6)
    assert torch.allclose(g_loss(fake, "bce"), -torch.log(torch.sigmoid(fake)).mean(), atol=1e-6)


def test_r1_penalty_is_the_squared_gradient_norm():
    x = torch.randn(2, 5, requires_grad=True)
    logits = (x * 3).sum(1)
    assert torch.allclose(r1_penalty(logits, x), torch.tensor(45.0))


def test_diversity_sensitivity_pushes_only_the_pairs_that_are_too_close():
    """Per pair and capped (DSGAN): the collapsed pair gets the whole pull, the pair already
    apart gets none. The batch-mean mode-seeking term (MSGAN) instead pulls both pairs alike,
    and less the further apart the batch is on average."""
    a = torch.tensor([[0.10, 0.10], [-0.40, 0.30]], requires_grad=True)
    b = torch.tensor([[0.11, 0.10], [0.40, -0.30]])  # pair 0 has collapsed, pair 1 is far apart
    z_a, z_b = torch.zeros(2, 4), torch.ones(2, 4)  # noise distance 1 per pair
    loss = diversity_sensitivity(a, b, z_a, z_b, tau=0.1)
    assert torch.allclose(loss, -(torch.tensor(0.005) + 0.1) / 2)
    (grad,) = torch.autograd.grad(loss, a)
    # descent lowers a[0]'s x, away from b[0]'s (0.11); no pull where they already differ by 0
    assert torch.allclose(grad[0], torch.tensor([0.25, 0.0])), grad
    assert (grad[1] == 0).all(), grad
    (grad_ms,) = torch.autograd.grad(mode_seeking(a, b, z_a, z_b), a)
    assert (grad_ms[1] != 0).all() and torch.allclose(grad_ms[0, 0].abs(), grad_ms[1, 0].abs())


def test_across_motion_keeps_only_the_start_offset_across_the_travel():
    """diversity_on = "across": two clips moving right that start 0.2 apart along x and 0.1
    apart along y differ by 0.1 across their motion, and the gradient reaches only the
    start, across the motion (the direction of travel is detached)."""
    t = torch.linspace(0, 1, 4)[None, :, None]
    a = (torch.tensor([[[-0.3, 0.1]]]) + t * torch.tensor([[[0.5, 0.0]]])).requires_grad_(True)
    b = torch.tensor([[[-0.1, 0.0]]]) + t * torch.tensor([[[0.4, 0.0]]])
    out_a, out_b = across_motion(a, b)
    assert out_a.shape == (1, 1) and torch.allclose(out_a - out_b, torch.tensor([[0.1]]))
    (grad,) = torch.autograd.grad(out_a.sum(), a)
    assert torch.allclose(grad[0, 0], torch.tensor([0.0, 1.0])) and (grad[0, 1:] == 0).all(), grad
    up = torch.tensor([[[0.05, 0.2]]]) + t * torch.tensor([[[0.0, -0.6]]])  # moving up
    out_a, out_b = across_motion(up, up + torch.tensor([0.0, 0.15]))  # 0.15 apart along the motion
    assert torch.allclose(out_a, out_b)


# decoder = "convlstm", the general generator (t2v_core/model/convlstm.py).
GENERAL = dataclasses.replace(CFG, decoder="convlstm", g_channels=8)


def _general(cfg: ModelConfig = GENERAL, seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    return Generator(cfg).eval()


def test_convlstm_draws_whole_frames_in_range_with_the_outputs_training_reads():
    gen = _general()
    ids, lengths = _batch()
    z = torch.randn(3, CFG.z_dim)
    drawn = gen.draw(ids, lengths, z)
    assert drawn.video.shape == (3, 4, 3, 16, 16)
    assert drawn.video.min() >= -1 and drawn.video.max() <= 1
    assert drawn.video.std() > 1e-3  # not a blank canvas
    assert drawn.attn.shape == (3, 4, 2, 6)  # the global attention's weights (B, T, heads, L)
    assert drawn.reached is None and drawn.filled is None and drawn.path is None and drawn.path_sum is None
    assert gen.coord is None and gen.where is None and gen.colour is None
    assert not hasattr(gen, "seed")  # no unused frame-decoder weights beside it
    video, w = gen(ids, lengths, z)
    assert torch.equal(video, drawn.video) and torch.equal(w, drawn.attn)
    with pytest.raises(ValueError, match="box"):
        gen.draw(ids, lengths, z, reach=True)
    with pytest.raises(ValueError, match="coord decoder"):
        Generator(dataclasses.replace(GENERAL, look="parts"))
    with pytest.raises(ValueError, match="convlstm decoder's ablation"):
        Generator(dataclasses.replace(CFG, spatial_attention=False))


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
    states, contexts, _, _ = gen.trajectory(ids, lengths, z, text)
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
    for name in ("convlstm.init.weight", "convlstm.cell.hidden.weight", "convlstm.cell.context.weight",
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
        states, contexts, _, _ = no_spatial.trajectory(ids, lengths, z, text)
        _, spatial_w = no_spatial.convlstm(states, contexts, *text, z, weights=True)
    assert w_ns is not None and torch.allclose(w_ns, w) and w_na is None and spatial_w is None
    assert (video - video_ns).abs().mean() > 1e-4
    assert (video - video_na).abs().mean() > 1e-4


def test_convlstm_trains_and_round_trips_through_a_checkpoint(tmp_path):
    """Two training steps with the coord-only terms off, then Text2Video.from_checkpoint
    draws exactly what the trained EMA generator draws; and the coord-only settings are
    refused for this decoder with a sentence."""
    from test_train import MODEL, TRAIN, tiny_data
    from t2v_core.checkpoints import newest_checkpoint
    from t2v_core.generate import Text2Video, to_uint8
    from t2v_core.train import train

    model = dataclasses.replace(MODEL, decoder="convlstm")
    cfg = dataclasses.replace(TRAIN, steps=2, ckpt_every=2, eval_every=0, diversity_weight=0.01,
                              diversity_on="frame", contrastive_weight=1.0, word_weight=1.0)
    data = tiny_data()
    summary = train(data, model, cfg, tmp_path / "run")
    assert summary["steps"] == 2 and np.isfinite(list(summary["final_losses"].values())).all()
    loaded = Text2Video.from_checkpoint(newest_checkpoint(tmp_path / "run"), device="cpu")
    assert loaded.model_config.decoder == "convlstm" and loaded.model_config.spatial_attention
    ckpt = torch.load(newest_checkpoint(tmp_path / "run"), weights_only=True)
    gen = Generator(loaded.model_config)
    gen.load_state_dict(ckpt["generator_ema"])
    ids, lengths = data.token_ids[:3], data.lengths[:3]
    out = loaded.generate_ids(ids, lengths, [0, 1, 2])
    z = torch.stack([torch.randn(model.z_dim, generator=torch.Generator().manual_seed(s)) for s in (0, 1, 2)])
    with torch.no_grad():
        video, _ = gen.eval()(torch.as_tensor(ids, dtype=torch.long), torch.as_tensor(lengths, dtype=torch.long), z)
    assert out.shape == (3, 4, 16, 16, 3) and np.array_equal(out, to_uint8(video))
    for bad, match in (({"box_weight": 1.0}, "box_weight"), ({"bound_weight": 1.0}, "bound_weight"),
                       ({"diversity_on": "start"}, "start position")):
        with pytest.raises(ValueError, match=match):
            train(data, model, dataclasses.replace(cfg, **bad), tmp_path / "refused")
