"""Video writers and frame extraction, on videos the tests write themselves with OpenCV."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from t2v_core.config import FramesConfig
from t2v_core.sampling import check_config, fit_frame, sample_indices
from t2v_core.video import CLIPS_SCHEMA, extract_clip, extract_shard, read_video
from t2v_core.writers import write_gif, write_video

CODECS = [("mp4", None), ("webm", None), ("webm", "VP90"), ("avi", None)]  # mp4v, VP8, VP9, MJPEG


def ramp(n: int, h: int, w: int) -> np.ndarray:
    """Frame i is flat grey at level 8 * i: the sampled index can be read back from pixels."""
    return np.repeat((np.arange(n, dtype=np.uint8) * 8)[:, None, None, None], h * w * 3).reshape(n, h, w, 3)


def levels(frames: np.ndarray) -> list[int]:
    """The frame indices a ramp() clip's frames came from (rounded through the codec)."""
    return [int(round(float(f.mean()) / 8)) for f in frames]


def cfg(**kw) -> FramesConfig:
    base = {"frames": 4, "height": 16, "width": 16, "workers": 1}
    return FramesConfig(**{**base, **kw})


def rotate_mp4(path: Path, degrees: int) -> None:
    """Set the display matrix of an MP4's track header, as a phone does for portrait video."""
    data = bytearray(path.read_bytes())
    i = data.find(b"tkhd")
    version = data[i + 4]
    # tkhd: version/flags, times and ids (v0: 20 bytes, v1: 32), reserved 8, layer..volume 8
    matrix = i + 8 + (32 if version == 1 else 20) + 8 + 8
    one, minus = 0x10000, (-0x10000) & 0xFFFFFFFF
    a, b, c, d = {90: (0, one, minus, 0), 180: (minus, 0, 0, minus), 270: (0, minus, one, 0)}[degrees]
    struct.pack_into(">9I", data, matrix, a, b, 0, c, d, 0, 0, 0, 0x40000000)
    path.write_bytes(bytes(data))


# ---------------------------------------------------------------------------- writers


@pytest.mark.parametrize("suffix,fourcc", CODECS)
def test_write_then_read_each_codec(tmp_path, suffix, fourcc):
    clip = ramp(12, 144, 176)  # odd QCIF size
    path = write_video(tmp_path / f"c.{suffix}", clip, 10, fourcc=fourcc)
    back = read_video(path)
    assert back.shape == clip.shape and back.dtype == np.uint8
    assert levels(back) == list(range(12))
    assert not list(tmp_path.glob(".*tmp*")), "no temporary file is left behind"


def test_a_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    """A write that fails half-way (a fault injected at the third frame, after OpenCV has
    created its file) leaves neither a result nor a temporary file, and a result already
    there stays whole."""
    import t2v_core.writers as writers

    path = write_video(tmp_path / "a.webm", ramp(4, 64, 64), 10)
    before = path.read_bytes()
    real, calls = writers.cv2.cvtColor, []

    def failing(frame, code):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(frame, code)

    monkeypatch.setattr(writers.cv2, "cvtColor", failing)
    with pytest.raises(OSError, match="disk full"):
        write_video(path, ramp(6, 64, 64), 10)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.webm"], "no temporary file is left behind"


def test_write_gif_round_trip(tmp_path):
    clip = np.zeros((3, 8, 10, 3), np.uint8)
    clip[0, ..., 0] = 255
    clip[1, ..., 1] = 255
    clip[2, ..., 2] = 255
    path = write_gif(tmp_path / "a.gif", clip, fps=5)
    img = Image.open(path)
    assert img.n_frames == 3 and img.size == (10, 8)
    assert img.info["duration"] == 200 and img.info["loop"] == 0
    for k in range(3):
        img.seek(k)
        assert np.array_equal(np.asarray(img.convert("RGB"))[0, 0], clip[k, 0, 0])
    with pytest.raises(ValueError, match="uint8"):
        write_gif(tmp_path / "b.gif", clip.astype(np.float32), fps=5)


# ---------------------------------------------------------------------------- sampling and fitting


