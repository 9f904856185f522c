"""`t2v dashboard`: a local Prefect server plus the served deployments, in one command.

The server runs as a child process (`prefect server start`), bound to 127.0.0.1 unless told
otherwise, on SQLite under PREFECT_HOME or on PostgreSQL when a connection URL is given, with
telemetry off. This process then serves the deployments of deployments/serve.py against it,
and the workspace's render galleries over HTTP (flows/gallery.py) on the next port, same host,
same basic auth; the render flows it runs link to them through T2V_GALLERY_URL. Ctrl-C stops
the runner first (it pauses the schedules it owns), then the galleries and the server.

The helpers (server_env, start_server, wait_healthy, stop_server) are also what the
integration tests use to start a real server, so the tests exercise this code path.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

LOCALHOST = "127.0.0.1"
TELEMETRY_OFF = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}


def free_port(host: str = LOCALHOST) -> int:
    """A port the OS says is free right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def api_url(host: str, port: int) -> str:
    # A server bound to every interface is still reached through the loopback address here.
    reach = LOCALHOST if host in ("0.0.0.0", "::", "") else host
    return f"http://{reach}:{port}/api"


def server_env(host: str = LOCALHOST, port: int = 4200, database_url: str = "",
               home: str | Path | None = None, auth_string: str = "",
               base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a server child process and of the clients that talk to it.

    ``auth_string`` ("user:password") turns on Prefect's basic auth: the server refuses
    requests without it, and clients started with this environment send it."""
    env = dict(os.environ if base is None else base)
    env.update(TELEMETRY_OFF)
    env["PREFECT_SERVER_API_HOST"] = host
    env["PREFECT_SERVER_API_PORT"] = str(port)
    env["PREFECT_API_URL"] = api_url(host, port)
    # The UI must call the API at the address the browser reaches, not at 0.0.0.0.
    env["PREFECT_UI_API_URL"] = api_url(host, port)
    if database_url:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database_url
    if home is not None:
        env["PREFECT_HOME"] = str(home)
    if auth_string:
        env["PREFECT_SERVER_API_AUTH_STRING"] = auth_string
        env["PREFECT_API_AUTH_STRING"] = auth_string
    return env


def start_server(env: Mapping[str, str], log: Path | None = None) -> subprocess.Popen:
    """`prefect server start` as a child in its own process group (so Ctrl-C at the
    terminal reaches us first and we stop it in order)."""
    out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    cmd = [sys.executable, "-m", "prefect", "server", "start",
           "--host", env["PREFECT_SERVER_API_HOST"], "--port", env["PREFECT_SERVER_API_PORT"]]
    return subprocess.Popen(cmd, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_healthy(url: str, proc: subprocess.Popen | None = None, timeout_s: float = 120.0) -> None:
    """Block until ``<url>/health`` answers 200; fail early if the server process died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"Prefect server exited with code {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"Prefect server at {url} not healthy after {timeout_s:.0f} s")


def stop_server(proc: subprocess.Popen, timeout_s: float = 20.0) -> int:
    """SIGTERM the server's process group, then SIGKILL it if it lingers."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout_s)
        except ProcessLookupError:
            pass
    return int(proc.returncode if proc.returncode is not None else 0)


CTRL_C_GRACE_S = 30.0


def stop_on_ctrl_c(proc: subprocess.Popen, grace_s: float = CTRL_C_GRACE_S) -> None:
    """Make one Ctrl-C always stop the runner and the server.

    Ctrl-C raises KeyboardInterrupt as usual, which unwinds Prefect's runner to the
    ``finally`` in ``main``. Under load (the full test suite) the runner's shutdown was seen
    to hang there, and a second Ctrl-C did not help; so the first one also arms a timer
    that, if the process is still alive ``grace_s`` later, stops the server and exits."""
    timer: threading.Timer | None = None

    def stop_and_exit() -> None:
        code = stop_server(proc)
        print(f"Prefect server stopped (exit {code}); the runner had not stopped {grace_s:.0f} s "
              "after Ctrl-C.", flush=True)
        os._exit(0)

    def on_ctrl_c(signum: int, frame: object) -> None:
        nonlocal timer
        if timer is None:
            timer = threading.Timer(grace_s, stop_and_exit)
            timer.daemon = True
            timer.start()
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_ctrl_c)


def main(host: str = LOCALHOST, port: int = 4200, database_url: str = "", workspace: str = "",
         auth_string: str = "", gallery_port: int | None = None) -> None:
    """Start the server and the galleries, serve the deployments until Ctrl-C, then stop all.

    ``gallery_port``: default $T2V_GALLERY_PORT, else ``port + 1`` (or any free port when that
    one is taken). $T2V_GALLERY_URL, if set, is the address the artifacts link to (a proxy or
    a host name that other machines reach); else the gallery server's own."""
    from flows.gallery import GALLERY_PORT_ENV, GALLERY_URL_ENV, start_gallery
    from flows.settings import WORKSPACE_ENV, workspace_path

    auth_string = auth_string or os.environ.get("PREFECT_SERVER_API_AUTH_STRING", "")
    if host not in (LOCALHOST, "localhost") and not auth_string:
        print(f"warning: binding {host} without basic auth; anyone who reaches this port controls "
              "the server. Set PREFECT_SERVER_API_AUTH_STRING=user:password (docs/operations.md).",
              file=sys.stderr)
    ws = workspace_path(workspace)
    env = server_env(host, port, database_url, auth_string=auth_string)
    env[WORKSPACE_ENV] = str(ws)
    # Before the server: a gallery port that was asked for and is taken fails here, at once.
    asked = gallery_port if gallery_port is not None else int(os.environ.get(GALLERY_PORT_ENV) or 0) or None
    gallery = start_gallery(ws, host, asked or port + 1, auth_string, fallback=asked is None)
    gallery_url = os.environ.get(GALLERY_URL_ENV) or gallery.url
    proc = start_server(env)
    stop_on_ctrl_c(proc)
    try:
        url = env["PREFECT_API_URL"]
        wait_healthy(url, proc)
        # The runner in this process talks to the server just started, with the same settings.
        os.environ.update({k: env[k] for k in (*TELEMETRY_OFF, "PREFECT_API_URL", WORKSPACE_ENV)})
        # The flow runs of the served deployments inherit this: their artifacts link here.
        os.environ[GALLERY_URL_ENV] = gallery_url
        if auth_string:
            os.environ["PREFECT_API_AUTH_STRING"] = auth_string
        db = "PostgreSQL" if database_url else "SQLite"
        auth = "basic auth" if auth_string else "no auth"
        print(f"Galleries:  {gallery_url}  (render artifacts of the workspace, {auth})", flush=True)
        print(f"Prefect UI: {url.removesuffix('/api')}  (API {url}, {db}, workspace {ws})", flush=True)
        from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

        from deployments.serve import serve_all

        # Prefect may have read its settings already; make sure this runner uses our server.
        updates = {PREFECT_API_URL: url, **({PREFECT_API_AUTH_STRING: auth_string} if auth_string else {})}
        with temporary_settings(updates=updates):
            serve_all(workspace=str(ws))
    except KeyboardInterrupt:
        pass
    finally:
        gallery.stop()
        code = stop_server(proc)
        print(f"Prefect server stopped (exit {code}).", flush=True)
