"""OpenCV video reading: frame extraction, and ``read_video`` for tests and the judge.
Which frames to take and how to fit them are in t2v_core.sampling;
the writers (WebM, MP4, AVI, GIF) are in t2v_core.writers.

Frames are RGB uint8 arrays shaped (T, H, W, 3) throughout t2v; OpenCV's BGR order stays
inside this module and the writers.

Extraction (``extract_clip``, ``extract_shard``) reads real-world files: it samples T frames
(uniformly over the clip, or at a target fps from a start time), fits them to HxW by
centre-crop or letterbox, and turns every file it cannot use into a rejected row with a
reason instead of an exception. Decoded timestamps, not the container's frame count (often
duration x nominal fps), tell a truncated file from a variable-frame-rate one, and place
frames at a target fps. It decodes without wasted work: frames that are not sampled are
only ``grab()``-ed (decoded, never converted to BGR or resized), a long gap is crossed by
seeking when that is faster for the file at hand, and MJPEG streams are read as packets so
that only the sampled frames are decoded at all (by libjpeg, at reduced scale when the
target is much smaller). Large frames are box-averaged by an integer factor before the final
INTER_AREA resize.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # quiet FFmpeg's tag warnings
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from t2v_core.config import FramesConfig  # noqa: E402
from t2v_core.sampling import Rejected, check_config, fit_frame, sample_indices  # noqa: E402
from t2v_core.store import atomic_path  # noqa: E402

CLIPS_SCHEMA = pa.schema(
    [
        ("video_sha256", pa.string()),
        ("video_id", pa.string()),
        ("video_path", pa.string()),
        ("shard", pa.int32()),
        ("row", pa.int32()),  # row in the shard's .npy; -1 when rejected
        ("src_fps", pa.float64()),
        ("src_frames", pa.int64()),
        ("src_width", pa.int32()),  # upright size, after the rotation metadata is applied
        ("src_height", pa.int32()),
        ("duration_sec", pa.float64()),
        ("backend", pa.string()),
        ("status", pa.string()),  # ok | rejected
        ("reason", pa.string()),  # why it was rejected; "" when ok
    ]
)



def read_video(path: str | Path) -> np.ndarray:
    """Every frame of a video as RGB uint8 (T, H, W, 3), upright. For tests and the judge:
    it holds the whole clip in memory. A file OpenCV cannot read is a ValueError."""
    cap = _open(str(path), threads=0)
    if cap is None:
        raise ValueError(f"cannot open video {path}: {_open_failure_reason(Path(path))}")
    frames = []
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    if not frames:
        raise ValueError(f"video {path} has no decodable frames")
    return np.stack(frames)


# ---------------------------------------------------------------------------- opening


def _open(path: str, threads: int) -> cv2.VideoCapture | None:
    cap = cv2.VideoCapture()
    params = [cv2.CAP_PROP_N_THREADS, threads] if threads > 0 else []
    if not cap.open(path, cv2.CAP_FFMPEG, params) or not cap.isOpened():
        cap.release()
        return None
    # Apply the rotation metadata, so portrait phone videos come out upright. It is
    # FFmpeg's default in this build; set it anyway so a changed default cannot flip clips.
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    return cap


_SIGNATURES = (
    (lambda h: h[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide"), "MP4/QuickTime"),
    (lambda h: h[:4] == b"\x1a\x45\xdf\xa3", "Matroska/WebM"),
    (lambda h: h[:4] == b"RIFF" and h[8:12] == b"AVI ", "AVI"),
    (lambda h: h[:4] == b"OggS", "Ogg"),
    (lambda h: h[:3] == b"FLV", "FLV"),
    (lambda h: h[:6] in (b"GIF87a", b"GIF89a"), "GIF"),
)


def _open_failure_reason(path: Path) -> str:
    """Why FFmpeg could not open ``path``, as precisely as the first bytes tell."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    for matches, kind in _SIGNATURES:
        if matches(head):
            codec = _avi_fourcc(head) if kind == "AVI" else ""
            if codec:
                return f"cannot decode the AVI stream: codec {codec!r} is not supported by this OpenCV/FFmpeg build, or the file is corrupt"
            return f"cannot open the {kind} file: truncated or corrupt container, or a codec this OpenCV/FFmpeg build cannot decode"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c.isspace() for c in text):
        return "not a video: the file holds text"
    return "not a video: no known container signature (unsupported format or random bytes)"


