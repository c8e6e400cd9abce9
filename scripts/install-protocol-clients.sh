#!/usr/bin/env bash
# Install the A2A and MCP clients the protocol e2e tests drive PAR with, and print the
# path of the Python that has them.
#
# a2a-sdk 1.3.0 (A2A 1.0 and 0.3 clients: card resolver, client factory, JSON-RPC
# transport) and mcp 2.3.0 (streamable HTTP client, protocol revision 2026-07-28), both
# from PyPI, in a venv of their own built by uv: clients nobody on this project wrote.
#
# Idempotent: when the venv exists and imports both pinned versions, it only prints the
# path. Environment: PAR_TOOLS (install root, default <repo>/.par-tools), PAR_UV (uv).
set -euo pipefail

A2A_VERSION="1.3.0"
MCP_VERSION="2.3.0"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PAR_TOOLS="${PAR_TOOLS:-$repo_root/.par-tools}"
venv="$PAR_TOOLS/protocol-clients-a2a$A2A_VERSION-mcp$MCP_VERSION"
python="$venv/bin/python"

die() { echo "install-protocol-clients: $*" >&2; exit 1; }

installed() {
    [ -x "$python" ] && "$python" - "$A2A_VERSION" "$MCP_VERSION" <<'PY' >/dev/null 2>&1
import sys
from importlib.metadata import version
import a2a.client, mcp.client.streamable_http  # noqa: F401
assert version("a2a-sdk") == sys.argv[1] and version("mcp") == sys.argv[2]
PY
}

if installed; then
    echo "$python"
    exit 0
fi

uv="${PAR_UV:-$(bash "$repo_root/scripts/ensure-uv.sh")}"
rm -rf "$venv"
# A venv records its own path: build it where it will live instead of moving it.
"$uv" venv --quiet --python 3.11 "$venv" >&2 || die "cannot create $venv"
"$uv" pip install --quiet --python "$venv/bin/python" \
    "a2a-sdk==$A2A_VERSION" "mcp==$MCP_VERSION" >&2 \
    || die "cannot install into $venv"
installed || die "$python cannot import a2a-sdk $A2A_VERSION and mcp $MCP_VERSION"
echo "$python"
