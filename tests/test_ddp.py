"""Training in several processes: PyTorch DDP under torchrun, with gloo on CPU.

Two ranks must train what one process trains with the same global batch, a killed rank
must end the run with a clear error and leave checkpoints the rerun resumes from, and the
train stage must launch it inside the pipeline."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from pathlib import Path

import psutil
import pytest
import torch

from t2v_core import ddp
from t2v_core.checkpoints import SELECTED, load_checkpoint, published_checkpoint
from t2v_core.config import load_profile
from t2v_core.datasets import train_data
from t2v_core.pipeline import run_pipeline
from t2v_core.train import _Run, train

TINY = load_profile("tiny")
INPUTS = ("ingest", "embed", "frames", "match")
# No evaluation (rank 0's evaluation is the pipeline test's), so nothing waits for one.
BARE = dict(eval_every=0, select_by="", max_minutes=0.0, threads=1)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    """The tiny corpus's stages up to match, in a workspace the tests share."""
    ws = tmp_path_factory.mktemp("ddp-ws")
    return ws, run_pipeline(TINY, ws, stages=("match",))


def _job(refs, run_dir: Path, **settings):
    data = train_data(refs["ingest"], refs["embed"], refs["frames"])
    model = dataclasses.replace(TINY.model, word_dim=int(data.embeddings.shape[1]), vocab_size=len(data.vocab))
    tcfg = dataclasses.replace(TINY.train, **{**BARE, **settings})
    job = ddp.write_job(run_dir, {k: refs[k] for k in INPUTS}, model, tcfg, None, {})
    return job, data, model, tcfg


def _flat(state: dict) -> torch.Tensor:
    return torch.cat([x.flatten().double() for _, x in sorted(state.items()) if torch.is_floating_point(x)])


@pytest.mark.slow
def test_two_ranks_reach_the_weights_of_one_process(upstream, tmp_path):
    """Every term of the recipe and batch norm in G, over a global batch of 16: as one
    process, and as two ranks of 8, through 2 steps of the word warm-up and 3 GAN steps.
    They agree to float32 rounding (about 2e-8 relative, measured). A parameter whose true
    gradient is zero breaks that: Adam scales each first step to about the learning rate
    whatever the gradient's size, so its rounding (one sum of 16 rows against two of 8) moves
    it by +-lr at random. A key bias and a bias before group norm did so and put the
    networks 2e-4 apart; they are gone, and this bound keeps such parameters out."""
    _, refs = upstream
    job, data, model, tcfg = _job(refs, tmp_path / "two", batch_size=16, steps=5, ckpt_every=5, word_warmup=2)
    summary = ddp.launch(job, ddp.Launch(processes=2), timeout=300)
    assert summary["steps"] == 5 and summary["processes"] == 2
    assert train(data, model, tcfg, tmp_path / "one")["steps"] == 5
    start = _Run(data, model, tcfg, torch.device("cpu"))
    a = load_checkpoint(tmp_path / "one" / "ckpt-000005.pt")
    b = load_checkpoint(tmp_path / "two" / "ckpt-000005.pt")
    for net, initial in (("generator", start.G), ("discriminator", start.D), ("generator_ema", start.G)):
        one, two, init = _flat(a[net]), _flat(b[net]), _flat(initial.state_dict())
        assert set(a[net]) == set(b[net])  # one state dict: synced batch norm leaves no trace
        moved = float((one - init).norm() / init.norm())
        error = float((two - one).norm() / one.norm())
        assert error < 1e-6, (net, error)
        assert moved > 30 * error, (net, moved, error)  # the five steps are what agree


