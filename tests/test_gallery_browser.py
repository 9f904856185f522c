"""The gallery in a real headless browser (Debian's chromium, from scripts/install_test_debs.sh).

A small catalog is rendered, its folder served over HTTP on 127.0.0.1, and chromium loads a
test-only page that holds the gallery in a same-origin iframe, waits until every <video> has
its metadata (or an error), and writes what it saw into its own DOM; ``--dump-dom`` hands
that back. A second run saves a screenshot of the gallery itself.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import os
import re
import shutil
import subprocess
import threading
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
