"""train: the GAN, trained with validation on the val side; a rerun resumes a crashed run."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from t2v_core.config import TrainConfig
from t2v_core.stages.base import Context, Stage, build_artifact, corpus_of
from t2v_core.store import ArtifactRef

# What the Moving Shapes judge's validation reports (_judge_validation).
JUDGE_METRICS = ("seen_all_correct", "seen_coherent", "seen_correct_and_coherent", "seen_variety", "seen_weakest")


def build(ctx: Context, inputs: dict[str, ArtifactRef], init_from: ArtifactRef | None = None,
          progress: Callable[[int, int, dict], None] | None = None) -> ArtifactRef:
    """Train the GAN on the ingest, embed and frames artifacts, validated through match's model.

    ``init_from`` (a committed training run) warm-starts the networks from its published
    checkpoint: nightly retraining can continue from the previous model. It is part of
    the key, so a warm-started run never shares a folder with a cold one."""
    from t2v_core import train as trainer
    from t2v_core.checkpoints import require_published
    from t2v_core.datasets import train_data

    ingest_ref, embed_ref, frames_ref, match_ref = (inputs[s] for s in STAGE.inputs)
    tcfg, adapted = settings_for_corpus(ctx.profile.train, corpus_of(ingest_ref).get("judge", ""))

    def build_into(out: Path) -> dict[str, int]:
        data = train_data(ingest_ref, embed_ref, frames_ref)
        model_cfg = dataclasses.replace(
            ctx.profile.model, word_dim=int(data.embeddings.shape[1]), vocab_size=len(data.vocab)
        )
        report = progress
        if report is None and ctx.progress is not None:
            report = lambda step, total, _logs: ctx.progress("train", step, total)  # noqa: E731
        summary = trainer.train(
            data, model_cfg, tcfg, out, progress=report,
            eval_fn=validation(ctx, ingest_ref, embed_ref, frames_ref, match_ref),
            init_from=require_published(Path(init_from.path)) if init_from is not None else None,
            prompt_reader=prompt_reader(ctx),
        )
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        return {"steps": int(summary.get("steps", ctx.profile.train.steps)),
                "captions": int(len(data.caption_clip))}

    params = {**ctx.settings(STAGE), "train": dataclasses.asdict(tcfg)}
    keys = {s: inputs[s].key for s in STAGE.inputs}
    if init_from is not None:
        keys["init_from"] = init_from.key
    return build_artifact(ctx, "train", params, keys, build_into, keep_partial=True,
                          extra={"adapted_to_corpus": adapted} if adapted else None)


def prompt_reader(ctx: Context) -> dict[str, Any]:
    """What a checkpoint stores so that it can read prompts on its own: the spaCy model
    that tokenized the corpus and the embed stage's token form."""
    from t2v_core.text import resolve_model_name

    return {"spacy_model": resolve_model_name(ctx.profile.tokenize.spacy_model),
            "token_form": ctx.profile.embed.token_form}


def settings_for_corpus(cfg: TrainConfig, judge: str) -> tuple[TrainConfig, dict[str, Any]]:
    """A profile may lean on a corpus judge's figures: selection by one of them, terms
    gated on its accuracy. On a corpus without that judge those fall back to the generic
    ones, so any profile trains on any corpus: selection by R-precision, gated terms on from
    the first step. The changes are recorded in the train artifact's manifest."""
    if judge:
        return cfg, {}
    changes: dict[str, Any] = {}
    if cfg.select_by in JUDGE_METRICS:
        changes["select_by"] = "r_precision"
    if cfg.word_twin_after > 0:
        changes["word_twin_after"] = 0.0
    return dataclasses.replace(cfg, **changes), changes


def validation(ctx: Context, ingest_ref: ArtifactRef, embed_ref: ArtifactRef, frames_ref: ArtifactRef,
               match_ref: ArtifactRef) -> Callable[[Any], dict[str, float]]:
    """The metrics logged into metrics.parquet at each evaluation during training, from
    the validation side only (never test): R-precision of videos generated from up to
    ``[train] val_captions`` val captions and their variety, through the matching model;
    and where the corpus has a judge, the judge's figures on its validation prompts.
    [train] select_by picks the published checkpoint by one of these."""
    from t2v_core import scoring
    from t2v_core.datasets import side_data
    from t2v_core.matching import FILE, load_match

    tcfg = ctx.profile.train
    side = side_data(ingest_ref, embed_ref, frames_ref, "val", tcfg.val_captions, tcfg.seed)
    score = scoring.validator(load_match(Path(match_ref.file(FILE))), side, tcfg.seed)
    judge = corpus_of(ingest_ref).get("judge", "")

    def evaluate(model: Any) -> dict[str, float]:
        def generate(rows: Sequence[int], seeds: Sequence[int]) -> np.ndarray:
            rows = list(rows)
            return model.generate_ids(side.token_ids[rows], side.lengths[rows], list(seeds))

        out = score(generate)
        if judge == "shapes":
            out.update(_judge_validation(model))
        elif judge in ("digits", "shapes2"):
            from t2v_core import assess_objects

            classifier = assess_objects.classifier_for(judge, Path(ingest_ref.manifest()["params"]["manifest"]))
            out.update(assess_objects.validation(model, judge, classifier))
        return out

    return evaluate


def _judge_validation(model: Any) -> dict[str, float]:
    """The Moving Shapes judge on 40 seen-composition prompts (training compositions, drawn
    with the evaluation's seed plus one, so neither their noise nor their order is the
    evaluate stage's). ``seen_weakest`` is the lowest of the three seen figures the judge
    has bars for: a checkpoint chosen on it is the one whose weakest bar is best."""
    from t2v_core.assess import judge_model

    m, _, _ = judge_model(model, 40, 40, 1235)
    seen = {"seen_all_correct": m["seen"]["all_correct"] or 0.0,
            "seen_coherent": m["seen"]["coherent"] or 0.0,
            "seen_correct_and_coherent": m["seen"]["correct_and_coherent"] or 0.0,
            "seen_variety": m["variety"]}
    return {**seen, "seen_weakest": min(seen["seen_all_correct"], seen["seen_coherent"], seen["seen_variety"])}


STAGE = Stage("train", ("ingest", "embed", "frames", "match"), ("train", "model"), build,
              "the conditional video GAN; checkpoints, metrics.parquet, loss plot and sample sheets",
              options=("init_from", "progress"))
