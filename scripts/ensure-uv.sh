#!/usr/bin/env bash
# Install a pinned uv into $PAR_TOOLS (default: <repo>/.par-tools) and print its path.
#
# Idempotent: when $PAR_TOOLS/bin/uv exists, runs and reports the pinned version, it only
# prints the path. Otherwise it creates $PAR_TOOLS/venv with `python3 -m venv`, pip-installs
# uv==$UV_VERSION into it (PyPI is the only network access needed) and symlinks
# $PAR_TOOLS/bin/uv. Quiet: errors go to stderr, the path of uv is the only stdout line.
#
# Environment: PAR_TOOLS (install root), PYTHON (interpreter, default python3).
set -euo pipefail

UV_VERSION="0.13.9" # pinned; the current uv release on PyPI when this was written

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PAR_TOOLS="${PAR_TOOLS:-$repo_root/.par-tools}"
PYTHON="${PYTHON:-python3}"
uv_bin="$PAR_TOOLS/bin/uv"
venv="$PAR_TOOLS/venv"

die() { echo "ensure-uv: $*" >&2; exit 1; }

uv_ok() {
    [ -x "$uv_bin" ] || return 1
    local out
    out="$("$uv_bin" --version 2>/dev/null)" || return 1
    # "uv 0.13.9" or "uv 0.13.9 (hash date)"
    [ "$(echo "$out" | awk '{print $2}')" = "$UV_VERSION" ]
}

if uv_ok; then
    echo "$uv_bin"
    exit 0
fi

mkdir -p "$PAR_TOOLS/bin" || die "cannot create $PAR_TOOLS/bin"

# Serialise concurrent installs (e.g. several test binaries starting at once).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$PAR_TOOLS/.ensure-uv.lock"
    flock 9
    if uv_ok; then # somebody else finished while we waited
        echo "$uv_bin"
        exit 0
    fi
fi

command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (install python3, python3-venv, python3-pip)"

# A broken or half-made venv from an earlier attempt is replaced.
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    rm -rf "$venv"
    log="$(mktemp)"
    if ! "$PYTHON" -m venv "$venv" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        die "'$PYTHON -m venv' failed (on Debian: apt-get install python3-venv)"
    fi
    rm -f "$log"
fi

log="$(mktemp)"
if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
        "uv==$UV_VERSION" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    die "pip install uv==$UV_VERSION failed"
fi
rm -f "$log"

[ -x "$venv/bin/uv" ] || die "uv==$UV_VERSION installed but $venv/bin/uv is missing"
ln -sfn "../venv/bin/uv" "$uv_bin"
uv_ok || die "$uv_bin does not run or is not version $UV_VERSION"
echo "$uv_bin"
