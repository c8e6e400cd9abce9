#!/usr/bin/env bash
# Install the API testing tools of crates/par-cli/tests/e2e/openapi.rs into their own venv
# under $PAR_TOOLS and print its bin directory:
#   openapi-spec-validator (checks GET /openapi.json is a valid OpenAPI 3.1 document)
#   schemathesis (calls every operation of a live `par serve` with generated requests)
#
# Idempotent: when the venv exists with the pinned versions it only prints the path.
# Environment: PAR_TOOLS (install root, default <repo>/.par-tools), PAR_UV (a uv binary).
set -euo pipefail

SCHEMATHESIS_VERSION="4.32.5"
VALIDATOR_VERSION="0.9.0"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PAR_TOOLS="${PAR_TOOLS:-$repo_root/.par-tools}"
venv="$PAR_TOOLS/api-tools"
stamp="$venv/.par-versions"
want="schemathesis==$SCHEMATHESIS_VERSION openapi-spec-validator==$VALIDATOR_VERSION"

die() { echo "install-api-tools: $*" >&2; exit 1; }

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/st" ] \
        && [ -x "$venv/bin/openapi-spec-validator" ]; then
    echo "$venv/bin"
    exit 0
fi

uv="${PAR_UV:-$(bash "$repo_root/scripts/ensure-uv.sh")}"
mkdir -p "$PAR_TOOLS"
exec 9>"$PAR_TOOLS/.install-api-tools.lock"
flock 9
rm -rf "$venv"
"$uv" venv --quiet --python ">=3.10" "$venv" >&2 || die "uv venv failed"
# shellcheck disable=SC2086
"$uv" pip install --quiet --python "$venv/bin/python" $want >&2 || die "pip install $want failed"
echo "$want" > "$stamp"
echo "install-api-tools: installed $want" >&2
echo "$venv/bin"
