"""Claim: what training in two processes (DDP under torchrun, gloo) buys on this machine's CPUs.

Baseline: one process with all the threads the profile gives training ([train] threads),
``t2v_core.train.train`` on the profile's data. Measured: two ranks through
``t2v_core.ddp.launch`` on the same job, each with half the threads, the same global batch
(each rank computes half of it and all-reduces the gradients every step). Both run the
same number of GAN steps with no word warm-up, validation or time budget; the rate is taken
between two checkpoints (``--steps`` apart), so process start-up and torchrun's rendezvous
are not counted. Prints both rates and their ratio.

On 2 cores expect little: one process already uses both cores through torch's threads, and
two ranks add the all-reduce and the gathers to every step. DDP is for more cores or GPUs
than one process can fill.

    .venv/bin/python benchmarks/ddp_throughput.py                      # demo profile
    .venv/bin/python benchmarks/ddp_throughput.py --steps 40 --workspace /tmp/ws
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyarrow.parquet as pq  # noqa: E402

from t2v_core import ddp  # noqa: E402
from t2v_core.config import load_profile  # noqa: E402
from t2v_core.datasets import fill_model_config, train_data  # noqa: E402
from t2v_core.pipeline import run_pipeline  # noqa: E402
from t2v_core.train import train  # noqa: E402

INPUTS = ("ingest", "embed", "frames", "match")


def steps_per_second(run_dir: Path, first: int, last: int) -> float:
    """The rate between two logged steps (metrics.parquet's seconds since training began)."""
    rows = pq.read_table(run_dir / "metrics.parquet", columns=["step", "seconds"]).to_pandas().set_index("step")
    return (last - first) / float(rows.loc[last, "seconds"] - rows.loc[first, "seconds"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--steps", type=int, default=60, help="the steps timed, after 10 untimed ones")
    ap.add_argument("--workspace", default="", help="default: a temporary folder")
    args = ap.parse_args()
    profile = load_profile(args.profile)
    ws = Path(args.workspace or tempfile.mkdtemp(prefix="t2v-ddp-"))
    refs = run_pipeline(profile, ws, stages=("match",))
    data = train_data(refs["ingest"], refs["embed"], refs["frames"])
    model = fill_model_config(dataclasses.replace(profile.model, word_dim=int(data.embeddings.shape[1])), data)
    warm = 10
    total = warm + args.steps
    threads = profile.train.threads or os.cpu_count() or 1
    tcfg = dataclasses.replace(profile.train, steps=total, ckpt_every=warm, eval_every=0, select_by="",
                               word_warmup=0, max_minutes=0.0, threads=threads)
    out = ws / "ddp-throughput"
    one_dir, two_dir = out / "one", out / "two"
    for d in (one_dir, two_dir):
        if d.exists():
            for f in d.iterdir():
                f.unlink()

    train(data, model, tcfg, one_dir)
    one = steps_per_second(one_dir, warm, total)
    job = ddp.write_job(two_dir, {k: refs[k] for k in INPUTS}, model, tcfg, None, {})
    ddp.launch(job, ddp.Launch(processes=2))
    two = steps_per_second(two_dir, warm, total)

    result = {
        "profile": profile.name, "batch_size": tcfg.batch_size, "steps_timed": args.steps,
        "cpu": f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical cores",
        "load_average_at_end": os.getloadavg()[0],
        "one_process_threads": threads, "one_process_steps_per_s": one,
        "two_processes_threads_each": max(1, threads // 2), "two_processes_steps_per_s": two,
        "ratio": two / one,
    }
    print(json.dumps(result, indent=2))
    print(f"\n{profile.name}, global batch {tcfg.batch_size}: one process ({threads} threads) {one:.2f} steps/s, "
          f"two processes ({max(1, threads // 2)} thread each) {two:.2f} steps/s: ratio {two / one:.2f}x")


if __name__ == "__main__":
    main()
