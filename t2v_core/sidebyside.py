"""The evaluate stage's side-by-side page: test captions, each with its real clip beside the
video the model made from the caption, as looping GIFs on one HTML page."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from t2v_core.store import atomic_write_text
from t2v_core.writers import write_gif

CSS = ("body{font-family:system-ui,sans-serif;margin:1.5em;background:#fafafa}"
       "table{border-collapse:collapse}td,th{padding:.4em .8em;border-bottom:1px solid #ddd;text-align:left}"
       "img{width:128px;image-rendering:pixelated;background:#000}")


def write_side_by_side(out_dir: Path, captions: Sequence[str], real: np.ndarray, generated: np.ndarray,
                       limit: int, fps: float) -> int:
    """Write ``index.html`` and two GIFs per caption for the first ``limit`` captions; the
    page is written last, so it never links a GIF that is not there. Returns the rows."""
    if len(captions) != len(real) or len(real) != len(generated):
        raise ValueError(f"{len(captions)} captions, {len(real)} real and {len(generated)} generated clips")
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(min(limit, len(captions))):
        write_gif(out_dir / f"{i:04d}-real.gif", real[i], fps)
        write_gif(out_dir / f"{i:04d}-generated.gif", generated[i], fps)
        rows.append(f"<tr><td>{html.escape(captions[i])}</td>"
                    f'<td><img src="{i:04d}-real.gif" alt="real clip"></td>'
                    f'<td><img src="{i:04d}-generated.gif" alt="generated video"></td></tr>')
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>t2v: real beside generated'
            f"</title><style>{CSS}</style></head><body><h1>Test captions: real clip beside generated video</h1>"
            f"<p>{len(rows)} of {len(captions)} test-side captions; the generated video uses the first noise "
            f"seed set of the evaluation.</p><table><tr><th>caption</th><th>real</th><th>generated</th></tr>"
            f"{''.join(rows)}</table></body></html>\n")
    atomic_write_text(out_dir / "index.html", page)
    return len(rows)
