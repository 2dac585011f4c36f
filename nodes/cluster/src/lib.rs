//! Banter's cluster transport, on ractor_cluster 0.16.
//!
//! What it is now: the transport layer between nodes, kept small and tested against real peers.
//! - [`node`]: a [`ClusterNode`] — a ractor_cluster `NodeServer` (cookie authentication, TCP framing,
//!   process-group sync) behind Banter's own listener, with the session events ([`NodeEvent`]);
//! - [`guard`]: what ractor_cluster leaves unbounded on the cluster port: connection caps, a handshake
//!   deadline, counted refusals;
//! - [`router`]: the [`Router`], the only remotable actor of a node, found on peers through the
//!   process group [`router::ROUTER_GROUP`];
//! - [`wire`]: [`Wire`], protobuf records (`banter_proto::v1::Envelope`) as fields of remotable
//!   messages, decoding bad bytes into a value rather than a panic.
//!
//! What it becomes (ARCHITECTURE.md section 3): the cluster layer. Membership (a seed list, router
//! heartbeats, down after missed beats or a disconnect, reconnect with backoff — ractor_cluster has
//! neither a failure detector nor reconnection), placement (entity → shard → owner through leases)
//! and routing (envelopes to the owner's router, which gets or spawns the entity through
//! `banter-actors`' directories) build on these pieces. `FINDINGS.md` beside this crate records what
//! the spike measured and where in ractor_cluster each behaviour comes from.

pub mod guard;
pub mod node;
pub mod router;
pub mod wire;

pub use node::{ClusterNode, NodeConfig, NodeEvent, NodeEventKind};
pub use router::{Handler, Router, RouterHandle, RouterMessage, RouterStats};
pub use wire::Wire;
