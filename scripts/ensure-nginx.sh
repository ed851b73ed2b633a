#!/usr/bin/env bash
# The deploy test (chat/tests/test_deploy.py) follows docs/deploy.md with a
# real nginx, the guide's curl checks and a throw-away openssl certificate;
# install Debian's packages when the machine lacks them. Without root and
# without nginx the test is skipped, so this only says so.
set -euo pipefail

missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "Missing ${missing[*]} and not root: the deploy test will be skipped or fail (apt-get install ${missing[*]})." >&2
    exit 0
fi
echo "Installing ${missing[*]} for the deploy test..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The package starts nginx on port 80 where it can; the test runs its own.
if command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now nginx >/dev/null 2>&1 || true
fi
test -x /usr/sbin/nginx
