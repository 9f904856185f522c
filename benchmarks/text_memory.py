"""Claim: the text stages' peak memory stays flat as the corpus grows.

For each corpus size, a fresh child process runs tokenize and annotate shard by shard (as
the pipeline does: one shard's table in memory at a time, each written to its own Parquet
file), then ``embeddings.train_embeddings`` over the shard files. The child reports its peak
resident memory (ru_maxrss) after each stage. Prints the peaks per size and the ratio of the
largest corpus's peak to the smallest's: 1.0 is perfectly flat; a stage that held the whole
corpus would grow about as fast as the corpus.

    .venv/bin/python benchmarks/text_memory.py                       # 10,000 and 100,000 captions
    .venv/bin/python benchmarks/text_memory.py --sizes 2000 20000 --epochs 2
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(n: int, shard_size: int, epochs: int, workdir: Path) -> dict:
    from annotate_throughput import realistic_captions

    from t2v_core import embeddings, text
    from t2v_core.config import AnnotateConfig, EmbedConfig, TokenizeConfig
    from t2v_core.store import write_parquet

    name = text.resolve_model_name("")
    tokenizer, annotator = text.load_tokenizer(name), text.load_annotator(name)
    report = {"captions": n, "after_load_mib": _peak_mib()}
    files: dict[str, list[Path]] = {"tokens": [], "annotations": [], "entities": []}
    t0 = time.perf_counter()
    for s, start in enumerate(range(0, n, shard_size)):
        # Captions are made per shard too, so the corpus is never in memory, as in ingest.
        texts = realistic_captions(min(shard_size, n - start), seed=s)
        ids = [f"s{s}-{i}" for i in range(len(texts))]
        tokens, _ = text.tokenize_captions(tokenizer, ids, texts, TokenizeConfig())
        annotations, entities = text.annotate_tokens(annotator, tokens, AnnotateConfig())
        for kind, table, schema in (
            ("tokens", tokens, text.TOKENS_SCHEMA),
            ("annotations", annotations, text.ANNOTATIONS_SCHEMA),
            ("entities", entities, text.ENTITIES_SCHEMA),
        ):
            path = workdir / kind / f"part-{s:05d}.parquet"
            write_parquet(table, path, schema)
            files[kind].append(path)
        del tokens, annotations, entities
    report["tokenize_annotate_s"] = time.perf_counter() - t0
    report["after_annotate_mib"] = _peak_mib()
    t0 = time.perf_counter()
    result = embeddings.train_embeddings(
        files["tokens"], EmbedConfig(epochs=epochs), workdir / "embed",
        files["annotations"], files["entities"],
    )
    report["embed_s"] = time.perf_counter() - t0
    report["after_embed_mib"] = _peak_mib()
    report["tokens"] = result["tokens"]
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--shard-size", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--workdir", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        print(json.dumps(child(args.child, args.shard_size, args.epochs, Path(args.workdir))))
        return

    results = []
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, __file__, "--child", str(n), "--workdir", tmp,
                   "--shard-size", str(args.shard_size), "--epochs", str(args.epochs)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        results.append(r)
        print(
            f"{r['captions']:>7} captions, {r['tokens']:>8} tokens: peak RSS after load "
            f"{r['after_load_mib']:6.0f} MiB, after tokenize+annotate {r['after_annotate_mib']:6.0f} MiB "
            f"({r['tokenize_annotate_s']:.0f} s), after embed {r['after_embed_mib']:6.0f} MiB "
            f"({r['embed_s']:.0f} s)",
            flush=True,
        )
    small, large = results[0], results[-1]
    print(
        f"corpus x{large['captions'] / small['captions']:.0f}: peak memory "
        f"x{large['after_embed_mib'] / small['after_embed_mib']:.2f} "
        f"({small['after_embed_mib']:.0f} -> {large['after_embed_mib']:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
