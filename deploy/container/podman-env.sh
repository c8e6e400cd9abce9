# shellcheck shell=bash
# Sourced by build.sh, smoke.sh and scripts/check-container.sh: makes podman usable on the
# project's machines and defines `par_podman` (podman with the settings below).
#
# On these machines podman works only with the vfs storage driver, the runc runtime
# (crun fails on the hybrid cgroup layout), the cgroupfs cgroup manager, host networking
# and no default ulimits. Unless the caller already points CONTAINERS_CONF /
# CONTAINERS_STORAGE_CONF at files of their own, this writes such files under
# $PAR_TOOLS/containers and uses a storage root there too, so nothing of the host's own
# podman setup is touched. Set PAR_PODMAN_NATIVE=1 to use the host's podman configuration
# as it is (e.g. a workstation where overlay and crun work).
#
# Installs podman, runc and uidmap with apt-get when podman is missing (as root, or with
# passwordless sudo).

PAR_TOOLS="${PAR_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/par-tools}"
export PAR_TOOLS

par_die() { echo "${PAR_SCRIPT:-podman-env}: $*" >&2; exit 1; }

# The preamble of build.sh and smoke.sh: their one argument, an image tag, into `tag`
# (else the usage line and exit 1), the start time, and `log`, a line stamped with the
# seconds since then (on stderr, so a script's own output stays clean).
# Usage: par_take_tag "USAGE" "$@".
par_take_tag() {
    local usage="$1"
    shift
    if [ $# -ne 1 ] || [ -z "$1" ]; then
        par_die "usage: $usage"
    fi
    # shellcheck disable=SC2034  # both are read by the sourcing script
    tag="$1"
    started=$(date +%s)
}
log() { printf '%s: [%4ss] %s\n' "${PAR_SCRIPT:-podman-env}" "$(( $(date +%s) - started ))" "$*" >&2; }

# apt-get install PACKAGES... (as root or through sudo -n).
par_apt_install() {
    local as_root=() log
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            as_root=(sudo -n)
        else
            par_die "missing $*: install them (apt-get install $*) or run as root"
        fi
    fi
    command -v apt-get >/dev/null 2>&1 || par_die "missing $* and no apt-get to install them"
    log="$(mktemp)"
    echo "${PAR_SCRIPT:-podman-env}: installing Debian packages: $*" >&2
    if ! { "${as_root[@]}" apt-get update &&
           "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
               apt-get install -y --no-install-recommends "$@"; } >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        rm -f "$log"
        par_die "apt-get install $* failed"
    fi
    rm -f "$log"
}

par_podman_setup() {
    if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1; then
        par_apt_install podman runc uidmap
    fi
    command -v podman >/dev/null 2>&1 || par_die "podman still missing after apt-get install"
    if [ "${PAR_PODMAN_NATIVE:-0}" = 1 ]; then
        return 0
    fi
    local dir="$PAR_TOOLS/containers" runroot
    mkdir -p "$dir/storage"
    if [ "$(id -u)" = 0 ]; then
        runroot="/run/par-containers"
    else
        runroot="${XDG_RUNTIME_DIR:-/tmp}/par-containers-$(id -u)"
    fi
    if [ -z "${CONTAINERS_CONF:-}" ]; then
        cat >"$dir/containers.conf.tmp" <<EOF
# Written by deploy/container/podman-env.sh
[containers]
default_ulimits = []
netns = "host"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
        mv "$dir/containers.conf.tmp" "$dir/containers.conf"
        export CONTAINERS_CONF="$dir/containers.conf"
    fi
    if [ -z "${CONTAINERS_STORAGE_CONF:-}" ]; then
        cat >"$dir/storage.conf.tmp" <<EOF
# Written by deploy/container/podman-env.sh
[storage]
driver = "vfs"
graphroot = "$dir/storage"
runroot = "$runroot"
EOF
        mv "$dir/storage.conf.tmp" "$dir/storage.conf"
        export CONTAINERS_STORAGE_CONF="$dir/storage.conf"
    fi
}

# Flags for `podman run`: runtime and cgroup manager come from containers.conf above.
# shellcheck disable=SC2034 # used by the scripts that source this file
par_podman_run_flags=(--network host)
