import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from t2v_core.imports import code_digest
from t2v_core.store import ArtifactStore, conform, stage_key, write_parquet


def test_key_depends_on_every_input():
    base = stage_key("embed", {"epochs": 5}, ["a"], "c1")
    assert base == stage_key("embed", {"epochs": 5}, ["a"], "c1")
    assert base != stage_key("embed", {"epochs": 6}, ["a"], "c1")
    assert base != stage_key("embed", {"epochs": 5}, ["b"], "c1")
    assert base != stage_key("embed", {"epochs": 5}, ["a"], "c2")
    assert base != stage_key("train", {"epochs": 5}, ["a"], "c1")


def test_code_version_follows_the_sources():
    assert code_digest(["t2v_core.store"]) == code_digest(["t2v_core.store"])
    assert code_digest(["t2v_core.store"]) != code_digest(["t2v_core.config"])


def test_uncommitted_artifact_does_not_exist(tmp_path: Path):
    store = ArtifactStore(tmp_path)
    w = store.open("ingest", "k1")
    (w.file("corpus.parquet")).write_bytes(b"half")
    assert store.get("ingest", "k1") is None  # no manifest yet
    ref = w.commit(params={"x": 1}, counts={"rows": 3})
    assert store.get("ingest", "k1") == ref.__class__("ingest", "k1", ref.path, cached=True)
    man = ref.manifest()
    assert man["counts"] == {"rows": 3}
    assert man["files"]["corpus.parquet"]["bytes"] == 4
    with pytest.raises(FileExistsError):
        store.open("ingest", "k1")


def test_reopening_wipes_a_crashed_attempt_unless_told_to_keep_it(tmp_path: Path):
    store = ArtifactStore(tmp_path)
    store.open("frames", "k").file("junk").write_text("x")
    assert not store.open("frames", "k").file("junk").exists()
    store.open("train", "k").file("ckpt-000001.pt").write_text("x")
    assert store.open("train", "k", keep_partial=True).file("ckpt-000001.pt").exists()


def test_pointer_follows_only_committed_artifacts(tmp_path: Path):
    store = ArtifactStore(tmp_path)
    ref = store.open("train", "a").commit()
    store.set_pointer("model", ref)
    assert store.pointer("model").key == "a"
    store.delete("train", "a")
    assert store.pointer("model") is None


def test_write_parquet_enforces_schema(tmp_path: Path):
    schema = pa.schema([("caption_id", pa.string()), ("n", pa.int32())])
    write_parquet(pa.table({"n": [1], "caption_id": ["a"], "extra": [0]}), tmp_path / "t.parquet", schema)
    with pytest.raises(ValueError, match="lacks column"):
        conform(pa.table({"n": [1]}), schema)
    assert not list(tmp_path.glob(".*tmp*"))


def test_sigkill_mid_write_leaves_no_readable_result(tmp_path: Path):
    """A writer killed while writing leaves only a temp file, never the target name."""
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from t2v_core.store import atomic_path\n"
        "with atomic_path(Path(sys.argv[1])) as tmp:\n"
        "    fh = open(tmp, 'wb'); fh.write(b'partial'); fh.flush()\n"
        "    print('writing', flush=True); time.sleep(60)\n"
    )
    target = tmp_path / "out.parquet"
    proc = subprocess.Popen([sys.executable, "-c", script, str(target)], stdout=subprocess.PIPE,
                            cwd=Path(__file__).resolve().parent.parent)
    assert proc.stdout.readline().strip() == b"writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not target.exists()
    assert ArtifactStore(tmp_path).get("x", "y") is None


def test_two_runs_building_one_artifact_build_it_once(tmp_path: Path):
    """Two processes that need the same output at once (a nightly retrain and a dashboard
    rerun on one workspace): one builds it, the other waits for its lock and gets the
    committed artifact. Without the lock the second wiped the first's half-built folder."""
    script = (
        "import sys, time\n"
        "from t2v_core.config import load_profile\n"
        "from t2v_core.stages.base import Context, build_artifact\n"
        "from t2v_core.store import ArtifactStore\n"
        "root, log = sys.argv[1], sys.argv[2]\n"
        "def build(out):\n"
        "    (out / 'part.txt').write_text('half')\n"
        "    print('building', flush=True); time.sleep(3)\n"
        "    (out / 'part.txt').write_text('whole')\n"
        "    with open(log, 'a') as fh: fh.write('built\\n')\n"
        "    return {'rows': 1}\n"
        "ref = build_artifact(Context(load_profile('demo'), ArtifactStore(root)), 'synth', {'n': 1}, {}, build)\n"
        "print(ref.path, (ref.file('part.txt')).read_text(), flush=True)\n"
    )
    log = tmp_path / "builds.log"
    cwd = Path(__file__).resolve().parent.parent
    first = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "ws"), str(log)],
                             stdout=subprocess.PIPE, text=True, cwd=cwd)
    assert first.stdout.readline().strip() == "building"  # the first holds the lock now
    second = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "ws"), str(log)],
                              stdout=subprocess.PIPE, text=True, cwd=cwd)
    outs = [p.communicate(timeout=120)[0].split() for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0
    assert log.read_text() == "built\n"  # one build
    assert outs[0][-2:] == outs[1] and outs[1][-1] == "whole"  # the same, whole artifact
