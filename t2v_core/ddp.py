"""Training in several processes with PyTorch DDP, launched by torchrun.

The train stage writes a job (what ``train()`` needs: the input artifacts, the model and
training settings, the run folder) into the run folder and starts::

    python -m torch.distributed.run --standalone --nproc-per-node N -m t2v_core.ddp RUN/ddp-job.json

Every rank reads the job, joins the process group (``nccl`` on CUDA, ``gloo`` on CPU) and
runs ``t2v_core.train.train`` with its ``World``; rank 0 evaluates and writes. The stage is
what users run (``[train] processes``); docs/operations.md has the multi-node commands.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

JOB = "ddp-job.json"
LOG = "ddp.log"
SUMMARY = "ddp-summary.json"
# How long a worker node waits for node 0 to write the job (it runs the upstream stages first).
JOB_WAIT_SECONDS = 3600.0


@dataclasses.dataclass(frozen=True)
class Launch:
    """How many processes train, on how many machines: the [train] settings that are left
    out of the cache key (results agree within a tolerance, not bit for bit)."""

    processes: int = 1  # per node
    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str = ""  # host:port of node 0, when nnodes > 1

    @property
    def distributed(self) -> bool:
        return self.processes * self.nnodes > 1


def processes_for(setting: int, device: str) -> int:
    """[train] processes: 0 = one per visible CUDA device (1 without one, or on CPU)."""
    if setting > 0:
        return setting
    import torch

    if device != "cpu" and torch.cuda.is_available():
        return max(1, torch.cuda.device_count())
    return 1


def write_job(run_dir: Path, refs: Mapping[str, Any], model: Any, train: Any,
              init_from: Path | None, prompt_reader: Mapping[str, Any]) -> Path:
    """The job every rank reads, written atomically into the run folder."""
    from t2v_core.store import atomic_write_text

    job = {
        "refs": {name: ref.to_dict() for name, ref in refs.items()},
        "model": dataclasses.asdict(model),
        "train": dataclasses.asdict(train),
        "run_dir": str(Path(run_dir).resolve()),
        "init_from": str(init_from) if init_from is not None else None,
        "prompt_reader": dict(prompt_reader),
    }
    path = Path(run_dir) / JOB
    atomic_write_text(path, json.dumps(job, indent=2))
    return path


def torchrun_command(job: Path, launch: Launch) -> list[str]:
    """The torchrun command line for this node."""
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={launch.processes}"]
    if launch.nnodes > 1:
        cmd += [f"--nnodes={launch.nnodes}", f"--node-rank={launch.node_rank}",
                "--rdzv-backend=c10d", f"--rdzv-endpoint={launch.rdzv_endpoint}"]
    else:
        cmd += ["--standalone"]
    return cmd + ["-m", "t2v_core.ddp", str(job)]


def launch(job: Path, launch: Launch, timeout: float | None = None) -> dict[str, Any]:
    """Run the job under torchrun on this node and return rank 0's summary (on node 0).
    A rank that dies ends the whole run (torchrun stops the others): the error quotes the
    log, and a rerun resumes from the newest whole checkpoint."""
    run_dir = job.parent
    log = run_dir / (LOG if launch.node_rank == 0 else f"ddp-node{launch.node_rank}.log")
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)  # the project, importable by every rank
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    (run_dir / SUMMARY).unlink(missing_ok=True)
    with open(log, "ab") as out:
        out.write(f"\n== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(torchrun_command(job, launch))}\n".encode())
        out.flush()
        proc = subprocess.run(torchrun_command(job, launch), stdout=out, stderr=subprocess.STDOUT,
                              env=env, timeout=timeout, check=False)
    if proc.returncode != 0:
        lines = log.read_text(errors="replace").splitlines()
        # A rank's own error, where it raised one (torchrun prefixes its lines with [rankN]:)
        cause = next((line for line in lines if re.match(r"\[rank\d+\]: [\w.]*(Error|Exception)\b", line)),
                     "no rank raised an error: one was killed (its exit code is in the log)")
        raise RuntimeError(
            f"training in {launch.processes * launch.nnodes} processes failed (torchrun exit code "
            f"{proc.returncode}): {cause}. The checkpoints written so far are whole and a rerun "
            f"resumes from the newest. The log: {log}")
    if launch.node_rank != 0:
        return {}
    return json.loads((run_dir / SUMMARY).read_text())


def wait_for_job(path: Path, timeout: float = JOB_WAIT_SECONDS) -> Path:
    """``path`` once it exists: a worker node's job is the one node 0 writes into the shared
    run folder, and a worker node may get there first."""
    path = Path(path)
    deadline = time.monotonic() + timeout
    while not path.is_file():
        if time.monotonic() > deadline:
            raise TimeoutError(f"node 0 wrote no training job at {path} within {timeout:.0f} s; "
                               "every node must see the same workspace path")
        time.sleep(1.0)
    return path


def run_rank(job_path: Path) -> None:
    """One rank's work: read the job, join the group, train, leave."""
    import torch
    import torch.distributed as dist

    from t2v_core.checkpoints import model_config_from_dict
    from t2v_core.config import TrainConfig
    from t2v_core.datasets import train_data
    from t2v_core.distributed import world_from_env
    from t2v_core.validation import validation
    from t2v_core.store import ArtifactRef, atomic_write_text
    from t2v_core.train import train

    job = json.loads(Path(job_path).read_text())
    refs = {name: ArtifactRef(**ref) for name, ref in job["refs"].items()}
    model_cfg = model_config_from_dict(job["model"], job_path)
    tcfg = TrainConfig(**job["train"])
    world = world_from_env()
    cuda = tcfg.device != "cpu" and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        data = train_data(refs["ingest"], refs["embed"], refs["frames"])
        eval_fn = None
        if world.main and "match" in refs and tcfg.eval_every > 0:
            eval_fn = validation(tcfg, refs["ingest"], refs["embed"], refs["frames"], refs["match"])

        def progress(step: int, total: int, losses: dict[str, float]) -> None:
            if step % 50 == 0 or step == total:
                print(f"step {step}/{total} " + " ".join(f"{k}={v:.3f}" for k, v in losses.items()), flush=True)

        summary = train(data, model_cfg, tcfg, Path(job["run_dir"]), progress=progress, eval_fn=eval_fn,
                        init_from=Path(job["init_from"]) if job["init_from"] else None,
                        prompt_reader=job["prompt_reader"], world=world)
        if world.main:
            summary["processes"] = world.size
            atomic_write_text(Path(job["run_dir"]) / SUMMARY, json.dumps(summary, indent=2, default=str))
        dist.barrier()  # rank 0's summary is written before any rank reports success
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: torchrun [torchrun options] -m t2v_core.ddp RUN_DIR/ddp-job.json")
    run_rank(wait_for_job(Path(sys.argv[1])))
