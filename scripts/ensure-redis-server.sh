#!/usr/bin/env bash
# The Redis tests start their own redis-server; install it if the machine lacks it.
# Idempotent, and needs no input (CI runs it as root on a clean machine).
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "redis-server is missing; install it (Debian: apt-get install redis-server) or run as root." >&2
    exit 1
fi
echo "Installing redis-server for the Redis tests..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends redis-server >/dev/null
command -v redis-server
