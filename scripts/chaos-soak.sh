#!/usr/bin/env bash
# The chaos soak (issue 18, point 9): `par serve` under steady load for 30 minutes while
# workers are killed and frozen, a package is hot-swapped, unloaded and loaded, the
# registry index flaps and PostgreSQL crashes. It runs the e2e test
# `chaos::chaos_answers_every_call_leaks_nothing_and_bills_every_answer` (CI runs the
# same test for 140 s) with PAR_CHAOS_SECS, and prints its figures (the `chaos:` lines).
#
#   bash scripts/chaos-soak.sh            # 1800 s
#   bash scripts/chaos-soak.sh 600        # another duration, in seconds
#   PAR_CHAOS_SEED=123 bash scripts/chaos-soak.sh   # replay a schedule
#
# Needs what the e2e tests need: uv, the fixtures, PostgreSQL server binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
export PAR_TOOLS="${PAR_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/par-tools}"
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
PAR_UV="${PAR_UV:-$(bash scripts/ensure-uv.sh)}"
PAR_POSTGRES_BIN="${PAR_POSTGRES_BIN:-$(bash scripts/install-postgres.sh)}"
export PAR_UV PAR_POSTGRES_BIN
export PAR_CHAOS_SECS="${1:-1800}"
python3 scripts/build-fixtures.py --if-stale >/dev/null

log="$(mktemp -t par-chaos-soak.XXXXXX.log)"
echo "chaos soak: ${PAR_CHAOS_SECS} s; full output in $log" >&2
test=chaos::chaos_answers_every_call_leaks_nothing_and_bills_every_answer
status=0
cargo test -p par-cli --test e2e "$test" -- --exact --nocapture >"$log" 2>&1 || status=$?
grep '^chaos:' "$log" || true
if [ "$status" -ne 0 ]; then
  echo "chaos soak FAILED (exit $status):" >&2
  grep -A30 'panicked' "$log" >&2 || tail -50 "$log" >&2
fi
exit "$status"
