#!/usr/bin/env bash
# Install the OTLP receiver used by crates/par-telemetry's tests (tests/otlp/rotel.rs) and
# print its path.
#
# rotel 0.0.1a15 (PyPI, Apache-2.0) is an OpenTelemetry collector whose wheel carries its
# binary, `rotel-agent`; the official Collector (Go) is in none of the registries these
# machines reach. Only the binary is used, so the wheel is downloaded and unpacked, not
# installed into any Python.
#
# Idempotent: when $PAR_TOOLS/bin/rotel-agent exists and runs, it only prints the path.
# Environment: PAR_TOOLS (install root, default <repo>/.par-tools).
set -euo pipefail

ROTEL_VERSION="0.0.1a15"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PAR_TOOLS="${PAR_TOOLS:-$repo_root/.par-tools}"
bin="$PAR_TOOLS/bin/rotel-agent"

die() { echo "install-otlp-receiver: $*" >&2; exit 1; }

installed() { [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; }

if installed; then
    echo "$bin"
    exit 0
fi

[ "$(uname -sm)" = "Linux x86_64" ] || die "rotel wheels used here are for Linux x86_64 only"
mkdir -p "$PAR_TOOLS/bin" || die "cannot create $PAR_TOOLS/bin"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The wheel's binary does not depend on the Python version; pinning the tags makes pip
# pick the same file whatever python3 runs it.
python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version 3.11 --platform manylinux_2_34_x86_64 \
    -d "$work" "rotel==$ROTEL_VERSION" >&2 || die "cannot download rotel $ROTEL_VERSION from PyPI"

python3 - "$work" "$bin.tmp" <<'EOF' || die "the wheel has no rotel/rotel-agent"
import glob, shutil, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/rotel-*.whl")[0]
with zipfile.ZipFile(wheel) as z, z.open("rotel/rotel-agent") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF
chmod 0755 "$bin.tmp"
mv "$bin.tmp" "$bin"
installed || die "$bin does not run"
echo "install-otlp-receiver: installed rotel $("$bin" --version)" >&2
echo "$bin"