def _avi_fourcc(head: bytes) -> str:
    """The video stream's FourCC from an AVI header ('strh' -> 'vids' + handler)."""
    i = head.find(b"strh")
    if i < 0 or head[i + 8 : i + 12] != b"vids":
        return ""
    return head[i + 12 : i + 16].decode("latin-1")


# ---------------------------------------------------------------------------- extraction


class _Reader:
    """Sequential access to one capture: grab() past unsampled frames (noting timestamps),
    retrieve() sampled ones, seek across gaps where faster for this file (seek = auto)."""

    # Until a seek has been timed, only gaps this long try one (a seek costs tens of grabs).
    FIRST_SEEK_GAP = 64

    def __init__(self, cap: cv2.VideoCapture, seek: str, fps: float = 0.0):
        self.cap, self.seek, self.fps = cap, seek, fps
        self.pos = 0  # index of the frame the next grab() returns
        self.grab_s: list[float] = []  # per-frame grab time, the cost that seeking avoids
        self.seek_s: float | None = None  # time of one seek + grab in this file
        self.last_s: float | None = None  # timestamp of the newest grabbed frame
        self.gap_s = 0.0  # the widest timestamp step between two consecutive grabbed frames
        self.steady = True  # every frame grabbed so far sat at index / fps (constant rate)

    def grab(self) -> bool:
        # Timestamps are the stream's own clock: in a variable-frame-rate (VFR) file they are
        # not index / nominal fps, and they tell a cut file (it stops early) from a VFR one.
        if not self.cap.grab():
            return False
        t = self.cap.get(cv2.CAP_PROP_POS_MSEC) / 1000
        self.steady = self.steady and not _off_clock(t, self.pos, self.fps)
        self.gap_s = self.gap_s if self.last_s is None else max(self.gap_s, t - self.last_s)
        self.pos, self.last_s = self.pos + 1, t
        return True

    def read(self, index: int) -> np.ndarray | None:
        """The BGR frame at ``index`` (>= pos), or None when the stream ends before it."""
        gap = index - self.pos
        if gap > 0 and self._should_seek(gap):
            start = time.perf_counter()
            if self.cap.set(cv2.CAP_PROP_POS_FRAMES, index) and int(self.cap.get(cv2.CAP_PROP_POS_FRAMES)) == index:
                self.pos, self.last_s = index, None  # no step across the skipped frames
                ok = self.grab()
                self.seek_s = time.perf_counter() - start
                if self.steady:  # else it landed by time x fps, which is not this index
                    return self._retrieve(ok)
            raise _SeekFailed(index)
        start = time.perf_counter()
        for _ in range(gap):
            if not self.grab():
                return None
        if gap:
            self.grab_s.append((time.perf_counter() - start) / gap)
        return self._retrieve(self.grab())

    def _retrieve(self, grabbed: bool) -> np.ndarray | None:
        if not grabbed:
            return None
        ok, frame = self.cap.retrieve()
        if not ok or frame is None:
            raise Rejected(f"frame {self.pos - 1} could not be decoded (corrupt stream)")
        return frame

    def drain(self) -> list[float]:
        """Grab to the end of the stream (pos is then its length); the timestamps grabbed."""
        return [self.last_s or 0.0 for _ in iter(self.grab, False)]

    def _should_seek(self, gap: int) -> bool:
        # OpenCV seeks to frame i at time i / fps, which is frame i only at a constant rate.
        if not self.steady:
            return False
        if self.seek != "auto":
            return self.seek == "always"
        if self.seek_s is None or not self.grab_s:
            return gap >= self.FIRST_SEEK_GAP
        # Seek when grabbing through the gap would take longer than a seek did in this file.
        return gap * float(np.median(self.grab_s)) > self.seek_s


class _SeekFailed(Exception):
    pass


def _off_clock(t: float, index: int, fps: float) -> bool:
    """Frame ``index`` at ``t`` s is off index / fps by over a quarter frame (+1 ms: ms timestamps)."""
    return fps > 0 and abs(t - index / fps) > 0.25 / fps + 1e-3


