"""Deployments and the dashboard.

The fast tests check deployments/prefect.yaml and deployments/serve.py against each other.
The integration test starts `t2v dashboard` as a subprocess on a free port: a real Prefect
server (SQLite under a temporary PREFECT_HOME) plus the served deployments. It triggers
`run-stage` (train) and then `render-catalog` through run_deployment, waits for both, reads
the render run's artifacts back through the Prefect client, renders typed prompts and follows
them in headless chromium from the Prefect UI's flow-run page to the gallery server, deploys
prefect.yaml to a process work pool, and finally stops the dashboard with Ctrl-C (SIGINT)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from deployments import serve
from flows.dashboard import CTRL_C_GRACE_S

REPO = Path(__file__).resolve().parent.parent
YAML = REPO / "deployments" / "prefect.yaml"


def _yaml_deployments() -> dict[str, dict]:
    return {d["name"]: d for d in yaml.safe_load(YAML.read_text())["deployments"]}


def test_prefect_yaml_and_serve_define_the_same_deployments():
    from prefect.flows import load_flow_from_entrypoint

    in_yaml = _yaml_deployments()
    served = {d.name: d for d in serve.build_deployments(workspace="/tmp/t2v-ws")}
    assert set(in_yaml) == set(served) == set(serve.NAMES)
    for name, spec in in_yaml.items():
        assert spec["work_pool"]["name"] == "t2v-process"
        fl = load_flow_from_entrypoint(str(REPO / spec["entrypoint"]))
        assert fl.name == served[name].flow_name  # same flow behind both
        assert served[name].entrypoint.startswith("flows.")


def test_deployment_parameters_match_the_issue():
    served = {d.name: d for d in serve.build_deployments(workspace="/tmp/t2v-ws", profile="tiny")}
    params = {n: set(d._parameter_openapi_schema.properties) for n, d in served.items()}
    required = {n: set(d._parameter_openapi_schema.required or []) for n, d in served.items()}
    assert {"manifest", "profile"} <= params["nightly-retrain"]
    assert {"catalog", "prompts", "model", "samples", "formats"} <= params["render-catalog"]
    # a catalog path or typed prompts (issue 29): neither is required on its own
    assert required["render-catalog"] == set() and required["run-stage"] == {"stage"}
    assert {"stage", "profile"} <= params["run-stage"]
    assert all(d.parameters["workspace"] == "/tmp/t2v-ws" and d.parameters["profile"] == "tiny"
               for d in served.values())


def test_nightly_schedule_is_two_am_in_the_configured_timezone():
    nightly = {d.name: d for d in serve.build_deployments(timezone="Europe/Paris")}["nightly-retrain"]
    (sched,) = nightly.schedules
    assert sched.schedule.cron == "0 2 * * *" and sched.schedule.timezone == "Europe/Paris"
    assert _yaml_deployments()["nightly-retrain"]["schedules"][0] == {"cron": "0 2 * * *", "timezone": "UTC",
                                                                     "active": True}
    with pytest.raises(Exception, match="Mars"):
        serve.build_deployments(timezone="Mars/Olympus_Mons")


# ------------------------------------------------------------------ real server integration


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory):
    from flows.dashboard import free_port

    home, ws = tmp_path_factory.mktemp("prefect-home"), tmp_path_factory.mktemp("ws")
    port, gallery_port = free_port(), free_port()
    while gallery_port == port:  # two asks may get the same free port
        gallery_port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "T2V_PROFILE": "tiny",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
           "T2V_GALLERY_PORT": str(gallery_port)}
    env.pop("PREFECT_API_URL", None)
    env.pop("T2V_GALLERY_URL", None)
    log = open(home / "dashboard.log", "w+b")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "flows.cli", "dashboard", "--port", str(port),
                             "--workspace", str(ws)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/api"
    try:
        _wait_for_deployments(url, proc, home / "dashboard.log")
        gallery = re.search(r"Galleries:\s+(http://\S+)", (home / "dashboard.log").read_text()).group(1)
        yield {"proc": proc, "url": url, "port": port, "home": home, "ws": ws, "log": home / "dashboard.log",
               "gallery": gallery}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


def _client_settings(url: str):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    return temporary_settings(updates={PREFECT_API_URL: url})


def _wait_for_deployments(url: str, proc: subprocess.Popen, log: Path, timeout_s: float = 240) -> None:
    from prefect.client.orchestration import get_client

    async def names() -> set[str]:
        async with get_client() as c:
            return {d.name for d in await c.read_deployments()}

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"dashboard exited early:\n{log.read_text()[-3000:]}"
        if "Prefect UI: http://127.0.0.1:" in log.read_text():
            with _client_settings(url):
                try:
                    if set(serve.NAMES) <= asyncio.run(names()):
                        return
                except Exception:  # noqa: BLE001 - the API may still be starting
                    pass
        time.sleep(1)
    raise TimeoutError(f"deployments not served after {timeout_s} s:\n{log.read_text()[-3000:]}")


@pytest.mark.server
@pytest.mark.slow
def test_dashboard_serves_on_loopback_with_sqlite(dashboard):
    text = dashboard["log"].read_text()
    assert f"Prefect UI: http://127.0.0.1:{dashboard['port']}" in text and "SQLite" in text
    assert (dashboard["home"] / "prefect.db").is_file()


@pytest.mark.server
@pytest.mark.slow
def test_render_catalog_deployment_from_a_real_server(dashboard):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.deployments import run_deployment

    catalog = REPO / "data" / "catalogs" / "smoke.txt"
    with _client_settings(dashboard["url"]):
        # A model first: the run-stage deployment trains one (and builds what training needs).
        trained = run_deployment("run-stage/run-stage", parameters={"stage": "train"}, timeout=420)
        assert trained.state.is_completed(), trained.state
        run = run_deployment("render-catalog/render-catalog", parameters={"catalog": str(catalog)}, timeout=240)
        assert run.state.is_completed(), run.state

        async def artifacts():
            async with get_client() as c:
                return await c.read_artifacts(
                    artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))

        found = {a.type: a for a in asyncio.run(artifacts())}
    assert {"progress", "table", "markdown"} <= set(found)
    assert float(found["progress"].data) == 100.0
    rows = found["table"].data
    rows = yaml.safe_load(rows) if isinstance(rows, str) else rows  # JSON is YAML
    prompts = [line.strip() for line in catalog.read_text().splitlines() if line.strip()]
    assert [r["prompt"] for r in rows] == prompts
    assert all(r["status"] == "ok" and r["webm"].endswith(".webm") for r in rows)
    # the gallery over HTTP on the dashboard's gallery server (issue 29), not a file path
    link = re.search(r"\[Open the gallery\]\((http://[^)]+)\)", found["markdown"].data).group(1)
    assert link.startswith(dashboard["gallery"] + "/render/") and link.endswith("/index.html")
    key = link.split("/render/")[1].split("/")[0]
    assert (dashboard["ws"] / "artifacts" / "render" / key / "index.html").is_file()
    with urllib.request.urlopen(link, timeout=30) as r:
        assert r.status == 200 and b"t2v gallery" in r.read()


# Scripts run in the Prefect UI's pages (chromium over the DevTools protocol).
# The run form: click "Add item" under `prompts`, then focus the field it adds, to type into.
ADD_PROMPT = """(() => {
  window.__fields = new Set(document.querySelectorAll('textarea, input'));
  Array.from(document.querySelectorAll('button')).find(e => e.innerText.trim() === 'Add item').click();
  return true;
})()"""
FOCUS_NEW_FIELD = """(() => {
  const f = Array.from(document.querySelectorAll('textarea, input')).find(x => !window.__fields.has(x));
  if (f) { f.focus(); }
  return !!f && document.activeElement === f;
})()"""
SUBMIT = "Array.from(document.querySelectorAll('button')).find(e => e.innerText.trim() === 'Submit').click()"
# The flow run page opens on its Logs tab (it drops ?tab=Artifacts while the run loads): click.
ARTIFACTS_TAB = """(() => {
  const tab = Array.from(document.querySelectorAll('.p-tab, [role=tab], button'))
    .find(e => e.innerText && e.innerText.trim() === 'Artifacts');
  if (tab) { tab.click(); }
  return !!tab;
})()"""
LINK_TO_ARTIFACT = """(() => {
  const a = Array.from(document.querySelectorAll('a')).find(a => a.innerText.includes('render-catalog-gallery'));
  return a ? a.href : null;
})()"""


def _run_with_prompts(url: str, prompts: list[str], timeout_s: float = 240):
    """The render-catalog flow run whose parameters hold ``prompts``, once it is final."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    async def find():
        async with get_client() as c:
            runs = await c.read_flow_runs(deployment_filter=DeploymentFilter(
                name=DeploymentFilterName(any_=["render-catalog"])))
            return next((r for r in runs if r.parameters.get("prompts") == prompts), None)

    deadline = time.monotonic() + timeout_s
    with _client_settings(url):
        while time.monotonic() < deadline:
            run = asyncio.run(find())
            if run is not None and run.state is not None and run.state.is_final():
                return run
            time.sleep(2)
    raise TimeoutError(f"no finished render-catalog run with prompts {prompts} after {timeout_s} s")


