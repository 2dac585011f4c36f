//! Envelopes between nodes (`banter.v1.Envelope`): decoding with a size limit, so that bytes from a
//! peer are an error, never a panic nor an unbounded allocation.
//!
//! prost's decoding is safe on any input (it returns [`prost::DecodeError`]); what it does not bound
//! is size: a length-delimited field may claim any length up to the buffer's. [`decode_envelope`]
//! refuses a buffer above the limit before decoding, so a peer can make a node hold at most that much
//! per envelope.

use prost::Message;

use crate::v1::Envelope;

/// Largest envelope a node accepts by default: a fan-out carries one frame tail (a message body is at
/// most 64 KiB) and a subscribe reply at most a ring of them, in pages.
pub const MAX_ENVELOPE_BYTES: usize = 1 << 20;

/// Why bytes from a peer are not an envelope.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// Longer than the limit (the length, the limit).
    #[error("envelope of {0} bytes is above the {1} byte limit")]
    TooLarge(usize, usize),
    /// Not a `banter.v1.Envelope`.
    #[error("undecodable envelope: {0}")]
    Decode(#[from] prost::DecodeError),
    /// Decoded, but carries no body.
    #[error("envelope without a body")]
    Empty,
}

/// Decodes an envelope of at most `max_bytes`.
pub fn decode_envelope(bytes: &[u8], max_bytes: usize) -> Result<Envelope, EnvelopeError> {
    if bytes.len() > max_bytes {
        return Err(EnvelopeError::TooLarge(bytes.len(), max_bytes));
    }
    let envelope = Envelope::decode(bytes)?;
    if envelope.body.is_none() {
        return Err(EnvelopeError::Empty);
    }
    Ok(envelope)
}

/// Encodes an envelope into a new buffer.
pub fn encode_envelope(envelope: &Envelope) -> Vec<u8> {
    envelope.encode_to_vec()
}

#[cfg(test)]
mod tests;
