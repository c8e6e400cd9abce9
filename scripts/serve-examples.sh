#!/usr/bin/env bash
# The main job on a fresh machine: get uv if missing, build the bundled example agents
# (only those) into APKGs with the real Pixell kit, build par, and serve them on
# 127.0.0.1:8080.
set -euo pipefail
cd "$(dirname "$0")/.."
export PAR_TOOLS="${PAR_TOOLS:-$PWD/.par-tools}"
PAR_UV="$(bash scripts/ensure-uv.sh)"
export PAR_UV
python3 scripts/build-fixtures.py --examples-only --if-stale
cargo build --release -p par-cli
exec target/release/par serve "$@" target/examples
