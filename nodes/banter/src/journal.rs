//! Adapters of the journal port ([`banter_actors::ports::Journal`]).
//!
//! - [`local`]: the in-process journal of the embedded default, a group-commit writer into the store.

pub mod local;

pub use local::LocalJournal;
