//! Load generator and benchmark tools for Banter.
//!
//! `banter-loadgen` drives STOMP-over-WebSocket clients against a Banter node (or against the
//! [`baseline`] server: the plainest tokio-tungstenite broadcast server, the limit of this stack on
//! this machine) and measures while it checks: every delivery is checked for loss, duplicates and
//! order ([`check`]), latencies go into HDR histograms, and the [`report`] is JSON and a table.
//!
//! Scenarios ([`scenario`]):
//! - **rooms** (`fanout` and `chat` are two shapes of it): R rooms of M members, S senders per room,
//!   steps of offered rates (open loop, latency measured from the intended send time, so a stalled
//!   server cannot hide its queueing) or a closed loop of W outstanding SENDs per sender (the
//!   sustained rate to RECEIPT); given the server's process id, each step also reports the server's CPU
//!   (cores busy, µs per message) and the load generator's own, since both share the machine;
//! - **idle**: N authenticated, subscribed, silent connections, and the server's RSS per connection.
//!
//! Ceilings of the stack beside Banter ([`ceiling`]): rdkafka producing the same records straight to
//! the same broker, plain multi-row INSERTs of the persister's rows into the same MariaDB, and the
//! persister's own drain rate read from the database.
//!
//! Connections spread their source addresses over 127.0.0.0/8 ([`net`]) so one loopback address's
//! ~28k ephemeral ports are no limit.

pub mod api;
pub mod baseline;
pub mod ceiling;
pub mod check;
pub mod client;
pub mod net;
pub mod report;
pub mod scenario;
pub mod wire;
