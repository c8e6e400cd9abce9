#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ for cargo-fuzz from the committed seeds (fuzz/seeds), the
# crash regressions (fuzz/regressions) and the fixtures: built packages in target/fixtures
# (python3 scripts/build-fixtures.py), every fixture's and example's agent.yaml and .env.
# Idempotent; inputs a fuzz run added to the corpus are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGETS=(archive manifest dotenv worker_frame openpgp registry_index http_routes)
for t in "${TARGETS[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  for dir in fuzz/seeds/$t fuzz/regressions/$t; do
    [ -d "$dir" ] && cp -f "$dir"/* "fuzz/corpus/$t/" 2>/dev/null || true
  done
done
# Fixture-derived inputs, named after their source so reruns overwrite instead of piling up.
copy_named() { # target file...
  local t=$1; shift
  for f in "$@"; do
    [ -f "$f" ] && cp -f "$f" "fuzz/corpus/$t/$(echo "$f" | tr '/' '_')"
  done
}
shopt -s nullglob
copy_named archive target/fixtures/*.apkg
copy_named manifest fixtures/agents/*/agent.yaml examples/*/agent.yaml
copy_named dotenv fixtures/agents/*/.env fixtures/agents/*/.env.example examples/*/.env
for t in "${TARGETS[@]}"; do
  printf '%-15s %4d inputs\n' "$t" "$(find "fuzz/corpus/$t" -type f | wc -l)"
done
