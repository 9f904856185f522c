"""The gallery in a real headless browser (Debian's chromium, from scripts/install_test_debs.sh).

A small catalog is rendered, its folder served over HTTP on 127.0.0.1, and chromium loads a
test-only page that holds the gallery in a same-origin iframe, waits until every <video> has
its metadata (or an error), and writes what it saw into its own DOM; ``--dump-dom`` hands
that back. A second run saves a screenshot of the gallery itself.

``Chromium`` drives the browser over the DevTools protocol instead (navigate, evaluate,
screenshot), for pages that are not ours to instrument: the gallery server of
flows/gallery.py with basic auth and link tokens here, and the Prefect UI in
tests/test_deployments.py.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from t2v_core.config import RenderConfig
from t2v_core.render import render_catalog

pytestmark = pytest.mark.server

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]

# Polls the iframed gallery until every video has metadata or an error (or ~10 s pass),
# then writes the findings as JSON into #result for --dump-dom to return.
CHECK_PAGE = """<!DOCTYPE html><html><body>
<pre id="result">pending</pre>
<iframe id="gallery" src="index.html" width="1200" height="900"></iframe>
<script>
var tries = 0;
function poll() {
  var doc = document.getElementById('gallery').contentDocument;
  var videos = doc ? Array.from(doc.querySelectorAll('video')) : [];
  var settled = !!doc && doc.readyState === 'complete' &&
      videos.every(function (v) { return v.readyState >= 1 || v.error; });
  if (!settled && ++tries < 200) { setTimeout(poll, 50); return; }
  document.getElementById('result').textContent = JSON.stringify({
    settled: settled,
    images: doc ? doc.querySelectorAll('.card > img').length : -1,
    videos: videos.map(function (v) {
      return {src: v.currentSrc, readyState: v.readyState, duration: v.duration,
              videoWidth: v.videoWidth, error: v.error ? v.error.code : null};
    })
  });
}
window.addEventListener('load', poll);
</script></body></html>
"""

PROMPTS = ["a red circle moves up", "a blue square moves down", "a white triangle moves left",
           "a cyan circle moves right", "zxqv blorf"]


def moving_square(prompts: list[str], seeds: list[int]) -> list[np.ndarray | str]:
    """A real, deterministic generator: the prompt's hash picks the colour, the seed the path."""
    out: list[np.ndarray | str] = []
    for prompt, seed in zip(prompts, seeds):
        if "zxqv" in prompt:
            out.append("no known words")
            continue
        h = hashlib.sha256(prompt.encode()).digest()
        clip = np.zeros((8, 32, 32, 3), np.uint8)
        for t in range(8):
            x = (seed + 3 * t) % 24
            clip[t, 12:20, x:x + 8] = (h[0] | 64, h[1] | 64, h[2] | 64)
        out.append(clip)
    return out


def find_chromium() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else "")
    if not path:
        message = "chromium is not installed; run scripts/install_test_debs.sh"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs it, so a missing browser there is a failure
        pytest.skip(message)
    return path


@pytest.fixture
def served_gallery(tmp_path) -> Iterator[tuple[str, Path, dict]]:
    catalog = tmp_path / "catalog.txt"
    catalog.write_text("\n".join(PROMPTS) + "\n")
    out = tmp_path / "out"
    result = render_catalog(catalog, out, moving_square, RenderConfig(fps=8, samples=2, batch_size=4))
    (out / "check.html").write_text(CHECK_PAGE)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep the test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(out)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path, result
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def run_chromium(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )


class Chromium:
    """Headless chromium over the DevTools protocol (its own websocket; no driver needed)."""

    def __init__(self, binary: str, profile: Path, width: int = 1280, height: int = 900):
        from websockets.sync.client import connect

        profile.mkdir(parents=True, exist_ok=True)
        (profile / "DevToolsActivePort").unlink(missing_ok=True)  # a reused profile's is stale
        self.proc = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
             f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            port_file, deadline = profile / "DevToolsActivePort", time.monotonic() + 60
            # Chromium writes its DevTools port and path here once it listens.
            while not (port_file.is_file() and len(port_file.read_text().split()) >= 2):
                assert self.proc.poll() is None and time.monotonic() < deadline, "chromium did not start"
                time.sleep(0.1)
            port = int(port_file.read_text().split()[0])
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as r:
                page = next(t for t in json.load(r) if t["type"] == "page")
            self.ws = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=30)
        except BaseException:
            self.proc.kill()  # no browser left behind holding the profile
            self.proc.wait(20)
            raise
        self.last_id = 0

    def send(self, method: str, **params: object) -> dict:
        self.last_id += 1
        self.ws.send(json.dumps({"id": self.last_id, "method": method, "params": params}))
        while True:  # events arrive in between; only the reply to this call matters here
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == self.last_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def evaluate(self, expression: str) -> object:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"].get("text", "exception"))
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 60) -> object:
        """The first truthy value of ``expression``, polled (the page may be navigating)."""
        deadline, value = time.monotonic() + timeout_s, None
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except RuntimeError:  # "execution context was destroyed": a navigation in progress
                value = None
            if value:
                return value
            time.sleep(0.25)
        text = self.evaluate("document.body ? document.body.innerText.slice(0, 1500) : ''")
        raise AssertionError(f"timed out waiting for {expression!r} on {self.evaluate('location.href')}:\n{text}")

    def goto(self, url: str, timeout_s: float = 60) -> None:
        """Navigate and wait for the new document to be parsed (not for its subresources: the
        callers wait for what they check, and a refused one may never settle)."""
        before = self.evaluate("performance.timeOrigin")
        self.send("Page.navigate", url=url)
        self.wait_for(f"performance.timeOrigin !== {before} && document.readyState !== 'loading'", timeout_s)

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"]))
        return path

    def close(self) -> None:
        self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# Every <video> of the page once each has its metadata or an error: what the tests assert on.
