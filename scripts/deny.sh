#!/usr/bin/env bash
# cargo deny with the RustSec advisory database. The database lives in a git repository
# outside the package registries; where it cannot be fetched, a copy already present in
# ~/.cargo/advisory-dbs is used, and without one the advisory check is skipped loudly
# (licenses, bans and sources are still checked).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cargo-deny >/dev/null 2>&1; then
  cargo install --locked cargo-deny@0.20.2
fi
# --offline below also makes cargo metadata offline: have every crate (all targets) local.
cargo fetch --quiet
if cargo deny fetch >/dev/null 2>&1; then
  cargo deny check
elif compgen -G "$HOME/.cargo/advisory-dbs/advisory-db-*" >/dev/null; then
  echo "deny: advisory database not reachable; using the local copy in ~/.cargo/advisory-dbs"
  cargo deny --offline check
else
  echo "deny: WARNING: advisory database not reachable and no local copy: advisories NOT checked"
  cargo deny --offline check bans licenses sources
fi
