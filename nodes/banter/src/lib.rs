//! The banter node: everything between the actors and the outside world.
//!
//! Layout:
//! - [`config`]: the typed configuration (TOML file, `BANTER_` env vars, CLI flags);
//! - [`app`]: wiring and the supervision tree of a node ([`app::Node::start`]);
//! - [`front_door`]: the accept loop: connection caps, header and request deadlines;
//! - [`http`]: the REST API with its generated OpenAPI document; [`ws`]: STOMP over WebSocket;
//! - [`auth`]: passwords (argon2id) and tokens (EdDSA JWT, JWKS);
//! - [`store`]: the SQLite and MySQL stores (sqlx) behind the `Store` port, with their contract suite;
//! - [`journal`]: the in-process journal (group commit into the store) and the Kafka journal;
//! - [`persister`]: the consumer-group member that writes the Kafka journal into the store;
//! - [`metrics`]: the Prometheus recorder behind `GET /metrics`;
//! - [`error`]: the one mapping from errors to HTTP and STOMP answers;
//! - [`housekeeping`]: periodic chores (expired tokens, limiter state).
//!
//! The binary (`src/main.rs`) parses the CLI, loads the config, sets up logging and runs a [`app::Node`].

pub mod app;
pub mod auth;
pub mod config;
pub mod error;
pub mod front_door;
pub mod housekeeping;
pub mod http;
pub mod journal;
pub mod metrics;
pub mod persister;
pub mod store;
pub mod ws;
