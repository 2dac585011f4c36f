#!/usr/bin/env bash
# Makes Prometheus's `promtool` available to the tests (observability/: `promtool check rules` on the
# alert rules, `promtool check metrics` on a node's /metrics) without installing Prometheus: the
# binary is taken out of Debian's `prometheus` package (2.42 on bookworm), whose service is never
# installed, enabled nor started.
#
#   scripts/promtool.sh [install]   fetch the package once per machine unless the binary answers
#                                   already; the last stdout line is the binary's path
#
# Usage: export BANTER_PROMTOOL_BIN="$(scripts/promtool.sh install | tail -1)"
#
# The binary lives in ${BANTER_CACHE:-$HOME/.cache/banter}/tools/bin/promtool. `apt-get download`
# fetches the .deb into a temporary dir (as root or not; it needs the apt lists, and when they are
# missing root runs `apt-get update` first), `dpkg-deb -x` unpacks it there, and only usr/bin/promtool
# is kept. Everything but the last line goes to stderr.
#
# Environment: BANTER_CACHE.
set -euo pipefail

readonly PACKAGE=prometheus

CACHE="${BANTER_CACHE:-${HOME:-/root}/.cache/banter}"
TOOLS_DIR="$CACHE/tools"
PROMTOOL_BIN="$TOOLS_DIR/bin/promtool"

log() {
    printf 'promtool.sh: %s\n' "$*" >&2
}

die() {
    log "error: $*"
    exit 1
}

# Tells whether $PROMTOOL_BIN runs; prints its version line to stderr.
promtool_answers() {
    local out
    [[ -x "$PROMTOOL_BIN" ]] || return 1
    out="$("$PROMTOOL_BIN" --version 2>&1)" || return 1
    log "${out%%$'\n'*}"
}

# Downloads the package's .deb into the current dir; when apt has no lists for it, root updates
# them once and tries again.
download_package() {
    if apt-get download -q "$PACKAGE" >&2; then
        return 0
    fi
    [[ "$(id -u)" -eq 0 ]] ||
        die "apt-get download $PACKAGE failed (are the apt lists there? run apt-get update as root)"
    log "apt-get download $PACKAGE failed; running apt-get update and trying again"
    apt-get update -q >&2 || die "apt-get update failed"
    apt-get download -q "$PACKAGE" >&2 || die "apt-get download $PACKAGE failed after apt-get update"
}

# Fetches the package and copies its promtool into $PROMTOOL_BIN.
extract_promtool() {
    local work deb
    command -v apt-get >/dev/null || die "apt-get not found (promtool comes from Debian's $PACKAGE package)"
    command -v dpkg-deb >/dev/null || die "dpkg-deb not found"
    work="$(mktemp -d "${TMPDIR:-/tmp}/banter-promtool.XXXXXX")"
    # shellcheck disable=SC2064 # expand $work now: it is local
    trap "rm -rf '$work'" EXIT
    # apt downloads as its sandbox user _apt when it may write there (root only; else a warning).
    if [[ "$(id -u)" -eq 0 ]] && id _apt >/dev/null 2>&1; then
        chown _apt "$work"
    fi
    log "downloading the $PACKAGE package into $work (its service is not installed)"
    (cd "$work" && download_package)
    deb="$(find "$work" -maxdepth 1 -name "${PACKAGE}_*.deb" -print -quit)"
    [[ -n "$deb" ]] || die "apt-get download left no ${PACKAGE}_*.deb in $work"
    dpkg-deb -x "$deb" "$work/root" || die "dpkg-deb -x $deb failed"
    [[ -x "$work/root/usr/bin/promtool" ]] || die "$deb has no usr/bin/promtool"
    mkdir -p "$(dirname "$PROMTOOL_BIN")"
    # Copied under a temporary name then renamed: a concurrent reader never sees half a binary.
    install -m 755 "$work/root/usr/bin/promtool" "$PROMTOOL_BIN.tmp"
    mv -f "$PROMTOOL_BIN.tmp" "$PROMTOOL_BIN"
    rm -rf "$work"
    trap - EXIT
}

cmd_install() {
    mkdir -p "$TOOLS_DIR"
    # One download per machine even when two scripts ask at once: the second waits, then finds it.
    exec 8>"$TOOLS_DIR/.promtool.lock"
    if ! flock -n 8; then
        log "another install of promtool is running; waiting for it"
        flock 8
    fi
    if promtool_answers; then
        log "promtool already installed"
    else
        extract_promtool
        promtool_answers || die "promtool was extracted but '$PROMTOOL_BIN --version' does not answer"
        log "installed $PROMTOOL_BIN"
    fi
    exec 8>&-
    printf '%s\n' "$PROMTOOL_BIN"
}

main() {
    case "${1:-install}" in
    install) cmd_install ;;
    *)
        log "usage: $0 [install]"
        exit 2
        ;;
    esac
}

main "$@"
