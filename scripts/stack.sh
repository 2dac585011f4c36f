#!/usr/bin/env bash
# The local full stack without Docker: the private MariaDB of scripts/mariadb.sh with a `banter`
# database, and the Kafka-protocol broker (tansu) of scripts/kafka.sh as the journal. A node then runs
# against them with scripts/full-stack.toml. (Production runs Apache Kafka and MySQL from compose/.)
#
#   scripts/stack.sh up       start (or reuse) MariaDB and the broker, create the database, print how
#                             to run a node against them (`make stack` does this)
#   scripts/stack.sh down     stop the broker, then MariaDB
#   scripts/stack.sh status   tell whether both run (exit 0) or not (exit 3)
#
# The broker's first start builds tansu (~10.5 min on 2 cores, once per machine). The node creates its
# topics itself at start-up. Environment: as scripts/mariadb.sh and scripts/kafka.sh (BANTER_STATE_DIR,
# BANTER_MYSQL_PORT, BANTER_KAFKA_PORT, ...). Progress goes to stderr, the instructions to stdout.
set -euo pipefail

readonly DATABASE=banter
readonly CONFIG=scripts/full-stack.toml
# What scripts/full-stack.toml says; other ports are passed to the node as environment overrides.
readonly CONFIG_MYSQL_PORT=3307
readonly CONFIG_KAFKA_BROKERS=127.0.0.1:19092

log() {
    printf 'stack.sh: %s\n' "$*" >&2
}

die() {
    log "error: $*"
    exit 1
}

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Creates the database if missing, as the application user, over TCP (the way the node connects).
create_database() {
    local url=$1 rest user password host port client
    # url is mysql://USER:PASS@HOST:PORT, as scripts/mariadb.sh prints it.
    rest="${url#mysql://}"
    user="${rest%%:*}"
    rest="${rest#*:}"
    password="${rest%%@*}"
    rest="${rest#*@}"
    host="${rest%%:*}"
    port="${rest#*:}"
    client="$(command -v mariadb || command -v mysql)" || die "no mariadb/mysql client binary"
    MYSQL_PWD="$password" "$client" --no-defaults --protocol=TCP -h "$host" -P "$port" -u "$user" \
        -e "CREATE DATABASE IF NOT EXISTS \`$DATABASE\`" ||
        die "could not create database $DATABASE on $host:$port as $user"
    log "database $DATABASE present on $host:$port"
}

cmd_up() {
    local mysql_export kafka_export mysql_url brokers store_url overrides=""
    mysql_export="$(scripts/mariadb.sh start | tail -n 1)"
    [[ "$mysql_export" =~ ^export\ BANTER_TEST_MYSQL_URL=(mysql://[^[:space:]]+)$ ]] ||
        die "scripts/mariadb.sh start printed '$mysql_export', not an export line"
    mysql_url="${BASH_REMATCH[1]}"
    create_database "$mysql_url"

    kafka_export="$(scripts/kafka.sh start | tail -n 1)"
    [[ "$kafka_export" =~ ^export\ BANTER_TEST_KAFKA_BROKERS=([^[:space:]]+)$ ]] ||
        die "scripts/kafka.sh start printed '$kafka_export', not an export line"
    brokers="${BASH_REMATCH[1]}"

    store_url="$mysql_url/$DATABASE"
    if [[ "$mysql_url" != *":$CONFIG_MYSQL_PORT" ]]; then
        overrides+="BANTER_STORE__URL=$store_url "
    fi
    if [[ "$brokers" != "$CONFIG_KAFKA_BROKERS" ]]; then
        overrides+="BANTER_JOURNAL__KAFKA__BROKERS=$brokers "
    fi
    cat <<EOF
The stack is up:
  store    $store_url (MariaDB)
  journal  Kafka protocol at $brokers (tansu; the node creates its topics at start-up)
Run a node against it:
  ${overrides}BANTER_CONFIG=$CONFIG make run
Stop it with: scripts/stack.sh down
EOF
}

cmd_down() {
    scripts/kafka.sh stop
    scripts/mariadb.sh stop
}

cmd_status() {
    local status=0
    printf 'mariadb: '
    scripts/mariadb.sh status || status=3
    printf 'kafka:   '
    scripts/kafka.sh status || status=3
    return "$status"
}

main() {
    case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *)
        log "usage: $0 up|down|status"
        exit 2
        ;;
    esac
}

main "$@"
