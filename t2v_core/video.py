"""OpenCV video I/O: writers (WebM, MP4, AVI, GIF) and frame extraction.

Frames are RGB uint8 arrays shaped (T, H, W, 3) throughout t2v; OpenCV's BGR order stays
inside this module.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # quiet FFmpeg's tag warnings
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

# container suffix -> FourCC that the registry's OpenCV build writes
FOURCC = {".webm": "VP80", ".mp4": "mp4v", ".avi": "MJPG"}


def write_video(path: str | Path, frames: np.ndarray, fps: float) -> Path:
    """Write RGB uint8 frames (T, H, W, 3) to ``path``; the suffix picks the codec
    (.webm VP8, .mp4 mp4v, .avi MJPEG). Written to a temporary name, then renamed."""
    path = Path(path)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    fourcc = FOURCC.get(path.suffix.lower())
    if fourcc is None:
        raise ValueError(f"unsupported video container {path.suffix!r}; use one of {sorted(FOURCC)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), float(fps), (w, h))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot open a {fourcc} writer for {path}")
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    os.replace(tmp, path)
    return path
