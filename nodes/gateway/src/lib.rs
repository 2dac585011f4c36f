//! Banter's gateway: everything between a client and the actors.
//!
//! - [`front_door`]: the accept loop: connection caps per address and per node, header and request
//!   deadlines;
//! - [`http`]: the REST API with its generated OpenAPI document; [`ws`]: STOMP over WebSocket, one
//!   session task per connection; [`web`]: the web app's files at `/`;
//! - [`auth`]: passwords (argon2id), tokens (EdDSA JWT, JWKS) signed with the key set every node
//!   shares through the store (rotated, refreshed in the background), login limits;
//! - [`error`]: the one mapping from errors to HTTP and STOMP answers (typed, with stable codes);
//! - [`state`]: [`AppState`], what handlers and sessions share; [`housekeeping`]: periodic chores
//!   (refresh token purge, limiter trim, signing key refresh); [`presence`]: the live `presence`
//!   events of a user's contacts;
//! - [`config`]: the `[http]`, `[limits]`, `[auth]` and `[ws]` sections; [`metrics`]: the names this
//!   crate updates and the guarded `/metrics` route.
//!
//! It reaches the actors through their directories and the rest of the node through the ports in
//! `banter_actors::ports`; it knows no store, journal or broker.

pub mod auth;
pub mod config;
pub mod error;
pub mod front_door;
pub mod housekeeping;
pub mod http;
pub mod metrics;
pub mod presence;
pub mod state;
pub mod web;
pub mod ws;

pub use metrics::describe_metrics;
pub use state::{AppState, GatewayParts};
