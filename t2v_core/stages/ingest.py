"""ingest: a manifest -> validated corpus.parquet and rejects.parquet."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from t2v_core.stages.base import Context, Stage, build_artifact
from t2v_core.store import ArtifactRef, digest_file, digest_json, write_parquet


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


def build(ctx: Context, inputs: dict[str, ArtifactRef]) -> ArtifactRef:
    from t2v_core.corpus import manifests
    from t2v_core.corpus.info import read_info

    cfg = ctx.profile.ingest
    if cfg.manifest:
        manifest = Path(cfg.manifest).resolve()
        if not manifest.exists():
            raise FileNotFoundError(f"manifest not found: {manifest}")
        keys = {"manifest": manifest_identity(manifest)}
    else:
        if inputs.get("synth") is None:
            raise ValueError("no [ingest] manifest set and no synthetic corpus given")
        manifest = inputs["synth"].file("manifest.csv")
        keys = {"synth": inputs["synth"].key}

    info = read_info(manifest)

    def build_into(out: Path) -> dict[str, int]:
        corpus, rejects = manifests.read_manifest(manifest, cfg)
        sides = manifests.check_splits(corpus, cfg)
        write_parquet(corpus, out / "corpus.parquet", manifests.CORPUS_SCHEMA)
        write_parquet(rejects, out / "rejects.parquet", manifests.REJECTS_SCHEMA)
        return {"rows_out": corpus.num_rows, "rejected": rejects.num_rows,
                **{f"{side}_videos": n for side, n in sides.items()}}

    params = {**ctx.settings(STAGE), "manifest": str(manifest)}
    return build_artifact(ctx, "ingest", params, keys, build_into, extra={"corpus": dataclasses.asdict(info)})


STAGE = Stage("ingest", ("synth",), ("ingest",), build,
              "the manifest checked into corpus.parquet, with a rejects row for each bad one")
