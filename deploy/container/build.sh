#!/usr/bin/env bash
# Build the PAR container image with podman: bash deploy/container/build.sh TAG
#
# 1. Base images. The Containerfile starts from a Rust toolchain image (build stage) and
#    Debian bookworm slim (runtime stage). PAR_BASE_IMAGES picks where they come from:
#      registry     pull docker.io/library/rust:1-slim-bookworm and debian:bookworm-slim;
#      debootstrap  make them here: Debian bookworm (--variant=minbase, from the apt mirror
#                   this machine uses, made slim like debian:bookworm-slim) imported with
#                   `podman import`, and for the build stage the same root filesystem plus
#                   this machine's Rust toolchain (`rustc --print sysroot`);
#      auto         (default) registry when both pulls succeed, else debootstrap.
#    The root filesystems are cached as tarballs in $PAR_TOOLS/containers/ (the Rust one
#    keyed by `rustc -vV`), so later builds import them without debootstrap; PAR_REFRESH_BASE=1
#    makes them again.
# 2. The image: `podman build` of deploy/container/Containerfile with the workspace sources
#    as context, the host's cargo registry mounted (crates fetched once with `cargo fetch`,
#    the build itself then offline) and a target directory cache in $PAR_TOOLS/containers/,
#    so a second build recompiles only what changed.
#
# Environment: PAR_TOOLS (default ${XDG_CACHE_HOME:-$HOME/.cache}/par-tools),
# PAR_BASE_IMAGES, PAR_REFRESH_BASE, DEBIAN_MIRROR (default: the first bookworm mirror in
# /etc/apt/sources.list*, else http://deb.debian.org/debian), CARGO_HOME, PAR_PODMAN_NATIVE
# (see podman-env.sh). Needs root for debootstrap. Prints the image id, its size and the
# time taken at the end.
set -euo pipefail
PAR_SCRIPT=build.sh
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=deploy/container/podman-env.sh
source "$here/podman-env.sh"

par_take_tag "build.sh TAG   (e.g. build.sh localhost/par:dev)" "$@"

par_podman_setup
cache="$PAR_TOOLS/containers"
mkdir -p "$cache"

# Serialise builds on this machine (they share the base tarballs and the target cache).
exec 8>"$cache/.build.lock"
flock 8

suite=bookworm
# Bumped when the way the root filesystems are made changes, so cached tarballs are redone.
rootfs_format=2
debian_local="localhost/par-base/debian:$suite-slim"
registry_debian="docker.io/library/debian:$suite-slim"
registry_rust="docker.io/library/rust:1-slim-$suite"

debian_mirror() {
    if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
    local uri
    # deb822 (.sources): the URIs of the stanza whose Suites name the suite.
    uri="$(awk -v suite="$suite" '
        /^URIs:/ { uris = $2 } /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) found = uris }
        /^$/ { uris = "" } END { if (found != "") print found }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)"
    if [ -z "$uri" ]; then
        uri="$(awk -v suite="$suite" '$1 == "deb" && $3 == suite { print $2; exit }' \
            /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)"
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

