#!/usr/bin/env bash
# A short libFuzzer run of every fuzz target (fuzz/): installs cargo-fuzz if needed, seeds
# the corpus from the fixtures, builds all targets once (AddressSanitizer), then runs each
# for FUZZ_SMOKE_SECS seconds (default 10). Fails on any crash, leak or timeout; the
# crashing input lands in fuzz/artifacts/<target>/.
#
# The same target functions are also replayed over the corpus by the ordinary test suite
# (crates/par-fuzz-targets/tests/replay.rs) on stable without libFuzzer; this script is the
# real fuzzer, run by scripts/test.sh when PAR_FUZZ_SMOKE=1 (the instrumented build takes
# minutes; see docs/operations.md "Fuzzing").
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/fuzz-env.sh
SECS="${FUZZ_SMOKE_SECS:-10}"
bash fuzz/seed.sh >/dev/null
start=$(date +%s)
fuzz build
echo "fuzz build: $(( $(date +%s) - start )) s"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for t in "${FUZZ_TARGETS[@]}"; do
  echo "== fuzz $t (${SECS}s)"
  rc=0
  fuzz run "$t" "corpus/$t" -- -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$log" 2>&1 || rc=$?
  grep -E 'stat::number_of_executed_units|^Done|ERROR|SUMMARY|panicked' "$log" || true
  if [ "$rc" != 0 ]; then
    tail -40 "$log" >&2
    echo "fuzz target $t failed (exit $rc): see fuzz/artifacts/$t/" >&2
    exit 1
  fi
done
