#!/usr/bin/env bash
# Install the Debian packages the test suite runs for real: chromium (the gallery's browser
# test, tests/test_gallery_browser.py) and postgresql-15 (the dashboard on PostgreSQL,
# tests/test_deployments.py). Idempotent: does nothing when both are there, so the test
# set-up can call it on every run. Needs root (or sudo) and a reachable Debian mirror.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
INITDB=/usr/lib/postgresql/15/bin/initdb

if [ -x "$CHROMIUM" ] && [ -x "$INITDB" ]; then
    echo "test packages already installed: $($CHROMIUM --version 2>/dev/null || echo $CHROMIUM), $($INITDB --version)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install_test_debs.sh: needs root or sudo to apt-get install chromium and postgresql-15" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
# The package lists may be stale or absent in a fresh container: update first.
$SUDO apt-get update
# --no-install-recommends keeps out the desktop extras a headless test never uses.
$SUDO apt-get install -y --no-install-recommends chromium postgresql-15

for bin in "$CHROMIUM" "$INITDB"; do
    if [ ! -x "$bin" ]; then
        echo "install_test_debs.sh: apt-get finished but $bin is missing" >&2
        exit 1
    fi
done
echo "installed: $($CHROMIUM --version 2>/dev/null || echo $CHROMIUM), $($INITDB --version)"
