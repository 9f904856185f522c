"""train: the GAN, trained with validation on the val side; a rerun resumes a crashed run."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from t2v_core.config import TrainConfig
from t2v_core.stages.base import Context, Stage, build_artifact, corpus_of
from t2v_core.store import ArtifactRef


def build(ctx: Context, inputs: dict[str, ArtifactRef], init_from: ArtifactRef | None = None,
          progress: Callable[[int, int, dict], None] | None = None) -> ArtifactRef:
    """Train the GAN on the ingest, embed and frames artifacts, validated through match's model.

    ``init_from`` (a committed training run) warm-starts the networks from its published
    checkpoint: nightly retraining can continue from the previous model. It is part of
    the key, so a warm-started run never shares a folder with a cold one."""
    import numpy as np

    from t2v_core import ddp
    from t2v_core import train as trainer
    from t2v_core.checkpoints import require_published
    from t2v_core.datasets import train_data
    from t2v_core.validation import validation

    ingest_ref, embed_ref, frames_ref, match_ref = (inputs[s] for s in STAGE.inputs)
    tcfg, adapted = settings_for_corpus(ctx.profile.train, corpus_of(ingest_ref).get("judge", ""))
    launch = ddp.Launch(ddp.processes_for(tcfg.processes, tcfg.device), tcfg.nnodes, tcfg.node_rank,
                        tcfg.rdzv_endpoint)
    warm = require_published(Path(init_from.path)) if init_from is not None else None

    def build_into(out: Path) -> dict[str, int]:
        # The word vectors' width; the vocabulary's size is filled in by train() from the data.
        vectors = np.load(embed_ref.file("embedding_matrix.npy"), mmap_mode="r")
        model_cfg = dataclasses.replace(ctx.profile.model, word_dim=int(vectors.shape[1]))
        if launch.distributed:  # every rank loads the clips itself; this process does not
            job = ddp.write_job(out, inputs, model_cfg, tcfg, warm, prompt_reader(ctx))
            summary = ddp.launch(job, launch)
        else:
            data = train_data(ingest_ref, embed_ref, frames_ref)
            report = progress
            if report is None and ctx.progress is not None:
                report = lambda step, total, _logs: ctx.progress("train", step, total)  # noqa: E731
            summary = trainer.train(
                data, model_cfg, tcfg, out, progress=report,
                eval_fn=validation(tcfg, ingest_ref, embed_ref, frames_ref, match_ref),
                init_from=warm, prompt_reader=prompt_reader(ctx),
            )
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        return {"steps": int(summary.get("steps", ctx.profile.train.steps)),
                "captions": int(summary["captions"])}

    # How many processes train is left out of the key: N ranks train what one process
    # does, within a tolerance (t2v_core/distributed.py), so a run may resume with another N.
    train_params = {k: v for k, v in dataclasses.asdict(tcfg).items() if k not in LAUNCH_SETTINGS}
    params = {**ctx.settings(STAGE), "train": train_params}
    keys = {s: inputs[s].key for s in STAGE.inputs}
    if init_from is not None:
        keys["init_from"] = init_from.key
    if launch.node_rank > 0:
        return _worker_node(ctx, params, keys, launch)
    return build_artifact(ctx, "train", params, keys, build_into, keep_partial=True,
                          extra={"adapted_to_corpus": adapted} if adapted else None)


# [train] settings that say how training is launched, not what it trains: not in the key.
LAUNCH_SETTINGS = ("processes", "nnodes", "node_rank", "rdzv_endpoint")


def _worker_node(ctx: Context, params: dict[str, Any], keys: dict[str, str], launch: Any) -> ArtifactRef:
    """A node other than node 0 of a multi-node run: it joins the ranks of the job node 0
    writes into the shared run folder, and returns the artifact once node 0 commits it."""
    import time

    from t2v_core import ddp
    from t2v_core.stages.base import artifact_key

    key = artifact_key(ctx, "train", params, keys)
    if (ref := ctx.store.get("train", key)) is not None:  # trained already: node 0 found it cached
        return ref
    ddp.launch(ddp.wait_for_job(ctx.store.path("train", key) / ddp.JOB), launch)
    while (ref := ctx.store.get("train", key)) is None:  # node 0 commits after its last rank
        time.sleep(1.0)
    return ref


def prompt_reader(ctx: Context) -> dict[str, Any]:
    """What a checkpoint stores so that it can read prompts on its own: the spaCy model
    that tokenized the corpus and the embed stage's token form."""
    from t2v_core.text import resolve_model_name

    return {"spacy_model": resolve_model_name(ctx.profile.tokenize.spacy_model),
            "token_form": ctx.profile.embed.token_form}


def settings_for_corpus(cfg: TrainConfig, judge: str) -> tuple[TrainConfig, dict[str, Any]]:
    """A profile may select its checkpoint by a corpus judge's figure. On a corpus without
    that judge the selection falls back to the generic one, R-precision, so any profile
    trains on any corpus. The change is recorded in the train artifact's manifest."""
    if judge:
        return cfg, {}
    changes: dict[str, Any] = {}
    from t2v_core.validation import JUDGE_METRICS

    if cfg.select_by in JUDGE_METRICS:
        changes["select_by"] = "r_precision"
    return dataclasses.replace(cfg, **changes), changes


STAGE = Stage("train", ("ingest", "embed", "frames", "match"), ("train", "model"), build,
              "the conditional video GAN; checkpoints, metrics.parquet, loss plot and sample sheets",
              options=("init_from", "progress"))