@pytest.mark.server
@pytest.mark.slow
def test_typed_prompts_from_the_prefect_ui_to_the_gallery_in_a_browser(dashboard, tmp_path):
    """Issue 29 end to end, in headless chromium on a real dashboard: prompts typed into the
    render-catalog run form and submitted; the Prefect UI's page of that flow run, its
    Artifacts tab, the gallery artifact (its inline GIFs load from the gallery server), then
    the artifact's gallery link, where every <video> loads its metadata and each card shows
    its prompt, seed and unknown words. The same prompts again are a cache hit."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from test_gallery_browser import VIDEOS_SETTLED, Chromium, assert_videos_loaded, find_chromium

    from t2v_core.catalog import stable_seed

    chromium = find_chromium()
    prompts = ["a red circle moves up", "a blue square moves down", "a green zeppelin moves left", "zxqv blorf"]
    renders = dashboard["ws"] / "artifacts" / "render"
    ui, gallery = dashboard["url"].removesuffix("/api"), dashboard["gallery"]

    async def deployment_id():
        async with get_client() as c:
            return (await c.read_deployment_by_name("render-catalog/render-catalog")).id

    with _client_settings(dashboard["url"]):
        trained = run_deployment("run-stage/run-stage", parameters={"stage": "train"}, timeout=420)
        assert trained.state.is_completed(), trained.state
        form = f"{ui}/deployments/deployment/{asyncio.run(deployment_id())}/run"
    images = f"""(() => {{
      const imgs = Array.from(document.querySelectorAll('img')).filter(i => i.src.startsWith({json.dumps(gallery)}));
      return imgs.length && imgs.every(i => i.complete) ? imgs.map(i => i.naturalWidth) : null;
    }})()"""
    link = f"""(() => {{
      const a = Array.from(document.querySelectorAll('a')).find(a => a.href.startsWith({json.dumps(gallery)}));
      return a ? a.href : null;
    }})()"""
    browser = Chromium(chromium, tmp_path / "profile", 1280, 1000)
    try:
        browser.goto(form)  # Deployments > render-catalog > Run > Custom run
        browser.wait_for("document.body.innerText.includes('Add item')", 120)
        for prompt in prompts:
            browser.evaluate(ADD_PROMPT)
            browser.wait_for(FOCUS_NEW_FIELD, 30)
            browser.send("Input.insertText", text=prompt)  # typed, as from a keyboard
        browser.evaluate(SUBMIT)
        run = _run_with_prompts(dashboard["url"], prompts)
        assert run.state.is_completed(), run.state
        built = sorted(p.name for p in renders.iterdir())

        browser.goto(f"{ui}/runs/flow-run/{run.id}")
        browser.wait_for(ARTIFACTS_TAB, 120)
        browser.goto(browser.wait_for(LINK_TO_ARTIFACT, 60))
        gallery_link = browser.wait_for(link, 60)
        widths = browser.wait_for(images, 60)
        assert len(widths) == 3 and all(w > 0 for w in widths), widths  # 3 ok prompts, GIFs inline
        artifact_shot = browser.screenshot(tmp_path / "render-catalog.png")
        browser.goto(gallery_link)
        videos = browser.wait_for(VIDEOS_SETTLED, 60)
        assert len(videos) == 3
        assert_videos_loaded(videos, width=16)  # the tiny profile's frames
        assert all(v["src"].startswith(gallery) for v in videos)
        text = browser.evaluate("document.body.innerText")
        for prompt in prompts[:3]:
            assert prompt in text and f"seed {stable_seed(prompt)}" in text
        assert re.search(r"unknown: [^\n]*zeppelin", text) and "zxqv blorf" in text and "no known words" in text
        gallery_shot = browser.screenshot(tmp_path / "render-gallery.png")
    finally:
        browser.close()
    # the same prompts again: the same catalog file and render key, a cache hit
    with _client_settings(dashboard["url"]):
        again = run_deployment("render-catalog/render-catalog", parameters={"prompts": prompts}, timeout=240)
    assert again.state.is_completed(), again.state
    assert sorted(p.name for p in renders.iterdir()) == built
    assert len(list((dashboard["ws"] / "catalogs").glob("typed-*.csv"))) == 1
    docs = os.environ.get("T2V_DOCS_SCREENSHOTS")  # set to refresh docs/images from this run
    if docs:
        for shot in (artifact_shot, gallery_shot):
            shutil.copy(shot, Path(docs) / shot.name)


@pytest.mark.server
@pytest.mark.slow
def test_nightly_retrain_deployment_on_own_footage(dashboard, tmp_path):
    """The nightly-retrain deployment, triggered on a real server, on footage that is not
    Moving Shapes: it trains, evaluates by the generic metric and promotes per corpus."""
    from prefect.deployments import run_deployment

    from t2v_core.corpus.footage import write_footage
    from t2v_core.corpus.info import read_info

    manifest = write_footage(tmp_path / "footage", n_videos=60, height=16, width=16, frames=4,
                             containers=("mp4", "avi"))
    with _client_settings(dashboard["url"]):
        run = run_deployment("nightly-retrain/nightly-retrain", parameters={"manifest": str(manifest)}, timeout=420)
    assert run.state.is_completed(), run.state
    corpus = read_info(manifest).id
    pointer = json.loads((dashboard["ws"] / "pointers" / f"model--{corpus}.json").read_text())
    log = json.loads((dashboard["ws"] / "promotions" / f"{corpus}.json").read_text())
    assert log[-1]["metric"] == "text_video.r_precision" and log[-1]["promoted"]
    assert pointer["key"] == log[-1]["candidate"]


@pytest.mark.server
@pytest.mark.slow
def test_failed_deployment_run_is_retried_with_the_cli(dashboard, tmp_path):
    """A render-catalog run fails on a catalog that is not there yet; once it is, the
    documented `prefect flow-run retry <id>` reschedules the run and the runner completes it.
    (Runs after the render test, which trained the model.)"""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    catalog = dashboard["ws"] / "late-catalog.txt"
    with _client_settings(dashboard["url"]):
        run = run_deployment("render-catalog/render-catalog", parameters={"catalog": str(catalog)}, timeout=240)
    assert run.state.is_failed(), run.state
    catalog.write_text("a small green square moves down\n")

    env = {**os.environ, "PREFECT_API_URL": dashboard["url"], "PREFECT_HOME": str(tmp_path),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    retry = subprocess.run([sys.executable, "-m", "prefect", "flow-run", "retry", str(run.id)],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert retry.returncode == 0 and "scheduled for retry" in retry.stdout, retry.stdout + retry.stderr

    async def state():
        async with get_client() as c:
            return (await c.read_flow_run(run.id)).state

    deadline, final = time.monotonic() + 240, None
    with _client_settings(dashboard["url"]):
        while time.monotonic() < deadline:
            final = asyncio.run(state())
            if final.is_final():
                break
            time.sleep(2)
    assert final is not None and final.is_completed(), final


@pytest.mark.server
@pytest.mark.slow
def test_prefect_yaml_deploys_to_a_process_work_pool(dashboard, tmp_path):
    env = {**os.environ, "PREFECT_API_URL": dashboard["url"], "PREFECT_HOME": str(tmp_path),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    prefect = [sys.executable, "-m", "prefect", "--no-prompt"]
    pool = subprocess.run([*prefect, "work-pool", "create", "t2v-process", "--type", "process"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert pool.returncode == 0, pool.stdout + pool.stderr
    deploy = subprocess.run([*prefect, "deploy", "--all", "--prefect-file", str(YAML)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]

    from prefect.client.orchestration import get_client

    async def pooled():
        async with get_client() as c:
            return {d.name: d for d in await c.read_deployments() if d.work_pool_name == "t2v-process"}

    with _client_settings(dashboard["url"]):
        found = asyncio.run(pooled())
    assert set(found) == set(serve.NAMES)
    (sched,) = found["nightly-retrain"].schedules
    assert sched.schedule.cron == "0 2 * * *" and sched.schedule.timezone == "UTC"


@pytest.mark.server
@pytest.mark.slow
def test_ctrl_c_stops_the_runner_and_the_server(dashboard):
    proc = dashboard["proc"]
    assert _port_open(dashboard["port"])
    proc.send_signal(signal.SIGINT)
    # One Ctrl-C: the runner unwinds, or, if its shutdown hangs (seen in the full suite),
    # the dashboard stops the server itself after CTRL_C_GRACE_S (flows/dashboard.py).
    code = proc.wait(CTRL_C_GRACE_S + 60)
    assert code == 0
    deadline = time.monotonic() + 30
    while _port_open(dashboard["port"]) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _port_open(dashboard["port"])
    assert "Prefect server stopped" in dashboard["log"].read_text()


# ------------------------------------------------------------------ PostgreSQL instead of SQLite


@pytest.fixture
def postgres():
    """A throwaway PostgreSQL cluster on a free port (Debian's postgresql-15 binaries, run as
    the postgres user); skipped where those are not installed, and a failure under CI."""
    import shutil

    from flows.dashboard import free_port

    bindir = Path("/usr/lib/postgresql/15/bin")
    runuser = shutil.which("runuser")
    if not (bindir / "initdb").exists() or runuser is None or os.geteuid() != 0:
        message = ("needs Debian's postgresql-15 (scripts/install_test_debs.sh) and root "
                   "(to run it as the postgres user)")
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it and runs as root, so a skip there would hide the test
        pytest.skip(message)
    # Not under tmp_path: pytest's base folder is private to root, so postgres could not enter it.
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="t2v-pg-"))
    root.chmod(0o755)
    data, port = root / "pg", free_port()
    data.mkdir()
    shutil.chown(data, "postgres", "postgres")

    def as_pg(*cmd: str) -> None:
        subprocess.run([runuser, "-u", "postgres", "--", *cmd], check=True, capture_output=True, timeout=120)

    as_pg(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    as_pg(str(bindir / "pg_ctl"), "-D", str(data), "-w", "-l", str(data / "log"), "-o",
          f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start")
    try:
        as_pg(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "prefect")
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/prefect", port
    finally:
        as_pg(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.server
@pytest.mark.slow
def test_server_uses_postgresql_when_a_url_is_set(postgres, tmp_path):
    from flows.dashboard import free_port, server_env, start_server, stop_server, wait_healthy

    url, pg_port = postgres
    env = server_env(port=free_port(), database_url=url, home=tmp_path / "home")
    proc = start_server(env, log=tmp_path / "server.log")
    try:
        wait_healthy(env["PREFECT_API_URL"], proc, timeout_s=180)
        from prefect.client.orchestration import get_client

        async def make_flow():
            async with get_client() as c:
                from prefect import flow

                await c.create_flow(flow(name="t2v-postgres-probe")(lambda: None))

        with _client_settings(env["PREFECT_API_URL"]):
            asyncio.run(make_flow())
    finally:
        stop_server(proc)
    rows = subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-h", "127.0.0.1", "-p", str(pg_port),
                           "-d", "prefect", "-tAc", "select name from flow"],
                          capture_output=True, text=True, timeout=60)
    assert "t2v-postgres-probe" in rows.stdout.split()
    assert not (tmp_path / "home" / "prefect.db").exists()  # nothing went to SQLite
