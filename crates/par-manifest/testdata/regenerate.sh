#!/usr/bin/env bash
# Rebuilds the agent.yaml fixtures in this folder with the real, pinned Pixell builders:
# each project is built with `pixell build` and the agent.yaml is taken from inside the
# resulting .apkg (what PAR actually reads), not from the project directory.
#
# Usage: testdata/regenerate.sh [KITS_DIR]
#   KITS_DIR holds venvs named pixell-kit__0.4.12, pixell-kit__0.3.5, pixell-sdk__0.5.4;
#   missing ones are created there with pip (default: a temporary directory).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
kits="${1:-$(mktemp -d)}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

pixell() { # pixell DIST VERSION -> path of its CLI, installing it on first use
    local venv="$kits/$1__$2"
    if [ ! -x "$venv/bin/pixell" ]; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet "$1==$2"
    fi
    echo "$venv/bin/pixell"
}

extract() { # extract PROJECT_DIR FIXTURE_NAME
    python3 - "$1" "$here/$2" <<'EOF'
import glob, sys, zipfile
apkg = glob.glob(sys.argv[1] + "/*.apkg")[0]
open(sys.argv[2], "wb").write(zipfile.ZipFile(apkg).read("agent.yaml"))
EOF
}

# kit 0.4.12: the unmodified `pixell init` project.
kit4="$(pixell pixell-kit 0.4.12)"
(cd "$work" && "$kit4" init k4 >/dev/null && cd k4 && cp .env.example .env && "$kit4" build >/dev/null)
extract "$work/k4" kit-0.4.12-init.agent.yaml

# kit 0.3.5 (its `init` is not implemented): entrypoint only, with sub-agents.
kit3="$(pixell pixell-kit 0.3.5)"
mkdir -p "$work/k3/src"
printf 'def handler(request):\n    return request\n' >"$work/k3/src/main.py"
cat >"$work/k3/agent.yaml" <<'EOF'
name: kit-three
display_name: Kit Three
description: A kit 0.3 style agent
author: PAR Tests
license: Apache-2.0
entrypoint: src.main:handler
capabilities:
  - summarize
environment:
  LOG_LEVEL: info
dependencies:
  - requests>=2.31.0
metadata:
  version: 1.2.0
  homepage: https://example.com
  tags: [text]
  sub_agents:
    - name: summarizer
      description: Summarises text
      endpoint: /summarize
      capabilities: [summarize]
      public: true
    - name: internal-indexer
      description: Private helper
      endpoint: /index
      capabilities: []
      public: false
EOF
(cd "$work/k3" && "$kit3" build >/dev/null)
extract "$work/k3" kit-0.3.5-sub-agents.agent.yaml

# pixell-sdk 0.5.4: every sdk addition; the builder re-serialises agent.yaml.
sdk="$(pixell pixell-sdk 0.5.4)"
(cd "$work" && "$sdk" init sdk >/dev/null)
cp "$work/sdk/.env.example" "$work/sdk/.env"
printf 'async def app(scope, receive, send):\n    pass\n' >"$work/sdk/src/app.py"
printf '\ndef mount(app):\n    pass\n' >>"$work/sdk/src/main.py"
cat >"$work/sdk/agent.yaml" <<'EOF'
# comment that will be dropped
name: sdk-demo
display_name: Sdk Demo
description: A Pixell agent
author: Your Name
license: MIT
entrypoint: src.main:handler
runtime: python3.11
http_server: src.app:app
environment:
  PORT: "8080"
  DEBUG: "true"
dependencies:
- fastapi>=0.112.0
metadata:
  version: 0.2.0
  tags: [demo, test]
  author_email: me@example.com
  sub_agents:
    - name: helper
      public: false
permissions:
  required: [user.profile]
  optional: [oauth.google]
data_access:
  oauth_providers: [google]
plan_mode:
  supported: true
  phases: [clarification, preview]
translation:
  default_language: en
  supported_languages: [en, ko]
a2a:
  http_server: src.app:app
rest:
  entry: mount
ui:
  path: ui
EOF
(cd "$work/sdk" && "$sdk" build >/dev/null)
extract "$work/sdk" sdk-0.5.4-full.agent.yaml

# pixell-sdk 0.5.4: an ASGI app only, dependencies in pyproject.toml.
mkdir -p "$work/sdk2"
touch "$work/sdk2/.env"
printf 'async def app(scope, receive, send):\n    pass\n' >"$work/sdk2/app.py"
cat >"$work/sdk2/agent.yaml" <<'EOF'
name: sdk-server
display_name: Sdk Server
description: ASGI only
author: PAR Tests
license: MIT
http_server: app:app
metadata:
  version: 2.1.0
a2a:
  http_server: app:app
EOF
cat >"$work/sdk2/pyproject.toml" <<'EOF'
[project]
name = "sdk-server"
version = "2.1.0"
dependencies = ["pixell-sdk>=0.5", "httpx>=0.27; python_version >= '3.10'"]
EOF
(cd "$work/sdk2" && "$sdk" build >/dev/null)
extract "$work/sdk2" sdk-0.5.4-http-only.agent.yaml

echo "fixtures rebuilt in $here"
