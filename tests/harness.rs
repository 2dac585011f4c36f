//! Integration test harness: starts real `banter` processes on 127.0.0.1 and talks to them the way
//! clients do, over REST and STOMP-over-WebSocket. It is a library so that the integration tests
//! (`tests/lib.rs`) and, later, the load generator share it.
//!
//! Layout:
//! - [`node`]: finding (building once per run) the `banter` binary, [`NodeBuilder`] / [`Node`] (one
//!   process with its port, data dir and store), [`shared_node`] for tests that need no config of their own;
//! - [`mysql`]: throwaway MariaDB/MySQL databases, one per node that asks for one;
//! - [`api`]: a typed REST client ([`Api`]) and the JSON objects of `docs/PROTOCOL.md`;
//! - [`stomp`]: a STOMP 1.2 client over WebSocket ([`StompClient`]) built on `banter_proto::stomp`;
//!   [`frames`]: building and reading frames (re-exported by [`stomp`]);
//! - [`witness`]: a bystander connection ([`Witness`]) that shows a node still serves others;
//! - [`otlp`]: a stand-in OpenTelemetry collector ([`Otlp`]) that keeps the spans, metrics and
//!   log records a node exports over OTLP/HTTP;
//! - [`s3`]: a real S3 server per test ([`S3Server`](s3::S3Server), s3s-fs); [`tools`]: where the
//!   service binaries are, and skipping or failing when one is missing;
//! - [`tokens`]: forged JWTs (`alg: none`, a foreign Ed25519 key) for the authentication tests;
//! - [`browser`]: the web app's build, Chromium and the Playwright scripts of `web-angular/e2e/`;
//! - [`util`]: unique names, bounded polling.
//!
//! Every wait is bounded; nothing synchronises by sleeping where an event can be awaited.

#[path = "harness/api.rs"]
pub mod api;
#[path = "harness/browser.rs"]
pub mod browser;
#[path = "harness/frames.rs"]
pub mod frames;
#[path = "harness/kafka.rs"]
pub mod kafka;
#[path = "harness/mysql.rs"]
pub mod mysql;
#[path = "harness/node.rs"]
pub mod node;
#[path = "harness/otlp.rs"]
pub mod otlp;
#[path = "harness/s3.rs"]
pub mod s3;
#[path = "harness/stomp.rs"]
pub mod stomp;
#[path = "harness/tokens.rs"]
pub mod tokens;
#[path = "harness/tools.rs"]
pub mod tools;
#[path = "harness/util.rs"]
pub mod util;
#[path = "harness/watched.rs"]
pub mod watched;
#[path = "harness/witness.rs"]
pub mod witness;

pub use api::{
    Api, ApiError, HistoryPage, Member, Message, Resp, Room, RoomSummary, Session, TestUser, User,
};
pub use frames::Receipt;
pub use node::{Node, NodeBuilder, banter_bin, shared_node};
pub use otlp::Otlp;
pub use stomp::StompClient;
pub use util::{eventually, unique};
pub use witness::Witness;
