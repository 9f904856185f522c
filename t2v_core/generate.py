"""Batch generation: a trained generator loaded from a checkpoint, one call per batch.

nanoGPT-style: the checkpoint holds the model config and the vocabulary, so
``Text2Video.from_checkpoint(path)`` needs nothing else, and ``generate`` is one call.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from t2v_core.config import ModelConfig
from t2v_core.model import Generator
from t2v_core.store import atomic_path

CKPT_RE = re.compile(r"^ckpt-(\d+)\.pt$")


def resolve_device(name: str = "auto") -> torch.device:
    """auto = CUDA when present, else CPU; asking for CUDA without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but torch sees no CUDA device")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {name!r}; use auto, cpu or cuda")
    return torch.device(name)


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


SELECTED = "best.json"  # the run's selected checkpoint, see t2v_core/train.py


def model_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint a run publishes: the one its validation selected (``best.json``,
    written by training with [train] select_by), else the newest."""
    run_dir = Path(run_dir)
    marker = run_dir / SELECTED
    if marker.is_file():
        chosen = run_dir / json.loads(marker.read_text())["checkpoint"]
        if not chosen.is_file():
            raise FileNotFoundError(f"{marker} selects {chosen.name}, which is missing")
        return chosen
    return newest_checkpoint(run_dir)


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


def model_config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Rebuild a ModelConfig, tolerating fields added after the checkpoint was written
    (they keep their defaults) but not fields this code does not know."""
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"checkpoint model_config has unknown field(s) {unknown}")
    return ModelConfig(**data)


class Text2Video:
    """A generator ready to sample. ``vocab`` maps word -> id (0 = <pad>, 1 = <unk>)."""

    def __init__(self, generator: Generator, vocab: Sequence[str], device: torch.device,
                 max_len: int = 16):
        self.generator = generator.to(device).eval()
        self.model_config: ModelConfig = generator.cfg
        self.vocab: dict[str, int] = {w: i for i, w in enumerate(vocab)}
        self.device = device
        self.max_len = max_len

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto", use_ema: bool = True) -> Text2Video:
        dev = resolve_device(device)
        ckpt = load_checkpoint(path)
        cfg = model_config_from_dict(ckpt["model_config"])
        gen = Generator(cfg)
        state = ckpt["generator_ema"] if use_ema and ckpt.get("generator_ema") else ckpt["generator"]
        gen.load_state_dict(state)
        return cls(gen, ckpt["vocab"], dev, max_len=int(ckpt.get("max_len", 16)))

    def encode(self, token_lists: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
        """Tokens -> (ids (N, max_len) int32, lengths (N,) int32); unknown words -> 1."""
        ids = np.zeros((len(token_lists), self.max_len), dtype=np.int32)
        lengths = np.zeros(len(token_lists), dtype=np.int32)
        for i, toks in enumerate(token_lists):
            row = [self.vocab.get(t, 1) for t in toks][: self.max_len]
            ids[i, : len(row)] = row
            lengths[i] = len(row)
        return ids, lengths

    @torch.no_grad()
    def generate(self, token_ids: np.ndarray, lengths: np.ndarray, seeds: Sequence[int],
                 batch_size: int = 64) -> np.ndarray:
        """-> (B, T, H, W, 3) uint8 RGB. Each video depends only on its caption and its seed
        (z is drawn from a generator seeded with it, and batch norm runs on its stored
        statistics), so batching does not change the result."""
        # Copies: inputs may be read-only memmaps, which torch will not wrap.
        token_ids, lengths = np.array(token_ids), np.array(lengths)
        if token_ids.ndim != 2 or lengths.shape != token_ids.shape[:1] or len(seeds) != len(lengths):
            raise ValueError(
                f"need token_ids (B, L), lengths (B,) and B seeds; got {token_ids.shape}, "
                f"{lengths.shape}, {len(seeds)} seeds"
            )
        if token_ids.size and (token_ids.min() < 0 or token_ids.max() >= self.model_config.vocab_size):
            raise ValueError(f"token ids must lie in [0, {self.model_config.vocab_size})")
        cfg = self.model_config
        z = torch.stack([
            torch.randn(cfg.z_dim, generator=torch.Generator().manual_seed(int(s))) for s in seeds
        ]) if len(seeds) else torch.zeros(0, cfg.z_dim)
        out = np.zeros((len(seeds), cfg.frames, cfg.height, cfg.width, 3), dtype=np.uint8)
        for i in range(0, len(seeds), batch_size):
            ids = torch.as_tensor(token_ids[i:i + batch_size], dtype=torch.long, device=self.device)
            lens = torch.as_tensor(lengths[i:i + batch_size], dtype=torch.long)
            video, _ = self.generator(ids, lens, z[i:i + batch_size].to(self.device))
            out[i:i + batch_size] = to_uint8(video)
        return out


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """(B, T, 3, H, W) in [-1, 1] -> (B, T, H, W, 3) uint8."""
    x = ((video.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 1, 3, 4, 2).cpu().numpy()
