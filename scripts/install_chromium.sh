#!/usr/bin/env bash
# Install Debian's chromium for the gallery browser test (tests/test_gallery_browser.py).
# Idempotent: does nothing when /usr/bin/chromium is already there, so the test set-up can
# call it on every run. Needs root (or sudo) and a reachable Debian mirror.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install_chromium.sh: needs root or sudo to apt-get install chromium" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
# The package lists may be stale or absent in a fresh container: update first.
$SUDO apt-get update
# --no-install-recommends keeps out the desktop extras a headless test never uses.
$SUDO apt-get install -y --no-install-recommends chromium

if [ ! -x /usr/bin/chromium ]; then
    echo "install_chromium.sh: apt-get finished but /usr/bin/chromium is missing" >&2
    exit 1
fi
echo "installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
