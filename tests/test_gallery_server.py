"""The gallery server (flows/gallery.py) on a real socket: what it serves, basic auth and link
tokens, and path escapes, which must get 404 or 403 and read nothing.

"Read nothing" is checked with a Python audit hook: every file the process opens while the
escape attempts are answered is recorded, and none may lie outside the render artifacts.
"""

from __future__ import annotations

import base64
import http.client
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from flows.gallery import GalleryServer, _byte_range, gallery_url, link_token, start_gallery
from t2v_core.config import RenderConfig
from t2v_core.render import render_catalog
from t2v_core.store import ArtifactStore

KEY = "0123456789abcdef"
SECRET = "TOP-SECRET-CONTENT"


def square(prompts: list[str], seeds: list[int]) -> list[np.ndarray | str]:
    """A real, tiny generator: a square whose column follows the seed."""
    out: list[np.ndarray | str] = []
    for seed in seeds:
        clip = np.zeros((4, 16, 16, 3), np.uint8)
        for t in range(4):
            x = (seed + 2 * t) % 8
            clip[t, 4:12, x:x + 8] = (200, 80, 40)
        out.append(clip)
    return out


def commit_gallery(ws: Path, key: str = KEY, prompts: tuple[str, ...] = ("a red circle moves up",
                                                                         "a blue square moves down")) -> Path:
    """A committed render artifact, built by the real renderer and store."""
    catalog = ws.parent / f"catalog-{key}.txt"
    catalog.write_text("\n".join(prompts) + "\n")
    store = ArtifactStore(ws)
    writer = store.open("render", key)
    result = render_catalog(catalog, writer.path, square, RenderConfig(fps=4))
    writer.commit(counts={k: v for k, v in result.items() if isinstance(v, int)})
    return writer.path


@pytest.fixture
def layout(tmp_path) -> dict[str, Path]:
    ws = tmp_path / "ws"
    artifact = commit_gallery(ws)
    (tmp_path / "secret.txt").write_text(SECRET)
    outside = tmp_path / "outside"  # looks like an artifact, lives outside the workspace
    outside.mkdir()
    (outside / "_manifest.json").write_text("{}")
    (outside / "secret.txt").write_text(SECRET)
    (artifact / "leak.txt").symlink_to(tmp_path / "secret.txt")
    (artifact / "up").symlink_to(tmp_path)
    (ws / "artifacts" / "render" / "evilkey").symlink_to(outside)
    uncommitted = ws / "artifacts" / "render" / "fedcba9876543210"
    uncommitted.mkdir()
    (uncommitted / "index.html").write_text("half built")
    return {"ws": ws, "artifact": artifact, "tmp": tmp_path}


