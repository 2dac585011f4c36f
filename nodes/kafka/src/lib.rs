//! Banter's Kafka adapters, the full stack's journal.
//!
//! - [`journal`]: [`KafkaJournal`], the [`banter_actors::ports::Journal`] of the full stack: a message
//!   is acknowledged once the broker has it (a topic keyed by room id, so a room keeps its order), and
//!   a room activation reads the tail the persister has not stored yet;
//! - [`persister`]: [`Persister`], the consumer-group member that writes the topic into the store
//!   (through the [`banter_actors::ports::Store`] port), exactly once in effect;
//! - [`raw`]: the ingest sources' raw frames, each a record of their own topic before it is mapped;
//! - [`config`]: the `[journal.kafka]` and `[persister]` sections; [`metrics`]: the names this crate
//!   updates.
//!
//! It depends on the actors' ports only: which store the persister writes is the binary's choice.

pub mod config;
pub mod journal;
pub mod metrics;
pub mod persister;
pub mod raw;

pub use journal::{KafkaJournal, prepare_topics};
pub use metrics::describe_metrics;
pub use persister::Persister;
pub use persister::lag::LagMonitor;