def _workers(job: Path) -> list[psutil.Process]:
    """The ranks torchrun started for this job (not torchrun itself)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if str(job) in cmd and "t2v_core.ddp" in cmd and "torch.distributed.run" not in cmd:
            found.append(p)
    return found


@pytest.mark.slow
def test_a_killed_rank_ends_the_run_and_the_rerun_resumes(upstream, tmp_path):
    _, refs = upstream
    run_dir = tmp_path / "run"
    job, *_ = _job(refs, run_dir, batch_size=8, steps=120, ckpt_every=10, word_warmup=0)
    failure: list[BaseException] = []

    def first_attempt() -> None:
        try:
            ddp.launch(job, ddp.Launch(processes=2), timeout=300)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            failure.append(exc)

    thread = threading.Thread(target=first_attempt)
    thread.start()
    deadline = time.monotonic() + 240
    while not (run_dir / "ckpt-000020.pt").is_file():
        assert time.monotonic() < deadline and thread.is_alive(), "no checkpoint before the kill"
        time.sleep(0.2)
    victims = _workers(job)
    assert len(victims) == 2
    victims[1].kill()  # SIGKILL: no handler runs
    thread.join(120)
    assert not thread.is_alive()
    assert failure and isinstance(failure[0], RuntimeError)
    message = str(failure[0])
    assert "training in 2 processes failed" in message and "resumes" in message
    assert not (run_dir / "ckpt-000120.pt").exists()
    killed_at = max(int(p.stem.split("-")[1]) for p in run_dir.glob("ckpt-*.pt"))

    summary = ddp.launch(job, ddp.Launch(processes=2), timeout=300)
    assert summary["resumed_from"] == killed_at >= 20
    assert summary["steps"] == 120
    assert load_checkpoint(run_dir / "ckpt-000120.pt")["step"] == 120


@pytest.mark.slow
def test_the_train_stage_trains_in_two_processes_and_its_model_renders(upstream):
    ws, _ = upstream
    profile = TINY.override(train={"processes": 2})
    refs = run_pipeline(profile, ws, stages=("render",))
    train_dir = Path(refs["train"].path)
    config = (train_dir / "config.json").read_text()
    assert '"processes": 2' in config
    assert (train_dir / ddp.LOG).is_file()
    assert (train_dir / SELECTED).is_file()  # rank 0 evaluated and selected
    assert published_checkpoint(train_dir).is_file()
    assert list(Path(refs["render"].path).rglob("*.webm"))
    # How many processes train is not part of what is trained: one process finds it cached.
    again = run_pipeline(TINY, ws, stages=("train",))
    assert again["train"].key == refs["train"].key and again["train"].cached


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_on_one_machine_train_together(upstream):
    """Two "nodes" on 127.0.0.1 run the same pipeline with their node_rank, one rank each:
    they meet at a c10d rendezvous endpoint and share the workspace, as machines must.
    Node 0 builds and commits the artifact; node 1 trains its rank and returns it."""
    ws, _ = upstream
    endpoint = f"127.0.0.1:{_free_port()}"
    results: dict[int, object] = {}

    def node(rank: int) -> None:
        profile = TINY.override(train={"steps": 8, "processes": 1, "nnodes": 2, "node_rank": rank,
                                       "rdzv_endpoint": endpoint})
        try:
            results[rank] = run_pipeline(profile, ws, stages=("train",))["train"]
        except BaseException as exc:  # noqa: BLE001 - reported below
            results[rank] = exc

    threads = [threading.Thread(target=node, args=(r,)) for r in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(400)
    refs = [results.get(r) for r in (0, 1)]
    assert all(hasattr(r, "key") for r in refs), results
    assert refs[0].key == refs[1].key
    train_dir = Path(refs[0].path)
    assert '"processes": 2' in (train_dir / "config.json").read_text()
    assert (train_dir / "ckpt-000008.pt").is_file() and (train_dir / "ddp-node1.log").is_file()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_ddp_on_every_visible_cuda_device(upstream, tmp_path):
    _, refs = upstream
    n = torch.cuda.device_count()
    job, *_ = _job(refs, tmp_path / "run", batch_size=8 * n, steps=20, ckpt_every=10, device="cuda")
    summary = ddp.launch(job, ddp.Launch(processes=n), timeout=300)
    assert summary["steps"] == 20 and summary["processes"] == n
    assert "cuda" in summary["device"]
