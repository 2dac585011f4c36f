#!/usr/bin/env bash
# The web app (web-angular/, issue #22) for `make run` and the test command:
#
#   scripts/web.sh build   install its npm packages (npm ci) when missing or older than the lock file,
#                          and build it (ng build, then a .br and .gz copy of each text file) when the
#                          build is missing or older than any source;
#                          the last stdout line is the build's folder (the node's http.web_dir)
#   scripts/web.sh check   the same install, then its linter (angular-eslint) and unit tests (Vitest)
#
# Node.js >= 20.19 and npm must be on the machine (Angular 20 needs them; Debian's nodejs is older).
# Everything but the last line of `build` goes to stderr.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../web-angular"
readonly DIST="$PWD/dist/banter-web/browser"

log() {
    printf 'web.sh: %s\n' "$*" >&2
}

die() {
    log "error: $*"
    exit 1
}

need_node() {
    command -v node >/dev/null || die "node not found: install Node.js 20.19 or newer (with npm)"
    command -v npm >/dev/null || die "npm not found: install npm with Node.js 20.19 or newer"
    node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' ||
        die "Node.js $(node --version) is too old: Angular 20 needs 20.19 or newer"
}

deps() {
    need_node
    if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
        log "npm ci (web-angular)"
        npm ci --no-audit --no-fund --loglevel=error >&2 || die "npm ci failed"
    fi
}

stale() {
    [[ ! -f "$DIST/index.html" ]] && return 0
    [[ -n "$(find src public angular.json package-lock.json tsconfig.json tsconfig.app.json .postcssrc.json \
        -newer "$DIST/index.html" -print -quit)" ]]
}

case "${1:-build}" in
build)
    deps
    if stale; then
        log "ng build (web-angular)"
        npx --no-install ng build >&2 || die "ng build failed"
        node compress.mjs "$DIST" || die "compressing the build failed"
    fi
    [[ -f "$DIST/index.html" ]] || die "the build has no $DIST/index.html"
    echo "$DIST"
    ;;
check)
    deps
    log "ng lint (web-angular)"
    npx --no-install ng lint >&2 || die "ng lint failed"
    log "ng test (web-angular)"
    npx --no-install ng test --watch=false >&2 || die "ng test failed"
    ;;
*)
    die "usage: scripts/web.sh build|check"
    ;;
esac
