#!/usr/bin/env bash
# Makes an S3-compatible server available for tests and local stacks without Docker: s3s-fs 0.14.1,
# the file-system backend of the s3s crate (ARCHITECTURE.md section 9). It checks SigV4 signatures,
# rejects forged and expired presigned URLs and enforces POST policies, which moto and s3rver do not:
# use it, not them, for the security tests. Newer s3s-fs versions need a newer rustc than 1.95.
#
#   scripts/s3.sh [install]   build s3s-fs once per machine (~2 min cold on 2 cores) unless the binary
#                             answers already; the last stdout line is the binary's path
#
# Usage: export BANTER_S3S_BIN="$(scripts/s3.sh install | tail -1)"
#        "$BANTER_S3S_BIN" --host 127.0.0.1 --port PORT --access-key K --secret-key S DIR
#        (DIR must exist; buckets are its subdirectories)
#
# The binary lives in ${BANTER_CACHE:-$HOME/.cache/banter}/tools/bin/s3s-fs. It is built in a target
# dir of its own ($BANTER_CACHE/s3s-fs-target), never the workspace's nor the one kafka.sh builds
# tansu in, and that dir is removed after a successful install (it is ~1 GB and only needed again
# for another version). Everything but the last line goes to stderr.
#
# Environment: BANTER_CACHE.
set -euo pipefail

readonly S3S_FS_VERSION=0.14.1
readonly S3S_FS_FEATURES=binary

CACHE="${BANTER_CACHE:-${HOME:-/root}/.cache/banter}"
TOOLS_DIR="$CACHE/tools"
BUILD_TARGET="$CACHE/s3s-fs-target"
S3S_FS_BIN="$TOOLS_DIR/bin/s3s-fs"

log() {
    printf 's3.sh: %s\n' "$*" >&2
}

die() {
    log "error: $*"
    exit 1
}

# Tells whether $S3S_FS_BIN runs and is the pinned version.
s3s_fs_answers() {
    local out
    [[ -x "$S3S_FS_BIN" ]] || return 1
    out="$("$S3S_FS_BIN" --version 2>/dev/null)" || return 1
    [[ "$out" == *" $S3S_FS_VERSION"* ]]
}

cmd_install() {
    mkdir -p "$TOOLS_DIR"
    # One build per machine even when two scripts ask at once: the second waits, then finds the binary.
    exec 8>"$TOOLS_DIR/.s3s-fs.lock"
    if ! flock -n 8; then
        log "another install of s3s-fs is running; waiting for it"
        flock 8
    fi
    if s3s_fs_answers; then
        log "s3s-fs $S3S_FS_VERSION already installed"
    else
        command -v cargo >/dev/null || die "cargo not found (install Rust: https://rustup.rs)"
        log "building s3s-fs $S3S_FS_VERSION into $TOOLS_DIR (target dir $BUILD_TARGET; ~2 min cold on 2 cores)"
        local started=$SECONDS
        CARGO_TARGET_DIR="$BUILD_TARGET" cargo install s3s-fs --version "$S3S_FS_VERSION" --locked \
            --features "$S3S_FS_FEATURES" --root "$TOOLS_DIR" --force >&2 ||
            die "cargo install s3s-fs $S3S_FS_VERSION failed (its build dir $BUILD_TARGET is kept)"
        s3s_fs_answers ||
            die "s3s-fs was built but '$S3S_FS_BIN --version' does not answer $S3S_FS_VERSION"
        log "built s3s-fs in $((SECONDS - started))s; removing its build dir $BUILD_TARGET"
        rm -rf "$BUILD_TARGET"
    fi
    exec 8>&-
    printf '%s\n' "$S3S_FS_BIN"
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
