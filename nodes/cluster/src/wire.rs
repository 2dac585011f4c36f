//! [`Wire`]: a protobuf record as a field of a remotable message.
//!
//! ractor_cluster moves a remotable message's fields as bytes through
//! [`ractor::BytesConvertable`], whose `from_bytes` cannot fail: ractor's own impls `unwrap` and
//! index (`String`, `bool`, the integers), and the derive wraps each call in `catch_unwind` so that a
//! panic only drops the message, silently. A `Wire<T>` never panics: bytes that do not decode as `T`
//! arrive as [`Wire::Malformed`], which the receiver sees, counts and answers like any other message.

use bytes::Bytes;
use ractor::BytesConvertable;

/// A protobuf record `T` as it crosses nodes: decoded on arrival, or the bytes that did not decode.
#[derive(Debug, Clone, PartialEq)]
pub enum Wire<T> {
    /// The record.
    Decoded(T),
    /// Bytes that are not a `T`; they are kept so that forwarding them changes nothing.
    Malformed {
        /// What the peer sent.
        bytes: Bytes,
        /// Why it does not decode.
        error: prost::DecodeError,
    },
}

impl<T> Wire<T> {
    /// Returns the record, or the decode error of the bytes that were not one.
    pub fn into_result(self) -> Result<T, prost::DecodeError> {
        match self {
            Wire::Decoded(record) => Ok(record),
            Wire::Malformed { error, .. } => Err(error),
        }
    }
}

impl<T> From<T> for Wire<T> {
    fn from(record: T) -> Self {
        Wire::Decoded(record)
    }
}

impl<T: prost::Message + Default> BytesConvertable for Wire<T> {
    fn into_bytes(self) -> Vec<u8> {
        match self {
            Wire::Decoded(record) => record.encode_to_vec(),
            Wire::Malformed { bytes, .. } => bytes.into(),
        }
    }

    fn from_bytes(bytes: Vec<u8>) -> Self {
        // Decoding from `Bytes` lets the record's `bytes` fields share the buffer instead of copying.
        let bytes = Bytes::from(bytes);
        match T::decode(bytes.clone()) {
            Ok(record) => Wire::Decoded(record),
            Err(error) => Wire::Malformed { bytes, error },
        }
    }
}

#[cfg(test)]
mod tests {
    use banter_proto::v1::{Envelope, FanOut, envelope};

    use super::*;

    fn envelope() -> Envelope {
        Envelope {
            from_node: 3,
            body: Some(envelope::Body::FanOut(FanOut {
                room_id: 42,
                seq: Some(9),
                tail: Bytes::from_static(b"seq:9\n\nhello"),
                skip_user: Some(5),
                epoch: 3,
                sent_at_ms: 0,
                traceparent: String::new(),
                accepted_at_ms: 0,
            })),
        }
    }

    #[test]
    fn a_record_round_trips() {
        let bytes = Wire::from(envelope()).into_bytes();
        assert_eq!(
            Wire::<Envelope>::from_bytes(bytes),
            Wire::Decoded(envelope())
        );
    }

    #[test]
    fn bad_bytes_are_malformed_not_a_panic() {
        let cases: [&[u8]; 5] = [
            // A field key with wire type 7, which does not exist.
            &[0x0f],
            // `traceparent` (field 3, length-delimited) announcing 100 bytes and giving 2.
            &[0x1a, 100, b'a', b'b'],
            // A varint that never ends.
            &[
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
            // `traceparent` that is not UTF-8.
            &[0x1a, 2, 0xc3, 0x28],
            // `chat` (field 10) whose `body` (field 5) length overruns the chat message.
            &[0x52, 3, 0x2a, 50, b'x'],
        ];
        for case in cases {
            match Wire::<Envelope>::from_bytes(case.to_vec()) {
                Wire::Malformed { bytes, .. } => assert_eq!(&bytes[..], case),
                Wire::Decoded(record) => panic!("{case:?} decoded as {record:?}"),
            }
        }
    }

    #[test]
    fn deep_nesting_is_malformed_not_a_stack_overflow() {
        // 100,000 nested start-group keys of an unknown field (15, wire type 3): skipping them
        // recurses, and prost stops at its recursion limit (100) with an error.
        let bytes = vec![(15 << 3) | 3; 100_000];
        assert!(Wire::<Envelope>::from_bytes(bytes).into_result().is_err());
    }

    #[test]
    fn malformed_bytes_are_forwarded_unchanged() {
        let bad = vec![0x1a, 100, b'a'];
        let wire = Wire::<Envelope>::from_bytes(bad.clone());
        assert!(wire.clone().into_result().is_err());
        assert_eq!(wire.into_bytes(), bad);
    }

    #[test]
    fn empty_bytes_are_an_empty_envelope() {
        // proto3: every field is optional, so zero bytes are a valid (empty) record. A receiver must
        // check that the body it needs is there.
        let wire = Wire::<Envelope>::from_bytes(Vec::new());
        assert_eq!(wire, Wire::Decoded(Envelope::default()));
    }
}
