#!/usr/bin/env bash
# Installs the test OpenID provider (scripts/oidc: npm oidc-provider + jose, pinned in
# package-lock.json) used by crates/par-auth's tests. Needs Node 20+ and the npm registry.
# Idempotent: does nothing when node_modules already matches the lockfile.
set -euo pipefail
cd "$(dirname "$0")/oidc"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "install-oidc: node and npm are required (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi

stamp=node_modules/.par-lock-sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -d node_modules/oidc-provider ]; then
  echo "install-oidc: up to date"
  exit 0
fi

# --ignore-scripts: nothing in this tree needs an install script, so none may run.
npm ci --ignore-scripts --no-audit --no-fund
echo "$want" > "$stamp"
echo "install-oidc: installed $(node -p "require('./node_modules/oidc-provider/package.json').version") in $PWD/node_modules"
