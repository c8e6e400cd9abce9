#!/usr/bin/env bash
# Profiles of PAR's hot paths with `perf` (Debian linux-perf; software cpu-clock sampling,
# DWARF call graphs from the release binary's line tables). Run after bench/run.sh (it
# needs target/release/par, target/fixtures and target/bench/agents). About 3 minutes,
# most of it `perf script` unwinding stacks. Writes target/bench/profile/:
#   echo-log-on.*   PAR as configured by default, echo (kit-async) at c=32
#   echo-log-off.*  the same with PAR_LOG=warn (no per-call log line)
#   echo-c256.*     PAR as configured by default, echo at c=256
#   sse-log-off.*   streams of 200 items (kit-stream) at c=32, PAR_LOG=warn
#   ui.*            GET ui/app.js (kit-rest) at c=32, PAR_LOG=warn
#   start-30mb.*    a warm start with the 30 MB package, `par serve` to first call
#   syscalls.txt    system calls PAR makes per echo call (tracepoint counts)
# Each profile: .folded (stacks), .svg (flame graph), .txt (costs by group, top frames).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v perf >/dev/null || { echo "profile.sh: needs perf (apt-get install linux-perf)" >&2; exit 1; }
perf record -e cpu-clock -o /dev/null true 2>/dev/null || {
  echo "profile.sh: perf cannot sample here (kernel.perf_event_paranoid?)" >&2; exit 1; }

par="$PWD/target/release/par"
uv="${PAR_UV:-$(bash scripts/ensure-uv.sh)}"
out="$PWD/target/bench/profile"
tmp="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
mkdir -p "$out"

groups=(
  'log line redaction=Redactor::redact'
  'log event (format + write + redact)=fmt_layer.*on_event'
  'write(2): log lines, wake-ups=__GI___libc_write|__libc_write'
  'call record (metrics + log)=CallRecord::finish'
  'metrics=par_telemetry'
  'request id (uuid)=uuid::'
  'invoke handler=routes::invoke::run'
  'worker socket reads=par_worker::worker::read_loop'
  'worker socket writes=par_worker::worker::write_loop'
  'HTTP response write=writev'
  'socket reads (HTTP + worker)=recv'
  'random ids (getrandom)=getrandom|crng'
  'malloc/free=malloc|_int_free|cfree'
  'sha256=sha2::'
  'archive=par_archive::'
  'uv python find (spawn + wait)=find_interpreter'
  'worker start=Worker::spawn'
  'UI: UiSite::serve=UiSite'
  'UI: file system calls (open/stat/read)=std::fs::|std::sys::fs|tokio::fs::'
  'SSE: stream task=event_stream'
  'SSE: usage merge (JSON parse per item)=merge_usage'
  'timers (deadline per reply)=time::entry|timer|TimerEntry'
)

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_par NAME ENV... -- SOURCES: starts par serve, waits for ready, sets $url and $pid
start_par() {
  local name=$1; shift
  local envs=(); while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  local p; p=$(port)
  env "${envs[@]}" "$par" serve --listen "127.0.0.1:$p" --cache-dir "$tmp/cache" --usage-db off \
    --log-format json --uv "$uv" "$@" >"$tmp/$name.log" 2>&1 &
  pid=$!; pids+=("$pid"); url="http://127.0.0.1:$p"
  until curl -sf "$url/runtime/ready" >/dev/null; do sleep 0.05; done
}

fold() { # fold NAME PERF_DATA
  perf script -i "$2" 2>/dev/null | python3 bench/fold.py "$out/$1" "${groups[@]}" >"$out/$1.txt"
  echo "--- $1"; head -20 "$out/$1.txt"
}

