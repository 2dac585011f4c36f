#!/usr/bin/env bash
# The benchmarks: every scenario of banter-loadgen against Banter and, where it applies, the baseline
# broadcast server, plus the write path beside the ceilings of its broker and database, all in one run
# on this machine. Results: bench-results/<time>/results.jsonl (one JSON report per run), the tables in
# bench-results/<time>/tables.txt, and a summary at the end. BENCHMARKS.md explains and records them.
#
#   scripts/bench.sh            everything (about 25 minutes on 2 cores)
#   scripts/bench.sh fanout chat idle write-path cluster cluster-idle failover tracing   only these parts
#
# Environment (sizes; defaults are the issue's): BENCH_SUBSCRIBERS (1000), BENCH_FANOUT_RATES
# (msgs/s steps, "100,400,1000,1600,2400"), BENCH_ROOMS (1000), BENCH_MEMBERS (10), BENCH_CHAT_RATES
# ("1000,2500,5000,10000"), BENCH_IDLE (18000: one process may hold 20,000 files, ARCHITECTURE.md §9),
# BENCH_STEP_SECS (5), BENCH_PRODUCE (60000 records), BENCH_WINDOW (16), BENCH_PROFILE=1 (perf record
# the node during the chat scenario into perf.data; needs `perf`), BENCH_CLUSTER_RATES (the cluster's
# chat steps, "500,1000,2000"), BENCH_HOP_RATE (100: the cross-node hop at low load),
# BENCH_CLUSTER_IDLE (51000: idle connections over three cluster nodes, three load generators),
# BENCH_TRACING_RATES (the tracing part's chat steps, "1000,2000").
#
# Services: the embedded node needs nothing; the write path and the cluster start the private MariaDB
# of scripts/mariadb.sh and a tansu broker of their own (scripts/kafka.sh with a bench state dir and
# port).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/banter/target}"
# Errors of the tools print as one message, without a backtrace.
export RUST_BACKTRACE=0 RUST_LIB_BACKTRACE=0
BIN="$CARGO_TARGET_DIR/release"
OUT="bench-results/$(date +%Y%m%d-%H%M%S)"
RESULTS="$OUT/results.jsonl"
TABLES="$OUT/tables.txt"
STEP_SECS="${BENCH_STEP_SECS:-5}"
BASELINE_PORT=19100
NODE_PORT=18080
KAFKA_NODE_PORT=18081
NORMAL_NODE_PORT=18083
PIDS=()

