"""The render galleries over HTTP: what `t2v dashboard` serves beside the Prefect server.

A browser will not follow a ``file://`` link from an ``http://`` page, and a path on the
dashboard's disk means nothing elsewhere, so the render-catalog artifact links here instead.
This is the standard library's ThreadingHTTPServer with a small read-only handler:

- ``/render/<key>/<file>``: a file of a committed render artifact (``_manifest.json``
  present) under ``<workspace>/artifacts/render``; ``/render/<key>/`` is its index.html.
  ``/`` lists the committed galleries, newest first.
- Nothing else can be read. Each path segment must look like the names the render stage
  writes (letters, digits, ``_ - .``, not starting with a dot), so ``..``, absolute and
  encoded paths never reach the file system; the resolved file must still lie under the
  render artifacts, so a symlink that points elsewhere gets 403 before anything is opened.
- With an auth string (``PREFECT_SERVER_API_AUTH_STRING``, "user:password"), every request
  needs that HTTP basic auth, as the Prefect API does; or a link token:
  ``/t/<token>/render/<key>/...``, where the token is an HMAC of the key under the auth
  string. The artifact's inline previews are cross-origin images inside the Prefect UI, and
  browsers send no basic-auth prompt for those, so the flow links with tokens. A token opens
  one render artifact only, read-only; it is as secret as the artifact that shows it (the
  Prefect API requires the password to read that) and changes with the password.
- Range requests are answered (one range), so browsers can seek and loop the videos.

    python -m flows.gallery --workspace DIR [--host 127.0.0.1] [--port 4201]
"""

from __future__ import annotations

import argparse
import base64
import hmac
import html
import json
import logging
import mimetypes
import os
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

GALLERY_URL_ENV = "T2V_GALLERY_URL"  # the address the render flow's artifact links point at
GALLERY_PORT_ENV = "T2V_GALLERY_PORT"  # the dashboard's gallery port (default: its port + 1)
STAGE = "render"
MANIFEST = "_manifest.json"
SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")  # the names the render stage writes
LISTED = 200  # galleries on the listing page
CHUNK = 1 << 16
log = logging.getLogger(__name__)
mimetypes.add_type("video/webm", ".webm")  # not in every system's mime.types


def link_token(auth_string: str, key: str) -> str:
    """The token that opens render artifact ``key`` without basic auth (module docstring)."""
    return hmac.new(auth_string.encode(), f"t2v-gallery:{key}".encode(), "sha256").hexdigest()[:32]


def gallery_url(base: str, key: str, name: str = "index.html", auth_string: str = "") -> str:
    """The address of file ``name`` of render artifact ``key`` on the server at ``base``."""
    token = f"t/{link_token(auth_string, key)}/" if auth_string else ""
    return f"{base.rstrip('/')}/{token}{STAGE}/{key}/{name}"


class GalleryServer(ThreadingHTTPServer):
    """Serves ``<workspace>/artifacts/render`` read-only; see the module docstring."""

    daemon_threads = True  # a browser holding a video connection open must not block shutdown

    def __init__(self, workspace: str | Path, host: str = "127.0.0.1", port: int = 0, auth_string: str = ""):
        self.root = Path(workspace).resolve() / "artifacts" / STAGE
        self.auth_string = auth_string
        super().__init__((host, port), GalleryHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        # Bound to every interface, it is still reached through the loopback address here.
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}"

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="t2v-gallery", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def locate(self, key: str, rest: list[str]) -> Path | HTTPStatus:
        """The real path of file ``rest`` of artifact ``key``, or the status to answer."""
        artifact = self.root / key
        if not (artifact / MANIFEST).is_file():  # uncommitted or absent: it does not exist
            return HTTPStatus.NOT_FOUND
        real = Path(os.path.realpath(artifact.joinpath(*rest)))
        if not real.is_relative_to(os.path.realpath(self.root)):
            return HTTPStatus.FORBIDDEN  # a symlink out of the render artifacts
        return real if real.is_file() else HTTPStatus.NOT_FOUND


