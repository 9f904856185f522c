"""Batch rendering: files, the table, counts, failure isolation, atomicity and the gallery.

The generator here is a real, deterministic GenerateFn (it draws a square whose colour comes
from the prompt's hash and whose path comes from the seed), so everything downstream of it
(the writers, the table, the gallery) runs for real.
"""

from __future__ import annotations

import csv
import hashlib
import html
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from t2v_core.catalog import stable_seed
from t2v_core.config import RenderConfig
from t2v_core.render import SCHEMA, Generated, render_catalog

T, H, W = 6, 24, 24


def square_clip(prompt: str, seed: int) -> np.ndarray:
    h = hashlib.sha256(prompt.encode()).digest()
    clip = np.zeros((T, H, W, 3), np.uint8)
    for t in range(T):
        x = (seed + 3 * t) % (W - 8)
        clip[t, 8:16, x:x + 8] = (h[0] | 64, h[1] | 64, h[2] | 64)
    return clip


class SquareGenerator:
    """Refuses prompts containing 'zxqv' (like a model with no known words), raises on
    'explode', returns a wrong shape on 'misshapen'; records each batch it is given."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def __call__(self, prompts: list[str], seeds: list[int]) -> list[np.ndarray | str]:
        self.batches.append(list(prompts))
        if any("explode" in p for p in prompts):
            raise RuntimeError("boom")
        out: list[np.ndarray | str] = []
        for p, s in zip(prompts, seeds):
            if "zxqv" in p:
                out.append("no known words")
            elif "misshapen" in p:
                out.append(np.zeros((T, H, W), np.uint8))
            else:
                out.append(square_clip(p, s))
        return out


def write_csv(path: Path, rows: list[tuple]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "prompt", "seed", "samples"])
        writer.writerows(rows)
    return path


def read_table(out: Path) -> list[dict]:
    return pq.read_table(out / "renders.parquet").to_pylist()


@pytest.fixture
def cfg() -> RenderConfig:
    return RenderConfig(fps=6, batch_size=4, page_size=50)


# --------------------------------------------------------------------------- the happy path


def test_renders_videos_table_and_counts(tmp_path, cfg):
    cat = write_csv(tmp_path / "c.csv", [
        ("a", "a red circle moves up", 1, 2),
        ("b", "a blue square moves down", 2, 1),
        ("c", "", 3, 1),
        ("d", "zxqv blorf", 4, 1),
        ("e", "a white triangle moves left", "x", 1),
    ])
    out = tmp_path / "out"
    result = render_catalog(cat, out, SquareGenerator(), cfg)
    assert {k: result[k] for k in ("rows", "ok", "rejected", "failed", "videos")} == \
        {"rows": 5, "ok": 2, "rejected": 3, "failed": 0, "videos": 3}
    assert result["gallery"] == "index.html" and result["table"] == "renders.parquet"

    table = pq.read_table(out / "renders.parquet")
    assert table.schema.equals(SCHEMA)
    rows = table.to_pylist()
    assert [(r["row"], r["sample"], r["status"]) for r in rows] == [
        (1, 0, "ok"), (1, 1, "ok"), (2, 0, "ok"), (3, 0, "rejected"), (4, 0, "rejected"), (5, 0, "rejected")]
    assert [r["seed"] for r in rows[:3]] == [1, 2, 2]  # sample k draws with the row seed + k
    reasons = {r["id"]: r["reason"] for r in rows if r["status"] != "ok"}
    assert "empty prompt" in reasons["c"] and reasons["d"] == "no known words" and "seed" in reasons["e"]

    for r in rows[:3]:
        webm, gif = out / r["webm"], out / r["gif"]
        assert r["webm"].startswith("videos/") and r["webm"].endswith(".webm")
        cap = cv2.VideoCapture(str(webm))
        frames = 0
        while cap.read()[0]:
            frames += 1
        cap.release()
        assert frames == T
        with Image.open(gif) as im:
            assert im.n_frames == T and im.size == (W, H)
    assert rows[0]["webm"] != rows[1]["webm"]  # two samples of one row never share a file
    assert all(r["webm"] is None and r["gif"] is None for r in rows[3:])
    assert sorted(p.name for p in (out / "videos").iterdir()) == sorted(
        Path(r[f]).name for r in rows[:3] for f in ("webm", "gif"))


def test_gif_matches_the_clip(tmp_path, cfg):
    cat = tmp_path / "c.txt"
    cat.write_text("a green square moves right\n")
    out = tmp_path / "out"
    render_catalog(cat, out, SquareGenerator(), RenderConfig(formats=("gif",)))
    row = read_table(out)[0]
    assert row["webm"] is None and row["gif"].endswith(".gif")
    expected = square_clip("a green square moves right", stable_seed("row1"))  # no seed: the id's
    with Image.open(out / row["gif"]) as im:
        im.seek(2)
        frame = np.asarray(im.convert("RGB"))
    # GIF is palette-based: the square's colour survives to within quantisation
    assert np.abs(frame.astype(int) - expected[2].astype(int)).max() <= 8
    assert "<video" not in (out / "index.html").read_text()  # a GIF-only gallery uses <img>


def test_progress_advances_to_the_row_count(tmp_path, cfg):
    cat = tmp_path / "c.txt"
    cat.write_text("".join(f"a red circle number {i}\n" for i in range(10)))
    calls: list[tuple[int, int | None]] = []
    render_catalog(cat, tmp_path / "out", SquareGenerator(), cfg, progress=lambda d, n: calls.append((d, n)))
    assert calls[0] == (0, 10) and calls[-1] == (10, 10)
    done = [d for d, _ in calls]
    assert done == sorted(done) and len(set(done)) >= 3  # it moves in steps, batch by batch


def test_batches_never_exceed_batch_size_and_samples_straddle_batches(tmp_path):
    cat = write_csv(tmp_path / "c.csv", [("a", "first prompt", 0, 3), ("b", "second prompt", 0, 3),
                                         ("c", "third prompt", 0, 1)])
    gen = SquareGenerator()
    result = render_catalog(cat, tmp_path / "out", gen, RenderConfig(batch_size=2, formats=("gif",)))
    assert [len(b) for b in gen.batches] == [2, 2, 2, 1]
    assert (result["rows"], result["ok"], result["videos"]) == (3, 3, 7)


def test_rows_with_more_samples_than_a_batch_do_not_pile_up(tmp_path, monkeypatch):
    # 3 samples a row, batches of 2: generation must keep pace with reading (at most one
    # row behind), or the backlog of waiting samples would grow with the catalog.
    from t2v_core import catalog, render

    read = [0]

    def counting_reader(*args, **kwargs):  # the real reader, counting what it has yielded
        for row in catalog.read_catalog(*args, **kwargs):
            read[0] = row.row
            yield row

    lags = []

    def gen(prompts, seeds):
        lags.append(read[0] - int(max(p.split()[1] for p in prompts)))
        return [square_clip(p, s) for p, s in zip(prompts, seeds)]

    monkeypatch.setattr(render, "read_catalog", counting_reader)
    cat = write_csv(tmp_path / "c.csv", [(f"r{i}", f"prompt {i:02d}", 0, 3) for i in range(1, 21)])
    result = render_catalog(cat, tmp_path / "out", gen, RenderConfig(batch_size=2, formats=("gif",)))
    assert result["videos"] == 60 and len(lags) == 30
    assert max(lags) <= 1


def test_largest_seed_plus_sample_fits_the_table(tmp_path):
    cat = write_csv(tmp_path / "c.csv", [("a", "some prompt", 2**62, 3)])
    out = tmp_path / "out"
    result = render_catalog(cat, out, SquareGenerator(), RenderConfig(formats=("gif",)))
    assert result["ok"] == 1
    assert [r["seed"] for r in read_table(out)] == [2**62, 2**62 + 1, 2**62 + 2]


# --------------------------------------------------------------------------- failures


def test_one_failing_prompt_fails_alone(tmp_path, cfg):
    cat = write_csv(tmp_path / "c.csv", [
        ("a", "fine one", 0, 1), ("b", "explode now", 0, 1), ("c", "fine two", 0, 1),
        ("d", "misshapen thing", 0, 1), ("e", "zxqv", 0, 1),
    ])
    out = tmp_path / "out"
    result = render_catalog(cat, out, SquareGenerator(), cfg)
    assert (result["rows"], result["ok"], result["rejected"], result["failed"]) == (5, 2, 1, 2)
    status = {r["id"]: (r["status"], r["reason"]) for r in read_table(out)}
    assert status["a"] == ("ok", "") and status["c"] == ("ok", "")
    assert status["b"] == ("failed", "generate failed: RuntimeError: boom")
    assert status["d"][0] == "failed" and "not a uint8 (T, H, W, 3) clip" in status["d"][1]
    assert status["e"] == ("rejected", "no known words")
    assert [p["id"] for p in result["problems"]] == ["b", "d", "e"]


def test_a_row_with_one_failed_sample_counts_as_failed(tmp_path):
    def gen(prompts, seeds):
        return ["" if s == 1 else square_clip(p, s) for p, s in zip(prompts, seeds)]

    cat = write_csv(tmp_path / "c.csv", [("a", "some prompt", 0, 3)])
    result = render_catalog(cat, tmp_path / "out", gen, RenderConfig(formats=("gif",)))
    # an empty reason is still a refusal, and the row takes its worst sample's status
    assert (result["rows"], result["ok"], result["rejected"], result["videos"]) == (1, 0, 1, 2)


def test_interrupted_run_leaves_no_table(tmp_path, cfg):
    class Stop(BaseException):  # not an Exception: the renderer must not swallow it
        pass

    calls = []

    def gen(prompts, seeds):
        calls.append(len(prompts))
        if len(calls) == 2:
            raise Stop()
        return [square_clip(p, s) for p, s in zip(prompts, seeds)]

    cat = tmp_path / "c.txt"
    cat.write_text("".join(f"prompt {i}\n" for i in range(12)))
    out = tmp_path / "out"
    with pytest.raises(Stop):
        render_catalog(cat, out, gen, cfg)
    leftovers = sorted(p.name for p in out.iterdir())
    assert leftovers == ["videos"]  # no renders.parquet, no temp file, no gallery
    assert not any(".tmp-" in p.name for p in (out / "videos").iterdir())


def test_bad_config_is_a_clear_error(tmp_path):
    cat = tmp_path / "c.txt"
    cat.write_text("x\n")
    with pytest.raises(ValueError, match="formats"):
        render_catalog(cat, tmp_path / "o", SquareGenerator(), RenderConfig(formats=("mov",)))
    with pytest.raises(ValueError, match="batch_size"):
        render_catalog(cat, tmp_path / "o", SquareGenerator(), RenderConfig(batch_size=0))
    with pytest.raises(FileNotFoundError):
        render_catalog(tmp_path / "nope.csv", tmp_path / "o", SquareGenerator(), RenderConfig())


# --------------------------------------------------------------------------- hostile ids


def test_hostile_ids_stay_inside_the_output_folder(tmp_path, cfg):
    ids = ["../../etc/x", "/etc/passwd", "..", "a/../../b", "x" * 3000, "-rf", "C:\\evil"]
    work = tmp_path / "work"
    cat = write_csv(tmp_path / "c.csv", [(i, f"prompt {n}", n, 1) for n, i in enumerate(ids)])
    out = work / "a" / "out"
    result = render_catalog(cat, out, SquareGenerator(), cfg)
    assert result["ok"] == len(ids)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    # besides the catalog, every file lies in out/ (videos directly inside out/videos)
    assert all(p == cat or p.resolve().is_relative_to(out.resolve()) for p in written)
    videos = [p for p in written if p.suffix in (".webm", ".gif")]
    assert len(videos) == 2 * len(ids) and all(p.parent == out / "videos" for p in videos)
    assert {r["id"] for r in read_table(out)} == set(ids)  # the table keeps the ids verbatim


# --------------------------------------------------------------------------- the gallery


def test_gallery_escapes_prompts_lists_rejects_and_paginates(tmp_path):
    evil = '<script>alert("x")</script> & a square'
    rows = [(f"r{i}", f"prompt {i}", i, 1) for i in range(5)] + [
        ("evil", evil, 9, 1), ("empty", "", 1, 1), ("unk", "zxqv", 1, 1)]
    cat = write_csv(tmp_path / "c.csv", rows)
    out = tmp_path / "out"
    result = render_catalog(cat, out, SquareGenerator(), RenderConfig(page_size=4, formats=("webm", "gif")))
    assert result["pages"] == ["index.html", "page-2.html"]
    index = (out / "index.html").read_text()
    page2 = (out / "page-2.html").read_text()
    assert "<script>alert" not in index + page2
    assert html.escape(evil) in page2  # the sixth video lands on page 2
    assert index.count('<figure class="card">') == 4 and page2.count('<figure class="card">') == 2
    assert 'href="page-2.html"' in index and 'href="index.html"' in page2
    # every ok video has a WebM source and a GIF fallback, with paths that exist
    for r in read_table(out):
        if r["status"] == "ok":
            assert f'<source src="{r["webm"]}" type="video/webm">' in index + page2
            assert f'<img src="{r["gif"]}"' in index + page2
    assert "autoplay loop muted playsinline" in index
    # the problem rows are listed with their reasons on the first page
    assert "empty prompt" in index and "no known words" in index and "zxqv" in index


def test_many_problems_get_their_own_pages(tmp_path):
    cat = tmp_path / "c.txt"
    cat.write_text("".join(f"zxqv {i}\n" for i in range(7)) + "one good prompt\n")
    out = tmp_path / "out"
    result = render_catalog(cat, out, SquareGenerator(), RenderConfig(page_size=3, formats=("gif",)))
    assert result["pages"] == ["index.html", "problems-1.html", "problems-2.html", "problems-3.html"]
    index = (out / "index.html").read_text()
    assert index.count("<tr class=") == 3 and 'href="problems-1.html"' in index
    listed = sum((out / p).read_text().count("<tr class=") for p in result["pages"][1:])
    assert listed == 7


# --------------------------------------------------------------------------- a real model


@pytest.fixture(scope="module")
def tiny_model():
    import torch

    from t2v_core.config import ModelConfig
    from t2v_core.generate import Text2Video
    from t2v_core.model import Generator

    vocab = ["<pad>", "<unk>", "a", "red", "blue", "circle", "square", "moves", "up", "down"]
    torch.manual_seed(0)
    cfg = ModelConfig(frames=4, height=16, width=16, word_dim=8, vocab_size=len(vocab), text_dim=8,
                      z_dim=4, hidden=16, g_channels=4, d_channels=4, attn_heads=2, finetune_words=False)
    return Text2Video(Generator(cfg), vocab, torch.device("cpu"), max_len=8)


@pytest.fixture(scope="module")
def tokenizer():
    from t2v_core.text import load_tokenizer, resolve_model_name

    return load_tokenizer(resolve_model_name(""))


def test_make_generate_fn_with_a_tiny_model(tmp_path, tiny_model, tokenizer):
    from t2v_core.render import make_generate_fn

    gen = make_generate_fn(tiny_model)
    prompts = ["A red circle moves up.", "   ", "zxqv blorf", "a blue square moves down", "A red circle moves up."]
    out = gen(prompts, [1, 1, 1, 2, 1])
    assert out[1] == "empty prompt"
    assert all(isinstance(out[i], Generated) for i in (0, 2, 3, 4))
    assert out[2].clip is None and out[2].reason == "no known words (zxqv, blorf)"
    clip = out[0].clip
    assert clip.shape == (4, 16, 16, 3) and clip.dtype == np.uint8 and out[0].unknown_words == ()
    np.testing.assert_array_equal(clip, out[4].clip)  # same prompt and seed, same video
    assert not np.array_equal(clip, out[3].clip)

    cat = tmp_path / "c.txt"
    cat.write_text("a red circle moves up\nzxqv blorf\na blue square moves down\n")
    result = render_catalog(cat, tmp_path / "out", gen, RenderConfig(batch_size=2))
    assert (result["rows"], result["ok"], result["rejected"], result["videos"]) == (3, 2, 1, 2)


def test_unknown_words_column_warning_and_reject(tmp_path, tiny_model, tokenizer, caplog):
    """Issue 29: the words the encoder maps to <unk> (id 1), in the token form it reads, each
    once; a warning; the gallery shows them; a prompt of nothing else stays rejected."""
    from t2v_core.embeddings import UNK_ID, encode_tokens, prompt_tokens
    from t2v_core.render import make_generate_fn

    prompts = ["a red circle moves up", "A large red square is rising, rising!", "zxqv blorf",
               "a blue square moves down slowly"]
    cat = write_csv(tmp_path / "c.csv", [(f"p{i}", p, 7, 1) for i, p in enumerate(prompts)])
    gen = make_generate_fn(tiny_model)
    with caplog.at_level("WARNING", logger="t2v_core.render"):
        result = render_catalog(cat, tmp_path / "out", gen, RenderConfig(batch_size=2, formats=("gif",)))
    rows = read_table(tmp_path / "out")
    got = {r["id"]: (r["status"], r["unknown_words"]) for r in rows}
    assert got == {"p0": ("ok", []), "p1": ("ok", ["large", "is", "rising"]),
                   "p2": ("rejected", ["zxqv", "blorf"]), "p3": ("ok", ["slowly"])}
    assert "no known words" in next(r["reason"] for r in rows if r["id"] == "p2")
    # exactly what the encoder maps to UNK_ID
    tokens = prompt_tokens(tokenizer, prompts, "lower")
    ids, _, _ = encode_tokens(tokens, tiny_model.vocab, 16)
    for words, row_ids, r in zip(tokens, ids, rows):
        assert set(r["unknown_words"]) == {w for w, i in zip(words, row_ids) if i == UNK_ID}
    assert result["with_unknown_words"] == 3 and (result["ok"], result["rejected"]) == (3, 1)
    warning = " ".join(m for m in caplog.messages)
    assert "3 of 4 prompts have words the model does not know" in warning and "rising" in warning
    index = (tmp_path / "out" / "index.html").read_text()
    assert "unknown: large, is, rising" in index and "unknown: slowly" in index
    assert "3 prompts with words the model does not know" in index
    assert (tmp_path / "out" / "catalog.csv").read_bytes() == cat.read_bytes()  # what it rendered


# --------------------------------------------------------------------------- the flow and the CLI


@pytest.fixture
def trained_workspace(tmp_path, tiny_model):
    """A workspace whose one training run is the tiny model, committed as the store does."""
    import dataclasses

    from t2v_core.checkpoints import save_checkpoint
    from t2v_core.store import ArtifactStore

    store = ArtifactStore(tmp_path / "ws")
    writer = store.open("train", "77aa77aa77aa77aa")
    vocab = sorted(tiny_model.vocab, key=tiny_model.vocab.get)
    save_checkpoint({"model_config": dataclasses.asdict(tiny_model.model_config), "vocab": vocab, "max_len": 8,
                     "generator": tiny_model.generator.state_dict()}, writer.file("ckpt-000001.pt"))
    writer.commit()
    return store


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_typed_prompts_render_and_repeat_as_a_cache_hit(trained_workspace, monkeypatch):
    """Issue 29: prompts typed into the run form; their seeds derive from their text; the
    same prompts again are the same catalog and render key; without T2V_GALLERY_URL the
    artifact falls back to the gallery's file path."""
    from flows.render import render_catalog_flow

    monkeypatch.delenv("T2V_GALLERY_URL", raising=False)
    ws = str(trained_workspace.root)
    prompts = ["a red circle moves up", "a blue square is rising", "zxqv blorf"]
    first = render_catalog_flow(prompts=prompts, profile="tiny", workspace=ws)
    again = render_catalog_flow(prompts=list(prompts), profile="tiny", workspace=ws)
    assert first["render"]["key"] == again["render"]["key"] and again["render"]["cached"]
    assert first["gallery_url"] == "" and first["gallery"].endswith("index.html")
    counts = first["counts"]
    assert (counts["rows"], counts["ok"], counts["rejected"], counts["with_unknown_words"]) == (3, 2, 1, 2)
    rows = pq.read_table(Path(first["render"]["path"]) / "renders.parquet").to_pylist()
    assert [r["seed"] for r in rows] == [stable_seed(p) for p in prompts]
    assert rows[1]["unknown_words"] == ["is", "rising"]
    with pytest.raises(ValueError, match="not both"):
        render_catalog_flow(catalog=first["gallery"], prompts=prompts, profile="tiny", workspace=ws)
    with pytest.raises(ValueError, match="nothing to render"):
        render_catalog_flow(prompts=["  "], profile="tiny", workspace=ws)


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_t2v_render_counts_prompts_with_unknown_words(trained_workspace, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from flows.cli import app

    monkeypatch.delenv("T2V_GALLERY_URL", raising=False)
    cat = tmp_path / "c.txt"
    cat.write_text("a red circle moves up\na large red square is rising\nzxqv blorf\n")
    result = CliRunner().invoke(app, ["render", str(cat), "-p", "tiny", "-w", str(trained_workspace.root)])
    assert result.exit_code == 0, result.output
    assert "3 prompts: 2 ok, 1 rejected, 0 failed; 2 videos; 2 with unknown words" in result.output
    assert "warning: the model does not know some words" in result.output
    assert "Gallery page: " in result.output and "index.html" in result.output
