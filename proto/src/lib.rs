//! Wire formats of Banter.
//!
//! - [`v1`]: protobuf records (prost, generated from `protos/banter/v1/`) for what goes into the journal
//!   (`ChatMessage`) and what crosses nodes (`Envelope`, carried by `banter-cluster`'s router). Decoding
//!   bytes from a peer returns an error, never panics.
//! - [`cluster`]: decoding envelopes between nodes (`banter.v1.Envelope`) with a size limit.
//! - [`stomp`]: the STOMP 1.2 frame codec spoken to clients over WebSocket, with hard size limits.

pub mod cluster;
pub mod stomp;

/// Protobuf types of the `banter.v1` package.
#[allow(unreachable_pub, missing_docs)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/banter.v1.rs"));
}

/// Error of decoding a protobuf record.
pub use prost::DecodeError;
