#!/usr/bin/env bash
# Install the S3-compatible test server used by crates/par-registry's tests and print its path.
#
# s3s-fs 0.14.1 (Rust crate registry, Apache-2.0) serves a directory over the S3 API with
# strict SigV4 checking, so a wrong secret is refused the way AWS refuses it. It is the
# quickest real server to build here (about 3 minutes; 0.15 needs a newer rustc). Garage
# also checks signatures but takes about 12 minutes to build; moto accepts any credentials.
#
# Idempotent: when $PAR_TOOLS/bin/s3s-fs exists and runs, it only prints the path.
# Environment: PAR_TOOLS (install root, default <repo>/.par-tools).
set -euo pipefail

S3S_FS_VERSION="0.14.1"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PAR_TOOLS="${PAR_TOOLS:-$repo_root/.par-tools}"
bin="$PAR_TOOLS/bin/s3s-fs"

die() { echo "install-s3-server: $*" >&2; exit 1; }

installed() { [ -x "$bin" ] && "$bin" --help >/dev/null 2>&1; }

if installed; then
    echo "$bin"
    exit 0
fi

mkdir -p "$PAR_TOOLS" || die "cannot create $PAR_TOOLS"

# Serialise concurrent installs (several test runs starting at once).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$PAR_TOOLS/.install-s3-server.lock"
    flock 9
    if installed; then
        echo "$bin"
        exit 0
    fi
fi

command -v cargo >/dev/null 2>&1 || die "cargo not found (install a Rust toolchain)"

log="$(mktemp)"
echo "install-s3-server: building s3s-fs $S3S_FS_VERSION (about 3 minutes)" >&2
if ! cargo install --locked "s3s-fs@$S3S_FS_VERSION" --features binary \
        --root "$PAR_TOOLS" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    rm -f "$log"
    die "cargo install s3s-fs@$S3S_FS_VERSION failed"
fi
rm -f "$log"

installed || die "s3s-fs installed but $bin does not run"
echo "$bin"
