#!/usr/bin/env bash
# Find (or install) the PostgreSQL server used by the usage-shipper tests and print the
# directory holding its `initdb` and `postgres`.
#
# The tests start their own throwaway server from these binaries (see
# crates/par-telemetry/tests/pg_server); nothing here starts a service. On a machine
# without PostgreSQL, Debian's `postgresql` package is installed with apt-get (as root,
# else through sudo without a password).
#
# Idempotent: an existing install is only located. Order: $PAR_POSTGRES_BIN, the newest
# /usr/lib/postgresql/<version>/bin (Debian, Ubuntu), the directory of `initdb` on PATH
# (symlinks resolved), `pg_config --bindir`.
set -euo pipefail

die() { echo "install-postgres: $*" >&2; exit 1; }

usable() { [ -n "$1" ] && [ -x "$1/initdb" ] && [ -x "$1/postgres" ]; }

find_bin() {
    local dir
    if usable "${PAR_POSTGRES_BIN:-}"; then echo "$PAR_POSTGRES_BIN"; return 0; fi
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -V -r); do
        if usable "$dir"; then echo "$dir"; return 0; fi
    done
    if command -v initdb >/dev/null 2>&1; then
        dir="$(dirname "$(readlink -f "$(command -v initdb)")")"
        if usable "$dir"; then echo "$dir"; return 0; fi
    fi
    if command -v pg_config >/dev/null 2>&1; then
        dir="$(pg_config --bindir 2>/dev/null || true)"
        if usable "$dir"; then echo "$dir"; return 0; fi
    fi
    return 1
}

if find_bin; then
    exit 0
fi

if [ "$(id -u)" = 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    die "PostgreSQL is not installed and this user cannot run apt-get: install the 'postgresql' package, or set PAR_POSTGRES_BIN to a directory with initdb and postgres"
fi
command -v apt-get >/dev/null 2>&1 || die "PostgreSQL is not installed and there is no apt-get: install it and set PAR_POSTGRES_BIN"

log="$(mktemp)"
echo "install-postgres: installing Debian's postgresql package" >&2
if ! { "${as_root[@]}" apt-get update && \
       "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
           apt-get install -y --no-install-recommends postgresql; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    rm -f "$log"
    die "apt-get install postgresql failed"
fi
rm -f "$log"

find_bin || die "postgresql installed but no initdb/postgres found under /usr/lib/postgresql"
