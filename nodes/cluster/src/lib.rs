//! Banter's cluster transport, on ractor_cluster 0.16.
//!
//! - [`wire`]: [`Wire`], protobuf records (`banter_proto::v1::Envelope`) as fields of remotable
//!   messages, decoding bad bytes into a value rather than a panic.

pub mod wire;

pub use wire::Wire;
