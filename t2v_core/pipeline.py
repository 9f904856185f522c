"""The stages, wired to the artifact store. Pure: no Prefect here.

Each stage function takes a :class:`Context` and the references of its inputs, computes its
cache key, and either returns the committed artifact at once (``ref.cached``) or builds it.
The Prefect tasks in ``tasks/`` are thin wrappers around these functions, so the same cache
works with or without Prefect's own records.

Sharded stages (tokenize, annotate, frames) come in three parts: ``plan_*`` splits the
input into shards whose keys digest their content, ``*_shard`` builds one shard, and
``combine_*`` joins the shard artifacts into the stage's dataset (hard links, one file per
shard). A corpus that grows at its end changes only its last shards.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from t2v_core.config import Profile, TrainConfig
from t2v_core.store import (
    ArtifactRef,
    ArtifactStore,
    code_version,
    digest_file,
    digest_json,
    stage_key,
    write_parquet,
)

STAGES = ("synth", "ingest", "tokenize", "annotate", "embed", "frames", "match", "train", "render", "evaluate")
SHARDED = ("tokenize", "annotate", "frames")
REPO_DATA = Path(__file__).resolve().parent.parent / "data"

# The t2v_core sources each stage's output depends on: editing one reruns that stage.
CODE = {
    "synth": ["corpus/builtin.py", "corpus/synthetic.py", "corpus/shapes2.py", "corpus/digits.py", "corpus/scenes.py",
              "digit_classifier.py", "corpus/info.py", "video.py", "writers.py"],
    "ingest": ["corpus/manifests.py", "corpus/info.py"],
    "tokenize": ["text.py"],
    "annotate": ["text.py"],
    "embed": ["embeddings.py", "text.py"],
    "frames": ["video.py"],
    "match": ["matching.py", "model/text_encoder.py", "datasets.py", "scoring.py", "evaluate.py", "judge.py",
              "corpus/manifests.py"],
    # validation during training selects the published checkpoint, so its code is the train key's too
    "train": ["model", "train.py", "datasets.py", "run_records.py", "generate.py", "scoring.py", "evaluate.py",
              "matching.py", "assess.py", "judge.py", "embeddings.py", "corpus/synthetic.py", "pipeline.py",
              "assess_objects.py", "judge_objects.py", "digit_classifier.py", "corpus/digits.py", "corpus/shapes2.py",
              "corpus/scenes.py"],
    "render": ["render.py", "catalog.py", "generate.py", "video.py", "writers.py", "text.py", "embeddings.py"],
    "evaluate": ["assess.py", "datasets.py", "evaluate.py", "scoring.py", "matching.py", "judge.py", "generate.py",
                 "embeddings.py", "text.py", "corpus/synthetic.py", "writers.py", "sidebyside.py", "pipeline.py",
                 "assess_objects.py", "judge_objects.py", "digit_classifier.py", "corpus/digits.py",
                 "corpus/shapes2.py", "corpus/scenes.py"],
}

Progress = Callable[[str, int, int | None], None]  # (stage, done, total)


@dataclass
class Context:
    profile: Profile
    store: ArtifactStore
    progress: Progress | None = None
    _code: dict[str, str] = field(default_factory=dict)

    def code(self, stage: str) -> str:
        if stage not in self._code:
            self._code[stage] = code_version(CODE[stage])
        return self._code[stage]

    def report(self, stage: str) -> Callable[[int, int | None], None] | None:
        if self.progress is None:
            return None
        return lambda done, total: self.progress(stage, done, total)  # type: ignore[misc]


@dataclass(frozen=True)
class ShardSpec:
    """One shard of a sharded stage: small enough to pass between tasks."""

    stage: str
    index: int
    source: str  # path of the input artifact the rows come from
    start: int  # row range in that input
    stop: int
    digest: str  # digest of the shard's content: its cache identity
    items: tuple[str, ...] = ()  # for frames: the video hashes in this shard


# ---------------------------------------------------------------------------- helpers


def _build(ctx: Context, stage: str, params: dict[str, Any], inputs: dict[str, str],
           build: Callable[[Path], dict[str, int]], keep_partial: bool = False,
           extra: dict[str, Any] | None = None) -> ArtifactRef:
    """Return the cached artifact for these inputs, or build and commit it."""
    key = stage_key(stage, params, sorted(inputs.items()), ctx.code(stage.removesuffix("-shard")))
    found = ctx.store.get(stage, key)
    if found is not None:
        return found
    with ctx.store.building(stage, key):
        found = ctx.store.get(stage, key)  # committed by another run while this one waited
        if found is not None:
            return found
        writer = ctx.store.open(stage, key, keep_partial=keep_partial)
        try:
            counts = build(writer.path)
        except BaseException:
            # Nothing of a failed build stays behind, except a training run's checkpoints,
            # which a rerun resumes from.
            if not keep_partial:
                shutil.rmtree(writer.path, ignore_errors=True)
            raise
        return writer.commit(params=params, inputs=inputs, counts=counts, extra=extra)


def _link(src: Path, dst: Path) -> None:
    """Hard-link a finished shard file into a combined dataset (copy across devices)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _concat_parquet(paths: Sequence[Path], out: Path) -> int:
    """Stream small per-shard tables into one Parquet file, one row group per shard."""
    rows, writer, tmp = 0, None, out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        for p in paths:
            table = pq.read_table(p)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
            rows += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        return 0
    os.replace(tmp, out)
    return rows


