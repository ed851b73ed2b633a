#!/usr/bin/env bash
# The deploy test (chat/tests/test_deploy.py) runs docs/deploy.md's nginx
# configuration with a real nginx; install Debian's when the machine lacks it.
# Without root and without nginx the test is skipped, so this only says so.
set -euo pipefail

if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "nginx is missing and this is not root: the deploy test will be skipped (apt-get install nginx)." >&2
    exit 0
fi
echo "Installing nginx for the deploy test..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends nginx >/dev/null
# The package starts nginx on port 80 where it can; the test runs its own.
if command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now nginx >/dev/null 2>&1 || true
fi
test -x /usr/sbin/nginx
