//! Banter's cluster layer: transport on ractor_cluster 0.16, membership, links and placement.
//!
//! Built on a ractor_cluster transport kept small and tested against real peers:
//! - [`node`]: a [`ClusterNode`] — a ractor_cluster `NodeServer` (cookie authentication, TCP framing,
//!   process-group sync) behind Banter's own listener, with the session events ([`NodeEvent`]);
//! - [`guard`]: what ractor_cluster leaves unbounded on the cluster port: connection caps, a handshake
//!   deadline, counted refusals;
//! - [`tls`]: optional mutual TLS on the cluster port (`[cluster.tls]`), its handshake run by the
//!   guarded accept loop;
//! - [`router`]: the [`Router`], the only remotable actor of a node, found on peers through the
//!   process group [`router::ROUTER_GROUP`];
//! - [`wire`]: [`Wire`], protobuf records (`banter_proto::v1::Envelope`) as fields of remotable
//!   messages, decoding bad bytes into a value rather than a panic.
//!
//! The cluster layer on top (ARCHITECTURE.md section 5):
//! - [`config`]: the `[cluster]` section ([`ClusterConfig`]);
//! - [`membership`]: [`Cluster`], a node's membership: registration in the store (the node's id),
//!   dialing the live members with backoff and jitter (ractor_cluster never redials);
//! - [`links`]: [`Links`], one link per peer: heartbeats with round trips, down after missed beats
//!   or a disconnect (ractor_cluster has no failure detector), and a bound on envelopes a peer has
//!   not confirmed (every queue on ractor_cluster's path is unbounded);
//! - [`placement`]: [`Placement`], shards leased in the store and fenced by epochs, and the
//!   [`placement::LeaseKeeper`] that takes, renews and hands them over;
//! - [`routing`]: [`ClusterRoutes`], rooms reached wherever they live: envelopes to the owner,
//!   answers back through the session's node, one fan-out per node;
//! - [`metrics`]: the names this crate updates.
//!
//! `FINDINGS.md` beside this crate records what the transport spike measured and where in
//! ractor_cluster each behaviour comes from.

pub mod config;
pub mod guard;
pub mod links;
pub mod membership;
pub mod metrics;
pub mod node;
pub mod placement;
pub mod router;
pub mod routing;
pub mod tls;
pub mod wire;

pub use config::ClusterConfig;
pub use links::{Inbound, Links, SendError};
pub use membership::{Cluster, ClusterError};
pub use metrics::describe_metrics;
pub use node::{ClusterNode, NodeConfig, NodeEvent, NodeEventKind};
pub use placement::Placement;
pub use router::{Handler, Router, RouterHandle, RouterMessage, RouterStats};
pub use routing::ClusterRoutes;
pub use wire::Wire;
