#!/usr/bin/env bash
# Makes a private MariaDB server available for tests and local stacks, with no manual step, on a Debian
# machine where we are root and no systemd runs (ARCHITECTURE.md section 9).
#
#   scripts/mariadb.sh [start]   install if needed, start (or reuse) the instance, create the app user;
#                                the last (and only) line on stdout is
#                                `export BANTER_TEST_MYSQL_URL=mysql://banter:banter@127.0.0.1:PORT`
#   scripts/mariadb.sh stop      stop the instance
#   scripts/mariadb.sh status    tell whether the instance runs (exit 0) or not (exit 3)
#
# Usage: eval "$(scripts/mariadb.sh start | tail -1)"
#
# The instance is not the system one: its datadir, socket, pid file, log and config live in
# ${BANTER_STATE_DIR:-$HOME/.cache/banter/state}/mariadb, and it listens on 127.0.0.1:${BANTER_MYSQL_PORT:-3307}.
# root logs in through the socket only; the application user banter/banter may create databases (each
# test creates its own). mariadbd runs as the mysql user, so every folder above the state dir must be
# searchable by it: where one is not (e.g. /root, mode 700), search permission (o+x, not listing) is
# added and said so on stderr.
#
# Environment: BANTER_STATE_DIR, BANTER_MYSQL_PORT (3307), BANTER_MYSQL_START_TIMEOUT (seconds, 60).
# Everything but the export line goes to stderr.
set -euo pipefail

readonly MARIADBD=/usr/sbin/mariadbd
readonly APP_USER=banter
readonly APP_PASSWORD=banter

STATE_DIR="${BANTER_STATE_DIR:-${HOME:-/root}/.cache/banter/state}/mariadb"
PORT="${BANTER_MYSQL_PORT:-3307}"
START_TIMEOUT="${BANTER_MYSQL_START_TIMEOUT:-60}"
DATA_DIR="$STATE_DIR/data"
RUN_DIR="$STATE_DIR/run"
SOCKET="$RUN_DIR/mariadbd.sock"
PID_FILE="$RUN_DIR/mariadbd.pid"
DAEMON_PID_FILE="$RUN_DIR/daemon.pid"
LOG_FILE="$STATE_DIR/mariadbd.err"
CONFIG="$STATE_DIR/my.cnf"
LOCK_FILE="$STATE_DIR/.lock"

log() {
    printf 'mariadb.sh: %s\n' "$*" >&2
}

die() {
    log "error: $*"
    exit 1
}

# Prints the last lines of the server log to stderr, to explain a failed start.
log_tail() {
    if [[ -f "$LOG_FILE" ]]; then
        log "last lines of $LOG_FILE:"
        tail -n 30 "$LOG_FILE" >&2 || true
    fi
}

# Runs SQL as root through the instance's socket.
sql_root() {
    mariadb --no-defaults --protocol=socket --socket="$SOCKET" --user=root --batch --skip-column-names \
        --execute="$1"
}

ensure_installed() {
    if [[ -x "$MARIADBD" ]]; then
        return
    fi
    [[ "$(id -u)" -eq 0 ]] || die "$MARIADBD is missing and installing it needs root"
    log "installing mariadb-server with apt-get"
    # Keep the package's maintainer scripts from starting the system instance: we run our own.
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        created_policy=1
    fi
    local status=0
    {
        apt-get update -q &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                mariadb-server mariadb-client
    } >&2 || status=$?
    if [[ "$created_policy" -eq 1 ]]; then
        rm -f "$policy"
    fi
    [[ "$status" -eq 0 ]] || die "apt-get failed with status $status"
    [[ -x "$MARIADBD" ]] || die "mariadb-server installed but $MARIADBD is still missing"
}

# Makes every folder above the state dir searchable by the mysql user, from the top down (a folder
# below an unsearchable one looks unsearchable too).
ensure_traversable() {
    local dir="" part
    local -a parts
    IFS=/ read -r -a parts <<<"$(dirname "$STATE_DIR")"
    for part in "${parts[@]}"; do
        [[ -n "$part" ]] || continue
        dir+="/$part"
        if ! runuser -u mysql -- test -x "$dir"; then
            log "adding search permission (o+x) on $dir so that the mysql user reaches $STATE_DIR"
            chmod o+x "$dir"
        fi
    done
}

write_config() {
    local open_files
    open_files="$(ulimit -Hn)"
    [[ "$open_files" == "unlimited" ]] && open_files=65535
    cat >"$CONFIG" <<EOF
# Written by scripts/mariadb.sh; rewritten at every start.
[mariadbd]
user = mysql
datadir = $DATA_DIR
socket = $SOCKET
pid-file = $PID_FILE
log-error = $LOG_FILE
bind-address = 127.0.0.1
port = $PORT
skip-name-resolve
character-set-server = utf8mb4
collation-server = utf8mb4_unicode_ci
max-connections = 500
open-files-limit = $open_files
EOF
}

