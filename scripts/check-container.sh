#!/usr/bin/env bash
# Check the container image: bash scripts/check-container.sh [--static] [TAG]
#
# Full (default): builds the image with deploy/container/build.sh (podman; base images
# from debootstrap where no registry is reachable) and smoke-tests it with
# deploy/container/smoke.sh. Slow the first time (debootstrap, a release build of par in
# the build stage: see docs/operations.md for measured times), so scripts/test.sh runs it
# only with PAR_TEST_CONTAINER=1.
#
# --static: the cheap checks scripts/test.sh runs every time, in about a second and with
# no podman: the scripts parse (bash -n) and pass shellcheck when it is installed; every
# file the Containerfile copies exists; the image runs as a non-root USER with
# ENTRYPOINT ["par", "serve"], a HEALTHCHECK and the volumes; every PAR_* variable it sets
# is one par reads; its uv pin equals scripts/ensure-uv.sh's; healthcheck.py compiles.
set -euo pipefail
cd "$(dirname "$0")/.."
die() { echo "check-container: $*" >&2; exit 1; }

static=0
tag="localhost/par:check"
for arg in "$@"; do
    case "$arg" in
        --static) static=1 ;;
        -*) die "unknown option $arg (usage: check-container.sh [--static] [TAG])" ;;
        *) tag="$arg" ;;
    esac
done

static_checks() {
    local file="deploy/container/Containerfile" problems=0 scripts src name
    problem() { echo "check-container: $*" >&2; problems=$((problems + 1)); }
    [ -f "$file" ] || die "$file is missing"
    scripts=(deploy/container/build.sh deploy/container/smoke.sh deploy/container/podman-env.sh
             scripts/check-container.sh scripts/check-manifests.sh scripts/ensure-kubectl.sh)
    for s in "${scripts[@]}"; do
        [ -f "$s" ] || { problem "$s is missing"; continue; }
        bash -n "$s" || problem "$s does not parse"
    done
    if command -v shellcheck >/dev/null 2>&1; then
        shellcheck -x "${scripts[@]}" >&2 || problem "shellcheck found problems"
    else
        echo "check-container: shellcheck not installed; only bash -n was run" >&2
    fi
    python3 -m py_compile deploy/container/healthcheck.py 2>&1 || problem "healthcheck.py does not compile"
    # COPY sources (not --from=) exist in the build context (the repository root).
    while read -r src; do
        [ -e "$src" ] || problem "Containerfile copies $src, which does not exist"
    done < <(awk '$1 == "COPY" && $2 !~ /^--from=/ { for (i = 2; i < NF; i++) if ($i !~ /^--/) print $i }' "$file")
    grep -q '^ENTRYPOINT \["par", *"serve"\]' "$file" || problem "ENTRYPOINT is not [\"par\", \"serve\"]"
    grep -q '^HEALTHCHECK ' "$file" || problem "no HEALTHCHECK"
    grep -q '^USER par' "$file" || problem "the image does not run as the user par"
    grep -q '^VOLUME \["/packages", "/var/cache/par", "/var/lib/par"\]' "$file" || problem "volumes /packages, /var/cache/par, /var/lib/par not declared"
    if ! grep -q '^FROM .* AS build' "$file" || ! grep -q '^FROM .* AS runtime' "$file"; then
        problem "not a two-stage build (build, runtime)"
    fi
    # Every PAR_* name set in the image is one par reads.
    for name in $(grep -o 'PAR_[A-Z_]*=' "$file" | tr -d '=' | sort -u); do
        grep -q "\"$name\"" crates/par-cli/src/env_names.rs || problem "Containerfile sets $name, which par does not read"
    done
    local uv_image uv_script
    uv_image="$(sed -n 's/^ARG UV_VERSION=//p' "$file")"
    uv_script="$(sed -n 's/^UV_VERSION="\([^"]*\)".*/\1/p' scripts/ensure-uv.sh)"
    if [ -z "$uv_image" ] || [ "$uv_image" != "$uv_script" ]; then
        problem "uv pin differs: Containerfile $uv_image, ensure-uv.sh $uv_script"
    fi
    [ "$problems" = 0 ] || die "$problems problem(s) in the container files"
    echo "check-container: static checks passed (Containerfile, scripts; the image was not built: PAR_TEST_CONTAINER=1 builds it)"
}

static_checks
[ "$static" = 1 ] && exit 0

start=$(date +%s)
bash deploy/container/build.sh "$tag"
built=$(date +%s)
bash deploy/container/smoke.sh "$tag"
echo "check-container: build $((built - start)) s, smoke test $(( $(date +%s) - built )) s"