@pytest.fixture
def serve(layout) -> Iterator:
    servers: list[GalleryServer] = []

    def start(auth: str = "") -> GalleryServer:
        server = GalleryServer(layout["ws"], "127.0.0.1", 0, auth)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def get(server: GalleryServer, path: str, headers: dict[str, str] | None = None,
        method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """The request exactly as written (http.client does not normalise the path)."""
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def basic(user_pass: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(user_pass.encode()).decode()}


# --------------------------------------------------------------------------- what it serves


def test_serves_committed_galleries_and_nothing_half_built(layout, serve):
    server = serve()
    status, headers, body = get(server, f"/render/{KEY}/index.html")
    assert status == 200 and headers["content-type"].startswith("text/html") and b"t2v gallery" in body
    status, headers, _ = get(server, f"/render/{KEY}/")
    assert status == 301 and headers["location"] == f"/render/{KEY}/index.html"
    video = next((layout["artifact"] / "videos").glob("*.webm"))
    status, headers, body = get(server, f"/render/{KEY}/videos/{video.name}")
    assert status == 200 and headers["content-type"] == "video/webm" and body == video.read_bytes()
    assert headers["accept-ranges"] == "bytes"
    # browsers seek and loop videos with range requests
    status, headers, body = get(server, f"/render/{KEY}/videos/{video.name}", {"Range": "bytes=2-11"})
    assert status == 206 and body == video.read_bytes()[2:12]
    assert headers["content-range"] == f"bytes 2-11/{video.stat().st_size}"
    status, _, body = get(server, f"/render/{KEY}/videos/{video.name}", method="HEAD")
    assert status == 200 and body == b""
    status, _, body = get(server, "/")
    assert status == 200 and f"/render/{KEY}/index.html".encode() in body
    assert b"fedcba9876543210" not in body and b"evilkey" not in body
    # an artifact without its manifest does not exist
    assert get(server, "/render/fedcba9876543210/index.html")[0] == 404
    assert get(server, f"/render/{KEY}/nope.html")[0] == 404
    assert get(server, f"/render/{KEY}/videos/{video.name}", method="POST")[0] == 501


def test_byte_ranges():
    assert _byte_range(None, 100) == (0, 99)
    assert _byte_range("bytes=10-", 100) == (10, 99)
    assert _byte_range("bytes=-5", 100) == (95, 99)
    assert _byte_range("bytes=90-200", 100) == (90, 99)
    assert _byte_range("bytes=100-", 100) is None and _byte_range("bytes=5-3", 100) is None
    assert _byte_range("bytes=0-1,5-6", 100) == (0, 99)  # several ranges: the whole file
    assert _byte_range("items=0-1", 100) == (0, 99)


# --------------------------------------------------------------------------- path escapes

ESCAPES = [
    "/render/{key}/../../../secret.txt",
    "/render/{key}/%2e%2e/%2e%2e/%2e%2e/secret.txt",
    "/render/{key}/..%2f..%2f..%2fsecret.txt",
    "/render/{key}/%252e%252e/%252e%252e/%252e%252e/secret.txt",
    "/render/{key}/.%2e/.%2e/.%2e/secret.txt",
    "/render/{key}//{tmp}/secret.txt",
    "/render/{key}/%2F{tmp}%2Fsecret.txt",
    "/render/%2F{tmp}%2Fsecret.txt/x",
    "/{tmp}/secret.txt",
    "//{tmp}/secret.txt",
    "/render/{key}/..\\..\\..\\secret.txt",
    "/render/{key}/%5c..%5c..%5c..%5csecret.txt",
    "/render/{key}/leak.txt",  # a symlink to a file outside
    "/render/{key}/up/secret.txt",  # a symlink to a folder outside
    "/render/evilkey/secret.txt",  # an artifact folder that is a symlink outside
    "/render/evilkey/_manifest.json",
    "/render/{key}/secret.txt%00.html",
    "/render/{key}/%ff%fe",
    "/render/..",
    "/render/./{key}/index.html",
    "/render/{key}/.hidden",
    "http://127.0.0.1/render/{key}/../../../secret.txt",
]


@pytest.mark.parametrize("auth", ["", "admin:pw"])
def test_path_escapes_get_404_or_403_and_read_nothing(layout, serve, auth):
    server = serve(auth)
    root = (layout["ws"] / "artifacts" / "render").resolve()
    opened: list[str] = []
    recording = threading.Event()

    def hook(event: str, args: tuple) -> None:  # sees every open() in this process
        if recording.is_set() and event == "open" and isinstance(args[0], (str, bytes, Path)):
            opened.append(str(args[0]))

    sys.addaudithook(hook)  # cannot be removed; the event gates it
    headers = basic(auth) if auth else {}
    results = {}
    recording.set()
    try:
        for pattern in ESCAPES:
            path = pattern.format(key=KEY, tmp=str(layout["tmp"]).lstrip("/"))
            results[path] = get(server, path, headers)
    finally:
        recording.clear()
    for path, (status, _, body) in results.items():
        assert status in (403, 404), (path, status)
        assert SECRET.encode() not in body, path
    outside = [p for p in opened if not Path(p).resolve().is_relative_to(root)
               and Path(p).resolve().is_relative_to(layout["tmp"].resolve())]
    assert outside == [] and not any("secret" in p for p in opened)
    recording.set()  # the control: the hook does see what the server opens
    try:
        assert get(server, f"/render/{KEY}/index.html", headers)[0] == 200
    finally:
        recording.clear()
    assert any(p.endswith(f"{KEY}/index.html") for p in opened)
    # the symlinks are refused as such, not merely missing
    assert results[f"/render/{KEY}/leak.txt"][0] == 403 and results["/render/evilkey/secret.txt"][0] == 403


# --------------------------------------------------------------------------- auth


def test_basic_auth_when_an_auth_string_is_set(layout, serve):
    server = serve("admin:a-long-password")
    index = f"/render/{KEY}/index.html"
    status, headers, body = get(server, index)
    assert status == 401 and headers["www-authenticate"].startswith("Basic ") and b"t2v gallery" not in body
    assert get(server, index, basic("admin:wrong"))[0] == 401
    assert get(server, index, {"Authorization": "Basic !!not-base64!!"})[0] == 401
    assert get(server, index, {"Authorization": "Bearer admin:a-long-password"})[0] == 401
    assert get(server, "/")[0] == 401
    status, _, body = get(server, index, basic("admin:a-long-password"))
    assert status == 200 and b"t2v gallery" in body
    assert get(server, "/", basic("admin:a-long-password"))[0] == 200


def test_link_tokens_open_one_gallery_only(layout, serve):
    auth = "admin:a-long-password"
    other = "1111222233334444"
    commit_gallery(layout["ws"], other, ("a green circle moves left",))
    server = serve(auth)
    url = gallery_url(server.url, KEY, auth_string=auth)
    path = url.removeprefix(server.url)
    assert path == f"/t/{link_token(auth, KEY)}/render/{KEY}/index.html"
    status, headers, body = get(server, path)  # no credentials: the token is enough
    assert status == 200 and b"t2v gallery" in body and headers["referrer-policy"] == "no-referrer"
    video = next((layout["artifact"] / "videos").glob("*.gif")).name
    assert get(server, f"/t/{link_token(auth, KEY)}/render/{KEY}/videos/{video}")[0] == 200
    # a token opens its own artifact only, and only with the auth string that made it
    assert get(server, f"/t/{link_token(auth, KEY)}/render/{other}/index.html")[0] == 401
    assert get(server, f"/t/{link_token('admin:old', KEY)}/render/{KEY}/index.html")[0] == 401
    assert get(server, f"/t/{link_token(auth, KEY)}/")[0] == 401
    # without auth there are no tokens, and plain links work
    plain = serve()
    assert get(plain, path)[0] == 404
    assert get(plain, f"/render/{KEY}/index.html")[0] == 200
    assert gallery_url("http://h:1/", KEY) == f"http://h:1/render/{KEY}/index.html"


def test_a_taken_port_falls_back_unless_it_was_asked_for(layout):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = start_gallery(layout["ws"], "127.0.0.1", port)
        try:
            assert server.server_address[1] != port
            assert get(server, f"/render/{KEY}/index.html")[0] == 200
        finally:
            server.stop()
        with pytest.raises(OSError):
            start_gallery(layout["ws"], "127.0.0.1", port, fallback=False)