def test_sample_indices_uniform_fps_and_short_policies():
    assert sample_indices(30, 10.0, cfg(frames=4)) == [0, 10, 19, 29]
    assert sample_indices(100, 10.0, cfg(frames=4, sampling="fps", target_fps=5.0, start_sec=1.0)) == [10, 12, 14, 16]
    assert sample_indices(3, 10.0, cfg(frames=6, short_policy="loop")) == [0, 1, 2, 0, 1, 2]
    assert sample_indices(3, 10.0, cfg(frames=6, short_policy="pad")) == [0, 1, 2, 2, 2, 2]
    # fps sampling that runs off the end: the frames it did place follow the policy
    assert sample_indices(15, 10.0, cfg(frames=4, sampling="fps", target_fps=2.0, short_policy="pad")) == [0, 5, 10, 10]


def test_fit_frame_crop_keeps_the_centre_and_letterbox_keeps_everything():
    wide = np.zeros((90, 160, 3), np.uint8)  # 16:9, BGR: blue | a centred 90x90 green square | red
    wide[:, :35] = (255, 0, 0)
    wide[:, 35:125] = (0, 255, 0)
    wide[:, 125:] = (0, 0, 255)
    crop = fit_frame(wide, 16, 16, "crop")
    assert crop.shape == (16, 16, 3)
    assert (crop == (0, 255, 0)).all()  # RGB now; exactly the green centre survives
    box = fit_frame(wide, 16, 16, "letterbox")
    assert (box[:3] == 0).all() and (box[-3:] == 0).all()  # black bars above and below
    assert box[8, 0, 2] > 200 and box[8, -1, 0] > 200  # blue at the left edge, red at the right