# load_profile NAME APKG PATH BODY ACCEPT [ENV...]: samples PAR for 4 s under wrk -c$conns
conns=32
load_profile() {
  local name=$1 apkg=$2 path=$3 body=$4 accept=$5; shift 5
  start_par "$name" "$@" -- "$apkg"
  local lua=bench/wrk/report.lua method=GET
  [ -n "$body" ] && method=POST
  export WRK_METHOD=$method WRK_BODY=$body WRK_ACCEPT=$accept
  wrk -t2 "-c$conns" -d1s -s "$lua" "$url$path" >/dev/null
  wrk -t2 "-c$conns" -d7s -s "$lua" "$url$path" >"$tmp/$name.wrk" &
  local load=$!
  sleep 1
  perf record -F 499 --call-graph dwarf,32768 -p "$pid" -o "$tmp/$name.data" -- sleep 4 2>/dev/null
  if [ "$name" = echo-log-off ]; then syscalls "$pid"; fi
  wait "$load"
  grep -o 'WRKJSON.*' "$tmp/$name.wrk" >"$out/$name.load.json" || true
  kill "$pid"; wait "$pid" || true
  fold "$name" "$tmp/$name.data"
  cat "$out/$name.load.json"
}

syscalls() { # per-call system calls of PAR under the running load
  local calls_before calls_after
  calls_before=$(curl -s "$url/metrics" | awk '/^par_invocations_total/ {s+=$NF} END {print s+0}')
  perf stat -x, -e 'syscalls:sys_enter_recvfrom,syscalls:sys_enter_read,syscalls:sys_enter_sendto,syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex' \
    -p "$1" -o "$tmp/stat.csv" -- sleep 2 2>/dev/null || true
  calls_after=$(curl -s "$url/metrics" | awk '/^par_invocations_total/ {s+=$NF} END {print s+0}')
  python3 - "$tmp/stat.csv" "$calls_before" "$calls_after" >"$out/syscalls.txt" <<'EOF'
import sys
path, before, after = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
calls = max(after - before, 1)
print(f"echo calls during the window (from /metrics, +/- the two scrapes): {calls:.0f}")
for line in open(path):
    parts = line.strip().split(",")
    if len(parts) > 2 and parts[2].startswith("syscalls:"):
        n = float(parts[0]) if parts[0][:1].isdigit() else 0
        print(f"{parts[2].split(':')[1]:>28}  {n:9.0f}  {n / calls:6.2f} per call")
EOF
  cat "$out/syscalls.txt"
}

start_profile() {
  local apkg=target/bench/agents/bench-size-30mb.apkg p
  start_par warmup -- "$apkg"; kill "$pid"; wait "$pid" || true
  p=$(port)
  perf record -F 2999 --call-graph dwarf,16384 -o "$tmp/start.data" -- \
    "$par" serve --listen "127.0.0.1:$p" --cache-dir "$tmp/cache" --usage-db off \
    --log-format json --uv "$uv" "$apkg" >"$tmp/start.log" 2>&1 &
  local rec=$!
  until curl -sf -XPOST "http://127.0.0.1:$p/agents/bench-size-30mb/invoke" -d '{}' >/dev/null; do
    sleep 0.005
  done
  curl -s "http://127.0.0.1:$p/metrics" | grep '^par_package_load_phase_seconds_sum' >"$out/start-30mb.phases.txt"
  kill -INT "$(pgrep -P "$rec" -x par || echo "$rec")" 2>/dev/null || true
  wait "$rec" || true
  fold start-30mb "$tmp/start.data"
  cat "$out/start-30mb.phases.txt"
}

echo_args=(target/fixtures/kit-async.apkg /agents/kit-async/invoke '{"sleep":0}' '')
load_profile echo-log-on "${echo_args[@]}"
load_profile echo-log-off "${echo_args[@]}" PAR_LOG=warn
conns=256 load_profile echo-c256 "${echo_args[@]}"
load_profile sse-log-off target/fixtures/kit-stream.apkg /agents/kit-stream/invoke \
  '{"n":200,"gap":0}' text/event-stream PAR_LOG=warn
load_profile ui target/fixtures/kit-rest.apkg /agents/kit-rest/ui/app.js '' '' PAR_LOG=warn
start_profile
echo "profiles in $out"
