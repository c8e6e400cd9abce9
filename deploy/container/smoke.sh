#!/usr/bin/env bash
# Smoke-test a PAR image built by build.sh: bash deploy/container/smoke.sh TAG
#
# Runs the image with podman as a pod would (read-only root filesystem, /tmp on tmpfs,
# cache and ledger on volumes, the example agents in the /packages volume, API-key auth
# configured through the environment) and checks, each with a deadline, never a fixed
# sleep:
#   * without PAR_AUTH the image refuses to start on 0.0.0.0 (exit 2, naming PAR_AUTH);
#   * GET /runtime/health, then /runtime/ready answer 200 (every example loaded);
#   * POST /agents/echo/invoke with the API key echoes the payload; without it 401;
#   * the container's HEALTHCHECK passes; par runs as uid 10001; python3 is 3.11;
#   * SIGTERM (podman stop) ends par with exit code 0 and the call is in the usage ledger.
# Runs with all capabilities dropped and no-new-privileges, with the default strict
# sandbox, and with the two settings it needs under podman: /proc unmasked
# (--security-opt unmask=/proc/*) and podman's seccomp profile off
# (--security-opt seccomp=unconfined; that profile refuses sethostname in the jail's UTS
# namespace). The echo package's report must say its sandbox mode is strict.
# Needs target/examples/*.apkg (built with `python3 scripts/build-fixtures.py` when missing;
# PAR_EXAMPLES=DIR to use another folder of APKGs). Exits non-zero on any failure.
set -euo pipefail
PAR_SCRIPT=smoke.sh
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=deploy/container/podman-env.sh
source "$here/podman-env.sh"

par_take_tag "smoke.sh TAG   (an image built by deploy/container/build.sh)" "$@"
fail() { echo "smoke.sh: FAIL: $*" >&2; exit 1; }

par_podman_setup
podman image exists "$tag" || par_die "no image $tag (build it with deploy/container/build.sh $tag)"
command -v curl >/dev/null 2>&1 || par_apt_install curl

examples="${PAR_EXAMPLES:-$repo/target/examples}"
if ! compgen -G "$examples/*.apkg" >/dev/null; then
    [ -z "${PAR_EXAMPLES:-}" ] || par_die "no *.apkg in PAR_EXAMPLES=$examples"
    log "building the example packages (scripts/build-fixtures.py)"
    (cd "$repo" && python3 scripts/build-fixtures.py --if-stale) >&2
fi

