#!/usr/bin/env bash
# The browser tests drive the distribution's Chromium: Playwright's own browser
# download is not something every machine that runs the suite can reach.
# Idempotent: does nothing when Chromium is already installed.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "Chromium is missing at $CHROMIUM; install it as root: apt-get install chromium" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium >/dev/null
test -x "$CHROMIUM"
