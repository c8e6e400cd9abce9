#!/usr/bin/env bash
# Regenerates docs/images/grafana-dashboard.png: the dashboard deploy/grafana/par-overview.json
# on real data from real traffic. A docs tool, not part of CI; takes about DURATION seconds.
#
# Grafana itself is not available from the registries this machine reaches (Debian has no
# grafana package; PyPI and npm hold only clients and front-end libraries), so the picture
# is made by deploy/grafana/preview/: a static page that runs every target's PromQL against
# a real Prometheus (Debian's `prometheus`) and draws the panels in the dashboard's grid
# with uPlot (npm). Prometheus scrapes a real `par serve` driven by curl loops: the example
# agents and kit-minimal (fast, slow, failing, crashing and queued calls), refused
# credentials, a registry index that changes and goes down for a while, and packages
# loaded and unloaded through the management API. Headless Chromium takes the screenshot.
#
# Environment: DURATION (seconds of traffic, default 600), OUT (default
# docs/images/grafana-dashboard.png), PAR_BIN (a built `par`; default: cargo build
# --release), PAR_TOOLS (as in scripts/test.sh), KEEP=1 (keep the work folder).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
DURATION="${DURATION:-600}"
OUT="${OUT:-docs/images/grafana-dashboard.png}"
UPLOT_VERSION="1.6.32"
export PAR_TOOLS="${PAR_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/par-tools}"

step() { printf '== %s\n' "$*" >&2; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() { # URL: up to 120 s for a 2xx answer
    for _ in $(seq 240); do curl -sf -o /dev/null "$1" && return 0; sleep 0.5; done
    echo "no answer from $1" >&2
    return 1
}

step "tools: prometheus, chromium, curl (Debian), uPlot $UPLOT_VERSION (npm), uv, fixtures"
missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
PAR_UV="$(bash scripts/ensure-uv.sh)"
export PAR_UV
python3 scripts/build-fixtures.py --if-stale >/dev/null
if [ -z "${PAR_BIN:-}" ]; then
    cargo build --release -p par-cli
    PAR_BIN="$REPO/target/release/par"
fi

work="$(mktemp -d)"
pids=()
cleanup() {
    touch "$work/stop"
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "${KEEP:-0}" = 1 ]; then echo "work folder kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
start() { "$@" & pids+=($!); } # a background process that cleanup ends

mkdir -p "$work/web" "$work/registry" "$work/npm"
npm install --prefix "$work/npm" --no-audit --no-fund --silent "uplot@$UPLOT_VERSION" >/dev/null
cp "$work/npm/node_modules/uplot/dist/uPlot.iife.min.js" "$work/npm/node_modules/uplot/dist/uPlot.min.css" \
    deploy/grafana/preview/index.html deploy/grafana/preview/preview.js \
    deploy/grafana/par-overview.json "$work/web/"

step "registry index server (ETags; answers 503 while \$work/registry/down exists)"
cat >"$work/index_server.py" <<'EOF'
import hashlib, http.server, os, sys

root = sys.argv[2]

class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=root, **kwargs)

    def log_message(self, *args):
        pass

    def do_GET(self):
        if os.path.exists(os.path.join(root, "down")):
            return self.send_error(503)
        if not self.path.startswith("/index.json"):
            return super().do_GET()
        with open(os.path.join(root, "index.json"), "rb") as f:
            body = f.read()
        etag = '"%s"' % hashlib.sha256(body).hexdigest()[:16]
        fresh = self.headers.get("If-None-Match") != etag
        self.send_response(200 if fresh else 304)
        self.send_header("ETag", etag)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body) if fresh else 0))
        self.end_headers()
        if fresh:
            self.wfile.write(body)

http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
EOF
publish() { # the registry index lists exactly these fixtures
    for name in "$@"; do cp "target/fixtures/$name.apkg" "$work/registry/"; done
    python3 - "$work/registry" "$@" <<'EOF'
import hashlib, json, pathlib, sys
root = pathlib.Path(sys.argv[1])
packages = []
for name in sys.argv[2:]:
    data = (root / f"{name}.apkg").read_bytes()
    packages.append({"name": name, "version": "1.0.0", "url": f"{name}.apkg",
                     "sha256": hashlib.sha256(data).hexdigest()})
(root / "index.tmp").write_text(json.dumps({"version": 1, "packages": packages}))
(root / "index.tmp").rename(root / "index.json")
EOF
}
publish kit-stream
index_port="$(free_port)"
start python3 "$work/index_server.py" "$index_port" "$work/registry"

step "par serve, with API keys and a small admission limit so bursts queue"
key_hash() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
cat >"$work/keys.toml" <<EOF
[[key]]
name = "demo"
sha256 = "$(key_hash demo-key)"
roles = ["caller"]

[[key]]
name = "ops"
sha256 = "$(key_hash ops-key)"
roles = ["ops"]
EOF
cat >"$work/policy.toml" <<'EOF'
[[grant]]
role = "caller"
invoke = ["echo", "echo-upper", "greeter", "word-stats", "countdown", "kit-minimal", "kit-stream", "twin-a"]

