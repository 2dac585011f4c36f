# The README's two commands: `make run` starts a node, `make test` runs every test.
# Builds go to a cache folder outside the clone (override with CARGO_TARGET_DIR).
export CARGO_TARGET_DIR ?= $(HOME)/.cache/banter/target

.PHONY: run run-feed test build fmt lint stack cluster cluster-down

# Builds the web app first when its build is missing or older than its sources (scripts/web.sh),
# and serves it at / (BANTER_HTTP__WEB_DIR, unless set already).
run:
	web="$$(bash scripts/web.sh build | tail -n 1)" && \
	BANTER_HTTP__WEB_DIR="$${BANTER_HTTP__WEB_DIR:-$$web}" cargo run --release -p banter-node --bin banter -- $(ARGS)

# A node whose "Earthquakes" room follows the replay feed server (the recorded EMSC fixture, repeating).
run-feed:
	bash scripts/run-feed.sh $(ARGS)

test:
	bash scripts/test.sh

# Local full stack without Docker (MariaDB + tansu); prints how to run a node against it.
stack:
	bash scripts/stack.sh up

# Three nodes of one cluster on the local full stack (started if needed); `make cluster-down` stops them.
cluster:
	bash scripts/cluster.sh up 3

cluster-down:
	bash scripts/cluster.sh down

build:
	cargo build --workspace --all-targets

fmt:
	cargo fmt --all

lint:
	cargo clippy --workspace --all-targets