# Debian bookworm minbase, made slim: no docs, man pages or locales (dpkg excludes, as in
# debian:bookworm-slim), no apt lists or package files. Writes $cache/debian-$suite-slim-$rootfs_format.tar.
make_debian_rootfs() {
    local tarball="$cache/debian-$suite-slim-$rootfs_format.tar" mirror rootfs
    if [ -s "$tarball" ] && [ "${PAR_REFRESH_BASE:-0}" != 1 ]; then
        return 0
    fi
    command -v debootstrap >/dev/null 2>&1 || par_apt_install debootstrap
    [ "$(id -u)" = 0 ] || par_die "debootstrap needs root (or set PAR_BASE_IMAGES=registry where a registry is reachable)"
    mirror="$(debian_mirror)"
    rm -f "$cache"/debian-"$suite"-slim*.tar # made the old way
    rootfs="$(mktemp -d "$cache/rootfs.XXXXXX")"
    log "debootstrap $suite (minbase) from $mirror into $rootfs"
    if ! nice -n 10 debootstrap --variant=minbase --include=ca-certificates \
            "$suite" "$rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1; then
        tail -n 30 "$cache/debootstrap.log" >&2
        rm -rf "$rootfs"
        par_die "debootstrap failed (full log: $cache/debootstrap.log)"
    fi
    # apt sources inside the image: the same mirrors as this machine when it uses deb822
    # sources for Debian, else the mirror debootstrap used.
    rm -f "$rootfs/etc/apt/sources.list"
    if [ -f /etc/apt/sources.list.d/debian.sources ] && grep -q "$suite" /etc/apt/sources.list.d/debian.sources; then
        cp /etc/apt/sources.list.d/debian.sources "$rootfs/etc/apt/sources.list.d/debian.sources"
    else
        printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
            "$mirror" "$suite" "$suite" >"$rootfs/etc/apt/sources.list.d/debian.sources"
    fi
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/par-slim" <<'EOF'
# like debian:bookworm-slim: no documentation, man pages or translations
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF
    cat >"$rootfs/etc/apt/apt.conf.d/par-slim" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
EOF
    find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
    find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
    rm -rf "$rootfs"/usr/share/{man,info,locale,lintian}/* \
           "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
           "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* "$rootfs"/tmp/* \
           "${rootfs:?}"/dev/* "${rootfs:?}"/proc/* "${rootfs:?}"/sys/*
    : >"$rootfs/etc/hostname"
    : >"$rootfs/etc/resolv.conf"
    chmod 0755 "$rootfs" # mktemp made it 0700: / must be searchable by the non-root user
    tar -C "$rootfs" --numeric-owner -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
    log "debian rootfs: $(du -h "$tarball" | cut -f1)"
}

# The Debian rootfs plus this machine's Rust toolchain under /usr/local/rust (bin, lib;
# no docs). Prints the tarball's path.
make_rust_rootfs() {
    local sysroot key tarball rootfs
    command -v rustc >/dev/null 2>&1 || par_die "rustc not found: the build stage needs this machine's Rust toolchain (>= 1.89)"
    sysroot="$(rustc --print sysroot)"
    key="$( { rustc -vV; echo "$rootfs_format"; } | sha256sum | cut -c1-12)"
    tarball="$cache/rust-$suite-$key.tar"
    if [ -s "$tarball" ] && [ "${PAR_REFRESH_BASE:-0}" != 1 ]; then
        echo "$tarball"; return 0
    fi
    [ -x "$sysroot/bin/cargo" ] || par_die "no cargo in $sysroot/bin (the toolchain's own cargo is needed)"
    rootfs="$(mktemp -d "$cache/rust-rootfs.XXXXXX")"
    log "rust base: debian rootfs + $(rustc -V) from $sysroot"
    tar -C "$rootfs" -xf "$cache/debian-$suite-slim-$rootfs_format.tar"
    mkdir -p "$rootfs/usr/local/rust"
    cp -a "$sysroot/bin" "$sysroot/lib" "$rootfs/usr/local/rust/"
    if [ -d "$sysroot/libexec" ]; then cp -a "$sysroot/libexec" "$rootfs/usr/local/rust/"; fi
    rm -rf "$rootfs/usr/local/rust/lib/rustlib/src" "$rootfs/usr/local/rust/lib/rustlib/rustc-src"
    rm -f "$cache"/rust-"$suite"-*.tar   # older toolchains
    chmod 0755 "$rootfs"
    tar -C "$rootfs" --numeric-owner -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
    log "rust rootfs: $(du -h "$tarball" | cut -f1)"
    echo "$tarball"
}

# podman import TARBALL NAME, unless NAME exists and came from this tarball.
import_base() {
    local tarball="$1" name="$2" stamp
    stamp="$(stat -c '%s-%Y' "$tarball")"
    if podman image exists "$name" &&
       [ "$(podman image inspect --format '{{index .Labels "par.base.stamp"}}' "$name" 2>/dev/null || true)" = "$stamp" ]; then
        return 0
    fi
    log "podman import $name"
    # podman import takes labels only through a Containerfile-style --change.
    podman import --quiet \
        --change "LABEL par.base.stamp=$stamp" \
        --change 'ENV PATH=/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/bin/bash"]' \
        "$tarball" "$name" >/dev/null
}

base_mode="${PAR_BASE_IMAGES:-auto}"
if [ "$base_mode" = auto ]; then
    if timeout 60 podman pull --quiet "$registry_debian" >/dev/null 2>&1 &&
       timeout 600 podman pull --quiet "$registry_rust" >/dev/null 2>&1; then
        base_mode=registry
    else
        log "no container registry reachable: making the base images from Debian's packages"
        base_mode=debootstrap
    fi
fi
case "$base_mode" in
    registry)
        rust_image="$registry_rust"
        debian_image="$registry_debian"
        ;;
    debootstrap)
        make_debian_rootfs
        rust_tarball="$(make_rust_rootfs)"
        debian_image="$debian_local"
        rust_image="localhost/par-base/rust:$suite-$(basename "$rust_tarball" .tar | sed "s/^rust-$suite-//")"
        import_base "$cache/debian-$suite-slim-$rootfs_format.tar" "$debian_image"
        import_base "$rust_tarball" "$rust_image"
        ;;
    *) par_die "PAR_BASE_IMAGES must be auto, registry or debootstrap (got '$base_mode')" ;;
esac

# The build context: the workspace's sources as they are in the work tree (committed or
# not), nothing else (target/ is gigabytes).
context="$cache/context"
rm -rf "$context"
mkdir -p "$context"
(
    cd "$repo"
    git ls-files -z --cached --others --exclude-standard -- \
        Cargo.toml Cargo.lock crates python bench deploy/container |
        tar --null --ignore-failed-read -T - -cf - 2>/dev/null
) | tar -C "$context" -xf -
if [ ! -f "$context/Cargo.lock" ] || [ ! -d "$context/crates/par-cli" ]; then
    par_die "could not assemble the build context from $repo"
fi

cargo_home="${CARGO_HOME:-$HOME/.cargo}"
build_args=()
volumes=()
if command -v cargo >/dev/null 2>&1 && mkdir -p "$cargo_home/registry"; then
    log "cargo fetch --locked (host registry $cargo_home/registry, reused by the build)"
    if (cd "$repo" && cargo fetch --locked >"$cache/cargo-fetch.log" 2>&1); then
        volumes+=(--volume "$cargo_home/registry:/usr/local/cargo/registry")
        build_args+=(--build-arg CARGO_NET_OFFLINE=true)
    else
        tail -n 20 "$cache/cargo-fetch.log" >&2
        log "cargo fetch failed: the build downloads crates itself"
    fi
fi
mkdir -p "$cache/target"
volumes+=(--volume "$cache/target:/src/target")
# Where this machine reaches PyPI through a TLS-intercepting proxy, its CA bundle
# (SSL_CERT_FILE or PIP_CERT) is mounted for the build's pip step only.
ca_bundle="${PIP_CERT:-${SSL_CERT_FILE:-}}"
if [ -n "$ca_bundle" ] && [ -f "$ca_bundle" ]; then
    volumes+=(--volume "$(readlink -f "$ca_bundle"):/run/par-build-ca.pem:ro")
    build_args+=(--build-arg PIP_CERT=/run/par-build-ca.pem)
fi

log "podman build $tag (base: $base_mode; build stage $rust_image, runtime $debian_image)"
nice -n 10 podman build \
    --format docker \
    --network host \
    --layers \
    --file "$context/deploy/container/Containerfile" \
    --build-arg "RUST_IMAGE=$rust_image" \
    --build-arg "DEBIAN_IMAGE=$debian_image" \
    "${build_args[@]}" \
    "${volumes[@]}" \
    --tag "$tag" \
    "$context" >&2 || par_die "podman build failed"

size=$(podman image inspect --format '{{.Size}}' "$tag")
log "built $tag: $(podman image inspect --format '{{.Id}}' "$tag" | cut -c1-12), $((size / 1000000)) MB ($size bytes) uncompressed, in $(( $(date +%s) - started )) s"
