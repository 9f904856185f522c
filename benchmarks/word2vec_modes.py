"""Claim: word2vec reads its corpus from disk faster in ``corpus_file`` mode than as an
iterable, so ``EmbedConfig.w2v_mode`` defaults to the faster one.

Both modes read the same one-caption-per-line corpus file that ``train_embeddings`` writes
(realistic captions, tokenized by spaCy, lowercased, punctuation dropped): ``corpus_file``
hands the path to gensim's C reader, whose worker threads each read their own slice of the
file without the GIL; ``iterable`` streams it through a Python ``LineSentence`` and one
producer thread that feeds the workers. Same settings, same run; prints words per second
and the ratio.

    .venv/bin/python benchmarks/word2vec_modes.py
    .venv/bin/python benchmarks/word2vec_modes.py --n 20000 --epochs 5 --workers 1 2
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from annotate_throughput import realistic_captions  # noqa: E402

from t2v_core import embeddings, text  # noqa: E402
from t2v_core.config import EmbedConfig, TokenizeConfig  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000, help="captions")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--workers", type=int, nargs="+", default=[2])
    ap.add_argument("--repeats", type=int, default=2, help="best of this many runs per mode")
    args = ap.parse_args()

    nlp = text.load_tokenizer(text.resolve_model_name(""))
    texts = realistic_captions(args.n)
    tokens, _ = text.tokenize_captions(nlp, [f"c{i}" for i in range(len(texts))], texts, TokenizeConfig())
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        ids = tokens.column("caption_id").to_pylist()
        lower = tokens.column("lower").to_pylist()
        with open(corpus, "w", encoding="utf-8") as fh:
            for _, start, stop in embeddings._runs(ids):
                fh.write(" ".join(embeddings.form_tokens(lower[start:stop], "lower")) + "\n")
        del tokens, ids, lower
        print(f"corpus: {args.n} captions, {corpus.stat().st_size / 2**20:.1f} MiB on disk, "
              f"epochs {args.epochs}")
        for workers in args.workers:
            speed = {}
            for mode in ("iterable", "corpus_file"):
                cfg = dataclasses.replace(EmbedConfig(), epochs=args.epochs, workers=workers, w2v_mode=mode)
                best = float("inf")
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    _, words = embeddings.train_word2vec(corpus, cfg)
                    best = min(best, time.perf_counter() - t0)
                speed[mode] = words / best
                print(f"workers={workers} {mode:>11}: {best:6.2f} s  {speed[mode]:10.0f} words/s "
                      "(vocab scan + training)")
            print(f"workers={workers} corpus_file / iterable: {speed['corpus_file'] / speed['iterable']:.2f}x")


if __name__ == "__main__":
    main()