[[grant]]
role = "ops"
admin = true
EOF
par_port="$(free_port)"
PAR="http://127.0.0.1:$par_port"
start "$PAR_BIN" serve --listen "127.0.0.1:$par_port" --log-format json \
    --cache-dir "$work/cache" --usage-db "$work/usage.sqlite3" --uv "$PAR_UV" \
    --auth api-key --api-keys "$work/keys.toml" --policy "$work/policy.toml" \
    --registry-index "http://127.0.0.1:$index_port/index.json" --poll-interval 5 \
    --max-concurrent-calls 4 --max-queued-calls 20 \
    target/examples/{echo,greeter,word-stats,countdown}.apkg target/fixtures/kit-minimal.apkg >"$work/par.log" 2>&1
wait_http "$PAR/runtime/ready"

step "prometheus scraping $PAR/metrics every 5 s"
prom_port="$(free_port)"
cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 5s
scrape_configs:
  - job_name: par
    static_configs:
      - targets: ["127.0.0.1:$par_port"]
EOF
start prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/prometheus" \
    --web.listen-address="127.0.0.1:$prom_port" --log.level=warn
wait_http "http://127.0.0.1:$prom_port/-/ready"

step "traffic for $DURATION s"
t0=$SECONDS
running() { [ ! -e "$work/stop" ] && (( SECONDS - t0 < DURATION )); }
call() { # AGENT BODY [curl args...]
    local agent="$1" body="$2"
    shift 2
    curl -s -o /dev/null --max-time 10 -H "x-api-key: demo-key" "$@" \
        -XPOST "$PAR/agents/$agent/invoke" -d "$body" || true
}
admin() { curl -s -o /dev/null --max-time 10 -H "x-api-key: ops-key" "$@" || true; }
steady() {
    while running; do
        call echo '{"hello": "world", "ok": true}'
        call word-stats '{"text": "to be or not to be"}'
        call echo-upper '{"text": "shout"}'
        call greeter '{"name": "Ada"}' -H 'accept: text/event-stream'
        call kit-stream '{"n": 3}' -H 'accept: text/event-stream'
        call countdown '{"from": 3, "gap": 0.1}' -H 'accept: text/event-stream'
        call twin-a '{}'
        sleep 0.2
    done
}
slow() {
    while running; do
        call kit-minimal "{\"sleep\": $(printf '0.%03d' $((RANDOM % 400)))}"
        sleep 0.1
    done
}
failing() {
    while running; do
        call kit-minimal '{"raise": "boom"}'
        call "no-such-agent-$RANDOM" '{}'
        call mini-upper '{"text": "not granted"}'
        curl -s -o /dev/null -XPOST "$PAR/agents/echo/invoke" -d '{}' || true
        if (( RANDOM % 3 == 0 )); then
            curl -s -o /dev/null -H "x-api-key: wrong" -XPOST "$PAR/agents/echo/invoke" -d '{}' || true
        fi
        sleep 1.5
    done
}
bursts() { # 30 slow calls at once: 4 run, 20 queue, the rest are refused as overloaded
    while running; do
        for _ in $(seq 30); do call kit-minimal '{"sleep": 1.5}' & done
        wait
        sleep 25
    done
}
crashes() { # a worker exits every 70 s; the supervisor restarts it
    while running; do
        sleep 70
        call kit-minimal '{"exit": 3}'
    done
}
for loop in steady slow failing bursts crashes; do start "$loop"; done

at() { while running && (( SECONDS - t0 < $1 )); do sleep 1; done; }
at $((DURATION * 2 / 10))
admin -XPOST "$PAR/runtime/packages" -H 'content-type: application/json' \
    -d "{\"source\": \"$REPO/target/fixtures/kit-async.apkg\"}"
at $((DURATION * 3 / 10))
publish kit-stream twin-a # the registry converges: twin-a loads
at $((DURATION * 4 / 10))
admin -XPOST "$PAR/runtime/packages" -H 'content-type: application/json' \
    -d "{\"source\": \"$REPO/target/fixtures/kit-missing-module.apkg\"}"
at $((DURATION * 5 / 10))
admin -XDELETE "$PAR/runtime/packages/kit-async"
at $((DURATION * 6 / 10))
touch "$work/registry/down" # polls fail; everything keeps serving
at $((DURATION * 7 / 10))
rm -f "$work/registry/down"
admin -XPOST "$PAR/runtime/packages" -H 'content-type: application/json' \
    -d "{\"source\": \"$REPO/target/fixtures/kit-async.apkg\"}"
at "$DURATION"
sleep 6 # one more scrape

step "screenshot"
web_port="$(free_port)"
start python3 -m http.server "$web_port" --bind 127.0.0.1 --directory "$work/web"
wait_http "http://127.0.0.1:$web_port/index.html"
range=$(( (DURATION / 60 + 1) * 60 ))
url="http://127.0.0.1:$web_port/index.html?prometheus=http://127.0.0.1:$prom_port&range=$range"
chrome() {
    /usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$(mktemp -d -p "$work")" --hide-scrollbars --window-size=1600,1560 \
        --virtual-time-budget=30000 "$@" "$url" 2>/dev/null
}
dom="$(chrome --dump-dom)"
grep -q 'data-ready="1"' <<<"$dom" || { echo "the preview did not finish rendering" >&2; exit 1; }
echo "panels with data: $(grep -o 'data-state="data"' <<<"$dom" | wc -l)," \
    "empty: $(grep -o 'data-state="empty"' <<<"$dom" | wc -l)," \
    "failed: $(grep -o 'data-state="error"' <<<"$dom" | wc -l)" >&2
mkdir -p "$(dirname "$OUT")"
chrome --screenshot="$REPO/$OUT"
echo "$OUT"
