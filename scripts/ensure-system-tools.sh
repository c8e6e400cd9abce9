#!/usr/bin/env bash
# Makes sure the system tools the tests call are present, installing the Debian packages
# that provide missing ones when apt can (as root), and naming what is still missing.
# Tools: gpg + gpgconf (signature fixtures), the openssl CLI (TLS fixtures, webhook
# signatures), node + npm (the test OpenID provider), sha256sum, kill, setpriv, chown, id
# and sh (process and sandbox tests), haproxy (the fleet test), python3 (fixture builder, worker tests), and a
# CPython 3.11 that `uv python find` sees (packages declare runtime python3.11; PAR never
# downloads interpreters).
set -euo pipefail

declare -A package_of=([gpg]=gnupg [gpgconf]=gnupg [openssl]=openssl [node]=nodejs [npm]=npm
  [sha256sum]=coreutils [chown]=coreutils [id]=coreutils [kill]=procps [setpriv]=util-linux
  [sh]=dash [python3]=python3 [haproxy]=haproxy)
missing=()
for tool in "${!package_of[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  packages=()
  for tool in "${missing[@]}"; do packages+=("${package_of[$tool]}"); done
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure-system-tools: installing ${packages[*]} for ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${packages[@]}" >&2 \
      || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${packages[@]}" >&2; }
  else
    echo "ensure-system-tools: missing ${missing[*]}: install the Debian packages ${packages[*]}" >&2
    exit 1
  fi
fi

uv="${PAR_UV:?PAR_UV must name the uv binary (scripts/ensure-uv.sh prints it)}"
if ! "$uv" python find 3.11 >/dev/null 2>&1; then
  echo "ensure-system-tools: uv sees no CPython 3.11 (uv python find 3.11); install python3.11" >&2
  exit 1
fi
echo "ensure-system-tools: ${!package_of[*]} and python 3.11 ($("$uv" python find 3.11)) present" >&2
