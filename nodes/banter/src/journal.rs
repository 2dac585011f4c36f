//! Adapters of the journal port ([`banter_actors::ports::Journal`]).
//!
//! - [`local`]: the in-process journal of the embedded default, a group-commit writer into the store;
//! - [`kafka`]: the Kafka journal of the full stack (a topic keyed by room id; the persister writes
//!   it into the store).

pub mod kafka;
pub mod local;

pub use kafka::KafkaJournal;
pub use local::LocalJournal;
