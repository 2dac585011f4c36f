//! End-to-end scenarios (issue #2).
//!
//! - [`chat`]: DM and group conversation, live delivery, typing, read markers, unread counts, members,
//!   leave — on SQLite and on MariaDB;
//! - [`history`]: keyset paging through 500 messages, limits, access;
//! - [`feeds`]: an ingest source fed by the replay server: messages, edits and tombstones once,
//!   filters, the GeoJSON endpoint, skipped frames counted, an idle node while the feed is down;
//! - [`resume`]: `since` replay after a disconnect, within and beyond the room's ring;
//! - [`edits`]: edits and deletes — who may, live, on resume, in history, across `kill -9`, and
//!   the deleted text gone from the store — on SQLite and on Kafka + MariaDB;
//! - [`crash`]: SIGKILL mid-conversation, restart, no acknowledged message lost, no seq reused;
//! - [`stomp_errors`], [`http_errors`], [`auth`], [`websocket`]: bad input, each answered with the
//!   exact error while a bystander connection keeps being served;
//! - [`front_door`]: slow-loris, idle and slow-body HTTP clients cut off, connection caps refused;
//! - [`hostile`]: clients that try to make the node hold unbounded resources, each shown bounded;
//! - [`dms`]: leaving a DM, and opening it again to come back;
//! - [`room_limits`]: per-user budgets on creating rooms, opening DMs and joining (429 with
//!   `Retry-After`), the cap on rooms per user, and keyset pages of the room and member lists;
//! - [`sessions`]: logout, and a replayed refresh token revoking its chain;
//! - [`signing_keys`]: two nodes on one MariaDB database accept each other's tokens, publish the same
//!   keys, and keep old tokens valid across key rotations until they expire;
//! - [`cluster`]: three nodes on one MariaDB and one broker link up, split the shards, take over
//!   from a killed member and from one stopped with SIGTERM; a cluster refuses the embedded adapters;
//! - [`shutdown`]: SIGTERM tells every client to reconnect elsewhere (ERROR, close 1012), loses nothing;
//! - [`third_party`]: the stock Python client `stomp.py` against the node;
//! - [`metrics`]: the metrics move as messages flow and reach a real OTLP receiver under the names
//!   `/metrics` shows;
//! - [`traces`]: a message's spans reach a real OTLP receiver under the client's trace context;
//! - [`logs`]: JSON log lines and OTLP log records name the trace of the request they were written in;
//! - [`observability`]: the Grafana provisioning, dashboards, alert rules and collector config of
//!   `observability/` agree with each other, pass `promtool`, and name only metrics a node exports;
//! - [`uploads`]: a member's upload grant, the file posted straight to the store, and what the
//!   rules refuse, on a real S3 server and on the embedded folder;
//! - [`web`]: the web app's files at `/`, its routes and cache headers, the page without a build;
//! - [`browser`]: the web app in Chromium (Playwright): two people register, open a DM and chat
//!   live (typing, read markers, unread counts, presence), scroll back through history, edit and
//!   delete, and keep chatting across a `kill -9` and restart of the node, with no gap or duplicate;
//! - [`blobs`]: the blob stores' contract, on a real S3 server (s3s-fs) and on the local folder;
//! - [`deploy`]: the compose stack validates with `docker compose config` and agrees with the code
//!   (settings, ports, addresses, pinned images, mounted files), hadolint, shellcheck;
//! - [`api_contract`]: `schemathesis` runs every check of the OpenAPI document against the handlers.
//!
//! Tests that need no config of their own share one node ([`banter_tests::shared_node`]) and isolate
//! themselves with unique usernames and room names.

mod api_contract;
mod auth;
mod blobs;
mod broker;
mod browser;
mod chat;
mod cluster;
mod crash;
mod deploy;
mod dms;
mod durable;
mod edits;
mod feeds;
mod front_door;
mod history;
mod hostile;
mod http_errors;
mod loadgen;
mod logs;
mod metrics;
mod observability;
mod resume;
mod room_limits;
mod sessions;
mod shutdown;
mod signing_keys;
mod stomp_errors;
mod third_party;
mod traces;
mod uploads;
mod web;
mod websocket;
