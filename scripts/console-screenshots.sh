#!/usr/bin/env bash
# Regenerates docs/images/console-{agents,invoke,usage,runs,packages,live}.png: runs the web
# console's browser test (crates/par-cli/tests/e2e/console.rs) with PAR_CONSOLE_SCREENSHOTS
# set, so headless Chromium captures each main view (Page.captureScreenshot) on real data
# from the real runtime the test drives. A docs tool; CI runs the same test without pictures.
#
# Environment: OUT (default docs/images), PAR_TOOLS / PAR_UV as in scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-docs/images}"
export PAR_TOOLS="${PAR_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/par-tools}"
PAR_UV="$(bash scripts/ensure-uv.sh)"
PAR_CHROMIUM="$(bash scripts/install-browser.sh)"
export PAR_UV PAR_CHROMIUM
python3 scripts/build-fixtures.py --if-stale
mkdir -p "$OUT"
PAR_CONSOLE_SCREENSHOTS="$(cd "$OUT" && pwd)" \
  cargo test -p par-cli --test e2e -- --exact console::the_console_in_a_real_browser
ls -l "$OUT"/console-*.png
