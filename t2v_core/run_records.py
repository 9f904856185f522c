"""A training run's records in its folder: metrics.parquet (losses and evaluations per step),
loss.png, a sample sheet per checkpoint, and best.json (the selected checkpoint), with what a
resumed run reads back of them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
from PIL import Image

from t2v_core.store import atomic_path, write_parquet

if TYPE_CHECKING:
    from t2v_core.datasets import TrainData
    from t2v_core.generate import Text2Video


def load_metrics(path: Path, upto: int) -> list[dict[str, Any]]:
    """Rows logged up to the resumed step; rows of steps after it are redone."""
    if not path.is_file():
        return []
    df = pd.read_parquet(path)
    return [{k: v for k, v in r.items() if not (isinstance(v, float) and math.isnan(v))}
            for r in df[df["step"] <= upto].to_dict("records")]


def write_metrics(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    df = pd.DataFrame(rows)
    df["step"] = df["step"].astype("int64")
    write_parquet(pa.Table.from_pandas(df, preserve_index=False), path)


def plot_losses(path: Path, rows: list[dict[str, Any]]) -> None:
    # The object-oriented Figure API: no pyplot global state, no GUI backend needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not rows:
        return
    df = pd.DataFrame(rows)
    fig = Figure(figsize=(8, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    win = max(1, len(df) // 50)
    for col in ("loss_d", "loss_g"):
        ax.plot(df["step"], df[col].rolling(win, min_periods=1).mean(), label=col)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    evals = [c for c in df.columns if c.startswith("eval_")]  # shares in [0, 1]
    if evals:
        ax2 = ax.twinx()
        for col in evals:
            sub = df[["step", col]].dropna()
            ax2.plot(sub["step"], sub[col], "o--", label=col)
        ax2.set_ylim(0, 1)
        ax2.set_ylabel("accuracy")
        ax2.legend(loc="upper right", fontsize=7)
    ax.legend(loc="upper left", fontsize=7)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)


def sample_sheet(path: Path, model: Text2Video, data: TrainData, n: int = 8) -> None:
    """One row per caption (the first distinct training captions), one column per frame."""
    n = min(n, len(data.caption_clip))
    videos = model.generate_ids(data.token_ids[:n], data.lengths[:n], seeds=list(range(n)))
    real = np.asarray(data.clips[data.caption_clip[:n]])
    rows = [np.concatenate([np.concatenate(list(r), 1), np.concatenate(list(f), 1)], 1)
            for r, f in zip(real, videos, strict=True)]  # real clip | generated clip
    sheet = np.concatenate(rows, 0)
    with atomic_path(path) as tmp:
        Image.fromarray(sheet).save(tmp, format="png")
