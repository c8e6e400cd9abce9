#!/usr/bin/env bash
# PAR benchmarks, one command: builds the release binaries (par + the thin baseline),
# installs the load generators when missing, builds the fixture and bench packages,
# then runs every scenario beside its baseline and prints one table (also written to
# target/bench/results.{json,md}). Everything runs on 127.0.0.1; about 4 minutes.
#
# Usage: bash bench/run.sh [--no-build] [--seconds S] [--repeat N] [--keep]
#                          [--only echo,rest,sse,ui,slow,tuned,start,memory]
# --no-build uses the binaries already in target/release (say, while the tree does not build).
set -euo pipefail
cd "$(dirname "$0")/.."

need_tools() {
  command -v wrk >/dev/null && command -v hey >/dev/null && return 0
  echo "[bench] installing wrk and hey (Debian packages)" >&2
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq >&2
  $sudo apt-get install -y -qq wrk hey >&2
}

build=1
if [ "${1:-}" = "--no-build" ]; then build=0; shift; fi
need_tools
uv="${PAR_UV:-$(bash scripts/ensure-uv.sh)}"
if [ "$build" = 1 ]; then
  echo "[bench] building release binaries" >&2
  # Two commands, not one: built together, shared dependencies would get the union of
  # both packages' features and everything would be rebuilt once more than `-p par-cli`.
  cargo build --release --quiet -p par-cli
  cargo build --release --quiet -p par-bench-thin
fi
for bin in target/release/par target/release/par-bench-thin; do
  [ -x "$bin" ] || { echo "[bench] $bin is missing: run without --no-build" >&2; exit 1; }
done
echo "[bench] building packages" >&2
PAR_UV="$uv" python3 scripts/build-fixtures.py --if-stale
PAR_UV="$uv" python3 bench/build_agents.py
# PAR gets the caller's PATH, not the one python3 runs with: a pyenv shim puts its
# version's bin/ first, which makes `uv python find` (run at every PAR start) ten times
# faster than from the operator's shell (30 ms instead of 250 ms here).
export BENCH_HOST_PATH="$PATH"
# 2,000 concurrent calls need 2,000+ sockets in PAR, the thin server and hey.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec python3 bench/bench.py --par target/release/par --thin target/release/par-bench-thin \
  --uv "$uv" "$@"
