"""The ordinary-footage corpus: real files that decode, kinds and motions that really happen,
captions with entities, and broken rows that ingest and frames reject with a reason."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from t2v_core import video
from t2v_core.config import FramesConfig, IngestConfig
from t2v_core.corpus import footage as ff
from t2v_core.corpus.manifests import read_manifest

N, H, W, T = 24, 48, 48, 12
STEP = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, str]]]:
    manifest = ff.write_footage(tmp_path_factory.mktemp("footage"), n_videos=N, height=H, width=W, frames=T)
    with open(manifest, encoding="utf-8", newline="") as fh:
        return manifest, list(csv.DictReader(fh))


def _good(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [r for r in rows if not r["defect"]]


def _grey(manifest: Path, row: dict[str, str]) -> list[np.ndarray]:
    # Blurred so that sensor grain and codec noise do not pass for motion.
    clip = video.read_video(manifest.parent / row["video_path"]).astype(np.float32)
    return [cv2.GaussianBlur(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (5, 5), 0) for f in clip]


def _best_shift(a: np.ndarray, b: np.ndarray, r: int = 4) -> tuple[int, int]:
    """The integer (dx, dy) with b(y, x) ~ a(y - dy, x - dx): exhaustive block matching,
    which (unlike phase correlation) also locks onto a smooth gradient."""
    h, w = a.shape
    errs = {(dx, dy): float(np.abs(b[r : h - r, r : w - r] - a[r - dy : h - r - dy, r - dx : w - r - dx]).mean())
            for dx in range(-r, r + 1) for dy in range(-r, r + 1)}  # fmt: skip
    return min(errs, key=errs.__getitem__)


def _warp_error(a: np.ndarray, b: np.ndarray, angle: float, scale: float) -> float:
    """How far b is from a turned by ``angle`` degrees (counter-clockwise on screen, as
    OpenCV counts) and scaled by ``scale`` about the centre; the border is left out."""
    m = cv2.getRotationMatrix2D(((a.shape[1] - 1) / 2, (a.shape[0] - 1) / 2), angle, scale)
    warped = cv2.warpAffine(a, m, a.shape[::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return float(np.abs(warped[8:-8, 8:-8] - b[8:-8, 8:-8]).mean())


def test_manifest_columns_and_variety(corpus):
    manifest, rows = corpus
    assert list(rows[0]) == list(ff.COLUMNS) and "split" not in rows[0]
    good = _good(rows)
    assert len(good) == N
    assert len({r["scene"] for r in good}) >= 6
    assert len({r["motion"] for r in good}) >= 4
    assert len({r["tint"] for r in good}) >= 4
    assert {Path(r["video_path"]).suffix for r in good} == {".webm", ".mp4", ".avi"}
    for r in good:
        for text in (r["caption"], r["caption_2"]):
            low = text.lower()
            # kind, colour and motion are in every caption, whatever the wording
            assert r["tint"] in low, text
            assert any(n.removeprefix("a ").lower() in low for n in ff.NOUNS[r["scene"]]), text
            assert any(v in low for v in ff.VERBS[r["motion"]]), text
    assert len({r["caption"] for r in good}) >= N - 2  # free text, not one sentence per class


def test_every_good_file_decodes_to_the_declared_clip(corpus):
    manifest, rows = corpus
    for r in _good(rows):
        clip = video.read_video(manifest.parent / r["video_path"])
        assert clip.shape == (T, H, W, 3), r
        # full-frame content in the named tint: no black canvas, the tint's channel leads
        assert (clip.max(axis=3) > 25).mean() > 0.99, r
        rgb = clip.reshape(-1, 3).mean(axis=0)
        assert np.argmax(rgb) == int(np.argmax(ff.PALETTE[r["tint"]])), (r, rgb)


def test_frames_move_and_pans_zooms_rotations_go_the_stated_way(corpus):
    manifest, rows = corpus
    checked = set()
    for r in _good(rows):
        g = _grey(manifest, r)
        pairs = list(zip(g[:-1], g[1:], strict=True))
        # a static clip through these codecs differs by < 1 grey level on average (grain)
        assert min(float(np.abs(b - a).mean()) for a, b in pairs) > 1.2, r
        motion = r["motion"]
        if motion in STEP:
            shift = np.mean([_best_shift(a, b) for a, b in pairs], axis=0)
            want = np.array(STEP[motion])
            along = float(shift @ want)
            assert along > 0.8, (r, shift)  # ~1.4-2.4 px per frame at 48 px
            if r["scene"] != "stripes":  # tilted stripes: a shift along them is invisible
                assert abs(float(shift @ want[::-1])) < 0.5, (r, shift)
            # phase correlation agrees on the sign for every textured kind
            if r["scene"] != "gradient":
                win = cv2.createHanningWindow((W, H), cv2.CV_32F)
                pc = np.mean([cv2.phaseCorrelate(a, b, win)[0] for a, b in pairs], axis=0)
                assert float(np.asarray(pc) @ want) > 0.3, (r, pc)
        elif motion.startswith("zoom"):
            grow = np.mean([_warp_error(a, b, 0, np.exp(0.05)) for a, b in pairs])
            shrink = np.mean([_warp_error(a, b, 0, np.exp(-0.05)) for a, b in pairs])
            assert (grow < shrink) == (motion == "zoom_in"), (r, grow, shrink)
        elif motion.startswith("rotate"):
            cw = np.mean([_warp_error(a, b, -5, 1) for a, b in pairs])
            ccw = np.mean([_warp_error(a, b, 5, 1) for a, b in pairs])
            assert (cw < ccw) == (motion == "rotate_cw"), (r, cw, ccw)
        checked.add(motion)
    assert {"left", "right", "up", "down"} & checked and len(checked) >= 4


def test_captions_name_people_and_places(corpus):
    spacy = pytest.importorskip("spacy")
    from t2v_core.text import resolve_model_name

    nlp = spacy.load(resolve_model_name(""))
    captions = [c for r in _good(corpus[1]) for c in (r["caption"], r["caption_2"])]
    labels = [e.label_ for doc in nlp.pipe(captions) for e in doc.ents]
    assert labels.count("PERSON") >= 3 and labels.count("GPE") >= 3 and labels.count("ORG") >= 1, labels
    # the names come only from the people / places / organisations added on purpose
    assert set(labels) <= {"PERSON", "GPE", "ORG", "FAC"}, labels
    assert sum(1 for c in captions if any(p in c for p in ff.PEOPLE + ff.PLACES)) >= len(captions) // 4


def test_broken_rows_are_rejected_with_reasons(corpus, tmp_path):
    manifest, rows = corpus
    bad = {r["video_id"]: r["defect"] for r in rows if r["defect"]}
    assert set(bad.values()) == {"zero-byte file", "a text file named .webm", "cut in half by bytes",
                                 "file does not exist", "empty caption"}  # fmt: skip
    # ingest: one input row per caption; missing files and empty captions stop here
    rows_in = sum(1 + bool(r["caption_2"]) for r in rows)
    table, rejects = read_manifest(manifest, IngestConfig())
    assert table.num_rows + rejects.num_rows == rows_in
    reasons = dict(zip(rejects.column("caption_id").to_pylist(), rejects.column("reason").to_pylist(), strict=True))
    assert reasons.keys() == {"ff_missing#0", "ff_nocaption#0"}
    assert reasons["ff_missing#0"] == "video file not found"
    assert reasons["ff_nocaption#0"].startswith("empty caption")
    assert table.num_rows == 2 * N + 3
    # frames: the corpus's distinct files, as the pipeline hands them over; the undecodable
    # ones come back rejected with a reason, every good one as a clip
    seen: dict[str, tuple[str, str, str]] = {}
    for sha, vid, path in zip(*(table.column(c).to_pylist() for c in ("video_sha256", "video_id", "video_path")),
                              strict=True):  # fmt: skip
        seen.setdefault(sha, (sha, vid, path))
    cfg = FramesConfig(frames=T, height=H, width=W, workers=1)
    index = video.extract_shard(list(seen.values()), cfg, tmp_path / "clips.npy", 0)
    assert index.num_rows == len(seen) == N + 3
    out = {v: (s, why) for v, s, why in zip(*(index.column(c).to_pylist() for c in ("video_id", "status", "reason")),
                                             strict=True)}  # fmt: skip
    assert out["ff_empty"] == ("rejected", "empty file (0 bytes)")
    assert out["ff_text"] == ("rejected", "not a video: the file holds text")
    assert out["ff_truncated"][0] == "rejected" and "truncated or corrupt" in out["ff_truncated"][1]
    ok = [v for v, (s, _) in out.items() if s == "ok"]
    assert sorted(ok) == sorted(r["video_id"] for r in _good(rows))
    assert np.load(tmp_path / "clips.npy", mmap_mode="r").shape == (N, T, H, W, 3)


def test_same_seed_same_manifest(tmp_path):
    a = ff.write_footage(tmp_path / "a", n_videos=8, seed=5)
    b = ff.write_footage(tmp_path / "b", n_videos=8, seed=5)
    c = ff.write_footage(tmp_path / "c", n_videos=8, seed=6, broken=False)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    first = next(csv.DictReader(a.open(encoding="utf-8")))["video_path"]
    assert np.array_equal(video.read_video(a.parent / first), video.read_video(b.parent / first))
    assert all(not r["defect"] for r in csv.DictReader(c.open(encoding="utf-8")))
    assert not (tmp_path / "c" / "videos" / "ff_empty.mp4").exists()
    with pytest.raises(ValueError):
        ff.write_footage(tmp_path / "d", n_videos=0)