class GalleryHandler(BaseHTTPRequestHandler):
    server: GalleryServer
    server_version = "t2v-gallery"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        self._serve(body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(body=False)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        log.debug("%s " + format, self.address_string(), *args)

    def _serve(self, body: bool) -> None:
        segments = _segments(self.path)
        token = None
        if segments and segments[0] == "t" and len(segments) >= 2:
            token, segments = segments[1], segments[2:]
        key = segments[1] if segments and segments[0] == STAGE and len(segments) >= 2 else ""
        if token is not None and not self.server.auth_string:
            return self._fail(HTTPStatus.NOT_FOUND)  # no auth, no tokens: nothing lives there
        if not self._authorized(token, key):
            return self._fail(HTTPStatus.UNAUTHORIZED)
        if segments == [] and token is None:
            return self._send_bytes(self._listing().encode(), "text/html; charset=utf-8", body)
        if segments is None or not key:
            return self._fail(HTTPStatus.NOT_FOUND)
        if len(segments) == 2:  # the gallery's folder: its pages link relative to it
            self.send_response(HTTPStatus.MOVED_PERMANENTLY)
            self.send_header("Location", urlsplit(self.path).path.rstrip("/") + "/index.html")
            self.send_header("Content-Length", "0")
            return self.end_headers()
        found = self.server.locate(key, segments[2:])
        if isinstance(found, HTTPStatus):
            return self._fail(found)
        self._send_file(found, body)

    def _authorized(self, token: str | None, key: str) -> bool:
        secret = self.server.auth_string
        if not secret:
            return True
        if token is not None:
            return bool(key) and hmac.compare_digest(token.encode(), link_token(secret, key).encode())
        scheme, _, value = self.headers.get("Authorization", "").partition(" ")
        try:
            given = base64.b64decode(value.strip(), validate=True)
        except ValueError:  # binascii.Error: not base64
            return False
        return scheme.lower() == "basic" and hmac.compare_digest(given, secret.encode())

    def _fail(self, status: HTTPStatus) -> None:
        self.send_response(status)
        if status == HTTPStatus.UNAUTHORIZED:
            self.send_header("WWW-Authenticate", 'Basic realm="t2v galleries", charset="UTF-8"')
        data = f"{status.value} {status.phrase}\n".encode()
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _common_headers(self, ctype: str, length: int) -> None:
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        self.send_header("X-Content-Type-Options", "nosniff")
        # Gallery pages link nowhere else, but a token in a Referer would open the artifact.
        self.send_header("Referrer-Policy", "no-referrer")

    def _send_bytes(self, data: bytes, ctype: str, body: bool) -> None:
        self.send_response(HTTPStatus.OK)
        self._common_headers(ctype, len(data))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _send_file(self, path: Path, body: bool) -> None:
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            span = _byte_range(self.headers.get("Range"), size)
            if span is None:
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                return self.end_headers()
            start, end = span
            partial = (start, end) != (0, size - 1) and size > 0
            self.send_response(HTTPStatus.PARTIAL_CONTENT if partial else HTTPStatus.OK)
            self._common_headers(ctype, end - start + 1 if size else 0)
            self.send_header("Accept-Ranges", "bytes")
            # A committed artifact never changes (its key digests its inputs), so caching is safe.
            self.send_header("Cache-Control", "private, max-age=3600")
            if partial:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            if body and size:
                fh.seek(start)
                try:
                    _copy(fh, self.wfile, end - start + 1)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the browser stopped reading (a video it no longer needs)

    def _listing(self) -> str:
        root = self.server.root
        real_root = os.path.realpath(root)
        # Folders only, and none that a symlink takes out of the render artifacts.
        found = [d for d in (root.iterdir() if root.is_dir() else ())
                 if SEGMENT.match(d.name) and Path(os.path.realpath(d)).is_relative_to(real_root)
                 and (d / MANIFEST).is_file()]
        found.sort(key=lambda d: (d / MANIFEST).stat().st_mtime, reverse=True)
        items = []
        for d in found[:LISTED]:
            try:
                counts = json.loads((d / MANIFEST).read_text()).get("counts", {})
            except (OSError, ValueError):
                counts = {}
            items.append(f'<li><a href="/{STAGE}/{html.escape(d.name)}/index.html">{html.escape(d.name)}</a>'
                         f" {counts.get('videos', '?')} videos, {counts.get('rows', '?')} prompts</li>")
        return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>t2v galleries</title>'
                f'</head><body><h1>t2v galleries</h1><ul>{"".join(items) or "<li>none yet</li>"}</ul></body></html>')


def _segments(raw: str) -> list[str] | None:
    """The request path as checked segments, or None when any segment could name something
    other than a file the render stage wrote (``..``, ``.``, empty, ``%2F``, ``\\``, NUL...)."""
    try:
        path = unquote(urlsplit(raw).path, errors="strict")
    except (UnicodeDecodeError, ValueError):
        return None
    parts = path.split("/")[1:]
    if parts and parts[-1] == "":
        parts.pop()  # "/render/<key>/" means the folder
    return parts if all(SEGMENT.match(p) for p in parts) else None


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte to send: the whole file unless one satisfiable range is asked for;
    None when the range is unsatisfiable (416). Several ranges get the whole file."""
    whole = (0, max(size - 1, 0))
    m = re.fullmatch(r"bytes=(\d*)-(\d*)", (header or "").strip())
    if not m or m.groups() == ("", ""):
        return whole
    first, last = m.groups()
    if first == "":  # the last N bytes
        n = int(last)
        return (max(size - n, 0), size - 1) if n and size else None
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    return (start, end) if start <= end else None


def _copy(src: BinaryIO, dst: BinaryIO, n: int) -> None:
    """``n`` bytes from ``src`` to ``dst``, a chunk at a time (videos may be large)."""
    while n > 0:
        chunk = src.read(min(CHUNK, n))
        if not chunk:
            return
        dst.write(chunk)
        n -= len(chunk)


def start_gallery(workspace: str | Path, host: str, port: int, auth_string: str = "",
                  fallback: bool = True) -> GalleryServer:
    """A started GalleryServer on ``port``; if that port is taken and ``fallback``, on any
    free one (the caller prints the address it got)."""
    try:
        server = GalleryServer(workspace, host, port, auth_string)
    except OSError:
        if not fallback:
            raise
        server = GalleryServer(workspace, host, 0, auth_string)
    server.start()
    return server


def main(argv: list[str] | None = None) -> None:
    from flows.settings import workspace_path

    parser = argparse.ArgumentParser(description="Serve the workspace's render galleries over HTTP.")
    parser.add_argument("--workspace", default="")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4201)
    args = parser.parse_args(argv)
    server = GalleryServer(workspace_path(args.workspace), args.host, args.port,
                           os.environ.get("PREFECT_SERVER_API_AUTH_STRING", ""))
    print(f"Galleries: {server.url}  (set {GALLERY_URL_ENV}={server.url} for the render flow)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