prepare_dirs() {
    id mysql >/dev/null 2>&1 || die "the mysql system user is missing (is mariadb-server installed?)"
    # A unix socket path must fit in sun_path (108 bytes).
    ((${#SOCKET} < 100)) || die "socket path $SOCKET is too long; set a shorter BANTER_STATE_DIR"
    mkdir -p "$DATA_DIR" "$RUN_DIR"
    ensure_traversable
    write_config
    chown -R mysql:mysql "$STATE_DIR"
    chmod 750 "$DATA_DIR"
}

init_datadir() {
    if [[ -d "$DATA_DIR/mysql" ]]; then
        return
    fi
    log "initialising $DATA_DIR"
    if ! mariadb-install-db --defaults-file="$CONFIG" --user=mysql --datadir="$DATA_DIR" \
        --auth-root-authentication-method=socket --skip-test-db >"$STATE_DIR/install-db.log" 2>&1; then
        tail -n 30 "$STATE_DIR/install-db.log" >&2 || true
        die "mariadb-install-db failed (log: $STATE_DIR/install-db.log)"
    fi
}

# Prints the pid of this state dir's mariadbd, or fails when none runs. The pid file is the one
# start-stop-daemon writes at once (mariadbd writes its own only later); the process must be mariadbd
# started with this state dir's config, so a stale file whose pid was reused does not count.
running_pid() {
    local pid cmdline
    [[ -s "$DAEMON_PID_FILE" ]] || return 1
    pid="$(<"$DAEMON_PID_FILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ "$(readlink "/proc/$pid/exe" 2>/dev/null || true)" == "$MARIADBD" ]] || return 1
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
    [[ "$cmdline" == *"--defaults-file=$CONFIG "* ]] || return 1
    printf '%s\n' "$pid"
}

# Prints the port the running instance was configured with.
configured_port() {
    sed -n 's/^port = \([0-9]*\)$/\1/p' "$CONFIG" 2>/dev/null | head -n 1
}

answering() {
    [[ -S "$SOCKET" ]] && sql_root 'SELECT 1' >/dev/null 2>&1
}

# Tells whether the process start-stop-daemon started still lives (it may not have become mariadbd yet).
daemon_alive() {
    local pid
    [[ -s "$DAEMON_PID_FILE" ]] || return 1
    pid="$(<"$DAEMON_PID_FILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

wait_until_answering() {
    local deadline=$((SECONDS + START_TIMEOUT))
    until answering; do
        if ! daemon_alive; then
            log_tail
            die "mariadbd exited during start-up"
        fi
        if ((SECONDS >= deadline)); then
            log_tail
            die "mariadbd did not accept connections within ${START_TIMEOUT}s"
        fi
        sleep 0.5
    done
}

start_server() {
    # Services started as another user keep the soft limit of 1,024 otherwise (section 9).
    ulimit -Sn "$(ulimit -Hn)"
    log "starting mariadbd on 127.0.0.1:$PORT (state $STATE_DIR)"
    rm -f "$PID_FILE" "$DAEMON_PID_FILE" "$SOCKET"
    # --pidfile scopes start-stop-daemon to this instance (a system mariadbd may run too); mariadbd
    # refuses to run as root without --user; --defaults-file must come first.
    start-stop-daemon --start --background --make-pidfile --pidfile "$DAEMON_PID_FILE" \
        --exec "$MARIADBD" -- --defaults-file="$CONFIG" --user=mysql >&2
}

create_app_user() {
    local host statements=""
    for host in 127.0.0.1 localhost; do
        statements+="CREATE USER IF NOT EXISTS '$APP_USER'@'$host' IDENTIFIED BY '$APP_PASSWORD';"
        statements+="ALTER USER '$APP_USER'@'$host' IDENTIFIED BY '$APP_PASSWORD';"
        statements+="GRANT ALL PRIVILEGES ON *.* TO '$APP_USER'@'$host';"
    done
    sql_root "$statements" || die "could not create the application user $APP_USER"
}

cmd_start() {
    ensure_installed
    mkdir -p "$STATE_DIR"
    exec 9>"$LOCK_FILE"
    flock 9
    if running_pid >/dev/null; then
        local running_port
        running_port="$(configured_port)"
        if [[ -n "$running_port" && "$running_port" != "$PORT" ]]; then
            log "warning: the instance runs on port $running_port, not $PORT; stop it to change the port"
            PORT="$running_port"
        fi
        log "reusing the running instance (pid $(running_pid), port $PORT)"
    else
        prepare_dirs
        init_datadir
        start_server
    fi
    wait_until_answering
    create_app_user
    log "ready"
    printf 'export BANTER_TEST_MYSQL_URL=mysql://%s:%s@127.0.0.1:%s\n' "$APP_USER" "$APP_PASSWORD" "$PORT"
}

cmd_stop() {
    local pid
    if ! pid="$(running_pid)"; then
        log "not running"
        return 0
    fi
    log "stopping mariadbd (pid $pid)"
    start-stop-daemon --stop --pid "$pid" --retry TERM/60/KILL/5 >&2
    log "stopped"
}

cmd_status() {
    local pid
    if pid="$(running_pid)" && answering; then
        PORT="$(configured_port)"
        printf 'running: pid %s, 127.0.0.1:%s, state %s\n' "$pid" "$PORT" "$STATE_DIR"
        return 0
    fi
    printf 'not running (state %s)\n' "$STATE_DIR"
    return 3
}

main() {
    case "${1:-start}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *)
        log "usage: $0 [start|stop|status]"
        exit 2
        ;;
    esac
}

main "$@"