VIDEOS_SETTLED = """(() => {
  const videos = Array.from(document.querySelectorAll('video'));
  if (!videos.length || !videos.every(v => v.readyState >= 1 || v.error)) return null;
  return videos.map(v => ({src: v.currentSrc, readyState: v.readyState, duration: v.duration,
                           videoWidth: v.videoWidth, error: v.error ? v.error.code : null}));
})()"""


def assert_videos_loaded(videos: list[dict], width: int) -> None:
    for v in videos:
        assert v["error"] is None and v["readyState"] >= 1, v  # HAVE_METADATA
        assert v["duration"] is not None and math.isfinite(v["duration"]) and v["duration"] > 0, v
        assert v["videoWidth"] == width, v


def test_every_video_loads_its_metadata(served_gallery):
    chromium = find_chromium()
    base, tmp, result = served_gallery
    proc = run_chromium(chromium, tmp / "profile", "--virtual-time-budget=10000", "--dump-dom",
                        f"{base}/check.html")
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = re.search(r'<pre id="result">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"no result in the dumped DOM:\n{proc.stdout[:2000]}"
    report = json.loads(html.unescape(found.group(1)))
    assert report["settled"], report

    videos = report["videos"]
    assert len(videos) == result["videos"] == 8  # 4 good prompts x 2 samples; the bad one has no card
    assert report["images"] == 0  # no WebM fell back to its GIF
    for v in videos:
        assert v["error"] is None, v
        assert v["readyState"] >= 1, v  # HAVE_METADATA
        assert v["duration"] is not None and math.isfinite(v["duration"]) and v["duration"] > 0, v
        assert v["videoWidth"] == 32, v
        assert v["src"].startswith(f"{base}/videos/") and v["src"].endswith(".webm")
    assert len({v["src"] for v in videos}) == 8


def test_screenshot_of_the_gallery(served_gallery):
    chromium = find_chromium()
    base, tmp, _ = served_gallery
    shot = tmp / "gallery.png"
    proc = run_chromium(chromium, tmp / "profile", f"--screenshot={shot}", "--window-size=1200,900",
                        "--virtual-time-budget=5000", f"{base}/index.html")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.is_file() and shot.stat().st_size > 0
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(shot) as im:
        assert im.size == (1200, 900)
        pixels = np.asarray(im.convert("RGB"))
    # the page drew something: the dark background plus text, cards and videos
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 10


def test_gallery_server_with_basic_auth_in_a_browser(tmp_path):
    """With auth on (flows/gallery.py): a page of another origin, as the Prefect UI is, shows
    a gallery GIF through its link token, while the same image without the token is refused;
    the gallery opens from its token link with every video playable, and from its plain
    address when the browser sends the user and password."""
    from test_gallery_server import KEY, commit_gallery

    from flows.gallery import GalleryServer, gallery_url

    chromium = find_chromium()
    auth = "admin:a-long-password"
    artifact = commit_gallery(tmp_path / "ws")
    gif = "videos/" + next((artifact / "videos").glob("*.gif")).name
    gallery = GalleryServer(tmp_path / "ws", auth_string=auth)
    gallery.start()
    host = tmp_path / "host"
    host.mkdir()
    (host / "page.html").write_text(
        f'<!DOCTYPE html><html><body><img src="{gallery_url(gallery.url, KEY, gif, auth)}">'
        f'<img src="{gallery_url(gallery.url, KEY, gif)}"></body></html>')
    page = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(host)))
    threading.Thread(target=page.serve_forever, daemon=True).start()
    browser = Chromium(chromium, tmp_path / "profile")
    try:
        browser.goto(f"http://127.0.0.1:{page.server_address[1]}/page.html")
        # The token's image loads; the other one gets 401 and never shows (a browser asks no
        # password for another origin's image; headless chromium leaves it pending).
        assert browser.wait_for("document.images[0].complete && document.images[0].naturalWidth") == 16
        time.sleep(1)
        assert browser.evaluate("document.images[1].naturalWidth") == 0
        browser.goto(gallery_url(gallery.url, KEY, auth_string=auth))
        videos = browser.wait_for(VIDEOS_SETTLED)
        assert len(videos) == 2
        assert_videos_loaded(videos, width=16)
        credentials = base64.b64encode(auth.encode()).decode()
        browser.send("Network.enable")
        browser.send("Network.setExtraHTTPHeaders", headers={"Authorization": f"Basic {credentials}"})
        browser.goto(gallery_url(gallery.url, KEY))
        videos = browser.wait_for(VIDEOS_SETTLED)
        assert len(videos) == 2 and all(v["src"].startswith(f"{gallery.url}/render/{KEY}/") for v in videos)
        assert_videos_loaded(videos, width=16)
    finally:
        browser.close()
        gallery.stop()
        page.shutdown()
        page.server_close()
