//! Banter's actors and domain rules, written against ports.
//!
//! Layout:
//! - [`model`]: ids and records; [`rules`]: validation of what users type;
//! - [`ports`]: the traits for the store, the journal and the clock (adapters live in `banter-store`,
//!   `banter-kafka`);
//! - [`directory`]: get-or-spawn, routing, lazy restart and safe passivation of entity actors;
//! - [`room`]: the room actor, single writer of a room; [`user`]: the table of this node's users
//!   with a connection (their sessions and send budgets; no actor per user);
//! - [`delivery`]: what actors hand to the light per-connection sessions, here or on another node
//!   ([`delivery::SessionRef`]); [`hub`]: where events from rooms of other nodes land on this one;
//!   [`encode`]: frames built once; [`wire`]: their `banter.v1` form between nodes;
//! - `messages`: the (local-only) `ractor::Message` impls of the actors' messages;
//! - [`route`]: how sessions and REST handlers reach rooms ([`route::Routes`]; a single node's
//!   [`route::LocalRoutes`], a cluster's in `banter-cluster`);
//! - [`metrics`]: chat messages accepted and refused;
//! - [`shard`]: placement arithmetic for a cluster (entity → shard, shard → preferred nodes);
//! - [`source`]: ingest sources — the actor of a live external feed (one in the cluster) and the
//!   per-node supervisor that runs the sources whose shard the node serves.
//!
//! Supervision tree on a node: a `Directory<Rooms>` supervises every room actor (spawned by the node's
//! root). A crashed room is forgotten by its directory and
//! respawned on next use, reloading its state from the store and the journal; its subscribers are told
//! ([`delivery::LostGuard`]) and resubscribe from their last seq. Sessions are tasks, not actors: a
//! crashed session affects nobody else.

pub mod account;
pub mod delivery;
pub mod directory;
pub mod encode;
pub mod hub;
mod messages;
pub use messages::mailbox_depths;
pub mod metrics;
pub mod model;
pub mod ports;
pub mod presence;
pub mod room;
pub mod route;
pub mod rules;
pub mod shard;
pub mod source;
#[cfg(test)]
mod testing;
pub mod trace;
pub mod user;
pub mod wire;
