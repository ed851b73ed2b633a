#!/usr/bin/env bash
# The message-file tests run Django's makemessages, which needs GNU gettext
# (xgettext, msgmerge, msgfmt); install it if the machine lacks it.
# Idempotent, and needs no input (CI runs it as root on a clean machine).
# `make run` needs none of it: the compiled catalogues are committed.
set -euo pipefail

if command -v xgettext >/dev/null 2>&1 && command -v msgfmt >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "GNU gettext is missing; install it (Debian: apt-get install gettext) or run as root." >&2
    exit 1
fi
echo "Installing gettext for the message-file tests..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends gettext >/dev/null
command -v xgettext
