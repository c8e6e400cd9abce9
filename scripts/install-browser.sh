#!/usr/bin/env bash
# Makes sure Debian's headless-capable Chromium is installed (the console's browser tests
# drive it through the DevTools protocol) and prints its path. Idempotent: does nothing
# when it is already there; installs it with apt-get when run as root, else says what to do.
set -euo pipefail

for candidate in "${PAR_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then
    echo "$candidate"
    exit 0
  fi
done
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "install-browser: installing chromium (Debian)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2 \
    || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2; }
  echo /usr/bin/chromium
else
  echo "install-browser: chromium is missing: install the Debian package chromium (or set PAR_CHROMIUM)" >&2
  exit 1
fi
