"""Security: a real Prefect server started the way `t2v dashboard` starts it binds to
127.0.0.1, and with basic auth on it refuses requests that lack the credentials."""

from __future__ import annotations

import base64
import inspect
import json
import urllib.error
import urllib.request

import psutil
import pytest

from flows import dashboard

pytestmark = [pytest.mark.server, pytest.mark.slow]

AUTH = "t2v-admin:correct horse battery staple"


def _post(url: str, auth: str | None) -> int:
    req = urllib.request.Request(f"{url}/flows/filter", data=json.dumps({"limit": 1}).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    if auth is not None:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect-home")
    port = dashboard.free_port()
    env = dashboard.server_env(port=port, home=home, auth_string=AUTH)
    proc = dashboard.start_server(env, log=home / "server.log")
    try:
        dashboard.wait_healthy(env["PREFECT_API_URL"], proc)
        yield proc, env["PREFECT_API_URL"], port
    finally:
        dashboard.stop_server(proc)


def test_dashboard_binds_to_loopback_by_default():
    assert inspect.signature(dashboard.main).parameters["host"].default == "127.0.0.1"
    env = dashboard.server_env(port=4321)
    assert env["PREFECT_SERVER_API_HOST"] == "127.0.0.1"
    assert env["PREFECT_API_URL"] == "http://127.0.0.1:4321/api"
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false" and env["DO_NOT_TRACK"] == "1"


def test_server_listens_on_loopback_only(auth_server):
    proc, _, port = auth_server
    family = [proc.pid] + [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    listening = [c.laddr for pid in family for c in psutil.Process(pid).net_connections("inet")
                 if c.status == psutil.CONN_LISTEN and c.laddr.port == port]
    assert listening and all(addr.ip == "127.0.0.1" for addr in listening)


def test_request_without_credentials_is_refused(auth_server):
    _, url, _ = auth_server
    assert _post(url, None) == 401
    assert _post(url, "t2v-admin:wrong") == 401
    assert _post(url, AUTH) == 200


def test_prefect_client_with_the_auth_string_gets_in(auth_server, tmp_path):
    """What the docs tell a user to set on the client side: PREFECT_API_AUTH_STRING."""
    import subprocess
    import sys

    _, url, port = auth_server
    code = ("import asyncio\nfrom prefect.client.orchestration import get_client\n"
            "async def main():\n    async with get_client() as c:\n        print(len(await c.read_flows()))\n"
            "asyncio.run(main())\n")
    env = dashboard.server_env(port=port, home=tmp_path, auth_string=AUTH)
    ok = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr[-2000:]
    env.pop("PREFECT_API_AUTH_STRING")
    refused = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "401" in refused.stderr
