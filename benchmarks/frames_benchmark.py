"""Frame extraction throughput against two baselines measured in the same run.

    .venv/bin/python benchmarks/frames_benchmark.py [--clips 200] [--workers 2] [--repeats 2]

Clips (generated once, cached in benchmarks/out/frames_clips-*/, which git ignores): real
captioned collections (MSR-VTT, WebVid) hold clips of about 5-30 s at 24-30 fps, hundreds
of frames of which the model samples T = 16. The default mix is 200 clips:

- length 3-10 s (uniform), 25 or 30 fps: about 36 000 frames in all, 75-300 per clip;
- sizes: 176x144 25 %, 320x240 25 %, 640x360 20 %, 640x480 10 %, 360x640 portrait 8 %,
  1280x720 12 %;
- containers: MP4 mp4v 45 %, AVI MJPEG 30 %, WebM VP8 25 % (VP8 only up to 640x480: libvpx
  writes 720p at a few frames per second here; a 720p clip drawn as VP8 becomes mp4v);
- content: a panning blurred-noise texture with a moving block, so the inter-frame codecs
  have real motion to decode. OpenCV's writer puts a keyframe every 12 frames (real web
  video: every 1-10 s), which makes seeking cheaper here than in the wild.

Three ways of turning every clip into (T, H, W, 3) frames are timed on the same files:

- naive: one process, cv2.VideoCapture(path) with FFmpeg's default decoder threads,
  read() every frame (decode + BGR conversion), cvtColor to RGB, INTER_AREA resize to HxW,
  keep the T sampled ones;
- extract_shard: this project's extractor (grab() past unsampled frames, retrieve,
  crop and resize only the T kept ones; MJPEG read as packets with only the T sampled
  ones decoded; seek = auto; cfg.workers processes);
- decode limit: grab() of every frame, no retrieve, no conversion, no resize, with the same
  number of worker processes and the same decoder settings (cfg.decode_threads) as
  extract_shard: what decoding the whole clip costs. extract_shard can beat it, as it
  decodes only the sampled frames of the MJPEG clips.

Prints videos/s and source frames/s (frames in the clips covered per second) for each, the
CPU seconds each used (less sensitive than wall time to other work on a shared machine),
and the two ratios the issue asks for: speed-up over naive (goal >= 3x on 2 cores) and time
against the decode limit (goal <= 1.5x; below 1 when seeking skips decoding). Each method
runs --repeats times and the best run counts; the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # quiet FFmpeg's tag warnings

import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from t2v_core.config import FramesConfig  # noqa: E402
from t2v_core.sampling import sample_indices  # noqa: E402
from t2v_core.video import extract_shard  # noqa: E402

# (width, height, share of the clips): phone portrait and HD among mostly small web clips
SIZES = [(176, 144, 0.25), (320, 240, 0.25), (640, 360, 0.2), (640, 480, 0.1), (360, 640, 0.08), (1280, 720, 0.12)]
# (suffix, FourCC, share of the clips)
CONTAINERS = [(".mp4", "mp4v", 0.45), (".avi", "MJPG", 0.30), (".webm", "VP80", 0.25)]
VP8_MAX_PIXELS = 640 * 480
SECONDS = (3.0, 10.0)
FPS = (25, 30)
CACHE_VERSION = 1  # bump when the clip recipe changes, so an old cache is not reused
OUT = Path(__file__).resolve().parent / "out"


# ---------------------------------------------------------------------------- clips


def clip_plan(n: int, seed: int) -> list[dict]:
    """What each clip is: name, size, fps, frame count, container. Deterministic in seed."""
    rng = np.random.default_rng(seed)
    sizes, containers = np.array([s[2] for s in SIZES]), np.array([c[2] for c in CONTAINERS])
    plan = []
    for i in range(n):
        w, h, _ = SIZES[rng.choice(len(SIZES), p=sizes / sizes.sum())]
        suffix, fourcc, _ = CONTAINERS[rng.choice(len(CONTAINERS), p=containers / containers.sum())]
        if fourcc == "VP80" and w * h > VP8_MAX_PIXELS:
            suffix, fourcc = ".mp4", "mp4v"
        fps = int(rng.choice(FPS))
        frames = int(round(rng.uniform(*SECONDS) * fps))
        plan.append({"name": f"clip{i:04d}{suffix}", "width": w, "height": h, "fps": fps,
                     "frames": frames, "fourcc": fourcc, "seed": int(rng.integers(1 << 31))})  # fmt: skip
    return plan


def write_clip(folder: str, spec: dict) -> str:
    """Write one clip, streaming frames into the writer (a 10 s 720p clip would be 830 MB as
    one array); temporary name, then rename, so a half-written clip is never cached."""
    cv2.setNumThreads(1)
    w, h, t = spec["width"], spec["height"], spec["frames"]
    rng = np.random.default_rng(spec["seed"])
    pan = 2  # pixels per frame
    noise = rng.integers(0, 256, (h, w + pan * t, 3), dtype=np.uint8)
    texture = cv2.normalize(cv2.GaussianBlur(noise, (0, 0), 3), None, 0, 255, cv2.NORM_MINMAX)
    bw, bh = max(8, w // 5), max(8, h // 5)
    path = Path(folder) / spec["name"]
    tmp = path.with_name(f".tmp-{path.name}")
    writer = cv2.VideoWriter(str(tmp), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*spec["fourcc"]), float(spec["fps"]), (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"no {spec['fourcc']} writer for {path}")
    try:
        for k in range(t):
            frame = texture[:, pan * k : pan * k + w].copy()
            x = int((w - bw) * (0.5 + 0.5 * np.sin(k / 15)))
            y = int((h - bh) * (0.5 + 0.5 * np.cos(k / 23)))
            frame[y : y + bh, x : x + bw] = (32, 64 + k % 128, 255)
            writer.write(frame)
    finally:
        writer.release()
    os.replace(tmp, path)
    return str(path)


def cached_clips(n: int, seed: int, workers: int) -> tuple[list[Path], list[dict]]:
    """The benchmark clips, written on the first run and reused after: a done-file listing
    them is written last, so an interrupted generation starts over."""
    folder = OUT / f"frames_clips-v{CACHE_VERSION}-n{n}-seed{seed}"
    done = folder / "clips.json"
    plan = clip_plan(n, seed)
    if not (done.exists() and json.loads(done.read_text()) == plan):
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            list(pool.map(write_clip, [str(folder)] * n, plan))
        done.write_text(json.dumps(plan))
        print(f"generated {n} clips in {time.perf_counter() - start:.0f} s into {folder}")
    return [folder / s["name"] for s in plan], plan


def describe(paths: list[Path], plan: list[dict]) -> None:
    frames = [s["frames"] for s in plan]
    secs = [s["frames"] / s["fps"] for s in plan]
    print(f"clips: {len(plan)}, {sum(frames)} frames ({min(frames)}-{max(frames)} per clip, "
          f"{min(secs):.1f}-{max(secs):.1f} s at 25/30 fps), {sum(p.stat().st_size for p in paths) / 1e6:.0f} MB")  # fmt: skip
    for label, key in (("size", lambda s: f"{s['width']}x{s['height']}"), ("codec", lambda s: s["fourcc"])):
        counts: dict[str, int] = {}
        for s in plan:
            counts[key(s)] = counts.get(key(s), 0) + 1
        print(f"  {label}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


# ---------------------------------------------------------------------------- methods


def naive(paths: list[Path], cfg: FramesConfig) -> int:
    """Decode and convert every frame, resize each, keep T. Returns source frames."""
    total = 0
    for p in paths:
        cap = cv2.VideoCapture(str(p))
        frames = []
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            frames.append(cv2.resize(rgb, (cfg.width, cfg.height), interpolation=cv2.INTER_AREA))
        fps = cap.get(cv2.CAP_PROP_FPS)
        cap.release()
        total += len(frames)
        keep = sample_indices(len(frames), fps, cfg)
        np.stack([frames[i] for i in keep])
    return total


def _grab_all(path: str, threads: int) -> int:
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, threads])
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


def _one_thread() -> None:
    cv2.setNumThreads(1)  # as extract_shard's workers


def decode_limit(paths: list[Path], cfg: FramesConfig) -> int:
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(cfg.workers, mp_context=ctx, initializer=_one_thread) as pool:
        return sum(pool.map(_grab_all, [str(p) for p in paths], [cfg.decode_threads] * len(paths)))


def ours(paths: list[Path], cfg: FramesConfig, out: Path) -> int:
    videos = [(f"h{i}", p.stem, str(p)) for i, p in enumerate(paths)]
    index = extract_shard(videos, cfg, out, shard=0)
    assert set(index.column("status").to_pylist()) == {"ok"}, "every benchmark clip must extract"
    return int(sum(index.column("src_frames").to_pylist()))


def _cpu() -> float:
    # this process plus its finished children (the pools are shut down inside each method)
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def best_of(repeats: int, fn, *args) -> tuple[float, float, int]:
    """(best wall seconds, CPU seconds of that run, fn's result)."""
    best, cpu, result = float("inf"), 0.0, 0
    for _ in range(repeats):
        c0, start = _cpu(), time.perf_counter()
        result = fn(*args)
        wall = time.perf_counter() - start
        if wall < best:
            best, cpu = wall, _cpu() - c0
    return best, cpu, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    cfg = FramesConfig(frames=args.frames, height=args.size, width=args.size, workers=args.workers)
    paths, plan = cached_clips(args.clips, args.seed, args.workers)
    describe(paths, plan)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        r_naive = best_of(args.repeats, naive, paths, cfg)
        r_ours = best_of(args.repeats, ours, paths, cfg, Path(tmp) / "out.npy")
        r_limit = best_of(args.repeats, decode_limit, paths, cfg)
    frames = r_ours[2]
    assert r_naive[2] == frames == r_limit[2], (r_naive[2], frames, r_limit[2])
    print(f"T={cfg.frames} {cfg.height}x{cfg.width} {cfg.resize}, seek={cfg.seek}, decode_threads={cfg.decode_threads}, "
          f"best of {args.repeats}")  # fmt: skip
    print(f"{'method':<44}{'wall s':>8}{'CPU s':>8}{'videos/s':>10}{'frames/s':>10}")
    for name, (t, cpu, _) in ((f"naive (read+convert+resize, 1 proc)", r_naive),
                              (f"extract_shard ({args.workers} workers)", r_ours),
                              (f"decode limit (grab only, {args.workers} workers)", r_limit)):  # fmt: skip
        print(f"{name:<44}{t:>8.2f}{cpu:>8.1f}{len(paths) / t:>10.1f}{frames / t:>10.0f}")
    print(f"speed-up over naive:            {r_naive[0] / r_ours[0]:.2f}x  (goal >= 3x)")
    print(f"time against the decode limit:  {r_ours[0] / r_limit[0]:.2f}x  (goal <= 1.5x)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"cores: {multiprocessing.cpu_count()} (shared with other work: expect noise)")  # fmt: skip


if __name__ == "__main__":
    main()
