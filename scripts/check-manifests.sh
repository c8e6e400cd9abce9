#!/usr/bin/env bash
# Render and validate the Kubernetes manifests in deploy/kubernetes/ (offline, seconds).
#
# 1. `kubectl kustomize` renders the base (deploy/kubernetes), the example overlay
#    (overlays/example) and the base with every optional component (components/*), the
#    last through a throwaway overlay in a temp dir.
# 2. PyPI `kubernetes-validate` checks every object against the Kubernetes 1.30 schemas,
#    strictly (unknown fields are errors); a kind without a schema is an error too, except
#    the Prometheus Operator's ServiceMonitor (a CRD), which step 3 checks.
# 3. scripts/check-manifests.py checks what schemas cannot: probes on /runtime/ready and
#    /runtime/health, selectors that match the pods, shutdown timings that add up, every
#    PAR_* variable known to par, Secrets referenced but never carrying values, the
#    dashboard ConfigMap identical to deploy/grafana/par-overview.json.
# Exits non-zero on any error. Tools: kubectl (scripts/ensure-kubectl.sh installs one when
# missing) and kubernetes-validate in a uv venv under $PAR_TOOLS.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
export PAR_TOOLS="${PAR_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/par-tools}"
K8S_VERSION="1.30.0"
VALIDATE_VERSION="1.37.0" # kubernetes-validate on PyPI; ships the 1.25-1.37 schemas

die() { echo "check-manifests: $*" >&2; exit 1; }

kubectl="$(bash scripts/ensure-kubectl.sh)" || die "no kubectl"
uv="$(bash scripts/ensure-uv.sh)" || die "no uv"

venv="$PAR_TOOLS/kubernetes-validate-$VALIDATE_VERSION"
if ! "$venv/bin/kubernetes-validate" --version >/dev/null 2>&1; then
    exec 9>"$PAR_TOOLS/.kubernetes-validate.lock"
    flock 9
    if ! "$venv/bin/kubernetes-validate" --version >/dev/null 2>&1; then
        rm -rf "$venv"
        "$uv" venv --quiet --python python3 "$venv" >&2 || die "uv venv $venv failed"
        "$uv" pip install --quiet --python "$venv/bin/python" "kubernetes-validate==$VALIDATE_VERSION" >&2 ||
            die "uv pip install kubernetes-validate==$VALIDATE_VERSION failed"
    fi
    exec 9>&-
fi

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

# The base with every component, through an overlay in a temp dir (kustomize wants
# relative paths).
all="$out/all-components"
mkdir -p "$all"
rel="$(realpath --relative-to="$all" "$repo/deploy/kubernetes")"
{
    echo "apiVersion: kustomize.config.k8s.io/v1beta1"
    echo "kind: Kustomization"
    echo "resources: [$rel/base]"
    echo "components:"
    for c in deploy/kubernetes/components/*/; do
        echo "  - $rel/components/$(basename "$c")"
    done
} >"$all/kustomization.yaml"

failed=0
render() { # NAME DIR
    if ! "$kubectl" kustomize "$2" >"$out/$1.yaml" 2>"$out/$1.err"; then
        cat "$out/$1.err" >&2
        echo "check-manifests: FAIL: kubectl kustomize $2" >&2
        failed=1
        return 1
    fi
    echo "rendered $2: $(grep -c '^kind:' "$out/$1.yaml") objects"
}

validate() { # NAME
    local log="$out/$1.validate" rc=0
    "$venv/bin/kubernetes-validate" -k "$K8S_VERSION" --strict --quiet "$out/$1.yaml" >"$log" 2>&1 || rc=$?
    # A kind without a schema is only a warning to kubernetes-validate; here it is an
    # error (a typo in apiVersion would otherwise pass), except the ServiceMonitor CRD.
    if grep -v "kind ServiceMonitor with api version monitoring.coreos.com/v1 " "$log" |
            grep -q -E "ERROR|Couldn't find schema|Traceback" || [ "$rc" != 0 ]; then
        grep -v "kind ServiceMonitor with api version monitoring.coreos.com/v1 " "$log" >&2 || true
        echo "check-manifests: FAIL: $1 is not valid for Kubernetes $K8S_VERSION" >&2
        failed=1
        return 1
    fi
    echo "validated $1 against Kubernetes $K8S_VERSION (strict)"
}

for spec in "base:deploy/kubernetes" "example:deploy/kubernetes/overlays/example" "all-components:$all"; do
    name="${spec%%:*}"
    dir="${spec#*:}"
    if render "$name" "$dir"; then
        validate "$name" || true
    fi
done
[ "$failed" = 0 ] || die "manifests failed to render or validate"

"$venv/bin/python" scripts/check-manifests.py "$out/base.yaml" "$out/example.yaml" "$out/all-components.yaml" ||
    die "consistency checks failed"
echo "check-manifests: ok"