work="$(mktemp -d)"
name="par-smoke-$$"
cleanup() {
    podman rm -f --time 0 "$name" >/dev/null 2>&1 || true
    podman rm -f --time 0 "$name-noauth" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

# target/examples holds each example once.
mkdir -p "$work/packages" "$work/cache" "$work/state" "$work/auth"
for f in "$examples"/*.apkg; do cp "$f" "$work/packages/"; done
count=$(find "$work/packages" -name '*.apkg' | wc -l)
[ "$count" -gt 0 ] || par_die "no *.apkg in $examples"
chown -R 10001:10001 "$work/cache" "$work/state" 2>/dev/null || chmod 0777 "$work/cache" "$work/state"

key="$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
key_sha="$(printf '%s' "$key" | sha256sum | cut -d' ' -f1)"
cat >"$work/auth/api-keys.toml" <<EOF
[[key]]
name = "smoke"
sha256 = "$key_sha"
roles = ["par-user"]
EOF
cat >"$work/auth/policy.toml" <<'EOF'
[[grant]]
role = "par-user"
invoke = ["*"]
admin = true
EOF
chmod -R a+rX "$work/auth" "$work/packages"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"

# 1. The image's own defaults (0.0.0.0, no PAR_AUTH) must refuse to start.
log "image defaults without PAR_AUTH: expecting a refusal"
rc=0
out="$(timeout 60 podman run --name "$name-noauth" "${par_podman_run_flags[@]}" \
        -e PAR_LISTEN="0.0.0.0:$port" "$tag" 2>&1)" || rc=$?
[ "$rc" = 2 ] || { echo "$out" >&2; fail "expected exit code 2 without PAR_AUTH on 0.0.0.0, got $rc"; }
grep -q "PAR_AUTH" <<<"$out" || { echo "$out" >&2; fail "the refusal does not name PAR_AUTH"; }
podman rm -f "$name-noauth" >/dev/null

# Where this machine reaches PyPI through a TLS-intercepting proxy, uv in the container
# (installing the examples' dependencies) needs the same CA bundle: mount it and point
# SSL_CERT_FILE at it, as an operator would.
ca_flags=()
if [ -n "${SSL_CERT_FILE:-}" ] && [ -f "$SSL_CERT_FILE" ]; then
    ca_flags=(-v "$(readlink -f "$SSL_CERT_FILE"):/etc/par/ca/ca-bundle.pem:ro" -e SSL_CERT_FILE=/etc/par/ca/ca-bundle.pem)
fi

# 2. Serve the examples as a pod would.
log "starting $tag on $base with $count example packages"
podman run -d --name "$name" "${par_podman_run_flags[@]}" \
    --read-only --tmpfs /tmp:rw,size=256m \
    --cap-drop ALL --security-opt no-new-privileges --security-opt 'unmask=/proc/*' \
    --security-opt seccomp=unconfined \
    -v "$work/packages:/packages:ro" \
    -v "$work/cache:/var/cache/par" \
    -v "$work/state:/var/lib/par" \
    -v "$work/auth:/etc/par/auth:ro" \
    -e PAR_LISTEN="127.0.0.1:$port" \
    -e PAR_AUTH=api-key \
    -e PAR_API_KEYS=/etc/par/auth/api-keys.toml \
    -e PAR_POLICY=/etc/par/auth/policy.toml \
    -e PAR_INSTANCE_ID=smoke \
    "${ca_flags[@]}" \
    "$tag" >/dev/null

running() { [ "$(podman inspect --format '{{.State.Running}}' "$name" 2>/dev/null)" = true ]; }
dump() { podman logs --tail 60 "$name" >&2 2>&1 || true; }
# wait_for URL STATUS SECONDS
wait_for() {
    local deadline=$(( $(date +%s) + $3 )) code
    while :; do
        code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1" || true)"
        [ "$code" = "$2" ] && return 0
        running || { dump; fail "the container exited while waiting for $1"; }
        [ "$(date +%s)" -lt "$deadline" ] || { dump; fail "$1 answered $code, not $2, within $3 s"; }
        sleep 0.5
    done
}
wait_for "$base/runtime/health" 200 60
log "/runtime/health: 200"
wait_for "$base/runtime/ready" 200 300
log "/runtime/ready: 200 ($(curl -s --max-time 5 "$base/runtime/ready"))"

# 3. Invoke echo, with and without the key.
body='{"hello": "container", "n": 1}'
reply="$(curl -s --max-time 30 -XPOST "$base/agents/echo/invoke" -H "x-api-key: $key" \
    -H 'content-type: application/json' -d "$body")"
log "invoke echo: $reply"
python3 -c 'import json, sys
r = json.loads(sys.argv[1])
assert r["status"] == "success", r
assert r["data"]["echo"] == {"hello": "container", "n": 1}, r' "$reply" || fail "unexpected reply from echo: $reply"
code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -XPOST "$base/agents/echo/invoke" -d "$body")"
[ "$code" = 401 ] || fail "invoke without credentials answered $code, not 401"
log "invoke without credentials: 401"
agents="$(curl -s --max-time 10 -H "x-api-key: $key" "$base/agents" | python3 -c 'import json, sys
d = json.load(sys.stdin)
items = d["agents"] if isinstance(d, dict) else d
print(" ".join(sorted(a["id"] for a in items)))')"
log "agents: $agents"

# 4. Inside the container.
if podman healthcheck run "$name" >/dev/null 2>&1; then
    log "HEALTHCHECK: healthy"
else
    dump; fail "the image's HEALTHCHECK failed"
fi
uid="$(podman exec "$name" id -u)"
[ "$uid" = 10001 ] || fail "par runs as uid $uid, not 10001"
pyver="$(podman exec "$name" python3 --version)"
case "$pyver" in "Python 3.11."*) ;; *) fail "python3 is $pyver, not 3.11" ;; esac
log "user: uid $uid; $pyver; $(podman exec "$name" uv --version); $(podman exec "$name" par --version)"
mode="$(curl -s --max-time 10 -H "x-api-key: $key" "$base/runtime/packages" | python3 -c 'import json, sys
reports = json.load(sys.stdin)["packages"]
print(" ".join(sorted({r["sandbox"]["mode"] for r in reports if r.get("name") == "echo"})))')" \
    || fail "cannot read the package reports"
[ "$mode" = strict ] || fail "the echo package runs with sandbox mode '$mode', not strict"
log "sandbox: echo answered from inside its strict jail"

# 5. Graceful stop and the usage ledger.
log "podman stop (SIGTERM)"
podman stop --time 60 "$name" >/dev/null
exit_code="$(podman inspect --format '{{.State.ExitCode}}' "$name")"
[ "$exit_code" = 0 ] || { dump; fail "par exited with $exit_code after SIGTERM, not 0"; }
podman logs "$name" 2>&1 | grep -q "shutdown requested" || { dump; fail "no 'shutdown requested' log line"; }
records="$(python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(db.execute("select count(*) from usage_records where agent = ?", ("echo",)).fetchone()[0])' \
    "$work/state/usage.sqlite3" 2>&1)" || fail "cannot read the usage ledger: $records"
[ "$records" -ge 1 ] || fail "no usage record for the echo call in the ledger"
log "stopped with exit code 0; usage ledger on the volume holds $records echo record(s)"
log "PASS ($tag, $(( $(podman image inspect --format '{{.Size}}' "$tag") / 1000000 )) MB)"
