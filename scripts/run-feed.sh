#!/usr/bin/env bash
# `make run-feed`: a node with a live feed. The replay server serves the recorded EMSC fixture
# (nodes/feeds/fixtures/emsc.jsonl, over and over, one frame every 2 s) on 127.0.0.1:8765, and the
# node's "Earthquakes" feed room follows it. Extra arguments go to the node. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/banter/target}"
listen="${BANTER_FEED_LISTEN:-127.0.0.1:8765}"
cargo build --release -p banter-feeds --bin banter-feed-replay
"$CARGO_TARGET_DIR/release/banter-feed-replay" --listen "$listen" --interval-ms 2000 --repeat &
replay=$!
trap 'kill "$replay" 2>/dev/null || true' EXIT
web="$(bash scripts/web.sh build | tail -n 1)"
export BANTER_HTTP__WEB_DIR="${BANTER_HTTP__WEB_DIR:-$web}"
export BANTER_FEEDS__SOURCES="[{name=\"emsc\",kind=\"emsc\",url=\"ws://$listen/\",room=\"Earthquakes\"}]"
cargo run --release -p banter-node --bin banter -- "$@"
