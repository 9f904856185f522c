"""The one-call API: ``Text2Video.from_checkpoint(path).generate(prompts, seeds)``.

As a diffusers pipeline does, the checkpoint carries all that sampling needs (model config,
vocabulary, how prompts are read), so nothing else is loaded by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from t2v_core.checkpoints import load_checkpoint, model_config_from_dict
from t2v_core.config import ModelConfig
from t2v_core.model import Generator


def resolve_device(name: str = "auto") -> torch.device:
    """auto = CUDA when present, else CPU; asking for CUDA without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but torch sees no CUDA device")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {name!r}; use auto, cpu or cuda")
    return torch.device(name)


class Text2Video:
    """A trained generator that reads prompts and renders videos::

        model = Text2Video.from_checkpoint("ckpt-000500.pt")
        videos = model.generate(["a red circle moves to the left"], seeds=[0])  # (1, T, H, W, 3) uint8

    The checkpoint holds everything this needs: the networks, the model config, the
    vocabulary, and how the corpus's captions were read (the spaCy model and the token
    form), so a prompt is read exactly as the training captions were. ``vocab`` maps
    word -> id (0 = <pad>, 1 = <unk>)."""

    def __init__(self, generator: Generator, vocab: Sequence[str], device: torch.device,
                 max_len: int = 16, reader: dict[str, str] | None = None):
        self.generator = generator.to(device).eval()
        self.model_config: ModelConfig = generator.cfg
        self.vocab: dict[str, int] = {w: i for i, w in enumerate(vocab)}
        self.device = device
        self.max_len = max_len
        # Checkpoints written before the reader was stored were all read this way.
        self.reader = {"spacy_model": "", "token_form": "lower", **(reader or {})}

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto", use_ema: bool = True) -> Text2Video:
        dev = resolve_device(device)
        ckpt = load_checkpoint(path)
        cfg = model_config_from_dict(ckpt["model_config"], Path(path).name)
        gen = Generator(cfg)
        state = ckpt["generator_ema"] if use_ema and ckpt.get("generator_ema") else ckpt["generator"]
        # Checkpoints written while the attention keys had a bias: the softmax cancels that
        # bias (it adds the same amount to every token's score), so without it they render
        # what they rendered, to float rounding.
        own = gen.state_dict()
        state = {k: v for k, v in state.items() if k in own or not k.endswith(".k.bias")}
        gen.load_state_dict(state)
        return cls(gen, ckpt["vocab"], dev, max_len=int(ckpt.get("max_len", 16)), reader=ckpt.get("reader"))

    def tokens(self, prompts: Sequence[str]) -> list[list[str]]:
        """The prompts' tokens in the training captions' token form, read by the spaCy model
        that read them (loaded once per process)."""
        from t2v_core.embeddings import prompt_tokens
        from t2v_core.text import prompt_pipeline

        form = self.reader["token_form"]
        return prompt_tokens(prompt_pipeline(self.reader["spacy_model"], form), list(prompts), form)

    def read(self, prompts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
        """Prompts -> (token ids (N, max_len), lengths (N,), the tokens); unknown words -> 1."""
        ids, lengths, _, tokens = self.encode(prompts)
        return ids, lengths, tokens

    def encode(self, prompts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[list[str]]]:
        """Prompts -> (token ids, lengths, how many of each prompt's words are unknown, the tokens)."""
        from t2v_core.embeddings import encode_tokens

        tokens = self.tokens(prompts)
        return (*encode_tokens(tokens, self.vocab, self.max_len), tokens)

    def generate(self, prompts: Sequence[str], seeds: Sequence[int] | None = None,
                 batch_size: int = 64) -> np.ndarray:
        """Prompts -> videos (N, T, H, W, 3) uint8 RGB, prompt i drawn with noise seed
        ``seeds[i]`` (default: i). A prompt with no word the model knows is an error: its
        video could not follow the text."""
        prompts = list(prompts)
        seeds = list(range(len(prompts))) if seeds is None else list(seeds)
        if len(seeds) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        ids, lengths, n_oov, tokens = self.encode(prompts)
        for prompt, words, unknown in zip(prompts, tokens, n_oov, strict=True):
            if unknown == len(words):  # encode_tokens counts the words it maps to <unk>
                raise ValueError(f"prompt {prompt!r} has no word this model knows")
        return self.generate_ids(ids, lengths, seeds, batch_size)

    @torch.no_grad()
    def generate_ids(self, token_ids: np.ndarray, lengths: np.ndarray, seeds: Sequence[int],
                     batch_size: int = 64) -> np.ndarray:
        """Token ids (B, L) and lengths (B,) -> (B, T, H, W, 3) uint8 RGB. Each video depends
        only on its caption and its seed (z is drawn from a generator seeded with it, and
        batch norm runs on its stored statistics), so batching does not change the result."""
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
