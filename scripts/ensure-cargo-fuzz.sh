#!/usr/bin/env bash
# Prints the path of cargo-fuzz, installing the pinned version into $PAR_TOOLS the first
# time (about 4 minutes of compiling on two cores; later runs reuse it).
set -euo pipefail
VERSION=0.13.2
TOOLS="${PAR_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/par-tools}"
ROOT="$TOOLS/cargo-fuzz-$VERSION"
if [ ! -x "$ROOT/bin/cargo-fuzz" ]; then
  cargo install cargo-fuzz --version "$VERSION" --locked --root "$ROOT" >&2
fi
echo "$ROOT/bin/cargo-fuzz"
