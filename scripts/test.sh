#!/usr/bin/env bash
# Runs every check and test from a fresh machine (Rust toolchain + python3 only):
# installs uv and the pinned Pixell builders, builds the fixture packages with them,
# then fmt, clippy, cargo deny and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# Tools live in the user cache so later runs on the same machine reuse them; a new
# machine installs them from scratch.
export PAR_TOOLS="${PAR_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/par-tools}"
# A one-off build gains nothing from incremental artifacts, and they cost gigabytes of disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

step() { printf '\n== %s\n' "$*"; }

step "tools: uv"
PAR_UV="$(bash scripts/ensure-uv.sh)"
export PAR_UV

step "tools: system tools the tests call (gpg, openssl, node/npm, python 3.11, procps, util-linux)"
bash scripts/ensure-system-tools.sh

step "tools: OpenID provider for the auth tests (npm oidc-provider)"
bash scripts/install-oidc.sh

step "tools: S3-compatible server for the registry tests (s3s-fs, strict SigV4)"
PAR_S3S_FS="$(bash scripts/install-s3-server.sh)"
export PAR_S3S_FS

step "tools: PostgreSQL for the usage-shipper tests (each test starts its own server)"
PAR_POSTGRES_BIN="$(bash scripts/install-postgres.sh)"
export PAR_POSTGRES_BIN

step "tools: OpenTelemetry collector for the OTLP export tests (rotel, from PyPI)"
PAR_ROTEL="$(bash scripts/install-otlp-receiver.sh)"
export PAR_ROTEL

step "tools: API testing (openapi-spec-validator, schemathesis, from PyPI)"
PAR_API_TOOLS="$(bash scripts/install-api-tools.sh)"
export PAR_API_TOOLS

step "tools: A2A and MCP clients for the protocol tests (a2a-sdk 1.3.0, mcp 2.3.0 from PyPI)"
PAR_PROTOCOL_PYTHON="$(bash scripts/install-protocol-clients.sh)"
export PAR_PROTOCOL_PYTHON

step "tools: headless Chromium for the web console's browser test (Debian chromium)"
PAR_CHROMIUM="$(bash scripts/install-browser.sh)"
export PAR_CHROMIUM

step "fixtures: real packages built by pixell-kit 0.4.12, 0.3.5 and pixell-sdk 0.5.4"
python3 scripts/build-fixtures.py --if-stale

step "deploy: kubernetes manifests (kubectl kustomize, Kubernetes 1.30 schemas, consistency)"
bash scripts/check-manifests.sh

if [ "${PAR_TEST_CONTAINER:-0}" = 1 ]; then
  step "deploy: container image (podman build + smoke test; PAR_TEST_CONTAINER=1)"
  bash scripts/check-container.sh
else
  step "deploy: container files (static checks; PAR_TEST_CONTAINER=1 also builds and runs the image)"
  bash scripts/check-container.sh --static
fi

step "format"
cargo fmt --all --check

step "clippy"
cargo clippy --all-targets -- -D warnings

step "dependency audit (cargo deny)"
bash scripts/deny.sh

# The libFuzzer smoke needs every dependency built again with sanitizer instrumentation
# (about 25 minutes on two fresh cores, then cached in $PAR_TOOLS): `auto` runs it where
# that build is cached, 1 always (building it if needed), 0 never. The stable replay of
# every target over its corpus runs in the test suite either way.
FUZZ_SMOKE="${PAR_FUZZ_SMOKE:-auto}"
if [ "$FUZZ_SMOKE" = auto ]; then
  FUZZ_SMOKE=0
  [ -x "$PAR_TOOLS/fuzz-target/x86_64-unknown-linux-gnu/release/archive" ] && FUZZ_SMOKE=1
fi
if [ "$FUZZ_SMOKE" = 1 ]; then
  step "fuzz: libFuzzer smoke of every target (cargo-fuzz; PAR_FUZZ_SMOKE=0 skips it)"
  FUZZ_SMOKE_SECS="${FUZZ_SMOKE_SECS:-5}" bash scripts/fuzz-smoke.sh
else
  step "fuzz: no instrumented build cached: the test suite replays every target over its corpus; PAR_FUZZ_SMOKE=1 builds and runs libFuzzer"
fi

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
