#!/usr/bin/env bash
# Debian's Chromium for the browser tests (tests/e2e/browser.rs, Lighthouse): installed with apt when
# missing (~290 MB; the test tools never download a browser of their own, which this machine's
# network refuses). The last stdout line of `install` is the browser's path.
#
#   scripts/chromium.sh [install]
#
# Environment: BANTER_CHROMIUM (a browser to use instead; it must exist).
set -euo pipefail

log() {
    printf 'chromium.sh: %s\n' "$*" >&2
}

die() {
    log "error: $*"
    exit 1
}

[[ "${1:-install}" == install ]] || die "usage: scripts/chromium.sh [install]"

if [[ -n "${BANTER_CHROMIUM:-}" ]]; then
    [[ -x "$BANTER_CHROMIUM" ]] || die "BANTER_CHROMIUM=$BANTER_CHROMIUM is not an executable"
    echo "$BANTER_CHROMIUM"
    exit 0
fi
bin=/usr/bin/chromium
if [[ ! -x "$bin" ]]; then
    if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null; then
        die "$bin is missing: install Debian's chromium package (apt-get install chromium)"
    fi
    log "installing Debian's chromium"
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } >&2 ||
        die "apt-get install chromium failed"
fi
[[ -x "$bin" ]] || die "$bin is not an executable"
echo "$bin"