def _probe(cap: cv2.VideoCapture) -> dict[str, Any]:
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    fps = fps if math.isfinite(fps) and fps > 0 else 0.0
    count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    return {"src_fps": fps, "src_frames": int(count) if math.isfinite(count) and count > 0 else 0,
            "src_width": int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), "src_height": int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            "backend": cap.getBackendName()}  # fmt: skip


def _check_short(reader: _Reader, declared: int, info: dict[str, Any]) -> None:
    """A stream that ended (reader drained) before its declared count is kept when the
    shortfall is rounding or a variable frame rate (VFR), else Rejected with the reason."""
    n, fps, last = reader.pos, info["src_fps"], reader.last_s or 0.0
    if n == 0:
        raise Rejected(f"no frame could be decoded ({declared} declared): unsupported codec or corrupt stream")
    # Without a frame index the count is duration x nominal fps: 2% (2 frames) short is rounding.
    if n >= declared - max(2, declared // 50):
        return
    # A bigger one is a cut file, or VFR: a VFR file's nominal fps is its fastest rate (MKV,
    # WebM), so the count overshoots, yet its timestamps reach the duration where a cut file's
    # stop short. Its last frame shows up to the widest step seen; the same slack as above.
    duration = declared / fps if fps > 0 else 0.0
    if fps > 0 and last + max(reader.gap_s, 1 / fps) >= duration - max(2 / fps, duration / 50):
        info["duration_sec"] = duration
        return
    clock = f"; its timestamps stop at {last:.2f} s of {duration:.2f} s" if fps > 0 else ""
    raise Rejected(f"truncated or corrupt: the stream ended after {n} of the {declared} frames it declares{clock}")


def extract_clip(path: str, cfg: FramesConfig) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Decode one video into T frames (T, H, W, 3) RGB uint8, or None when it is rejected.

    The dict holds the source facts and outcome for the clips index: src_fps, src_frames,
    src_width, src_height, duration_sec, backend, status ("ok" / "rejected") and reason.
    Never raises for a bad file: every failure is a rejection with its reason.
    """
    info: dict[str, Any] = {
        "src_fps": 0.0, "src_frames": 0, "src_width": 0, "src_height": 0,
        "duration_sec": 0.0, "backend": "", "status": "rejected", "reason": "",
    }  # fmt: skip
    try:
        frames = _extract(Path(path), cfg, info)
    except Rejected as exc:
        info["reason"] = str(exc)
        return None, info
    except (cv2.error, OSError, MemoryError) as exc:
        info["reason"] = f"decode error: {type(exc).__name__}: {exc}".strip()
        return None, info
    info["status"] = "ok"
    return frames, info


def _extract(path: Path, cfg: FramesConfig, info: dict[str, Any]) -> np.ndarray:
    check_config(cfg)
    if not path.exists():
        raise Rejected("video file not found")
    if not path.is_file():
        raise Rejected("not a regular file")
    if path.stat().st_size == 0:
        raise Rejected("empty file (0 bytes)")
    cap = _open(str(path), cfg.decode_threads)
    if cap is None:
        raise Rejected(_open_failure_reason(path))
    try:
        info.update(_probe(cap))
        pixels = info["src_width"] * info["src_height"]
        if pixels > cfg.max_pixels:
            # Checked from the header, before a single frame is decoded.
            raise Rejected(f"resolution {info['src_width']}x{info['src_height']} exceeds max_pixels {cfg.max_pixels}")
        declared = info["src_frames"]
        if declared > 0 and _jpeg_packets(cap):
            frames = _sample_jpeg(cap, declared, info, cfg)
            if frames is not None:
                info["backend"] += "+IMDECODE"
                info["duration_sec"] = declared / info["src_fps"] if info["src_fps"] > 0 else 0.0
                return frames
            # Anything irregular (short stream, a packet libjpeg cannot read): decode it the
            # ordinary way, which knows how to reject a bad file with its reason.
            cap = _reopen(path, cfg, cap)
        if declared <= 0:
            # No usable count in the header: count by grabbing, then sample in a second pass.
            info["src_frames"] = declared = len(_Reader(cap, "never").drain())
            cap = _reopen(path, cfg, cap)
        fps = info["src_fps"]
        try:
            frames, reader = _sample(cap, sample_indices(declared, fps, cfg), info, cfg, cfg.seek)
        except _SeekFailed:
            # Seeking lands imprecisely in this file: start over and grab every frame.
            cap = _reopen(path, cfg, cap)
            frames, reader = _sample(cap, sample_indices(declared, fps, cfg), info, cfg, "never")
        if frames is None:
            _check_short(reader, declared, info)
            # The header's count was an estimate; sample again over the frames that exist.
            info["src_frames"] = reader.pos
            if cfg.sampling == "uniform":
                cap = _reopen(path, cfg, cap)
                frames, reader = _sample(cap, sample_indices(reader.pos, fps, cfg), info, cfg, "never")
        if cfg.sampling == "fps" and (frames is None or not reader.steady):
            # The frames are not (all) where index / fps puts them: place them by timestamps.
            cap = _reopen(path, cfg, cap)
            times = _Reader(cap, "never").drain()
            cap = _reopen(path, cfg, cap)
            frames, _ = _sample(cap, sample_indices(len(times), fps, cfg, times), info, cfg, "never")
        if frames is None:
            raise Rejected("the stream changed between two reads")
    finally:
        cap.release()
    if info["src_fps"] > 0 and not info["duration_sec"]:
        info["duration_sec"] = info["src_frames"] / info["src_fps"]
    assert frames.shape == (cfg.frames, cfg.height, cfg.width, 3) and frames.dtype == np.uint8
    return frames


def _reopen(path: Path, cfg: FramesConfig, old: cv2.VideoCapture) -> cv2.VideoCapture:
    old.release()  # one decoder open at a time
    cap = _open(str(path), cfg.decode_threads)
    if cap is None:
        raise Rejected("the file could be opened once but not a second time")
    return cap


def _jpeg_packets(cap: cv2.VideoCapture) -> bool:
    """Switch ``cap`` to compressed packets when its stream is MJPEG with no rotation.

    Every MJPEG frame is a self-contained JPEG, so frames that are not sampled need not be
    decoded at all: in raw mode grab() only reads the packet (microseconds instead of a
    full-size JPEG decode), and the sampled packets are decoded by libjpeg through imdecode.
    Rotation metadata is applied by FFmpeg's decoding path only, so rotated files stay on it.
    """
    fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode("latin-1")
    if fourcc != "MJPG" or cap.get(cv2.CAP_PROP_ORIENTATION_META) not in (0.0, -1.0):
        return False
    return bool(cap.set(cv2.CAP_PROP_FORMAT, -1))  # before any grab(), as raw mode requires


# libjpeg decodes straight from the DCT at 1/2, 1/4 or 1/8 scale, far cheaper than full size
_JPEG_SCALES = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2))


def _sample_jpeg(cap: cv2.VideoCapture, n_frames: int, info: dict[str, Any], cfg: FramesConfig) -> np.ndarray | None:
    """The T sampled frames from an MJPEG stream in raw mode, or None when anything is
    irregular (the caller then decodes the file the ordinary way)."""
    h, w = info["src_height"], info["src_width"]
    if h <= 0 or w <= 0:
        return None
    order = sample_indices(n_frames, info["src_fps"], cfg)
    # The scale fit_frame will apply; a reduced decode keeps at least twice the target size.
    fit = max(cfg.height / h, cfg.width / w) if cfg.resize == "crop" else min(cfg.height / h, cfg.width / w)
    k, flag = next(((k, f) for k, f in _JPEG_SCALES if k * fit <= 0.5), (1, cv2.IMREAD_COLOR))
    shape = (-(-h // k), -(-w // k))  # libjpeg rounds the scaled size up
    kept: dict[int, np.ndarray] = {}
    pos = 0  # index of the packet the next grab() reads
    for index in sorted(set(order)):
        while pos <= index:
            if not cap.grab():
                return None
            pos += 1
        ok, packet = cap.retrieve()
        if not ok or packet is None or packet.size == 0:
            return None
        if cfg.sampling == "fps" and _off_clock(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000, index, info["src_fps"]):
            return None  # a variable frame rate: the ordinary path places frames by time
        try:
            bgr = cv2.imdecode(packet, flag)
        except cv2.error:
            return None
        if bgr is None or bgr.shape[:2] != shape:
            return None
        kept[index] = fit_frame(bgr, cfg.height, cfg.width, cfg.resize)
    return np.stack([kept[i] for i in order])


def _sample(cap: cv2.VideoCapture, order: list[int], info: dict[str, Any], cfg: FramesConfig,
            seek: str) -> tuple[np.ndarray | None, _Reader]:  # fmt: skip
    """The frames at ``order`` and the reader; None when the stream ends before a sampled
    index (the reader has then grabbed to the end: pos is its length, last_s its last time)."""
    wanted = sorted(set(order))
    reader = _Reader(cap, seek, info["src_fps"])
    kept: dict[int, np.ndarray] = {}
    for index in wanted:
        bgr = reader.read(index)
        if bgr is None:
            if reader.seek_s is not None:  # seeks land by time x fps: pos may not count frames
                raise _SeekFailed(index)
            reader.drain()
            return None, reader
        if not kept:
            # The decoded frame is the truth about the upright size (rotation applied).
            info["src_height"], info["src_width"] = bgr.shape[:2]
        kept[index] = fit_frame(bgr, cfg.height, cfg.width, cfg.resize)
    return np.stack([kept[i] for i in order]), reader


# ---------------------------------------------------------------------------- shards


def _extract_task(args: tuple[str, FramesConfig]) -> tuple[np.ndarray | None, dict[str, Any]]:
    return extract_clip(*args)


def _init_worker() -> None:
    # One thread per worker process: the pool already fills the cores.
    cv2.setNumThreads(1)


def _results(paths: Sequence[str], cfg: FramesConfig) -> Iterator[tuple[np.ndarray | None, dict[str, Any]]]:
    """extract_clip over ``paths``, in input order, in-process or in a worker pool."""
    workers = max(1, min(cfg.workers, len(paths)))
    jobs: Iterable[tuple[str, FramesConfig]] = [(p, cfg) for p in paths]
    if workers == 1:
        yield from map(_extract_task, jobs)
        return
    # spawn, not fork: forking a process that holds OpenCV / FFmpeg threads can deadlock.
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker) as pool:
        yield from pool.map(_extract_task, jobs)


def extract_shard(videos: Sequence[tuple[str, str, str]], cfg: FramesConfig, out_npy: Path, shard: int,
                  progress: Callable[[int, int], None] | None = None) -> pa.Table:  # fmt: skip
    """Decode (video_sha256, video_id, video_path) triples (already unique by hash) into
    ``out_npy``: an (N, T, H, W, 3) uint8 array of the N ok clips, written under a
    temporary name and renamed. Returns one CLIPS_SCHEMA row per input, in input order;
    rejected videos get row -1 and their reason. cfg.workers processes decode (1 = in
    this process); the output does not depend on the number of workers."""
    check_config(cfg)
    out_npy = Path(out_npy)
    out_npy.parent.mkdir(parents=True, exist_ok=True)
    n = len(videos)
    shape = (cfg.frames, cfg.height, cfg.width, 3)
    staging = out_npy.with_name(f".{out_npy.name}.tmp-staging-{os.getpid()}.npy")
    rows: list[dict[str, Any]] = []
    ok_rows = 0
    try:
        # Clips stream into a memory map sized for all inputs; rejects leave a gap that the
        # compaction below closes. Nothing holds a whole shard in memory.
        big = np.lib.format.open_memmap(staging, mode="w+", dtype=np.uint8, shape=(max(n, 1), *shape))
        for i, (frames, info) in enumerate(_results([v[2] for v in videos], cfg)):
            sha, video_id, video_path = videos[i]
            row = -1
            if frames is not None:
                big[ok_rows] = frames
                row, ok_rows = ok_rows, ok_rows + 1
            rows.append({"video_sha256": sha, "video_id": video_id, "video_path": video_path,
                         "shard": shard, "row": row, **info})  # fmt: skip
            if progress is not None:
                progress(i + 1, n)
        big.flush()
        with atomic_path(out_npy) as tmp:
            if ok_rows == n and n > 0:
                os.replace(staging, tmp)  # the map stays valid: renaming keeps the inode
            elif ok_rows == 0:
                np.save(tmp, np.zeros((0, *shape), np.uint8))
            else:
                # Compact: copy the ok rows into a right-sized map, a clip at a time.
                final = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(ok_rows, *shape))
                for r in range(ok_rows):
                    final[r] = big[r]
                final.flush()
                del final
            del big
    finally:
        if staging.exists():
            staging.unlink()
    return pa.Table.from_pylist(rows, schema=CLIPS_SCHEMA) if rows else CLIPS_SCHEMA.empty_table()
