#!/usr/bin/env bash
# Makes a Kafka-protocol broker available for tests and local stacks without Docker: tansu 0.6.0, a
# Kafka-compatible broker written in Rust, on its sqlite storage engine (ARCHITECTURE.md section 10).
# Production uses Apache Kafka; tansu stands in for it on machines where no Kafka can be installed.
#
#   scripts/kafka.sh install   build tansu once per machine (~10.5 min cold on 2 cores) unless the binary
#                              answers already; the last stdout line is the binary's path
#   scripts/kafka.sh [start]   install if needed, start (or reuse) the broker; the last stdout line is
#                              `export BANTER_TEST_KAFKA_BROKERS=127.0.0.1:PORT`
#   scripts/kafka.sh stop      stop the broker (SIGTERM, then SIGKILL after BANTER_KAFKA_STOP_TIMEOUT)
#   scripts/kafka.sh status    tell whether the broker runs (exit 0) or not (exit 3)
#
# Usage: eval "$(scripts/kafka.sh start | tail -1)"
#
# The binary lives in ${BANTER_CACHE:-$HOME/.cache/banter}/tools/bin/tansu and is built in its own
# target dir ($BANTER_CACHE/tools-target), never the workspace's. The broker's state (sqlite database
# tansu.db, log, pid file) lives in ${BANTER_STATE_DIR:-$HOME/.cache/banter/state}/kafka, which is its
# working directory: tansu reads a `.env` there and the sqlite path is relative to it. It listens on
# 127.0.0.1:${BANTER_KAFKA_PORT:-19092}. Topics are not created here: the node creates its own. Never
# delete a topic on it: tansu 0.6.0's sqlite engine then deletes every topic, records included.
#
# Environment: BANTER_CACHE, BANTER_STATE_DIR, BANTER_KAFKA_PORT (19092),
# BANTER_KAFKA_START_TIMEOUT (seconds, 30), BANTER_KAFKA_STOP_TIMEOUT (seconds, 30).
# Everything but the last line of `install` and `start` goes to stderr.
set -euo pipefail

readonly TANSU_VERSION=0.6.0
readonly TANSU_FEATURES=libsql,dynostore
readonly DB_FILE=tansu.db
# tansu 0.6.0 lacks this index: without it, fetches scan the header table and consumers time out.
readonly INDEX_SQL='create index if not exists header_topition_offset on header(topition, offset_id)'
# Variables tansu reads as defaults of its flags; unset so that a stray one cannot redirect the broker.
readonly TANSU_ENV_VARS=(CLUSTER_ID LISTENER_URL ADVERTISED_LISTENER_URL STORAGE_ENGINE SCHEMA_REGISTRY
    OTEL_EXPORTER_OTLP_ENDPOINT DATA_LAKE)

CACHE="${BANTER_CACHE:-${HOME:-/root}/.cache/banter}"
TOOLS_DIR="$CACHE/tools"
TOOLS_TARGET="$CACHE/tools-target"
TANSU_BIN="$TOOLS_DIR/bin/tansu"
STATE_DIR="${BANTER_STATE_DIR:-${HOME:-/root}/.cache/banter/state}/kafka"
PORT="${BANTER_KAFKA_PORT:-19092}"
START_TIMEOUT="${BANTER_KAFKA_START_TIMEOUT:-30}"
STOP_TIMEOUT="${BANTER_KAFKA_STOP_TIMEOUT:-30}"
PID_FILE="$STATE_DIR/tansu.pid"
PORT_FILE="$STATE_DIR/tansu.port"
LOG_FILE="$STATE_DIR/tansu.log"
LOCK_FILE="$STATE_DIR/.lock"

log() {
    printf 'kafka.sh: %s\n' "$*" >&2
}

die() {
    log "error: $*"
    exit 1
}

# Prints the last lines of the broker log to stderr, to explain a failed start.
log_tail() {
    if [[ -f "$LOG_FILE" ]]; then
        log "last lines of $LOG_FILE:"
        tail -n 30 "$LOG_FILE" >&2 || true
    fi
}