def test_large_downscale_stays_close_to_a_plain_area_resize():
    # fit_frame box-averages a 720p frame by an integer factor before the final INTER_AREA
    # (the cheap path); the result must stay within rounding of one INTER_AREA resize.
    rng = np.random.default_rng(0)
    frame = cv2.GaussianBlur(rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8), (0, 0), 2)
    plain = cv2.cvtColor(cv2.resize(frame[:, 280:1000], (64, 64), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    assert plain.std() > 3  # the noise survives the downscale, so the comparison means something
    diff = np.abs(fit_frame(frame, 64, 64, "crop").astype(int) - plain)
    assert diff.mean() < 1.0 and diff.max() <= 8
    boxed = np.zeros_like(plain)
    boxed[14:50] = cv2.cvtColor(cv2.resize(frame, (64, 36), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    assert np.abs(fit_frame(frame, 64, 64, "letterbox").astype(int) - boxed).max() <= 2


# ---------------------------------------------------------------------------- extract_clip


@pytest.mark.parametrize("suffix,fourcc", CODECS)
def test_extract_clip_samples_the_right_frames(tmp_path, suffix, fourcc):
    path = write_video(tmp_path / f"r.{suffix}", ramp(30, 144, 176), 10, fourcc=fourcc)
    frames, info = extract_clip(str(path), cfg(frames=4))
    assert info["status"] == "ok" and info["reason"] == ""
    assert frames.shape == (4, 16, 16, 3) and frames.dtype == np.uint8
    assert levels(frames) == [0, 10, 19, 29]
    assert info["src_frames"] == 30 and info["src_fps"] == 10.0
    assert (info["src_width"], info["src_height"]) == (176, 144)
    assert info["duration_sec"] == pytest.approx(3.0)
    # MJPEG frames are read as packets and only the sampled ones decoded, by libjpeg
    assert info["backend"] == ("FFMPEG+IMDECODE" if suffix == "avi" else "FFMPEG")


def test_mjpeg_packets_decode_like_ffmpeg_and_bad_ones_fall_back(tmp_path):
    rng = np.random.default_rng(1)
    clip = np.stack([cv2.GaussianBlur(rng.integers(0, 256, (360, 640, 3), dtype=np.uint8), (0, 0), 2) for _ in range(12)])
    clip[:, 100:200, 200:400] = (np.arange(12, dtype=np.uint8) * 20)[:, None, None, None]
    path = write_video(tmp_path / "hd.avi", clip, 25)
    frames, info = extract_clip(str(path), cfg(frames=4, height=32, width=32))
    assert info["backend"] == "FFMPEG+IMDECODE" and (info["src_width"], info["src_height"]) == (640, 360)
    # the same frames through FFmpeg's own decoder and fit_frame: decoders differ by rounding
    full = read_video(path)[[0, 4, 7, 11]]
    ref = np.stack([fit_frame(cv2.cvtColor(f, cv2.COLOR_RGB2BGR), 32, 32, "crop") for f in full])
    assert np.abs(frames.astype(int) - ref).mean() < 3
    # a cut-short MJPEG file leaves the packet path and is rejected by the ordinary one
    data = path.read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])
    frames, info = extract_clip(str(tmp_path / "cut.avi"), cfg(frames=4))
    assert frames is None and "truncated" in info["reason"]


def test_short_clip_policies_on_a_real_file(tmp_path):
    path = str(write_video(tmp_path / "short.avi", ramp(3, 64, 64), 10))
    looped, _ = extract_clip(path, cfg(frames=6, short_policy="loop"))
    padded, _ = extract_clip(path, cfg(frames=6, short_policy="pad"))
    assert levels(looped) == [0, 1, 2, 0, 1, 2]
    assert levels(padded) == [0, 1, 2, 2, 2, 2]
    frames, info = extract_clip(path, cfg(frames=6, short_policy="reject"))
    assert frames is None and info["status"] == "rejected" and "too short" in info["reason"]


def test_portrait_rotation_comes_out_upright(tmp_path):
    clip = np.zeros((4, 144, 176, 3), np.uint8)
    clip[:, :36, :44] = 255  # a white block in the top-left corner of the stored frame
    path = write_video(tmp_path / "phone.mp4", clip, 10)
    rotate_mp4(path, 90)
    frames, info = extract_clip(str(path), cfg(frames=2, height=176, width=144))
    assert (info["src_width"], info["src_height"]) == (144, 176)  # portrait
    # Turned 90 degrees clockwise for display, the block sits in the top-right corner.
    assert frames[0, :40, -30:].mean() > 200 and frames[0, :40, :30].mean() < 30
    assert read_video(path).shape == (4, 176, 144, 3)


def test_seeking_gives_the_same_frames_as_grabbing(tmp_path):
    for suffix in ("mp4", "webm", "avi"):
        # ramp() has 31 distinct levels; spread them over 240 frames for long gaps
        long = np.repeat(ramp(31, 48, 64), 8, axis=0)[:240]
        path = str(write_video(tmp_path / f"long.{suffix}", long, 25))
        out = {s: extract_clip(path, cfg(frames=5, seek=s))[0] for s in ("never", "always", "auto")}
        assert np.array_equal(out["never"], out["always"]) and np.array_equal(out["never"], out["auto"])
        assert levels(out["never"]) == [0, 7, 15, 22, 29]


def test_large_clip_is_centre_cropped(tmp_path):
    clip = np.zeros((2, 720, 1280, 3), np.uint8)
    clip[:, :, 600:680] = 255  # a white bar down the middle
    path = write_video(tmp_path / "hd.avi", clip, 25)
    frames, info = extract_clip(str(path), cfg(frames=2, height=18, width=32))
    assert (info["src_width"], info["src_height"]) == (1280, 720)
    col = frames[0].mean(axis=(0, 2))
    assert col[15:17].min() > 200 and col[:10].max() < 30 and col[-10:].max() < 30


# ---------------------------------------------------------------------------- bad input


def make_bad_inputs(tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, a word the reject reason must contain)."""
    bad: dict[str, tuple[Path, str]] = {}
    (tmp / "zero.mp4").write_bytes(b"")
    bad["zero-byte"] = (tmp / "zero.mp4", "0 bytes")
    full = write_video(tmp / "full.webm", ramp(30, 144, 176), 10).read_bytes()
    (tmp / "cut.webm").write_bytes(full[: len(full) // 2])
    bad["truncated"] = (tmp / "cut.webm", "truncated")
    (tmp / "notes.mp4").write_text("this is a text file, not a video\n" * 5)
    bad["text as .mp4"] = (tmp / "notes.mp4", "text")
    (tmp / "noise.webm").write_bytes(np.random.default_rng(0).bytes(4000))
    bad["random bytes"] = (tmp / "noise.webm", "not a video")
    bad["missing"] = (tmp / "nowhere.mp4", "not found")
    avi = bytearray(write_video(tmp / "ok.avi", ramp(5, 64, 64), 10).read_bytes())
    (tmp / "codec.avi").write_bytes(bytes(avi).replace(b"MJPG", b"QQQQ"))
    bad["unreadable codec"] = (tmp / "codec.avi", "codec 'QQQQ'")
    # A writer opened and closed without a frame: a valid AVI container holding no frames.
    cv2.VideoWriter(str(tmp / "empty.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 64)).release()
    bad["no frames"] = (tmp / "empty.avi", "no frames")
    write_video(tmp / "huge.avi", np.zeros((1, 2304, 4096, 3), np.uint8), 1)
    bad["huge"] = (tmp / "huge.avi", "exceeds max_pixels")
    return bad


def test_every_bad_input_is_a_reject_with_its_reason_and_good_clips_come_through(tmp_path):
    bad = make_bad_inputs(tmp_path)
    good = write_video(tmp_path / "good.mp4", ramp(20, 144, 176), 10)
    videos = [("h-good0", "good0", str(good))]
    videos += [(f"h-{k}", k, str(p)) for k, (p, _) in bad.items()]
    videos += [("h-good1", "good1", str(tmp_path / "ok.avi"))]
    index = extract_shard(videos, cfg(frames=4), tmp_path / "out" / "clips.npy", shard=3)
    assert index.schema == CLIPS_SCHEMA
    rows = index.to_pylist()
    assert [r["video_id"] for r in rows] == [v[1] for v in videos]  # rows in = rows out, in order
    by_id = {r["video_id"]: r for r in rows}
    for name, (_, word) in bad.items():
        r = by_id[name]
        assert r["status"] == "rejected" and r["row"] == -1, name
        assert word in r["reason"], (name, r["reason"])
    assert (by_id["good0"]["status"], by_id["good0"]["row"]) == ("ok", 0)
    assert (by_id["good1"]["status"], by_id["good1"]["row"]) == ("ok", 1)
    assert {r["shard"] for r in rows} == {3}
    clips = np.load(tmp_path / "out" / "clips.npy", mmap_mode="r")
    assert clips.shape == (2, 4, 16, 16, 3) and clips.dtype == np.uint8
    assert levels(clips[0]) == [0, 6, 13, 19] and levels(clips[1]) == [0, 1, 3, 4]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["clips.npy"]  # no temp files left


def test_huge_resolution_is_rejected_before_decoding(tmp_path):
    path = write_video(tmp_path / "hd.mp4", ramp(3, 720, 1280), 10)
    frames, info = extract_clip(str(path), cfg(max_pixels=640 * 480))
    assert frames is None and "1280x720 exceeds max_pixels" in info["reason"]


# ---------------------------------------------------------------------------- shards


@pytest.mark.slow
def test_worker_pool_output_is_identical_to_one_process(tmp_path):
    videos = []
    for i, (suffix, fourcc) in enumerate(CODECS * 2):
        h, w = [(144, 176), (96, 128), (120, 90)][i % 3]  # landscape and portrait sizes
        p = write_video(tmp_path / f"v{i}.{suffix}", ramp(10 + 3 * i, h, w), 10, fourcc=fourcc)
        videos.append((f"sha{i}", f"v{i}", str(p)))
    videos.insert(3, ("shaX", "missing", str(tmp_path / "missing.mp4")))
    seen: list[tuple[int, int]] = []
    one = extract_shard(videos, cfg(workers=1), tmp_path / "a.npy", 0)
    two = extract_shard(videos, cfg(workers=2), tmp_path / "b.npy", 0, progress=lambda d, n: seen.append((d, n)))
    assert one.equals(two)
    assert np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    assert seen == [(i + 1, len(videos)) for i in range(len(videos))]
    assert np.load(tmp_path / "a.npy", mmap_mode="r").shape[0] == len(videos) - 1


def test_empty_shard_and_all_rejected_shard(tmp_path):
    t = extract_shard([], cfg(), tmp_path / "e.npy", 0)
    assert t.num_rows == 0 and np.load(tmp_path / "e.npy").shape == (0, 4, 16, 16, 3)
    t = extract_shard([("h", "v", str(tmp_path / "none.mp4"))], cfg(), tmp_path / "r.npy", 0)
    assert t.column("status").to_pylist() == ["rejected"]
    assert np.load(tmp_path / "r.npy").shape == (0, 4, 16, 16, 3)


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="short_policy"):
        check_config(cfg(short_policy="stretch"))
    with pytest.raises(ValueError, match="target_fps"):
        check_config(cfg(sampling="fps", target_fps=0.0))


# ---------------------------------------------------------------------------- variable frame rate


# A phone-like variable-frame-rate stream: 20 frames 1/25 s apart, then 7 frames 1/5 s
# apart. Frame i starts at VFR_TIMES[i] s; the last one at 2.0 s.
VFR_STEPS = [0.04] * 20 + [0.2] * 6
VFR_TIMES = [round(sum(VFR_STEPS[:i]), 3) for i in range(27)]


def write_vfr(path: Path, noise: bool = False, times: list[float] = VFR_TIMES) -> Path:
    """ramp()-like frames (frame i at level 8 * i, mod 256) at ``times``, written by PyAV:
    lossless FFV1 in MKV or MP4, millisecond timestamps. ``noise`` fills the left half with
    random pixels, so the frames (not the headers) make up the file's bytes."""
    import av  # the dev extra's PyAV: OpenCV cannot write a variable frame rate
    from fractions import Fraction

    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        for i, t in enumerate(times):
            img = np.full((48, 64, 3), 8 * i % 256, np.uint8)
            if noise:
                img[:, :32] = rng.integers(0, 256, (48, 32, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = round(t * 1000), Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def opencv_view(path: Path) -> tuple[int, float, int]:
    """(declared frame count, nominal fps, frames actually decoded), as OpenCV sees them."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    declared, fps = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), cap.get(cv2.CAP_PROP_FPS)
    decoded = 0
    while cap.grab():
        decoded += 1
    cap.release()
    return declared, fps, decoded


def test_vfr_mkv_that_over_declares_its_frame_count_is_kept(tmp_path):
    path = write_vfr(tmp_path / "phone.mkv")
    declared, fps, decoded = opencv_view(path)
    # The bug as reported: the count is duration x nominal (fastest) fps, 2.04 s x 25, far
    # more than the 27 frames there are, beyond the slack that count rounding is allowed.
    assert decoded == 27 and fps == 25.0 and declared >= 50
    assert decoded < declared - max(2, declared // 50)
    for seek in ("never", "always", "auto"):
        frames, info = extract_clip(str(path), cfg(frames=8, seek=seek))
        assert info["status"] == "ok" and info["reason"] == "", (seek, info["reason"])
        assert frames.shape == (8, 16, 16, 3)
        # uniform over the 27 frames decoded, not the 50 declared
        assert levels(frames) == [int(i) for i in np.linspace(0, 26, 8).round()], seek
        assert info["src_frames"] == 27 and info["duration_sec"] == pytest.approx(2.04, abs=0.05)


@pytest.mark.parametrize("suffix", ["mkv", "mp4"])
def test_fps_sampling_of_a_vfr_file_follows_its_timestamps(tmp_path, suffix):
    path = write_vfr(tmp_path / f"phone.{suffix}")
    declared, fps, decoded = opencv_view(path)
    every_5th = cfg(frames=8, sampling="fps", target_fps=5.0)
    # One frame every 0.2 s: the frame on screen at 0, 0.2, ... 1.4 s.
    want = [min(range(27), key=lambda i: abs(VFR_TIMES[i] - k / 5)) for k in range(8)]
    assert want == [0, 5, 10, 15, 20, 21, 22, 23]
    if suffix == "mp4":
        # MP4 counts its frames, but OpenCV's fps is the average rate (27 / 2.04 s), so
        # index / fps would put these frames at the wrong times.
        assert declared == decoded == 27 and fps < 20
        assert sample_indices(27, fps, every_5th) != want
    frames, info = extract_clip(str(path), every_5th)
    assert info["status"] == "ok", info["reason"]
    assert levels(frames) == want
    # from 1.0 s on, at 5 fps: the six frames 0.2 s apart, then the clip ends (loop)
    frames, info = extract_clip(str(path), cfg(frames=8, sampling="fps", target_fps=5.0, start_sec=1.0))
    assert levels(frames) == [21, 22, 23, 24, 25, 26, 21, 22]
    frames, info = extract_clip(str(path), cfg(sampling="fps", target_fps=5.0, start_sec=2.5))
    assert frames is None and "past the clip's end (2.04 s)" in info["reason"]


def test_sample_indices_with_timestamps_and_a_constant_rate_file():
    c = cfg(frames=8, sampling="fps", target_fps=5.0)
    assert sample_indices(27, 25.0, c, VFR_TIMES) == [0, 5, 10, 15, 20, 21, 22, 23]
    # timestamps of a constant rate pick what index / fps picks
    even = [i / 10 for i in range(15)]
    c = cfg(frames=4, sampling="fps", target_fps=2.0, short_policy="pad")
    assert sample_indices(15, 10.0, c, even) == sample_indices(15, 10.0, c) == [0, 5, 10, 10]
    # timestamps that do not increase are no clock: index / fps it is
    assert sample_indices(15, 10.0, c, [0.0] * 15) == [0, 5, 10, 10]


def test_fps_sampling_of_constant_rate_files_is_unchanged(tmp_path):
    for suffix, fourcc in CODECS:
        path = write_video(tmp_path / f"r.{suffix}", ramp(30, 48, 64), 10, fourcc=fourcc)
        frames, info = extract_clip(str(path), cfg(sampling="fps", target_fps=5.0, start_sec=1.0))
        assert info["status"] == "ok" and levels(frames) == [10, 12, 14, 16], suffix


def test_seeking_in_a_long_vfr_file_gives_the_same_frames_as_grabbing(tmp_path):
    # 200 frames 1/25 s apart, then 100 frames 1/5 s apart. OpenCV seeks to frame i at time
    # i / 25 s, another frame in the sparse part: the reader sees it land off the clock and
    # decodes without seeking, so every seek mode gives the same frames.
    times = [i * 0.04 for i in range(200)] + [8.0 + i * 0.2 for i in range(100)]
    path = str(write_vfr(tmp_path / "long.mkv", times=times))
    assert opencv_view(Path(path))[::2] == (696, 300)  # declared (27.84 s x 25), decoded
    out = {s: extract_clip(path, cfg(frames=16, seek=s)) for s in ("never", "auto", "always")}
    for seek, (frames, info) in out.items():
        assert info["status"] == "ok" and info["src_frames"] == 300, (seek, info["reason"])
        assert np.array_equal(frames, out["never"][0]), seek
    expect = [int(i) for i in np.linspace(0, 299, 16).round()]
    assert levels(out["never"][0]) == [(8 * i % 256) // 8 for i in expect]


def test_vfr_file_cut_in_half_is_still_rejected_as_truncated(tmp_path):
    whole = write_vfr(tmp_path / "whole.mkv", noise=True)
    frames, info = extract_clip(str(whole), cfg())
    assert info["status"] == "ok", info["reason"]  # the control: whole, it is kept
    data = whole.read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[: len(data) // 2])
    declared, _, decoded = opencv_view(tmp_path / "cut.mkv")
    assert 0 < decoded < 27  # the header survives the cut, so this is a decoded, cut stream
    for sampling in ("uniform", "fps"):
        frames, info = extract_clip(str(tmp_path / "cut.mkv"), cfg(sampling=sampling, target_fps=5.0))
        assert frames is None and info["status"] == "rejected"
        assert "truncated" in info["reason"] and f"after {decoded} of the {declared} frames" in info["reason"]
        assert "timestamps stop at" in info["reason"] and "of 2.04 s" in info["reason"]
