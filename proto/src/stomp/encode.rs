//! Encoding: frames from borrowed parts ([`write_frame`]), header escaping, and the shared part of a
//! MESSAGE encoded once for every subscriber ([`encode_message_tail`], [`write_message_with_tail`]).

use bytes::{BufMut, Bytes, BytesMut};

use super::Command;

/// Writes `s` escaped as a STOMP 1.2 header name or value: `\` `\n` `\r` `:` become `\\` `\n` `\r` `\c`.
pub fn escape_header(s: &str, out: &mut BytesMut) {
    let bytes = s.as_bytes();
    // Most values need no escape: one branch-free pass (vectorized), then one copy.
    let special = |b: u8| (b == b'\\') | (b == b'\n') | (b == b'\r') | (b == b':');
    if !bytes.iter().fold(false, |any, &b| any | special(b)) {
        out.put_slice(bytes);
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b':' => b"\\c",
            _ => continue,
        };
        out.put_slice(&bytes[start..i]);
        out.put_slice(escape);
        start = i + 1;
    }
    out.put_slice(&bytes[start..]);
}

/// Writes a frame from borrowed parts, exactly as [`Frame::encode`] writes the same frame (for a server
/// that writes frames on its hot path without building a [`Frame`]).
pub fn write_frame(command: Command, headers: &[(&str, &str)], body: &[u8], out: &mut BytesMut) {
    let header_bytes: usize = headers.iter().map(|(n, v)| n.len() + v.len() + 2).sum();
    write_command_and_rest(command, header_bytes, headers.iter().copied(), body, out);
}

pub(super) fn write_command_and_rest<'a>(
    command: Command,
    header_bytes: usize,
    headers: impl Iterator<Item = (&'a str, &'a str)>,
    body: &[u8],
    out: &mut BytesMut,
) {
    out.reserve(command.as_str().len() + header_bytes + body.len() + 40);
    out.put_slice(command.as_str().as_bytes());
    out.put_u8(b'\n');
    write_headers_and_body(headers, command.escapes_headers(), body, out);
}

/// Encodes the part of a MESSAGE frame that every subscriber shares: the given headers (escaped),
/// `content-length` as in [`Frame::encode`], the blank line, the body and the NUL.
///
/// `headers` must not contain `subscription`; [`write_message_with_tail`] writes it first.
pub fn encode_message_tail(headers: &[(&str, &str)], body: &[u8]) -> Bytes {
    let header_bytes: usize = headers.iter().map(|(n, v)| n.len() + v.len() + 2).sum();
    let mut out = BytesMut::with_capacity(header_bytes + body.len() + 40);
    write_headers_and_body(headers.iter().copied(), true, body, &mut out);
    out.freeze()
}

/// Writes `MESSAGE\nsubscription:<escaped id>\n` followed by a tail from [`encode_message_tail`],
/// giving the same bytes as encoding the whole frame with `subscription` as its first header.
pub fn write_message_with_tail(subscription_id: &str, tail: &[u8], out: &mut BytesMut) {
    const PREFIX: &[u8] = b"MESSAGE\nsubscription:";
    out.reserve(PREFIX.len() + subscription_id.len() + 1 + tail.len());
    out.put_slice(PREFIX);
    escape_header(subscription_id, out);
    out.put_u8(b'\n');
    out.put_slice(tail);
}

/// Writes header lines, the `content-length` rule of [`Frame::encode`], the blank line, body and NUL.
fn write_headers_and_body<'a>(
    headers: impl Iterator<Item = (&'a str, &'a str)>,
    escaped: bool,
    body: &[u8],
    out: &mut BytesMut,
) {
    let mut length_written = false;
    for (name, value) in headers {
        write_field(name, escaped, true, out);
        out.put_u8(b':');
        if !length_written && name == "content-length" {
            length_written = true;
            put_decimal(body.len(), out);
        } else {
            write_field(value, escaped, false, out);
        }
        out.put_u8(b'\n');
    }
    if !length_written && !body.is_empty() {
        out.put_slice(b"content-length:");
        put_decimal(body.len(), out);
        out.put_u8(b'\n');
    }
    out.put_u8(b'\n');
    out.put_slice(body);
    out.put_u8(0);
}

/// Writes a header name or value, escaped, or raw with unrepresentable octets replaced by `?`.
pub(super) fn write_field(s: &str, escaped: bool, is_name: bool, out: &mut BytesMut) {
    if escaped {
        escape_header(s, out);
        return;
    }
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' || b == b'\r' || (is_name && b == b':') {
            out.put_slice(&bytes[start..i]);
            out.put_u8(b'?');
            start = i + 1;
        }
    }
    out.put_slice(&bytes[start..]);
}

fn put_decimal(mut n: usize, out: &mut BytesMut) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&digits[i..]);
}
