"""A small corpus of ordinary footage: real video files for tests and for the "train on your
own videos" walkthrough.

Each clip is full-frame textured content, tinted one named colour, moving one way: a
checkerboard, stripes, a smooth gradient, a noise texture, concentric rings, a Game-of-Life
board, a Julia-set fractal or a scrolling "screen recording"; panning left / right / up /
down (the content moves that way on screen), zooming in / out, rotating, or evolving in
place. Captions are free text in varied wording; every one names the kind, the colour and the
motion, and many also name a person, a place or an organisation, as people caption their
own footage.

It is what a user's manifest looks like, not a benchmark: there is no ground-truth judge, so
only the generic metrics apply. The ``scene``, ``motion`` and ``tint`` columns describe each
clip; they are deliberately not named like the Moving Shapes attributes (colour, shape, size,
direction), so that nothing mistakes them for a judge's ground truth.
With ``broken=True`` a few bad rows (empty, text, truncated and missing files, an empty
caption) show how ingest and frames reject input with a reason.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from t2v_core.store import atomic_write_bytes, atomic_write_text
from t2v_core.writers import write_video

# Mid-saturation tints: a dark and a light shade of each stay recognisably that colour.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (215, 40, 40), "green": (40, 165, 60), "blue": (40, 80, 215),
    "yellow": (225, 195, 35), "purple": (135, 55, 185), "orange": (235, 125, 30),
}  # fmt: skip
PANS, ROTATIONS, ZOOMS = ("left", "right", "up", "down"), ("rotate_cw", "rotate_ccw"), ("zoom_in", "zoom_out")
# The motions each kind can show visibly (stripes would hide a pan along them, so the
# renderer turns them across the motion; a page only scrolls vertically).
SCENES: dict[str, tuple[str, ...]] = {
    "checkerboard": PANS + ROTATIONS + ZOOMS,
    "stripes": PANS + ROTATIONS,
    "gradient": PANS,
    "noise": PANS + ZOOMS + ROTATIONS,
    "rings": PANS + ZOOMS,
    "cells": ("evolve",),
    "fractal": ZOOMS + ROTATIONS + ("evolve",),
    "screen": ("up", "down"),
}
NOUNS: dict[str, tuple[str, ...]] = {  # "a " marks a countable noun phrase
    "checkerboard": ("a checkerboard", "a checkered pattern", "a chessboard pattern"),
    "stripes": ("stripes", "a striped pattern", "parallel bands"),
    "gradient": ("a gradient", "a smooth colour gradient", "a soft gradient"),
    "noise": ("a noise texture", "grainy noise", "a cloudy noise texture"),
    "rings": ("concentric rings", "a ring pattern", "circles inside circles"),
    "cells": ("a Game of Life pattern", "a cellular automaton", "a grid of living cells"),
    "fractal": ("a fractal", "a Julia set fractal", "a fractal pattern"),
    "screen": ("a screen recording", "a page of text", "a document on screen"),
}
VERBS: dict[str, tuple[str, ...]] = {
    **{d: (f"drifting {d}", f"sliding {d}", f"moving {d}ward", f"panning {d}", f"scrolling {d}") for d in PANS},
    "zoom_in": ("zooming in", "growing as the camera zooms in", "zooming in closer"),
    "zoom_out": ("zooming out", "shrinking as the camera zooms out", "receding as it zooms out"),
    "rotate_cw": ("rotating clockwise", "turning clockwise", "spinning clockwise"),
    "rotate_ccw": ("rotating counterclockwise", "turning anticlockwise", "spinning counter-clockwise"),
    "evolve": ("evolving in place", "changing in place without moving", "shifting and evolving in place"),
}
PEOPLE = ("Maria Santos", "John Smith", "Priya Patel", "Ahmed Hassan", "David Kim", "Emma Johnson",
          "Carlos Rivera", "Sophie Martin", "Kenji Watanabe", "Olivia Brown", "Lucas Weber", "Anna Kowalski")
PLACES = ("Lisbon", "Tokyo", "Paris", "Seoul", "Berlin", "London", "Chicago", "New York", "Madrid",
          "Warsaw", "Cairo", "Toronto")
LANDMARKS = {"the Louvre": "Paris", "the Eiffel Tower": "Paris", "the Golden Gate Bridge": "San Francisco",
             "the Brooklyn Bridge": "New York", "the Sydney Opera House": "Sydney", "the British Museum": "London"}
ORGS = ("the BBC", "NASA", "Reuters", "National Geographic", "the Associated Press")
PLAIN = ("{o}", "footage of {o}", "a clip of {o}", "video of {o}")
NAMED = (  # {p} person, {g} city, {f} landmark in {fg}, {r} organisation, {o} the clip itself
    "{o}, filmed by {p} in {g}", "{p} filmed {o} in {g}", "Shot by {p} at {f}: {o}",
    "{o}, recorded by {p} at {f} in {fg}", "{p}'s video from {g}: {o}", "{o}, captured in {g}",
    "close-up of {o}, taken by {p}", "{o}, shot by {p} for {r}", "{r} footage from {g}: {o}",
)
CONTAINERS = ("webm", "mp4", "avi")
BROKEN = (("empty", "mp4", "zero-byte file"), ("text", "webm", "a text file named .webm"),
          ("truncated", "mp4", "cut in half by bytes"), ("missing", "avi", "file does not exist"))
COLUMNS = ("video_id", "video_path", "caption", "caption_2", "scene", "motion", "tint", "defect")
Pattern = Callable[[np.ndarray, np.ndarray, int], np.ndarray]  # (X, Y, frame) -> [0, 1]


def _world_coords(motion: str, h: int, w: int, t: int, speed: float) -> tuple[np.ndarray, np.ndarray]:
    """Where each pixel of frame t looks in the pattern's world (origin at the centre).
    Content moves the stated way on screen: pixel u shows world point u - shift(t)."""
    v, u = np.mgrid[:h, :w].astype(np.float32)
    u, v = u - (w - 1) / 2, v - (h - 1) / 2
    if motion in PANS:
        dx, dy = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}[motion]
        return u - dx * speed * t, v - dy * speed * t
    if motion in ZOOMS:
        scale = np.exp((0.05 if motion == "zoom_in" else -0.05) * t)  # x1.7 over 12 frames
        return u / scale, v / scale
    if motion in ROTATIONS:
        # Image y points down, so a positive angle here turns the content clockwise.
        a = np.deg2rad(5.0 * t) * (1 if motion == "rotate_cw" else -1)
        return np.cos(a) * u + np.sin(a) * v, -np.sin(a) * u + np.cos(a) * v
    return u, v


def _sample_wrapped(tex: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # Textures tile, so a pan never runs off their edge.
    th, tw = tex.shape
    return cv2.remap(tex, np.mod(x, tw).astype(np.float32), np.mod(y, th).astype(np.float32),
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)  # fmt: skip


def _pattern(scene: str, motion: str, h: int, w: int, rng: np.random.Generator) -> Pattern:
    """A per-video pattern: its parameters (period, phase, texture, seed board) are drawn
    once here, so the content is fixed and only the motion changes it."""
    size = float(min(h, w))
    if scene == "checkerboard":
        p = size * rng.uniform(0.16, 0.28)
        return lambda x, y, t: 0.5 + 0.5 * np.tanh(4 * np.sin(np.pi * x / p) * np.sin(np.pi * y / p))
    if scene == "stripes":
        # Across the motion for pans (a pan along stripes would be invisible), tilted a little.
        theta = (np.pi / 2 if motion in ("up", "down") else 0.0) + rng.uniform(-0.25, 0.25)
        p, c, s = size * rng.uniform(0.2, 0.35), np.cos(theta), np.sin(theta)
        return lambda x, y, t: (0.5 + 0.35 * np.tanh(3 * np.sin(2 * np.pi * (x * c + y * s) / p))
                                + 0.15 * np.sin(6 * np.pi * (x * c + y * s) / p))  # fmt: skip
    if scene == "gradient":
        L, phi = size * rng.uniform(0.8, 1.2), rng.uniform(0, 2 * np.pi, 2)
        return lambda x, y, t: 0.5 + 0.25 * (np.sin(2 * np.pi * x / L + phi[0]) + np.sin(2 * np.pi * y / L + phi[1]))
    if scene == "noise":
        # 1/f-ish noise made in the Fourier domain tiles seamlessly.
        n = 64
        f = np.hypot(*np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n)))
        tex = np.fft.ifft2(np.fft.fft2(rng.normal(size=(n, n))) / (1 + (f / 0.06) ** 2)).real
        tex = ((tex - tex.min()) / np.ptp(tex)).astype(np.float32)
        return lambda x, y, t: _sample_wrapped(tex, x, y)
    if scene == "rings":
        p, cx, cy = size * rng.uniform(0.12, 0.2), *rng.uniform(-0.15, 0.15, 2) * size
        return lambda x, y, t: 0.5 + 0.5 * np.tanh(3 * np.sin(2 * np.pi * np.hypot(x - cx, y - cy) / p))
    if scene == "cells":
        return _life(rng, size)
    if scene == "fractal":
        c0 = rng.choice([-0.8 + 0.156j, -0.4 + 0.6j, -0.835 - 0.2321j, -0.70176 - 0.3842j])
        wobble = 0.1 if motion == "evolve" else 0.0  # evolve: the Julia constant circles near c0

        def julia(x: np.ndarray, y: np.ndarray, t: int) -> np.ndarray:
            z, c = (x + 1j * y) * (2.6 / size), c0 + wobble * (np.exp(0.3j * t) - 1)
            count = np.zeros(z.shape, np.float32)
            for _ in range(24):
                alive = np.abs(z) <= 4
                z = np.where(alive, z * z + c, z)
                count += alive
            # Smooth escape time in soft cyclic bands: contrast everywhere, not only at the set.
            smooth = count + 1 - np.log2(np.log(np.maximum(np.abs(z), 4.0)) / np.log(4.0))
            return np.where(count >= 24, 0.1, 0.5 + 0.5 * np.cos(0.8 * smooth))

        return julia
    if scene == "screen":
        # A light page with dark word blocks on lines; twice the frame tall so it tiles.
        page = np.full((2 * h, w), 0.92, np.float32)
        for top in range(3, 2 * h - 4, 6):
            col = int(rng.integers(2, 6))
            while col < w - 4 and rng.random() < 0.93:
                end = min(w - 2, col + int(rng.integers(3, 10)))
                page[top : top + 3, col:end] = 0.15
                col = end + 2
        return lambda x, y, t: _sample_wrapped(page, x + (w - 1) / 2, y + (h - 1) / 2)
    raise ValueError(f"unknown scene {scene!r}; expected one of {list(SCENES)}")


def _life(rng: np.random.Generator, size: float) -> Pattern:
    g, cell = 16, size / 16
    boards = [rng.random((g, g)) < 0.35]

    def at(x: np.ndarray, y: np.ndarray, t: int) -> np.ndarray:
        while len(boards) <= t:
            b = boards[-1]
            nb = sum(np.roll(b, (i, j), (0, 1)) for i in (-1, 0, 1) for j in (-1, 0, 1) if i or j)
            new = (nb == 3) | (b & (nb == 2))
            if (new == b).all():  # a still board would stop the clip evolving: seed a few cells
                new ^= rng.random((g, g)) < 0.1
            boards.append(new)
        ix = np.floor(x / cell + g / 2).astype(int) % g
        iy = np.floor(y / cell + g / 2).astype(int) % g
        return np.where(boards[t][iy, ix], 0.95, 0.2).astype(np.float32)

    return at


def render(scene: str, motion: str, tint: str, *, height: int, width: int, frames: int,
           rng: np.random.Generator) -> np.ndarray:  # fmt: skip
    """One clip as RGB uint8 (T, H, W, 3)."""
    if motion not in SCENES.get(scene, ()):
        raise ValueError(f"scene {scene!r} cannot show motion {motion!r}")
    pattern = _pattern(scene, motion, height, width, rng)
    speed = min(height, width) * rng.uniform(0.03, 0.05)  # px per frame
    rgb = np.array(PALETTE[tint], np.float32)
    lo, hi = 0.3 * rgb + 20, 0.75 * rgb + 0.25 * 255  # dark and light shades: no black canvas
    yy, xx = np.mgrid[-1 : 1 : height * 1j, -1 : 1 : width * 1j]
    vignette = (1 - 0.12 * (xx**2 + yy**2))[..., None]  # a lens, as real footage has
    out = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        val = np.clip(pattern(*_world_coords(motion, height, width, t, speed), t), 0, 1)[..., None]
        img = (lo + (hi - lo) * val) * vignette + rng.normal(0, 1.5, (height, width, 1))  # sensor grain
        out[t] = np.clip(img, 0, 255).round().astype(np.uint8)
    return out


def caption(scene: str, motion: str, tint: str, rng: np.random.Generator, people: bool) -> str:
    """Free text naming kind, colour and motion; with people=True, also people / places / orgs."""
    noun = str(rng.choice(NOUNS[scene]))
    article, _, rest = noun.partition(" ") if noun.startswith("a ") else ("", "", noun)
    article = ("an " if tint[0] in "aeiou" else "a ") if article else ""
    clip = f"{article}{tint} {rest} {rng.choice(VERBS[motion])}"
    f = str(rng.choice(list(LANDMARKS)))
    template = str(rng.choice(NAMED if people else PLAIN))
    text = template.format(o=clip, p=rng.choice(PEOPLE), g=rng.choice(PLACES), f=f, fg=LANDMARKS[f],
                           r=rng.choice(ORGS))
    return text[0].upper() + text[1:] if rng.random() < 0.5 else text


def write_footage(out: Path, n_videos: int = 60, height: int = 48, width: int = 48, frames: int = 12,
                  fps: int = 8, seed: int = 0, broken: bool = True,
                  containers: tuple[str, ...] = CONTAINERS) -> Path:  # fmt: skip
    """Write ``n_videos`` clips under ``out/videos/`` and ``out/manifest.csv`` (last,
    atomically); returns the manifest's path. The same arguments give the same manifest and
    the same frames; the same file bytes too, except WebM's (the muxer writes a random
    segment id), so a corpus without WebM also gets the same content-hashed splits."""
    if n_videos < 1 or min(height, width, frames, fps) < 1:
        raise ValueError("n_videos, height, width, frames and fps must be at least 1")
    out = Path(out)
    pick = np.random.default_rng([seed, 0])
    order = pick.permutation(len(SCENES))  # scenes cycle, so even a small corpus has them all
    offset = {s: int(pick.integers(len(m))) for s, m in SCENES.items()}
    seen = dict.fromkeys(SCENES, 0)
    rows: list[dict[str, str]] = []

    def clip_row(i: int, video_id: str, container: str) -> tuple[dict[str, str], np.ndarray]:
        rng = np.random.default_rng([seed, 1, i])  # a clip depends on (seed, index) only
        scene = list(SCENES)[order[i % len(SCENES)]]
        motion = SCENES[scene][(seen[scene] + offset[scene]) % len(SCENES[scene])]
        seen[scene] += 1
        tint = str(rng.choice(list(PALETTE)))
        clip = render(scene, motion, tint, height=height, width=width, frames=frames, rng=rng)
        row = {"video_id": video_id, "video_path": f"videos/{video_id}.{container}",
               "caption": caption(scene, motion, tint, rng, people=rng.random() < 0.7),
               "caption_2": caption(scene, motion, tint, rng, people=rng.random() < 0.3),
               "scene": scene, "motion": motion, "tint": tint, "defect": ""}  # fmt: skip
        return row, clip

    for i in range(n_videos):
        row, clip = clip_row(i, f"ff{i:05d}", containers[int(pick.integers(len(containers)))])
        write_video(out / row["video_path"], clip, fps)
        rows.append(row)
    if broken:
        bad: list[dict[str, str]] = []
        for k, (name, container, defect) in enumerate(BROKEN):
            row, clip = clip_row(n_videos + k, f"ff_{name}", container)
            path = out / row["video_path"]
            if name == "empty":
                atomic_write_bytes(path, b"")
            elif name == "text":
                atomic_write_text(path, "These are notes about the shoot, not a video.\n" * 20)
            elif name == "truncated":
                write_video(path, clip, fps)
                atomic_write_bytes(path, path.read_bytes()[: path.stat().st_size // 2])
            else:
                path.unlink(missing_ok=True)  # a rerun into the same folder keeps it missing
            bad.append({**row, "caption_2": "", "defect": defect})
        bad.append({**rows[0], "video_id": "ff_nocaption", "caption": "", "caption_2": "", "defect": "empty caption"})
        # Spread the bad rows through the manifest, as they would be in a real one.
        for k, row in enumerate(bad):
            rows.insert((k + 1) * len(rows) // (len(bad) + 1), row)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "manifest.csv", buf.getvalue())  # last: a manifest means the files exist
    return out / "manifest.csv"
