//! The banter node: the binary that assembles actors and adapters into a running node.
//!
//! - [`config`]: the whole configuration (TOML file, `BANTER_` env vars, CLI flags), composed of the
//!   sections each crate owns (`banter_gateway::config`, `banter_store::config`,
//!   `banter_kafka::config`) and the node's own (`node`, `data_dir`, `journal`, `rooms`);
//! - [`app`]: wiring and the order of start and stop of a node ([`app::Node::start`]);
//! - [`supervisor`]: the root supervisor of the actor directories.
//!
//! Dependencies point one way: `banter-proto` ← `banter-actors` (the domain and its ports) ← the
//! adapters (`banter-store`, `banter-kafka`, `banter-gateway`; none depends on another) ← this crate.
//! `banter-telemetry` (the process's metrics recorder and logs) sits beside them.
//!
//! The binary (`src/main.rs`) parses the CLI, loads the config, sets up logging and runs a [`app::Node`].

pub mod app;
pub mod config;
pub mod supervisor;