# Prints the milliseconds since $1, an $EPOCHREALTIME value.
elapsed_ms() {
    local now=$EPOCHREALTIME
    printf '%d\n' $(((${now//[!0-9]/} - ${1//[!0-9]/}) / 1000))
}

# Tells whether $TANSU_BIN runs and is the pinned version.
tansu_answers() {
    local out
    [[ -x "$TANSU_BIN" ]] || return 1
    out="$("$TANSU_BIN" --version 2>/dev/null)" || return 1
    [[ "$out" == *" $TANSU_VERSION"* ]]
}

ensure_apt_package() {
    local command=$1 package=$2
    command -v "$command" >/dev/null && return 0
    if [[ "$(id -u)" -ne 0 ]] || ! command -v apt-get >/dev/null; then
        die "$command is missing (install the $package package)"
    fi
    log "installing $package with apt-get"
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$package"; } >&2 ||
        die "apt-get install $package failed"
}

cmd_install() {
    mkdir -p "$TOOLS_DIR"
    # The harness adds the index with the sqlite3 CLI too, so it is part of the install.
    ensure_apt_package sqlite3 sqlite3
    # One build per machine even when two scripts ask at once: the second waits, then finds the binary.
    exec 8>"$TOOLS_DIR/.tansu.lock"
    if ! flock -n 8; then
        log "another install of tansu is running; waiting for it"
        flock 8
    fi
    if tansu_answers; then
        log "tansu $TANSU_VERSION already installed"
    else
        command -v cargo >/dev/null || die "cargo not found (install Rust: https://rustup.rs)"
        log "building tansu $TANSU_VERSION into $TOOLS_DIR (target dir $TOOLS_TARGET; ~10.5 min cold on 2 cores)"
        local started=$SECONDS
        CARGO_TARGET_DIR="$TOOLS_TARGET" cargo install tansu --version "$TANSU_VERSION" --locked \
            --features "$TANSU_FEATURES" --root "$TOOLS_DIR" --force >&2 ||
            die "cargo install tansu $TANSU_VERSION failed"
        tansu_answers || die "tansu was built but '$TANSU_BIN --version' does not answer $TANSU_VERSION"
        log "built tansu in $((SECONDS - started))s"
    fi
    exec 8>&-
    printf '%s\n' "$TANSU_BIN"
}

# Prints the pid of this state dir's broker, or fails when none runs. The process must be the tansu
# binary running in the state dir, so a stale pid file whose pid was reused does not count.
running_pid() {
    local pid
    [[ -s "$PID_FILE" ]] || return 1
    pid="$(<"$PID_FILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ "$(readlink "/proc/$pid/exe" 2>/dev/null || true)" == "$(readlink -f "$TANSU_BIN")" ]] || return 1
    [[ "$(readlink "/proc/$pid/cwd" 2>/dev/null || true)" == "$(readlink -f "$STATE_DIR")" ]] || return 1
    printf '%s\n' "$pid"
}

# Tells whether something accepts TCP connections on 127.0.0.1:$1.
port_accepts() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Tells whether a socket listens on port $1 on any address (tansu would fail to bind it).
port_listened() {
    port_accepts "$1" && return 0
    [[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null || true)" ]]
}

wait_until_accepting() {
    local pid=$1 deadline=$((SECONDS + START_TIMEOUT))
    until port_accepts "$PORT"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log_tail
            die "tansu exited during start-up (it exits with status 0 when its port is taken)"
        fi
        if ((SECONDS >= deadline)); then
            log_tail
            die "tansu did not accept connections on 127.0.0.1:$PORT within ${START_TIMEOUT}s"
        fi
        sleep 0.1
    done
}

# Adds the index tansu lacks, once its schema exists; retries while the broker creates it.
ensure_index() {
    local db="$STATE_DIR/$DB_FILE" deadline=$((SECONDS + START_TIMEOUT)) err=""
    while true; do
        if [[ -f "$db" ]] && err="$(sqlite3 -cmd '.timeout 5000' "$db" "$INDEX_SQL" 2>&1)"; then
            break
        fi
        if ((SECONDS >= deadline)); then
            die "could not add the index header_topition_offset to $db within ${START_TIMEOUT}s: ${err:-no database file}"
        fi
        sleep 0.2
    done
    [[ "$(sqlite3 -cmd '.timeout 5000' "$db" \
        "select count(*) from sqlite_master where type = 'index' and name = 'header_topition_offset'")" == 1 ]] ||
        die "the index header_topition_offset is missing from $db after creating it"
    log "index header_topition_offset present in $db"
}

start_broker() {
    local url="tcp://127.0.0.1:$PORT" pid
    if port_listened "$PORT"; then
        log "127.0.0.1:$PORT is taken by another process:"
        ss -Hltnp "sport = :$PORT" >&2 2>/dev/null || true
        die "port $PORT is in use (set BANTER_KAFKA_PORT, or stop that process)"
    fi
    log "starting tansu on $url (state $STATE_DIR)"
    rm -f "$PID_FILE" "$PORT_FILE"
    printf '==== kafka.sh: starting tansu on %s at %s ====\n' "$url" "$(date -Is)" >>"$LOG_FILE"
    # Detached: own session, no terminal, every descriptor of this script closed (a caller reading
    # our stdout through a pipe must see EOF, and the lock on fd 9 must not outlive this script).
    (
        cd "$STATE_DIR"
        for var in "${TANSU_ENV_VARS[@]}"; do
            unset "$var"
        done
        exec setsid env NO_COLOR=1 "$TANSU_BIN" broker --listener-url "$url" \
            --advertised-listener-url "$url" --storage-engine "sqlite://$DB_FILE"
    ) </dev/null >>"$LOG_FILE" 2>&1 9>&- &
    pid=$!
    printf '%s\n' "$pid" >"$PID_FILE"
    printf '%s\n' "$PORT" >"$PORT_FILE"
    wait_until_accepting "$pid"
}

cmd_start() {
    local pid running_port started
    cmd_install >/dev/null
    ensure_apt_package ss iproute2
    mkdir -p "$STATE_DIR"
    exec 9>"$LOCK_FILE"
    flock 9
    started=$EPOCHREALTIME
    if pid="$(running_pid)"; then
        running_port="$(cat "$PORT_FILE" 2>/dev/null || true)"
        if [[ -n "$running_port" && "$running_port" != "$PORT" ]]; then
            log "warning: the broker runs on port $running_port, not $PORT; stop it to change the port"
            PORT="$running_port"
        fi
        log "reusing the running broker (pid $pid, port $PORT)"
        wait_until_accepting "$pid"
    else
        start_broker
        log "accepting connections on 127.0.0.1:$PORT after $(elapsed_ms "$started") ms"
    fi
    ensure_index
    exec 9>&-
    log "ready after $(elapsed_ms "$started") ms"
    printf 'export BANTER_TEST_KAFKA_BROKERS=127.0.0.1:%s\n' "$PORT"
}

cmd_stop() {
    local pid deadline
    if ! pid="$(running_pid)"; then
        log "not running"
        return 0
    fi
    log "stopping tansu (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            log "still running after ${STOP_TIMEOUT}s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    rm -f "$PID_FILE"
    log "stopped"
}

cmd_status() {
    local pid port
    if pid="$(running_pid)"; then
        port="$(cat "$PORT_FILE" 2>/dev/null || printf '?')"
        if port_accepts "$port"; then
            printf 'running: pid %s, 127.0.0.1:%s, state %s\n' "$pid" "$port" "$STATE_DIR"
            return 0
        fi
        printf 'starting or stuck: pid %s does not accept connections on 127.0.0.1:%s\n' "$pid" "$port"
        return 3
    fi
    printf 'not running (state %s)\n' "$STATE_DIR"
    return 3
}

main() {
    case "${1:-start}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *)
        log "usage: $0 [install|start|stop|status]"
        exit 2
        ;;
    esac
}

main "$@"