def _read(ref: ArtifactRef, name: str, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(ref.file(name), columns=columns)


# ---------------------------------------------------------------------------- synth + ingest


def synth(ctx: Context) -> ArtifactRef:
    """Write the built-in corpus of ``[synth] corpus`` (videos + manifest.csv)."""
    from t2v_core.corpus.builtin import write_builtin

    cfg = ctx.profile.synth

    def build(out: Path) -> dict[str, int]:
        write_builtin(cfg, out, progress=ctx.report("synth"))
        return {"videos": cfg.n_videos, "captions": cfg.n_videos * cfg.captions_per_video}

    return _build(ctx, "synth", ctx.profile.section("synth"), {}, build)


def manifest_identity(path: Path) -> str:
    """What an external manifest's ingest depends on: its bytes and the size and mtime of
    every file beside it (its videos), so a replaced video changes the key."""
    path = path.resolve()
    root = path if path.is_dir() else path.parent
    listing = sorted(
        (str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*") if p.is_file()
    )
    own = digest_file(path) if path.is_file() else ""
    return digest_json({"manifest": own, "files": listing})


def ingest(ctx: Context, synth_ref: ArtifactRef | None) -> ArtifactRef:
    """Manifest -> validated corpus.parquet and rejects.parquet."""
    from t2v_core.corpus import manifests
    from t2v_core.corpus.info import read_info

    cfg = ctx.profile.ingest
    if cfg.manifest:
        manifest = Path(cfg.manifest).resolve()
        if not manifest.exists():
            raise FileNotFoundError(f"manifest not found: {manifest}")
        inputs = {"manifest": manifest_identity(manifest)}
    else:
        if synth_ref is None:
            raise ValueError("no [ingest] manifest set and no synthetic corpus given")
        manifest = synth_ref.file("manifest.csv")
        inputs = {"synth": synth_ref.key}

    info = read_info(manifest)

    def build(out: Path) -> dict[str, int]:
        corpus, rejects = manifests.read_manifest(manifest, cfg)
        sides = manifests.check_splits(corpus, cfg)
        write_parquet(corpus, out / "corpus.parquet", manifests.CORPUS_SCHEMA)
        write_parquet(rejects, out / "rejects.parquet", manifests.REJECTS_SCHEMA)
        return {"rows_out": corpus.num_rows, "rejected": rejects.num_rows,
                **{f"{side}_videos": n for side, n in sides.items()}}

    params = {**ctx.profile.section("ingest"), "manifest": str(manifest)}
    return _build(ctx, "ingest", params, inputs, build, extra={"corpus": dataclasses.asdict(info)})


def corpus_of(ingest_ref: ArtifactRef) -> dict[str, str]:
    """The corpus's identity, name and judge, as ingest recorded them (t2v_core.corpus.info)."""
    return dict(ingest_ref.manifest().get("corpus") or {"id": "", "name": "", "judge": ""})


# ---------------------------------------------------------------------------- text


def plan_text_shards(ctx: Context, ingest_ref: ArtifactRef) -> list[ShardSpec]:
    """Fixed-size shards in manifest order; each keyed by its captions' content."""
    corpus = _read(ingest_ref, "corpus.parquet", ["caption_id", "caption"])
    size = ctx.profile.ingest.shard_size
    specs = []
    for i, start in enumerate(range(0, corpus.num_rows, size)):
        part = corpus.slice(start, size)
        digest = digest_json([part.column("caption_id").to_pylist(), part.column("caption").to_pylist()])
        specs.append(ShardSpec("tokenize", i, ingest_ref.path, start, start + part.num_rows, digest))
    return specs


def tokenize_shard(ctx: Context, shard: ShardSpec) -> ArtifactRef:
    from t2v_core import text

    cfg = ctx.profile.tokenize

    def build(out: Path) -> dict[str, int]:
        corpus = pq.read_table(Path(shard.source) / "corpus.parquet", columns=["caption_id", "caption"])
        part = corpus.slice(shard.start, shard.stop - shard.start)
        nlp = _nlp(cfg.spacy_model, "tokenizer")
        tokens, rejects = text.tokenize_captions(
            nlp, part.column("caption_id").to_pylist(), part.column("caption").to_pylist(), cfg
        )
        write_parquet(tokens, out / "tokens.parquet", text.TOKENS_SCHEMA)
        write_parquet(rejects, out / "rejects.parquet", text.TEXT_REJECTS_SCHEMA)
        n_ok = len(set(tokens.column("caption_id").to_pylist()))
        return {"captions_in": part.num_rows, "captions_out": n_ok, "rejected": rejects.num_rows,
                "tokens": tokens.num_rows}

    params = {**ctx.profile.section("tokenize"), "model": _model_name(cfg.spacy_model)}
    return _build(ctx, "tokenize-shard", params, {"shard": shard.digest}, build)


def combine_tokenize(ctx: Context, shard_refs: Sequence[ArtifactRef]) -> ArtifactRef:
    def build(out: Path) -> dict[str, int]:
        for i, ref in enumerate(shard_refs):
            _link(ref.file("tokens.parquet"), out / "tokens" / f"part-{i:05d}.parquet")
        rejected = _concat_parquet([r.file("rejects.parquet") for r in shard_refs], out / "rejects.parquet")
        counts = [r.manifest()["counts"] for r in shard_refs]
        return {"shards": len(shard_refs), "captions_out": sum(c["captions_out"] for c in counts),
                "rejected": rejected, "tokens": sum(c["tokens"] for c in counts)}

    inputs = {f"shard-{i:05d}": r.key for i, r in enumerate(shard_refs)}
    return _build(ctx, "tokenize", ctx.profile.section("tokenize"), inputs, build)


def annotate_shard(ctx: Context, tokens_ref: ArtifactRef) -> ArtifactRef:
    """POS, lemma, morphology and entities for one tokenize shard."""
    from t2v_core import text

    cfg, model = ctx.profile.annotate, ctx.profile.tokenize.spacy_model

    def build(out: Path) -> dict[str, int]:
        nlp = _nlp(model, "annotator")
        annotations, entities = text.annotate_tokens(nlp, pq.read_table(tokens_ref.file("tokens.parquet")), cfg)
        write_parquet(annotations, out / "annotations.parquet", text.ANNOTATIONS_SCHEMA)
        write_parquet(entities, out / "entities.parquet", text.ENTITIES_SCHEMA)
        return {"tokens": annotations.num_rows, "entities": entities.num_rows}

    params = {**ctx.profile.section("annotate"), "model": _model_name(model)}
    return _build(ctx, "annotate-shard", params, {"tokens": tokens_ref.key}, build)


def combine_annotate(ctx: Context, shard_refs: Sequence[ArtifactRef]) -> ArtifactRef:
    def build(out: Path) -> dict[str, int]:
        for i, ref in enumerate(shard_refs):
            _link(ref.file("annotations.parquet"), out / "annotations" / f"part-{i:05d}.parquet")
            _link(ref.file("entities.parquet"), out / "entities" / f"part-{i:05d}.parquet")
        counts = [r.manifest()["counts"] for r in shard_refs]
        return {"shards": len(shard_refs), "tokens": sum(c["tokens"] for c in counts),
                "entities": sum(c["entities"] for c in counts)}

    inputs = {f"shard-{i:05d}": r.key for i, r in enumerate(shard_refs)}
    return _build(ctx, "annotate", ctx.profile.section("annotate"), inputs, build)


def embed(ctx: Context, tokenize_ref: ArtifactRef, annotate_ref: ArtifactRef) -> ArtifactRef:
    from t2v_core import embeddings

    cfg = ctx.profile.embed

    def build(out: Path) -> dict[str, int]:
        token_files = sorted(Path(tokenize_ref.path, "tokens").glob("part-*.parquet"))
        ann_files = sorted(Path(annotate_ref.path, "annotations").glob("part-*.parquet"))
        ent_files = sorted(Path(annotate_ref.path, "entities").glob("part-*.parquet"))
        result = embeddings.train_embeddings(token_files, cfg, out, ann_files, ent_files)
        return {k: int(v) for k, v in result.items() if isinstance(v, (int, np.integer))}

    inputs = {"tokenize": tokenize_ref.key, "annotate": annotate_ref.key}
    if cfg.glove_path:
        inputs["glove"] = digest_file(Path(cfg.glove_path))
    return _build(ctx, "embed", ctx.profile.section("embed"), inputs, build)


_NLP_CACHE: dict[tuple[str, str], Any] = {}


def _model_name(name: str) -> str:
    from t2v_core import text

    return text.resolve_model_name(name)


def _nlp(name: str, kind: str) -> Any:
    """spaCy pipelines are loaded once per process and reused across shards."""
    from t2v_core import text

    key = (_model_name(name), kind)
    if key not in _NLP_CACHE:
        loader = text.load_tokenizer if kind == "tokenizer" else text.load_annotator
        _NLP_CACHE[key] = loader(key[0])
    return _NLP_CACHE[key]


# ---------------------------------------------------------------------------- frames


def plan_frame_shards(ctx: Context, ingest_ref: ArtifactRef) -> list[ShardSpec]:
    """Unique videos (by content hash) in corpus order, in fixed-size shards."""
    corpus = _read(ingest_ref, "corpus.parquet", ["video_sha256"])
    seen: dict[str, None] = dict.fromkeys(corpus.column("video_sha256").to_pylist())
    hashes = list(seen)
    size = ctx.profile.frames.shard_size
    return [
        ShardSpec("frames", i, ingest_ref.path, s, s + len(hashes[s:s + size]),
                  digest_json(hashes[s:s + size]), tuple(hashes[s:s + size]))
        for i, s in enumerate(range(0, len(hashes), size))
    ]


def frames_shard(ctx: Context, shard: ShardSpec) -> ArtifactRef:
    from t2v_core import video

    cfg = ctx.profile.frames

    def build(out: Path) -> dict[str, int]:
        corpus = pq.read_table(Path(shard.source) / "corpus.parquet",
                               columns=["video_sha256", "video_id", "video_path"]).to_pandas()
        first = corpus.drop_duplicates("video_sha256").set_index("video_sha256")
        videos = [(h, str(first.at[h, "video_id"]), str(first.at[h, "video_path"])) for h in shard.items]
        index = video.extract_shard(videos, cfg, out / "clips.npy", shard.index,
                                    ctx.report(f"frames-{shard.index}"))
        write_parquet(index, out / "clips.parquet", video.CLIPS_SCHEMA)
        ok = sum(1 for s in index.column("status").to_pylist() if s == "ok")
        return {"videos_in": len(videos), "clips_out": ok, "rejected": len(videos) - ok}

    return _build(ctx, "frames-shard", ctx.profile.section("frames"), {"videos": shard.digest}, build)


def combine_frames(ctx: Context, shard_refs: Sequence[ArtifactRef]) -> ArtifactRef:
    def build(out: Path) -> dict[str, int]:
        tables = []
        for i, ref in enumerate(shard_refs):
            _link(ref.file("clips.npy"), out / f"clips-{i:05d}.npy")
            t = pq.read_table(ref.file("clips.parquet"))
            # The shard's own number depends on where it sat when first built; renumber.
            tables.append(t.set_column(t.schema.get_field_index("shard"), "shard",
                                       pa.array([i] * t.num_rows, pa.int32())))
        from t2v_core import video

        index = pa.concat_tables(tables) if tables else video.CLIPS_SCHEMA.empty_table()
        write_parquet(index, out / "clips.parquet", video.CLIPS_SCHEMA)
        ok = sum(1 for s in index.column("status").to_pylist() if s == "ok")
        return {"shards": len(shard_refs), "clips_out": ok, "rejected": index.num_rows - ok}

    inputs = {f"shard-{i:05d}": r.key for i, r in enumerate(shard_refs)}
    return _build(ctx, "frames", ctx.profile.section("frames"), inputs, build)


# ---------------------------------------------------------------------------- match


def match(ctx: Context, ingest_ref: ArtifactRef, embed_ref: ArtifactRef, frames_ref: ArtifactRef) -> ArtifactRef:
    """The text-video matching model, trained on the training side's real clips, with its
    R-precision on real val and test clips (ceiling) and with shuffled captions (chance)."""
    import torch

    from t2v_core import matching, scoring
    from t2v_core.datasets import side_data, train_data

    cfg = ctx.profile.match

    def build(out: Path) -> dict[str, int]:
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        data = train_data(ingest_ref, embed_ref, frames_ref)
        model, losses = matching.train_match(data.clips, data.caption_clip, data.token_ids, data.lengths,
                                             data.embeddings, cfg)
        matching.save_match(model, out / matching.FILE)
        report = {"steps": cfg.steps, "loss_first": losses[0] if losses else None,
                  "loss_last": float(np.mean(losses[-20:])) if losses else None}
        for side in ("val", "test"):
            report[side] = scoring.calibration(model, side_data(ingest_ref, embed_ref, frames_ref, side), cfg.seed)
        (out / "match.json").write_text(json.dumps(report, indent=2))
        return {"train_videos": int(len(np.unique(data.caption_clip))), "train_captions": int(len(data.caption_clip))}

    inputs = {"ingest": ingest_ref.key, "embed": embed_ref.key, "frames": frames_ref.key}
    return _build(ctx, "match", ctx.profile.section("match"), inputs, build)


# ---------------------------------------------------------------------------- train


def train(ctx: Context, ingest_ref: ArtifactRef, embed_ref: ArtifactRef, frames_ref: ArtifactRef,
          match_ref: ArtifactRef, progress: Callable[[int, int, dict], None] | None = None,
          init_from: ArtifactRef | None = None) -> ArtifactRef:
    """Train the GAN; a rerun after a crash resumes from the newest whole checkpoint.

    ``init_from`` (a committed training run) warm-starts the networks from its newest
    checkpoint: nightly retraining can continue from the previous model. It is part of
    the key, so a warm-started run never shares a folder with a cold one."""
    from t2v_core import train as trainer
    from t2v_core.datasets import train_data

    tcfg, adapted = _train_settings_for(ctx.profile.train, corpus_of(ingest_ref).get("judge", ""))

    def build(out: Path) -> dict[str, int]:
        data = train_data(ingest_ref, embed_ref, frames_ref)
        model_cfg = dataclasses.replace(
            ctx.profile.model, word_dim=int(data.embeddings.shape[1]), vocab_size=len(data.vocab)
        )
        report = progress
        if report is None and ctx.progress is not None:
            report = lambda step, total, _logs: ctx.progress("train", step, total)  # noqa: E731
        summary = trainer.train(
            data, model_cfg, tcfg, out, progress=report,
            eval_fn=_validation(ctx, ingest_ref, embed_ref, frames_ref, match_ref),
            init_from=checkpoint_of(init_from) if init_from is not None else None,
        )
        (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
        return {"steps": int(summary.get("steps", ctx.profile.train.steps)),
                "captions": int(len(data.caption_clip))}

    params = {"train": dataclasses.asdict(tcfg), "model": ctx.profile.section("model")}
    inputs = {"ingest": ingest_ref.key, "embed": embed_ref.key, "frames": frames_ref.key, "match": match_ref.key}
    if init_from is not None:
        inputs["init_from"] = init_from.key
    return _build(ctx, "train", params, inputs, build, keep_partial=True,
                  extra={"adapted_to_corpus": adapted} if adapted else None)


# What the Moving Shapes judge's validation reports (_judge_validation).
JUDGE_METRICS = ("seen_all_correct", "seen_coherent", "seen_correct_and_coherent", "seen_variety", "seen_weakest")


def _train_settings_for(cfg: TrainConfig, judge: str) -> tuple[TrainConfig, dict[str, Any]]:
    """A profile may lean on a corpus judge's figures: selection by one of them, terms
    gated on its accuracy. On a corpus without that judge those fall back to the generic
    ones, so any profile trains on any corpus: selection by R-precision, gated terms on from
    the first step. The changes are recorded in the train artifact's manifest."""
    if judge:
        return cfg, {}
    changes: dict[str, Any] = {}
    if cfg.select_by in JUDGE_METRICS:
        changes["select_by"] = "r_precision"
    for gate in ("word_twin_after", "diversity_floor_after"):
        if getattr(cfg, gate) > 0:
            changes[gate] = 0.0
    return dataclasses.replace(cfg, **changes), changes


def _validation(ctx: Context, ingest_ref: ArtifactRef, embed_ref: ArtifactRef, frames_ref: ArtifactRef,
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
            return model.generate(side.token_ids[rows], side.lengths[rows], list(seeds))

        out = score(generate)
        if judge == "shapes":
            out.update(_judge_validation(ctx, model))
        elif judge in ("digits", "shapes2"):
            from t2v_core import assess_objects

            classifier = assess_objects.classifier_for(judge, Path(ingest_ref.manifest()["params"]["manifest"]))
            out.update(assess_objects.validation(model, _prompt_nlp(ctx), ctx.profile.embed, judge, classifier))
        return out

    return evaluate


def _judge_validation(ctx: Context, model: Any) -> dict[str, float]:
    """The Moving Shapes judge on 40 seen-composition prompts (training compositions, drawn
    with the evaluation's seed plus one, so neither their noise nor their order is the
    evaluate stage's). ``seen_weakest`` is the lowest of the three seen figures the judge
    has bars for: a checkpoint chosen on it is the one whose weakest bar is best."""
    from t2v_core.assess import judge_model

    m, _, _ = judge_model(model, _prompt_nlp(ctx), ctx.profile.embed, 40, 40, 1235)
    seen = {"seen_all_correct": m["seen"]["all_correct"] or 0.0,
            "seen_coherent": m["seen"]["coherent"] or 0.0,
            "seen_correct_and_coherent": m["seen"]["correct_and_coherent"] or 0.0,
            "seen_variety": m["variety"]}
    return {**seen, "seen_weakest": min(seen["seen_all_correct"], seen["seen_coherent"], seen["seen_variety"])}


def checkpoint_of(train_ref: ArtifactRef) -> Path:
    """The run's published checkpoint: the selected one, else the newest."""
    from t2v_core.generate import model_checkpoint

    ckpt = model_checkpoint(Path(train_ref.path))
    if ckpt is None:
        raise FileNotFoundError(f"training run {train_ref.key} has no checkpoint")
    return ckpt


# ---------------------------------------------------------------------------- render + evaluate


def default_catalog(ctx: Context) -> Path:
    return Path(ctx.profile.render.catalog or REPO_DATA / "catalogs" / "demo.csv").resolve()


def render(ctx: Context, train_ref: ArtifactRef, catalog: Path | None = None) -> ArtifactRef:
    """A prompt catalog -> videos, renders.parquet and a gallery index.html."""
    from t2v_core import render as renderer
    from t2v_core.generate import Text2Video

    cfg = ctx.profile.render
    catalog = (catalog or default_catalog(ctx)).resolve()
    if not catalog.is_file():
        raise FileNotFoundError(f"prompt catalog not found: {catalog}")

    def build(out: Path) -> dict[str, int]:
        model = Text2Video.from_checkpoint(checkpoint_of(train_ref), use_ema=cfg.use_ema)
        gen = renderer.make_generate_fn(model, _prompt_nlp(ctx), ctx.profile.embed.token_form, ctx.profile.embed.max_len)
        result = renderer.render_catalog(catalog, out, gen, cfg, progress=ctx.report("render"))
        (out / "summary.json").write_text(json.dumps(result, indent=2, default=str))
        return {k: int(v) for k, v in result.items() if isinstance(v, (int, np.integer))}

    inputs = {"train": train_ref.key, "catalog": digest_file(catalog)}
    return _build(ctx, "render", {**ctx.profile.section("render"), "catalog": str(catalog)}, inputs, build)


def _prompt_nlp(ctx: Context) -> Any:
    """The spaCy pipeline that reads prompts in the embed stage's token form."""
    return _nlp(ctx.profile.tokenize.spacy_model,
                "tokenizer" if ctx.profile.embed.token_form == "lower" else "annotator")


def evaluate(ctx: Context, train_ref: ArtifactRef, match_ref: ArtifactRef, ingest_ref: ArtifactRef,
             embed_ref: ArtifactRef, frames_ref: ArtifactRef) -> ArtifactRef:
    """Generate videos of the test side's captions and measure them: metrics.json (the
    generic metrics, and the corpus judge's where it has one) and a side-by-side page."""
    from t2v_core.sidebyside import write_side_by_side

    def build(out: Path) -> dict[str, int]:
        metrics, side, clips = evaluate_model(ctx, checkpoint_of(train_ref), match_ref, ingest_ref,
                                              embed_ref, frames_ref)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
        n = write_side_by_side(out / "side_by_side", side.texts, side.clips, clips,
                               ctx.profile.evaluate.side_by_side, ctx.profile.render.fps)
        return {"test_videos": len(side.texts), "side_by_side": n}

    inputs = {"train": train_ref.key, "match": match_ref.key, "ingest": ingest_ref.key,
              "embed": embed_ref.key, "frames": frames_ref.key}
    params = {**ctx.profile.section("evaluate"), "use_ema": ctx.profile.render.use_ema,
              "spacy_model": _model_name(ctx.profile.tokenize.spacy_model), "token_form": ctx.profile.embed.token_form}
    return _build(ctx, "evaluate", params, inputs, build)


def evaluate_model(ctx: Context, checkpoint: Path, match_ref: ArtifactRef, ingest_ref: ArtifactRef,
                   embed_ref: ArtifactRef, frames_ref: ArtifactRef) -> tuple[dict[str, Any], Any, np.ndarray]:
    """The evaluation metrics of one checkpoint against this corpus's test side (also used
    by benchmarks and by nightly promotion to re-score the current model). Returns the
    metrics, the test side and the first seed set's generated clips."""
    from t2v_core import scoring
    from t2v_core.assess import judge_model
    from t2v_core.datasets import side_data
    from t2v_core.embeddings import encode_tokens, prompt_tokens
    from t2v_core.generate import Text2Video
    from t2v_core.matching import FILE, load_match

    cfg = ctx.profile.evaluate
    model = Text2Video.from_checkpoint(checkpoint, use_ema=ctx.profile.render.use_ema)
    side = side_data(ingest_ref, embed_ref, frames_ref, "test", cfg.max_captions, cfg.seed)
    # Prompts are read as a user's would be: by spaCy, into the model's own vocabulary (a
    # model trained on an older corpus has another one than this embed stage's).
    tokens = prompt_tokens(_prompt_nlp(ctx), side.texts, ctx.profile.embed.token_form)
    ids, lengths, _ = encode_tokens(tokens, model.vocab, model.max_len)

    def generate(rows: Sequence[int], seeds: Sequence[int]) -> np.ndarray:
        rows = list(rows)
        return model.generate(ids[rows], lengths[rows], list(seeds))

    metrics, clips = scoring.generic_metrics(load_match(Path(match_ref.file(FILE))), side, generate, cfg)
    corpus = corpus_of(ingest_ref)
    if corpus.get("judge") == "shapes":
        judged, _, _ = judge_model(model, _prompt_nlp(ctx), ctx.profile.embed,
                                   cfg.prompts_per_split, cfg.variety_pairs, cfg.seed)
        metrics["judge"] = {"name": "shapes", **judged}
    elif corpus.get("judge") in ("digits", "shapes2"):
        from t2v_core import assess_objects

        name = corpus["judge"]
        classifier = assess_objects.classifier_for(name, Path(ingest_ref.manifest()["params"]["manifest"]))
        judged, _, _ = assess_objects.judge_model(model, _prompt_nlp(ctx), ctx.profile.embed, name, classifier,
                                                  cfg.prompts_per_split, cfg.variety_pairs, cfg.seed)
        metrics["judge"] = {"name": name, **judged}
    metrics["corpus"] = corpus
    metrics["checkpoint"] = checkpoint.name
    return metrics, side, clips


# ---------------------------------------------------------------------------- whole pipeline

# What each stage reads. frames needs only ingest, so it runs beside the text stages.
DEPENDS = {
    "synth": (),
    "ingest": ("synth",),
    "tokenize": ("ingest",),
    "annotate": ("tokenize",),
    "embed": ("tokenize", "annotate"),
    "frames": ("ingest",),
    "match": ("ingest", "embed", "frames"),
    "train": ("ingest", "embed", "frames", "match"),
    "render": ("train",),
    "evaluate": ("train", "match", "ingest", "embed", "frames"),
}


def closure(stages: Sequence[str]) -> list[str]:
    """The stages needed to produce ``stages``, in a runnable order."""
    need: set[str] = set()

    def visit(s: str) -> None:
        if s not in DEPENDS:
            raise ValueError(f"unknown stage {s!r}; stages: {', '.join(STAGES)}")
        if s not in need:
            need.add(s)
            for d in DEPENDS[s]:
                visit(d)

    for s in stages:
        visit(s)
    return [s for s in STAGES if s in need]


def run_pipeline(profile: Profile, workspace: str | Path, stages: Sequence[str] = STAGES,
                 progress: Progress | None = None) -> dict[str, ArtifactRef]:
    """Run ``stages`` and what they need, in this process and sequentially (no Prefect).

    The Prefect flows run the same stage functions through tasks and map the shards
    concurrently; this is the plain version for benchmarks and library use."""
    ctx = Context(profile, ArtifactStore(workspace), progress)
    refs: dict[str, Any] = {}
    tok_shards: list[ArtifactRef] = []
    for stage in closure(stages):
        if stage == "synth":
            refs["synth"] = None if profile.ingest.manifest else synth(ctx)
        elif stage == "ingest":
            refs["ingest"] = ingest(ctx, refs["synth"])
        elif stage == "tokenize":
            tok_shards = [tokenize_shard(ctx, s) for s in plan_text_shards(ctx, refs["ingest"])]
            refs["tokenize"] = combine_tokenize(ctx, tok_shards)
        elif stage == "annotate":
            refs["annotate"] = combine_annotate(ctx, [annotate_shard(ctx, t) for t in tok_shards])
        elif stage == "embed":
            refs["embed"] = embed(ctx, refs["tokenize"], refs["annotate"])
        elif stage == "frames":
            shards = plan_frame_shards(ctx, refs["ingest"])
            refs["frames"] = combine_frames(ctx, [frames_shard(ctx, s) for s in shards])
        elif stage == "match":
            refs["match"] = match(ctx, refs["ingest"], refs["embed"], refs["frames"])
        elif stage == "train":
            refs["train"] = train(ctx, refs["ingest"], refs["embed"], refs["frames"], refs["match"])
        elif stage == "render":
            refs["render"] = render(ctx, refs["train"])
        elif stage == "evaluate":
            refs["evaluate"] = evaluate(ctx, refs["train"], refs["match"], refs["ingest"], refs["embed"],
                                        refs["frames"])
    return {k: v for k, v in refs.items() if v is not None}
