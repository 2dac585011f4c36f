#!/usr/bin/env bash
# A cluster of Banter nodes on this machine, against the local full stack of scripts/stack.sh (the
# private MariaDB and the tansu broker): every node shares one database and one journal topic.
#
#   scripts/cluster.sh up [N]   start the stack if needed, build `banter` (release) and start N nodes
#                               (default 3): HTTP on 127.0.0.1:8081.., cluster port 127.0.0.1:7401..
#   scripts/cluster.sh down     stop the nodes with SIGTERM (each hands its shards over), then wait
#   scripts/cluster.sh status   list the nodes and whether they answer (exit 3 when one does not)
#
# A client may connect to any node (ws://127.0.0.1:8081/ws, :8082, ...): rooms are served wherever
# they live. Node logs and data go to ${BANTER_STATE_DIR:-~/.cache/banter/state}/cluster/nodeK/. The
# cookie the nodes share is generated once into that folder (mode 600). The stack stays up after
# `down` (scripts/stack.sh down stops it). BANTER_CLUSTER_PROFILE=dev uses a debug build instead
# of the release one (quicker to build, slower to run).
set -euo pipefail

STATE_DIR="${BANTER_STATE_DIR:-${HOME:-/root}/.cache/banter/state}/cluster"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${HOME:-/root}/.cache/banter/target}"
readonly STATE_DIR
readonly HTTP_BASE=8080 CLUSTER_BASE=7400

log() {
    printf 'cluster.sh: %s\n' "$*" >&2
}

die() {
    log "error: $*"
    exit 1
}

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The environment `scripts/stack.sh up` prints for the node (ports other than the config's).
stack_env() {
    local out
    out="$(scripts/stack.sh up)" || die "scripts/stack.sh up failed"
    # The line before "BANTER_CONFIG=..." carries the overrides, if any.
    grep -o 'BANTER_[A-Z_]*__[A-Z_]*=[^ ]*' <<<"$out" || true
}

cookie_file() {
    local file="$STATE_DIR/cookie"
    if [[ ! -s "$file" ]]; then
        mkdir -p "$STATE_DIR"
        (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$file")
    fi
    printf '%s' "$file"
}

pids() {
    local f
    for f in "$STATE_DIR"/node*/pid; do
        [[ -f "$f" ]] && printf '%s %s\n' "$(basename "$(dirname "$f")")" "$(cat "$f")"
    done
}

cmd_up() {
    local n=${1:-3} k dir env=() bin cookie
    [[ "$n" =~ ^[1-9][0-9]?$ ]] || die "N must be a number from 1 to 99, not '$n'"
    mapfile -t env < <(stack_env)
    local profile="${BANTER_CLUSTER_PROFILE:-release}" out
    case "$profile" in
    release) out=release ;;
    dev) out=debug ;;
    *) die "BANTER_CLUSTER_PROFILE must be release or dev, not '$profile'" ;;
    esac
    log "building banter ($profile)"
    cargo build --profile "$profile" -p banter-node --bin banter >&2
    bin="$CARGO_TARGET_DIR/$out/banter"
    [[ -x "$bin" ]] || die "no binary at $bin"
    cookie="$(cookie_file)"
    web="$(bash scripts/web.sh build | tail -n 1)"
    for ((k = 1; k <= n; k++)); do
        dir="$STATE_DIR/node$k"
        mkdir -p "$dir/data"
        if [[ -f "$dir/pid" ]] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
            log "node$k already runs (pid $(cat "$dir/pid"))"
            continue
        fi
        env "${env[@]}" \
            BANTER_CONFIG=scripts/full-stack.toml \
            BANTER_HTTP__LISTEN="127.0.0.1:$((HTTP_BASE + k))" \
            BANTER_HTTP__WEB_DIR="${BANTER_HTTP__WEB_DIR:-$web}" \
            BANTER_DATA_DIR="$dir/data" \
            BANTER_CLUSTER__ENABLED=true \
            BANTER_CLUSTER__LISTEN="127.0.0.1:$((CLUSTER_BASE + k))" \
            BANTER_CLUSTER__COOKIE_FILE="$cookie" \
            nohup "$bin" >"$dir/node.log" 2>&1 &
        echo $! >"$dir/pid"
        log "node$k: pid $!, http://127.0.0.1:$((HTTP_BASE + k)), log $dir/node.log"
    done
    for ((k = 1; k <= n; k++)); do
        wait_healthy "$k" || die "node$k did not become healthy; see $STATE_DIR/node$k/node.log"
    done
    cat <<EOF
$n nodes are up: http://127.0.0.1:$((HTTP_BASE + 1)) … http://127.0.0.1:$((HTTP_BASE + n))
(WebSocket at /ws on each; /metrics shows banter_cluster_members and banter_cluster_shards_owned).
Stop them with: scripts/cluster.sh down
EOF
}

wait_healthy() {
    local k=$1 i
    for ((i = 0; i < 300; i++)); do
        if curl -fsS "http://127.0.0.1:$((HTTP_BASE + k))/healthz" >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$(cat "$STATE_DIR/node$k/pid")" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

cmd_down() {
    local name pid i
    while read -r name pid; do
        if kill -TERM "$pid" 2>/dev/null; then
            for ((i = 0; i < 300; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -0 "$pid" 2>/dev/null && die "$name (pid $pid) did not stop within 30 s"
            log "$name stopped"
        fi
        rm -f "$STATE_DIR/$name/pid"
    done < <(pids)
}

cmd_status() {
    local name pid status=0 port
    while read -r name pid; do
        port=$((HTTP_BASE + ${name#node}))
        if kill -0 "$pid" 2>/dev/null && curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
            printf '%s: up (pid %s, http://127.0.0.1:%s)\n' "$name" "$pid" "$port"
        else
            printf '%s: down\n' "$name"
            status=3
        fi
    done < <(pids)
    return "$status"
}

main() {
    case "${1:-}" in
    up) cmd_up "${2:-3}" ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *)
        log "usage: $0 up [N]|down|status"
        exit 2
        ;;
    esac
}

main "$@"
