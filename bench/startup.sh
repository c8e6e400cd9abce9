#!/usr/bin/env bash
# Time from `par serve` to /runtime/ready on the example agents, cold (empty cache: every
# environment built) and warm (cache kept from the previous run). Prints one line per run.
# Usage: bench/startup.sh [runs]   (needs target/release/par and target/examples)
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-5}"
par=target/release/par
uv="${PAR_UV:-$(bash scripts/ensure-uv.sh)}"
cache="$(mktemp -d)"
trap 'rm -rf "$cache"' EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

one_run() {
  local p; p=$(port)
  local start; start=$(date +%s%N)
  "$par" serve --listen "127.0.0.1:$p" --cache-dir "$cache" --uv "$uv" --log-format json target/examples >/dev/null 2>&1 &
  local pid=$!
  until curl -sf "http://127.0.0.1:$p/runtime/ready" >/dev/null 2>&1; do sleep 0.005; done
  local end; end=$(date +%s%N)
  kill -TERM "$pid"; wait "$pid" || true
  echo $(( (end - start) / 1000000 ))
}

for i in $(seq "$runs"); do
  rm -rf "$cache"/*
  echo "cold run $i: $(one_run) ms"
done
for i in $(seq "$runs"); do
  echo "warm run $i: $(one_run) ms"
done
