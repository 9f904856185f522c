"""The built-in corpora, chosen by ``[synth] corpus`` and ``[synth] objects``: Moving Shapes
(t2v_core.corpus.synthetic), two-object Moving Shapes (shapes2) and Moving Digits (digits)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from t2v_core.config import SynthConfig

CORPORA = ("shapes", "digits")


def write_builtin(cfg: SynthConfig, out_dir: Path, progress: Callable[[int, int], None] | None = None) -> Path:
    """Write the corpus ``cfg`` describes into ``out_dir``; returns its manifest's path."""
    if cfg.corpus not in CORPORA:
        raise ValueError(f"unknown [synth] corpus {cfg.corpus!r}; expected one of {list(CORPORA)}")
    if cfg.objects not in (1, 2):
        raise ValueError(f"[synth] objects must be 1 or 2, got {cfg.objects}")
    if cfg.corpus == "digits":
        from t2v_core.corpus import digits

        # the judge's classifier first: the manifest, written last, says the corpus is whole
        digits.write_classifier(cfg, out_dir)
        return digits.write_corpus(cfg, out_dir, progress)
    if cfg.one_object_share:
        raise ValueError("[synth] one_object_share mixes one- and two-object videos in Moving Digits only; "
                         "Moving Shapes has objects = 1 or objects = 2 in every video")
    if cfg.objects == 2:
        from t2v_core.corpus import shapes2

        return shapes2.write_corpus(cfg, out_dir, progress)
    from t2v_core.corpus import synthetic

    return synthetic.write_corpus(cfg, out_dir, progress)