log() { printf 'bench.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ -n "${KAFKA_STATE:-}" ]]; then
        BANTER_STATE_DIR="$KAFKA_STATE" BANTER_KAFKA_PORT=19192 scripts/kafka.sh stop >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

loadgen() {
    "$BIN/banter-loadgen" --json "$RESULTS" "$@" | tee -a "$TABLES"
}

wait_port() {
    local port=$1 i
    for i in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.1
    done
    die "nothing listens on port $port"
}

# Settings every benchmark node shares: a load generator sends faster and registers more users than a
# person, and argon2 at its OWASP cost would make registering 30,000 users take minutes.
bench_env() {
    export BANTER_LIMITS__SEND_PER_SECOND=1000000 BANTER_LIMITS__SEND_BURST=1000000 \
        BANTER_LIMITS__AUTH_PER_MINUTE=1000000 BANTER_AUTH__PASSWORD_MEMORY_KIB=64 \
        BANTER_AUTH__PASSWORD_ITERATIONS=1 BANTER_AUTH__ACCESS_TTL_SECS=86400 BANTER_LOG=warn \
        BANTER_LIMITS__LOGIN_PER_ACCOUNT_PER_MINUTE=1000000 BANTER_LIMITS__ROOMS_PER_HOUR=1000000 \
        BANTER_LIMITS__DMS_PER_HOUR=1000000 BANTER_LIMITS__JOINS_PER_MINUTE=1000000 \
        BANTER_LIMITS__MAX_ROOMS_PER_USER=1000000
}

start_embedded() {
    bench_env
    BANTER_HTTP__LISTEN="127.0.0.1:$NODE_PORT" BANTER_DATA_DIR="$OUT/embedded" \
        "$BIN/banter" >"$OUT/embedded.log" 2>&1 &
    NODE_PID=$!
    PIDS+=("$NODE_PID")
    wait_port "$NODE_PORT"
}

start_baseline() {
    "$BIN/banter-loadgen" baseline --listen "127.0.0.1:$BASELINE_PORT" >"$OUT/baseline.log" 2>&1 &
    BASELINE_PID=$!
    PIDS+=("$BASELINE_PID")
    wait_port "$BASELINE_PORT"
}

run_fanout() {
    local rates="${BENCH_FANOUT_RATES:-100,400,1000,1600,2400}" subs="${BENCH_SUBSCRIBERS:-1000}"
    log "fan-out: 1 room, $subs subscribers, rates $rates msgs/s"
    loadgen fanout --baseline --server "127.0.0.1:$BASELINE_PORT" --subscribers "$subs" \
        --rates "$rates" --secs "$STEP_SECS" --pid "$BASELINE_PID"
    loadgen fanout --server "127.0.0.1:$NODE_PORT" --subscribers "$subs" --rates "$rates" \
        --secs "$STEP_SECS" --pid "$NODE_PID"
}

run_chat() {
    local rates="${BENCH_CHAT_RATES:-1000,2500,5000,10000}" rooms="${BENCH_ROOMS:-1000}"
    local members="${BENCH_MEMBERS:-10}"
    log "chat: $rooms rooms x $members members, rates $rates msgs/s"
    loadgen chat --baseline --server "127.0.0.1:$BASELINE_PORT" --rooms "$rooms" \
        --members "$members" --rates "$rates" --secs "$STEP_SECS" --pid "$BASELINE_PID"
    local perf_pid=""
    if [[ "${BENCH_PROFILE:-0}" == 1 ]]; then
        perf record -F 499 -g -p "$NODE_PID" -o "$OUT/perf.data" >/dev/null 2>&1 &
        perf_pid=$!
    fi
    loadgen chat --server "127.0.0.1:$NODE_PORT" --rooms "$rooms" --members "$members" \
        --rates "$rates" --secs "$STEP_SECS" --pid "$NODE_PID"
    if [[ -n "$perf_pid" ]]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
        perf report -i "$OUT/perf.data" --no-children --sort dso,symbol -g none --percent-limit 0.5 --stdio \
            >"$OUT/perf-report.txt" 2>/dev/null || true
        log "profile in $OUT/perf-report.txt"
    fi
    # The same node with `store.sqlite_synchronous = "normal"`: no fsync per journal commit.
    BANTER_HTTP__LISTEN="127.0.0.1:$NORMAL_NODE_PORT" BANTER_DATA_DIR="$OUT/embedded-normal" \
        BANTER_STORE__SQLITE_SYNCHRONOUS=normal "$BIN/banter" >"$OUT/embedded-normal.log" 2>&1 &
    local normal_pid=$!
    PIDS+=("$normal_pid")
    wait_port "$NORMAL_NODE_PORT"
    loadgen chat --name chat-normal-sync --server "127.0.0.1:$NORMAL_NODE_PORT" --rooms "$rooms" \
        --members "$members" --rates "$rates" --secs "$STEP_SECS" --pid "$normal_pid"
    kill "$normal_pid" 2>/dev/null || true
}

run_idle() {
    local n="${BENCH_IDLE:-18000}"
    log "idle: $n connections"
    loadgen idle --baseline --server "127.0.0.1:$BASELINE_PORT" --connections "$n" \
        --pid "$BASELINE_PID"
    loadgen idle --server "127.0.0.1:$NODE_PORT" --connections "$n" --pid "$NODE_PID"
}

# Starts (once per run) the private MariaDB and a tansu broker of the bench's own; sets MYSQL_URL and
# BROKERS.
start_stack() {
    [[ -n "${BROKERS:-}" ]] && return 0
    local mysql_export kafka_export
    mysql_export="$(scripts/mariadb.sh start | tail -n 1)"
    [[ "$mysql_export" =~ ^export\ BANTER_TEST_MYSQL_URL=(mysql://[^[:space:]]+)$ ]] ||
        die "scripts/mariadb.sh start printed '$mysql_export'"
    MYSQL_URL="${BASH_REMATCH[1]}"
    KAFKA_STATE="$PWD/$OUT/kafka-state"
    kafka_export="$(BANTER_STATE_DIR="$KAFKA_STATE" BANTER_KAFKA_PORT=19192 scripts/kafka.sh start | tail -n 1)"
    [[ "$kafka_export" =~ ^export\ BANTER_TEST_KAFKA_BROKERS=([^[:space:]]+)$ ]] ||
        die "scripts/kafka.sh start printed '$kafka_export'"
    BROKERS="${BASH_REMATCH[1]}"
}

# (a) WebSocket clients → RECEIPT through the Kafka journal beside rdkafka alone on the same broker;
# (b) the persister's drain into MariaDB beside plain INSERTs of the same rows.
run_write_path() {
    local mysql_url brokers db url produce ceiling half gateway_pid
    start_stack
    mysql_url="$MYSQL_URL"
    brokers="$BROKERS"
    db="bench_$(date +%s)"
    mariadb_exec "$mysql_url" "CREATE DATABASE $db"
    url="$mysql_url/$db"

    produce="${BENCH_PRODUCE:-60000}"
    log "write path: broker ceiling, $produce records"
    loadgen produce --brokers "$brokers" --topic loadgen.ceiling --messages "$produce" --rooms 1000
    ceiling="$(last_field per_sec)"
    half="$(python3 -c "print(round($ceiling / 2))")"

    bench_env
    BANTER_HTTP__LISTEN="127.0.0.1:$KAFKA_NODE_PORT" BANTER_DATA_DIR="$OUT/gateway" \
        BANTER_STORE__URL="$url" BANTER_JOURNAL__KIND=kafka BANTER_JOURNAL__KAFKA__BROKERS="$brokers" \
        BANTER_NODE__ROLES='[gateway]' "$BIN/banter" >"$OUT/gateway.log" 2>&1 &
    gateway_pid=$!
    PIDS+=("$gateway_pid")
    wait_port "$KAFKA_NODE_PORT"
    # No persister yet: the closed loop's messages wait in Kafka for the drain below. (Rooms are all
    # active before the loop starts: a room activated while a large backlog waits unpersisted reads
    # that backlog's partition tail, see BENCHMARKS.md.)
    log "write path: closed loop to RECEIPT, no persister running"
    loadgen chat --name write-path --server "127.0.0.1:$KAFKA_NODE_PORT" --rooms 100 --members 2 \
        --window "${BENCH_WINDOW:-16}" --secs $((STEP_SECS * 2)) --user-prefix wp --pid "$gateway_pid"
    local stored
    stored="$(python3 - "$RESULTS" <<'EOF'
import json, sys
n = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("scenario") == "write-path":
        n += sum(s["receipted"] for s in r["steps"])
print(n)
EOF
)"
    log "write path: a persister drains $stored messages; rdkafka reads them alone"
    BANTER_HTTP__LISTEN="127.0.0.1:$((KAFKA_NODE_PORT + 1))" BANTER_DATA_DIR="$OUT/persister" \
        BANTER_STORE__URL="$url" BANTER_JOURNAL__KIND=kafka BANTER_JOURNAL__KAFKA__BROKERS="$brokers" \
        BANTER_NODE__ROLES='[persister]' "$BIN/banter" >"$OUT/persister.log" 2>&1 &
    PIDS+=("$!")
    loadgen drain --mysql-url "$url" --expect "$stored"
    loadgen consume --brokers "$brokers" --topic chat.messages
    log "write path: $half msgs/s (half the broker's ceiling): rdkafka alone, then Banter"
    loadgen produce --brokers "$brokers" --topic loadgen.ceiling --rooms 1000 --rate "$half" \
        --secs $((STEP_SECS * 2))
    loadgen chat --name write-path-half --server "127.0.0.1:$KAFKA_NODE_PORT" --rooms 100 \
        --members 2 --rates "$half" --secs $((STEP_SECS * 2)) --user-prefix wp2 --pid "$gateway_pid"
    loadgen chat --name chat-durable --server "127.0.0.1:$KAFKA_NODE_PORT" \
        --rooms "${BENCH_ROOMS:-1000}" --members "${BENCH_MEMBERS:-10}" --rates "$half" \
        --secs $((STEP_SECS * 2)) --pid "$gateway_pid"
    loadgen insert --mysql-url "$url" --batch 500
    mariadb_exec "$mysql_url" "DROP DATABASE $db"
}

# Sums the series of metric $2 (whose line contains $3) on the node at port $1.
metric_sum() {
    curl -fsS "http://127.0.0.1:$1/metrics" | awk -v name="$2" -v want="$3" '
        index($0, name) == 1 && (substr($0, length(name) + 1, 1) ~ /[{ ]/) && index($0, want) { s += $NF }
        END { printf "%.0f\n", s }'
}

# Starts a node of the cluster bench on the stack: $1 name, $2 HTTP port, $3 database, $4 topic
# prefix, then extra VAR=value settings. Prints its pid.
start_stack_node() {
    local name=$1 port=$2 db=$3 topic=$4
    shift 4
    bench_env
    env BANTER_HTTP__LISTEN="127.0.0.1:$port" BANTER_DATA_DIR="$OUT/$name" \
        BANTER_STORE__URL="$MYSQL_URL/$db" BANTER_JOURNAL__KIND=kafka \
        BANTER_JOURNAL__KAFKA__BROKERS="$BROKERS" BANTER_JOURNAL__KAFKA__TOPIC="$topic.messages" \
        BANTER_JOURNAL__KAFKA__DEAD_LETTER_TOPIC="$topic.dlq" BANTER_PERSISTER__GROUP_ID="$topic.persister" \
        "$@" "$BIN/banter" >"$OUT/$name.log" 2>&1 &
    echo $!
}

# Sums the fan-out envelopes the cluster's nodes received.
fan_out_frames() {
    local p n=0
    for p in 18091 18092 18093; do
        n=$((n + $(metric_sum $p banter_cluster_routed_in_total 'kind="fan_out"')))
    done
    echo "$n"
}

# Scenario 5: scenario 2's chat and scenario 1's fan-out on three cluster nodes beside one node, on
# the same stack (MariaDB + tansu, a database and a topic each), in one run; then the cross-node hop
# at low load (two members per room on two nodes, beside the same on one node).
run_cluster() {
    local rates="${BENCH_CLUSTER_RATES:-500,1000,2000}" rooms="${BENCH_ROOMS:-1000}"
    local members="${BENCH_MEMBERS:-10}" hop="${BENCH_HOP_RATE:-100}" stamp three three_pids
    local cookie="$PWD/$OUT/cluster-cookie" one_pid before after sent k
    local pids=() ports=()
    start_stack
    stamp="$(date +%s)"
    mariadb_exec "$MYSQL_URL" "CREATE DATABASE bench_one_$stamp; CREATE DATABASE bench_three_$stamp"
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$cookie")
    one_pid="$(start_stack_node one 18090 "bench_one_$stamp" "bench$stamp.one")"
    PIDS+=("$one_pid")
    for k in 1 2 3; do
        pids+=("$(start_stack_node "node$k" $((18090 + k)) "bench_three_$stamp" "bench$stamp.three" \
            BANTER_CLUSTER__ENABLED=true BANTER_CLUSTER__LISTEN="127.0.0.1:$((17400 + k))" \
            BANTER_CLUSTER__COOKIE_FILE="$cookie")")
        ports+=("127.0.0.1:$((18090 + k))")
    done
    PIDS+=("${pids[@]}")
    for k in 0 1 2 3; do wait_port $((18090 + k)); done
    # Every node linked to the two others, all shards held.
    wait_settled 18091 18092 18093
    three="$(IFS=,; echo "${ports[*]}")"
    three_pids="$(IFS=,; echo "${pids[*]}")"
    log "cluster: chat $rooms rooms x $members, rates $rates: one node, then three"
    loadgen chat --name cluster-chat-one --server 127.0.0.1:18090 --rooms "$rooms" \
        --members "$members" --rates "$rates" --secs "$STEP_SECS" --user-prefix c1 --pid "$one_pid"
    loadgen chat --name cluster-chat-three --server "$three" --rooms "$rooms" --members "$members" \
        --rates "$rates" --secs "$STEP_SECS" --user-prefix c3 --pid "$three_pids"
    log "cluster: the cross-node hop at $hop msgs/s (2 members a room: on one node, then on two)"
    loadgen chat --name cluster-hop-one --server 127.0.0.1:18090 --rooms 100 --members 2 \
        --rates "$hop" --secs $((STEP_SECS * 2)) --user-prefix h1 --pid "$one_pid"
    loadgen chat --name cluster-hop-three --server "$three" --rooms 100 --members 2 \
        --rates "$hop" --secs $((STEP_SECS * 2)) --user-prefix h3 --pid "$three_pids"
    log "cluster: fan-out to ${BENCH_SUBSCRIBERS:-1000} subscribers over three nodes"
    before="$(fan_out_frames)"
    loadgen fanout --name cluster-fanout-three --server "$three" \
        --subscribers "${BENCH_SUBSCRIBERS:-1000}" --rates "${BENCH_CLUSTER_FANOUT_RATES:-100,400,1000}" \
        --secs "$STEP_SECS" --pid "$three_pids"
    after="$(fan_out_frames)"
    sent="$(last_field_sum sent)"
    python3 - "$RESULTS" "$((after - before))" "$sent" <<'EOF' | tee -a "$TABLES"
import json, sys
frames, sent = int(sys.argv[2]), int(sys.argv[3])
per = frames / max(sent, 1)
print(f"cluster fan-out: {frames} fan-out frames between nodes for {sent} messages = "
      f"{per:.2f} per message (at most 2: one to each node but the room's)")
with open(sys.argv[1], "a") as f:
    f.write(json.dumps({"scenario": "cluster-fanout-frames", "frames": frames,
                        "messages": sent, "per_message": per}) + "\n")
EOF
    for k in "${pids[@]}" "$one_pid"; do kill -TERM "$k" 2>/dev/null || true; done
    for k in "${pids[@]}" "$one_pid"; do
        for _ in $(seq 1 150); do kill -0 "$k" 2>/dev/null || break; sleep 0.2; done
    done
    mariadb_exec "$MYSQL_URL" "DROP DATABASE bench_one_$stamp; DROP DATABASE bench_three_$stamp"
}

# Tracing's cost: scenario 2's chat on one node of the stack (Kafka journal, MariaDB) with OTLP
# export off, then on at the default 1% ratio, then at 100%, each a fresh node, the collector a
# stand-in that accepts everything (scripts/otlp_sink.py).
run_tracing() {
    local rates="${BENCH_TRACING_RATES:-1000,2000}" stamp sink_pid pid label ratio k=0
    start_stack
    stamp="$(date +%s)"
    python3 scripts/otlp_sink.py 19418 >"$OUT/otlp-sink.log" 2>&1 &
    sink_pid=$!
    PIDS+=("$sink_pid")
    # "away": the default ratio with the collector's port closed, every export failing.
    for label in off 0.01 1 away; do
        k=$((k + 1))
        mariadb_exec "$MYSQL_URL" "CREATE DATABASE bench_tracing_${k}_$stamp"
        if [[ $label == off ]]; then
            pid="$(start_stack_node "tracing-$k" 18094 "bench_tracing_${k}_$stamp" "bench$stamp.t$k")"
        elif [[ $label == away ]]; then
            pid="$(start_stack_node "tracing-$k" 18094 "bench_tracing_${k}_$stamp" "bench$stamp.t$k" \
                BANTER_TELEMETRY__OTLP_ENDPOINT=http://127.0.0.1:19419 \
                BANTER_TELEMETRY__OTLP_PROTOCOL=http BANTER_TELEMETRY__SAMPLE_RATIO=0.01)"
        else
            ratio=$label
            pid="$(start_stack_node "tracing-$k" 18094 "bench_tracing_${k}_$stamp" "bench$stamp.t$k" \
                BANTER_TELEMETRY__OTLP_ENDPOINT=http://127.0.0.1:19418 \
                BANTER_TELEMETRY__OTLP_PROTOCOL=http BANTER_TELEMETRY__SAMPLE_RATIO="$ratio")"
        fi
        PIDS+=("$pid")
        wait_port 18094
        log "tracing: chat ${BENCH_ROOMS:-1000} rooms x ${BENCH_MEMBERS:-10}, export $label"
        loadgen chat --name "tracing-$label" --server 127.0.0.1:18094 --rooms "${BENCH_ROOMS:-1000}" \
            --members "${BENCH_MEMBERS:-10}" --rates "$rates" --secs "$STEP_SECS" \
            --user-prefix "t$k" --pid "$pid"
        curl -fsS http://127.0.0.1:18094/metrics | grep '^banter_telemetry_spans_total' \
            | sed "s/^/tracing $label: /" | tee -a "$TABLES" || true
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        mariadb_exec "$MYSQL_URL" "DROP DATABASE bench_tracing_${k}_$stamp"
    done
    kill -TERM "$sink_pid" 2>/dev/null || true
    sleep 0.5
    tee -a "$TABLES" <"$OUT/otlp-sink.log"
}

# Waits until the cluster nodes on HTTP ports "$@" are linked to each other and hold every shard.
wait_settled() {
    local n=$# live owned p k
    for k in $(seq 1 300); do
        live=0 owned=0
        for p in "$@"; do
            live=$((live + $(metric_sum "$p" banter_cluster_members_live "")))
            owned=$((owned + $(metric_sum "$p" banter_cluster_shards_owned "")))
        done
        [[ $live == $((n * n)) && $owned == 256 ]] && return 0
        sleep 0.2
    done
    die "the cluster did not settle ($live members, $owned shards)"
}

# The CPU the processes "$@" (settled cluster nodes with no client) use over 20 s, each.
idle_cpu() {
    local before=() k i=0
    sleep 5
    for k in "$@"; do before+=("$(awk '{print $14 + $15}' "/proc/$k/stat")"); done
    sleep 20
    for k in "$@"; do
        python3 - "$RESULTS" "$k" "${before[i]}" "$(awk '{print $14 + $15}' "/proc/$k/stat")" \
            "$(getconf CLK_TCK)" <<'EOF' | tee -a "$TABLES"
import json, sys
pid, t0, t1, hz = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
share = (t1 - t0) / hz / 20
print(f"idle cluster node {pid}: {share * 100:.2f}% of a core (20 s, no client)")
with open(sys.argv[1], "a") as f:
    f.write(json.dumps({"scenario": "cluster-idle-cpu", "pid": int(pid), "core_share": share}) + "\n")
EOF
        i=$((i + 1))
    done
}

# Idle connections spread over three fresh cluster nodes: BENCH_CLUSTER_IDLE (51000) connections,
# a third to each node from a load generator of its own (one process may hold 20,000 files), all
# three at once; each reads its node's RSS before and after, and the sum over the nodes is divided
# by the connections.
run_cluster_idle() {
    local total="${BENCH_CLUSTER_IDLE:-51000}" stamp k per cookie="$PWD/$OUT/cluster-idle-cookie"
    local pids=() ports=() gens=()
    start_stack
    stamp="$(date +%s)"
    mariadb_exec "$MYSQL_URL" "CREATE DATABASE bench_idle_$stamp"
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$cookie")
    for k in 1 2 3; do
        pids+=("$(start_stack_node "idle$k" $((18094 + k)) "bench_idle_$stamp" "bench$stamp.idle" \
            BANTER_CLUSTER__ENABLED=true BANTER_CLUSTER__LISTEN="127.0.0.1:$((17410 + k))" \
            BANTER_CLUSTER__COOKIE_FILE="$cookie")")
        ports+=($((18094 + k)))
    done
    PIDS+=("${pids[@]}")
    for k in "${ports[@]}"; do wait_port "$k"; done
    wait_settled "${ports[@]}"
    idle_cpu "${pids[@]}"
    per=$((total / 3))
    log "cluster idle: $((per * 3)) connections over three nodes, $per each, at once"
    for k in 0 1 2; do
        # Held long enough that the three generators hold theirs at the same time when each reads.
        loadgen idle --server "127.0.0.1:${ports[k]}" --connections "$per" --pid "${pids[k]}" \
            --user-prefix "ci$k" --hold-secs 90 &
        gens+=($!)
    done
    for k in "${gens[@]}"; do wait "$k" || die "an idle load generator failed"; done
    python3 - "$RESULTS" <<'EOF' | tee -a "$TABLES"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
idle = [json.loads(l) for l in lines if '"rss_per_connection"' in l][-3:]
opened = sum(r["open"] for r in idle)
grown = sum(r["rss_after"] - r["rss_before"] for r in idle)
per = grown / max(opened, 1)
print(f"cluster idle: {opened} connections open over three nodes, RSS grew {grown / 2**20:.1f} MiB "
      f"in all = {per / 1024:.1f} KiB per connection (target <= 8 KiB)")
with open(sys.argv[1], "a") as f:
    f.write(json.dumps({"scenario": "cluster-idle", "connections": opened,
                        "rss_grown": grown, "rss_per_connection_all": per}) + "\n")
EOF
    for k in "${pids[@]}"; do kill -TERM "$k" 2>/dev/null || true; done
    for k in "${pids[@]}"; do
        for _ in $(seq 1 150); do kill -0 "$k" 2>/dev/null || break; sleep 0.2; done
    done
    mariadb_exec "$MYSQL_URL" "DROP DATABASE bench_idle_$stamp"
}

# The failover time with the default settings: tests/e2e/cluster/failover.rs's ignored test (three
# nodes on the private MariaDB and a tansu of the test's own; kill -9 of one under load).
run_failover() {
    local mysql_export
    mysql_export="$(scripts/mariadb.sh start | tail -n 1)"
    [[ "$mysql_export" =~ ^export\ BANTER_TEST_MYSQL_URL=(mysql://[^[:space:]]+)$ ]] ||
        die "scripts/mariadb.sh start printed '$mysql_export'"
    log "failover: kill -9 of one of three nodes with the default lease settings"
    BANTER_TEST_MYSQL_URL="${BASH_REMATCH[1]}" BANTER_REQUIRE_KAFKA=1 BANTER_REQUIRE_MYSQL=1 \
        cargo test -p banter-tests --test integration failover_time_with_the_default_settings \
        -- --ignored --nocapture >"$OUT/failover.log" 2>&1 || die "failover test failed; see $OUT/failover.log"
    grep '^failover time' "$OUT/failover.log" | tee -a "$TABLES"
    python3 - "$RESULTS" "$OUT/failover.log" <<'EOF'
import json, re, sys
line = next(l for l in open(sys.argv[2]) if l.startswith("failover time"))
rooms = [float(x) for x in re.search(r"\[(.*?)\]", line).group(1).split(", ")]
with open(sys.argv[1], "a") as f:
    f.write(json.dumps({"scenario": "failover", "rooms_s": rooms, "slowest_s": max(rooms)}) + "\n")
EOF
}

# Sums field $1 over the steps of the last report.
last_field_sum() {
    python3 -c "import json; r = json.loads(open('$RESULTS').read().splitlines()[-1]); print(sum(s['$1'] for s in r['steps']))"
}

mariadb_exec() {
    local rest user password host port
    rest="${1#mysql://}"; user="${rest%%:*}"; rest="${rest#*:}"; password="${rest%%@*}"
    rest="${rest#*@}"; host="${rest%%:*}"; port="${rest#*:}"
    MYSQL_PWD="$password" "$(command -v mariadb || command -v mysql)" --no-defaults --protocol=TCP \
        -h "$host" -P "$port" -u "$user" -e "$2"
}

last_field() {
    python3 -c "import json,sys; print(json.loads(open('$RESULTS').read().splitlines()[-1])['$1'])"
}

main() {
    local parts=("$@")
    [[ ${#parts[@]} -gt 0 ]] || parts=(fanout chat idle write-path cluster cluster-idle failover tracing)
    mkdir -p "$OUT"
    log "building (release)"
    cargo build --release -p banter-node -p banter-loadgen >&2
    {
        echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r)"
        echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    } | tee "$TABLES"
    local need_local=0 p
    for p in "${parts[@]}"; do
        [[ "$p" == write-path || "$p" == cluster* || "$p" == failover || "$p" == tracing ]] || need_local=1
    done
    if [[ $need_local == 1 ]]; then
        start_baseline
        start_embedded
    fi
    for p in "${parts[@]}"; do
        case "$p" in
            fanout) run_fanout ;;
            chat) run_chat ;;
            idle) run_idle ;;
            write-path) run_write_path ;;
            cluster) run_cluster ;;
            cluster-idle) run_cluster_idle ;;
            failover) run_failover ;;
            tracing) run_tracing ;;
            *) die "unknown part '$p' (fanout, chat, idle, write-path, cluster, cluster-idle, failover, tracing)" ;;
        esac
    done
    python3 scripts/bench_summary.py "$RESULTS" | tee -a "$TABLES"
    log "results in $OUT"
}

main "$@"
