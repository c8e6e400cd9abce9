# Sourced by fuzz-smoke.sh and fuzz-long.sh: puts cargo-fuzz on PATH and picks the
# toolchain. cargo-fuzz needs -Z flags: a nightly toolchain when one is installed, else
# stable with RUSTC_BOOTSTRAP=1 (a fresh CI machine may only have stable).
CARGO_FUZZ="$(bash scripts/ensure-cargo-fuzz.sh)"
export PATH="$(dirname "$CARGO_FUZZ"):$PATH"
# FUZZ_TOOLCHAIN=+stable or +nightly overrides the choice.
if [ -z "${FUZZ_TOOLCHAIN:-}" ]; then
  if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    FUZZ_TOOLCHAIN=+nightly
  else
    FUZZ_TOOLCHAIN=+stable
  fi
fi
[ "$FUZZ_TOOLCHAIN" = +nightly ] || export RUSTC_BOOTSTRAP=1
FUZZ_TARGETS=(archive manifest dotenv worker_frame openpgp registry_index http_routes)
# Instrumented builds only need line tables; a one-off build gains nothing from incremental.
export CARGO_INCREMENTAL=0
# The instrumented build lives in the tool cache, not the checkout: CI clones afresh every
# time, and rebuilding every dependency with AddressSanitizer would cost minutes each run.
FUZZ_TARGET_DIR="${FUZZ_TARGET_DIR:-${PAR_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/par-tools}/fuzz-target}"
# `cargo fuzz` itself, from fuzz/'s own workspace.
fuzz() { (cd fuzz && CARGO_TARGET_DIR="$FUZZ_TARGET_DIR" cargo "$FUZZ_TOOLCHAIN" fuzz "$@"); }
