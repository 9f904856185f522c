"""A training run's checkpoints: saving, loading, listing, the resume point and the
published selection.

A run folder holds ``ckpt-000500.pt`` files (one per saved step, written atomically) and
``best.json``, the checkpoint that validation selected ([train] select_by). A checkpoint is a
dict of state_dicts plus the model config, the vocabulary and what reading a prompt needs,
loaded with ``weights_only=True`` so that loading one cannot run code.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import torch

from t2v_core.config import ModelConfig
from t2v_core.store import atomic_path

CKPT_RE = re.compile(r"^ckpt-(\d+)\.pt$")
SELECTED = "best.json"  # the run's selected checkpoint, written by training


def checkpoint_step(path: Path) -> int:
    m = CKPT_RE.match(Path(path).name)
    if m is None:
        raise ValueError(f"{path} is not named like a checkpoint (ckpt-000500.pt)")
    return int(m.group(1))


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoints in ``run_dir``, oldest step first. Temporary files of an interrupted save
    start with a dot and never match."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [p for p in run_dir.iterdir() if CKPT_RE.match(p.name)]
    return sorted(found, key=checkpoint_step)


def newest_checkpoint(run_dir: Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def published_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint a run publishes: the one its validation selected (``best.json``),
    else the newest."""
    run_dir = Path(run_dir)
    marker = run_dir / SELECTED
    if marker.is_file():
        chosen = run_dir / json.loads(marker.read_text())["checkpoint"]
        if not chosen.is_file():
            raise FileNotFoundError(f"{marker} selects {chosen.name}, which is missing")
        return chosen
    return newest_checkpoint(run_dir)



def require_published(run_dir: Path) -> Path:
    """``published_checkpoint``, or an error naming the run when it has none."""
    found = published_checkpoint(run_dir)
    if found is None:
        raise FileNotFoundError(f"training run {Path(run_dir).name} has no checkpoint")
    return found

def load_selection(run_dir: Path, upto: int) -> dict[str, Any] | None:
    """The selection a resumed run continues from; one made after the resumed step (its
    newer checkpoint was unreadable) is redone, like the steps after it."""
    path = Path(run_dir) / SELECTED
    if not path.is_file():
        return None
    best = json.loads(path.read_text())
    if best["step"] > upto:
        path.unlink()
        return None
    return best


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint dict; weights_only=True, so a checkpoint cannot run code when loaded."""
    return torch.load(Path(path), map_location=map_location, weights_only=True)


def save_checkpoint(state: dict[str, Any], path: Path) -> Path:
    """torch.save to a temporary sibling, then rename: a kill mid-save leaves no ckpt-*.pt."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def resume_point(run_dir: Path) -> dict[str, Any] | None:
    """The newest checkpoint that loads. Saves are atomic, so a broken one means damage
    from outside; it is skipped for the one before it rather than failing the run."""
    for path in reversed(list_checkpoints(run_dir)):
        try:
            return load_checkpoint(path)
        except Exception:  # noqa: BLE001 - any unreadable file: fall back to an older one
            continue
    return None


# Model settings of generators this version no longer has. A checkpoint of the general
# generator written while they existed carries them at values it did not use.
RETIRED_FIELDS = ("decoder", "path_reach", "path_step_scale", "look", "look_content")
GENERATOR = "convlstm"  # the one generator (t2v_core/model/generator.py)


def model_config_from_dict(data: dict[str, Any], source: str | Path = "checkpoint") -> ModelConfig:
    """Rebuild a ModelConfig, tolerating fields added after the checkpoint was written
    (they keep their defaults) but not fields this code does not know. A checkpoint of a
    generator that was deleted fails with one sentence."""
    decoder = data.get("decoder", GENERATOR)
    if decoder != GENERATOR:
        raise ValueError(f"{source} was trained with decoder {decoder!r}, which this version no longer has; retrain")
    data = {k: v for k, v in data.items() if k not in RETIRED_FIELDS}
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{source}: model_config has unknown field(s) {unknown}")
    return ModelConfig(**data)
