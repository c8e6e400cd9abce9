#!/usr/bin/env bash
# The long fuzz run (not in CI): each target in turn (one at a time: two shared cores) for
# FUZZ_MINUTES minutes (default 5), growing fuzz/corpus/<target>. Prints one line per
# target: executions, seconds, corpus size, crashes. A crash stops nothing: its input is in
# fuzz/artifacts/<target>/; fix it, then keep the input in fuzz/regressions/<target>/ and
# add a regression test in the crate. Usage: scripts/fuzz-long.sh [target...]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/fuzz-env.sh
MINUTES="${FUZZ_MINUTES:-5}"
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${FUZZ_TARGETS[@]}")
bash fuzz/seed.sh >/dev/null
fuzz build
mkdir -p fuzz/logs
printf '%-15s %12s %8s %8s %8s\n' target executions seconds corpus crashes
for t in "${targets[@]}"; do
  log="fuzz/logs/$t.log"
  rc=0
  fuzz run "$t" "corpus/$t" -- -max_total_time=$((MINUTES * 60)) -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || rc=$?
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
  secs=$(grep -oE 'stat::average_exec_per_sec' "$log" >/dev/null && echo $((MINUTES * 60)) || echo '?')
  crashes=$(find "fuzz/artifacts/$t" -type f 2>/dev/null | wc -l)
  printf '%-15s %12s %8s %8s %8s%s\n' "$t" "$execs" "$secs" \
    "$(find "fuzz/corpus/$t" -type f | wc -l)" "$crashes" "$([ $rc = 0 ] || echo "  (exit $rc, see $log)")"
done
