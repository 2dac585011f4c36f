//! Frame helpers shared by the STOMP client and the tests: building, encoding and reading frames,
//! receipts, and the assertion on ERROR messages.

use anyhow::{Context, Result};
use banter_proto::stomp::{Command, Frame};
use bytes::{Bytes, BytesMut};

/// What a RECEIPT for a SEND carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// `receipt-id`.
    pub receipt_id: String,
    /// `seq` the message got.
    pub seq: u64,
    /// `message-id` (UUID) the message got.
    pub message_id: String,
}

/// Returns the STOMP destination of room `room`.
pub fn room_dest(room: i64) -> String {
    format!("/rooms/{room}")
}

/// Returns the value of the first header `name` of `frame`.
pub fn header<'a>(frame: &'a Frame, name: &str) -> Option<&'a str> {
    frame
        .headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Returns header `name` parsed as a number.
pub fn header_u64(frame: &Frame, name: &str) -> Option<u64> {
    header(frame, name).and_then(|v| v.parse().ok())
}

/// Returns a one-line description of a frame for assertion messages.
pub fn describe(frame: &Frame) -> String {
    let headers: Vec<String> = frame
        .headers
        .iter()
        .map(|(k, v)| format!("{k}:{v}"))
        .collect();
    let body = String::from_utf8_lossy(&frame.body);
    let body: String = body.chars().take(200).collect();
    format!("{:?} [{}] {:?}", frame.command, headers.join(", "), body)
}

/// Builds a frame from a command, headers and a body.
pub fn frame(command: Command, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Frame {
    Frame {
        command,
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        body: body.into(),
    }
}

/// Returns the encoded bytes of a frame.
pub fn encode(frame: &Frame) -> Vec<u8> {
    let mut buf = BytesMut::new();
    frame.encode(&mut buf);
    buf.to_vec()
}

/// Whether `frame` is a MESSAGE with `event:<event>`.
pub fn is_event(frame: &Frame, event: &str) -> bool {
    matches!(frame.command, Command::Message) && header(frame, "event") == Some(event)
}

/// Parses the seq and message id of a RECEIPT for a SEND.
pub fn parse_receipt(f: &Frame) -> Result<Receipt> {
    let receipt_id = header(f, "receipt-id")
        .context("RECEIPT without receipt-id")?
        .to_owned();
    let seq = header_u64(f, "seq")
        .with_context(|| format!("RECEIPT without a numeric seq: {}", describe(f)))?;
    let message_id = header(f, "message-id")
        .with_context(|| format!("RECEIPT without message-id: {}", describe(f)))?
        .to_owned();
    Ok(Receipt {
        receipt_id,
        seq,
        message_id,
    })
}

/// Asserts that an ERROR `message` header is `expected`, alone or followed by a detail that starts
/// with a space, `:`, `,` or `(` (e.g. `unknown destination '/topic/x'` for `unknown destination`).
#[track_caller]
pub fn assert_error_message(actual: &str, expected: &str) {
    let rest = actual.strip_prefix(expected);
    assert!(
        rest.is_some_and(|r| r.is_empty() || r.starts_with([' ', ':', ',', '('])),
        "ERROR message {actual:?} is not {expected:?} (optionally followed by a detail)"
    );
}
