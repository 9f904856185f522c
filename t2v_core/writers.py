"""Video writers: WebM (VP8), MP4 (mp4v) and AVI (MJPEG) through OpenCV, GIF through
Pillow. Frames are RGB uint8 (T, H, W, 3); every file is written under a temporary name
and renamed, so no half-written file is ever read as a result."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # quiet FFmpeg's tag warnings
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from t2v_core.store import atomic_path  # noqa: E402

# container suffix -> FourCC that the registry's OpenCV build writes
FOURCC = {".webm": "VP80", ".mp4": "mp4v", ".avi": "MJPG"}

# OpenCV's FFmpeg backend prints "tag 'VP80' is not supported with codec id 139" to the C
# stderr for every WebM it opens, then writes VP8 correctly anyway. Thousands of those lines
# bury real errors in a corpus or catalog run, so that one call has its stderr muted.
_NOISY_FOURCC = {"VP80", "VP90"}
_STDERR_LOCK = threading.Lock()


@contextmanager
def _quiet_stderr(active: bool) -> Iterator[None]:
    if not active:
        yield
        return
    with _STDERR_LOCK:
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)


def write_video(path: str | Path, frames: np.ndarray, fps: float, *, fourcc: str | None = None) -> Path:
    """Write RGB uint8 frames (T, H, W, 3) to ``path``; the suffix picks the codec
    (.webm VP8, .mp4 mp4v, .avi MJPEG) unless ``fourcc`` names one (e.g. "VP90").
    Written to a temporary name, then renamed."""
    path = Path(path)
    _check_frames(frames)
    fourcc = fourcc or FOURCC.get(path.suffix.lower())
    if fourcc is None:
        raise ValueError(f"unsupported video container {path.suffix!r}; use one of {sorted(FOURCC)}")
    h, w = frames.shape[1:3]
    with atomic_path(path) as tmp:  # a failure anywhere below leaves neither file behind
        with _quiet_stderr(fourcc in _NOISY_FOURCC):
            writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), float(fps), (w, h))
        if not writer.isOpened():
            raise RuntimeError(f"OpenCV cannot open a {fourcc} writer for {path}")
        try:
            for frame in frames:
                writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        finally:
            writer.release()
    return path


def write_gif(path: str | Path, frames: np.ndarray, fps: float) -> Path:
    """Write RGB uint8 frames (T, H, W, 3) as a looping GIF through Pillow, atomically.
    GIF keeps 256 colours per frame, so pixel values come back approximately."""
    path = Path(path)
    _check_frames(frames)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    images = [Image.fromarray(f) for f in frames]
    with atomic_path(path) as tmp:
        images[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=max(1, round(1000 / fps)),  # milliseconds per frame
            loop=0,  # loop forever, as a preview should
        )
    return path


def _check_frames(frames: np.ndarray) -> None:
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"frames must be uint8 (T, H, W, 3) with T >= 1, got {frames.dtype} {frames.shape}")
