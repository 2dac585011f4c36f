//! STOMP 1.2 frame codec, written for the server side of a WebSocket connection.
//!
//! A frame is a command line, header lines, a blank line, a body and a NUL octet. Lines end with
//! `\n` or `\r\n`; EOLs between frames are heart-beats. [`parse_frame`] is streaming: it takes
//! whatever bytes have arrived and answers with one [`Parsed`] item (a frame, a run of heart-beat
//! EOLs, or [`Parsed::Incomplete`]) together with how many bytes it consumed, so a caller feeding
//! several frames or half a frame at once loops and keeps the rest. [`Frame::encode`] writes frames;
//! [`encode_message_tail`] and [`write_message_with_tail`] encode the shared part of a MESSAGE once
//! and reuse it for every subscriber.
//!
//! # Limits
//! Every bound in [`Limits`] is checked as soon as the bytes that break it are in the buffer, never
//! after waiting for more: a command line is at most 13 bytes (`UNSUBSCRIBE\r\n`), a header line at
//! most `max_header_bytes` (plus its EOL), a `content-length` above `max_body_bytes` is refused when its
//! header line is read, and [`Parsed::Incomplete`] is only answered while the buffer is shorter than
//! `max_frame_bytes`. A caller therefore never buffers more than one frame limit (plus one read). The
//! parser never panics, allocates at most what the limits allow, and copies a frame once into owned
//! strings and a [`Bytes`] body.
//!
//! # Leniency and strictness
//! - A header value may contain a raw `:` (the name ends at the first one); a raw `\r` inside a line,
//!   an empty name, an unknown escape or invalid UTF-8 is an error. Names and values are not trimmed.
//! - Repeated headers are all kept, in order; [`Frame::header`] returns the first, as STOMP 1.2 says,
//!   and the first `content-length` is the one that frames the body.
//! - A body is accepted on any command; the caller decides which commands may carry one.
//! - CONNECT and CONNECTED frames are neither escaped nor unescaped (STOMP 1.0 compatibility). As they
//!   cannot carry an EOL in a header, nor a `:` in a name, [`Frame::encode`] writes `?` for those.

use std::fmt;
use std::str::FromStr;

use bytes::{Bytes, BytesMut};

mod encode;
#[cfg(test)]
mod tests;

use encode::write_command_and_rest;
#[cfg(test)]
use encode::write_field;
pub use encode::{encode_message_tail, escape_header, write_frame, write_message_with_tail};

/// Longest command line: `UNSUBSCRIBE` plus `\r\n`.
const MAX_COMMAND_LINE: usize = 13;

/// Bytes of an unknown command echoed in [`StompError::UnknownCommand`].
const MAX_REPORTED_COMMAND: usize = 16;

/// Room left for the command and headers by [`Limits::with_max_body_bytes`].
const HEADER_ROOM: usize = 16 * 1024;

/// Command of a STOMP 1.2 frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// Client opens a session (STOMP 1.0 name).
    Connect,
    /// Client opens a session (STOMP 1.2 name).
    Stomp,
    /// Client sends a message to a destination.
    Send,
    /// Client subscribes to a destination.
    Subscribe,
    /// Client ends a subscription.
    Unsubscribe,
    /// Client acknowledges a message.
    Ack,
    /// Client refuses a message.
    Nack,
    /// Client starts a transaction.
    Begin,
    /// Client commits a transaction.
    Commit,
    /// Client rolls back a transaction.
    Abort,
    /// Client closes the session.
    Disconnect,
    /// Server accepts a session.
    Connected,
    /// Server delivers a message to a subscription.
    Message,
    /// Server confirms a frame that asked for a receipt.
    Receipt,
    /// Server reports an error, then closes the connection.
    Error,
}

impl Command {
    /// Lists every command, client commands first.
    pub const ALL: [Command; 15] = [
        Self::Connect,
        Self::Stomp,
        Self::Send,
        Self::Subscribe,
        Self::Unsubscribe,
        Self::Ack,
        Self::Nack,
        Self::Begin,
        Self::Commit,
        Self::Abort,
        Self::Disconnect,
        Self::Connected,
        Self::Message,
        Self::Receipt,
        Self::Error,
    ];

    /// Returns the command as written on the wire, e.g. `"SEND"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "CONNECT",
            Self::Stomp => "STOMP",
            Self::Send => "SEND",
            Self::Subscribe => "SUBSCRIBE",
            Self::Unsubscribe => "UNSUBSCRIBE",
            Self::Ack => "ACK",
            Self::Nack => "NACK",
            Self::Begin => "BEGIN",
            Self::Commit => "COMMIT",
            Self::Abort => "ABORT",
            Self::Disconnect => "DISCONNECT",
            Self::Connected => "CONNECTED",
            Self::Message => "MESSAGE",
            Self::Receipt => "RECEIPT",
            Self::Error => "ERROR",
        }
    }

    /// Parses a command line without its EOL; returns `None` for anything else (commands are
    /// case-sensitive).
    pub fn from_bytes(line: &[u8]) -> Option<Self> {
        Some(match line {
            b"CONNECT" => Self::Connect,
            b"STOMP" => Self::Stomp,
            b"SEND" => Self::Send,
            b"SUBSCRIBE" => Self::Subscribe,
            b"UNSUBSCRIBE" => Self::Unsubscribe,
            b"ACK" => Self::Ack,
            b"NACK" => Self::Nack,
            b"BEGIN" => Self::Begin,
            b"COMMIT" => Self::Commit,
            b"ABORT" => Self::Abort,
            b"DISCONNECT" => Self::Disconnect,
            b"CONNECTED" => Self::Connected,
            b"MESSAGE" => Self::Message,
            b"RECEIPT" => Self::Receipt,
            b"ERROR" => Self::Error,
            _ => return None,
        })
    }

    /// Tells whether the headers of this command are escaped: all but CONNECT and CONNECTED.
    pub fn escapes_headers(self) -> bool {
        !matches!(self, Self::Connect | Self::Connected)
    }

    /// Tells whether a client may send this command (a server must refuse the others).
    pub fn is_client_command(self) -> bool {
        !matches!(
            self,
            Self::Connected | Self::Message | Self::Receipt | Self::Error
        )
    }
}

impl FromStr for Command {
    type Err = StompError;

    fn from_str(s: &str) -> Result<Self, StompError> {
        Self::from_bytes(s.as_bytes()).ok_or_else(|| StompError::unknown_command(s.as_bytes()))
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One STOMP frame with decoded (unescaped) headers and a raw body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Command of the frame.
    pub command: Command,
    /// Headers in wire order; repeated names are kept, the first one wins.
    pub headers: Vec<(String, String)>,
    /// Body, raw bytes (the caller checks UTF-8 where it needs text).
    pub body: Bytes,
}

impl Frame {
    /// Creates a frame with no headers and an empty body.
    pub fn new(command: Command) -> Self {
        Self {
            command,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// Returns the frame with one more header appended.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Returns the frame with its body replaced.
    #[must_use]
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Returns the value of the first header with this name, as STOMP 1.2 says for repeated headers.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Writes the frame: command, headers (escaped unless CONNECT/CONNECTED), blank line, body, NUL.
    ///
    /// The first `content-length` header always carries the body's real length, whatever value the
    /// caller set, and one is added for a non-empty body that has none, so a frame never desynchronizes
    /// the stream. Header names must not be empty.
    pub fn encode(&self, out: &mut BytesMut) {
        let header_bytes: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 2)
            .sum();
        let headers = self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
        write_command_and_rest(self.command, header_bytes, headers, &self.body, out);
    }

    /// Returns the encoded frame, see [`Frame::encode`].
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(&mut out);
        out.freeze()
    }
}

/// Size bounds enforced by [`parse_frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame, from its command to its NUL (heart-beats excluded). Default: 64 KiB.
    pub max_frame_bytes: usize,
    /// Most headers in one frame. Default: 32.
    pub max_headers: usize,
    /// Longest header line, escaped as on the wire, without its EOL. Default: 4 KiB.
    pub max_header_bytes: usize,
    /// Largest body. Default: 16 KiB.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame_bytes: 64 * 1024,
            max_headers: 32,
            max_header_bytes: 4 * 1024,
            max_body_bytes: 16 * 1024,
        }
    }
}

impl Limits {
    /// Returns these limits with another body cap, raising `max_frame_bytes` if needed so that a
    /// body of that size still leaves 16 KiB for the command and headers.
    #[must_use]
    pub fn with_max_body_bytes(mut self, max_body_bytes: usize) -> Self {
        self.max_body_bytes = max_body_bytes;
        self.max_frame_bytes = self
            .max_frame_bytes
            .max(max_body_bytes.saturating_add(HEADER_ROOM));
        self
    }
}

/// One item read by [`parse_frame`] from the front of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A whole frame and the number of bytes it took, up to and including its NUL.
    Frame(Frame, usize),
    /// A run of heart-beat EOLs (`\n` or `\r\n`) and the number of bytes it took.
    HeartBeat(usize),
    /// The buffer holds the beginning of a frame that is still within the limits; more bytes needed.
    Incomplete,
}

/// Error of decoding a STOMP frame or header. Its `Display` text is short, lowercase and on one line,
/// fit for the `message` header of an ERROR frame. Every error is fatal to the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StompError {
    /// The command line is not a STOMP 1.2 command; holds its first bytes, non-printable ones as `?`.
    #[error("unknown command '{0}'")]
    UnknownCommand(String),
    /// The frame is longer than [`Limits::max_frame_bytes`].
    #[error("frame larger than {limit} bytes")]
    FrameTooLarge {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// The body is longer than [`Limits::max_body_bytes`].
    #[error("body larger than {limit} bytes")]
    BodyTooLarge {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// The frame has more than [`Limits::max_headers`] headers.
    #[error("more than {limit} headers")]
    TooManyHeaders {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// A header line is longer than [`Limits::max_header_bytes`].
    #[error("header line longer than {limit} bytes")]
    HeaderTooLong {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// A header line is malformed; holds the reason.
    #[error("invalid header ({0})")]
    InvalidHeader(&'static str),
    /// A header holds a backslash not followed by `n`, `r`, `c` or `\`.
    #[error("invalid escape sequence in header")]
    InvalidEscape,
    /// A header name or value is not valid UTF-8 once unescaped.
    #[error("header is not valid utf-8")]
    InvalidUtf8,
    /// The `content-length` header is not a decimal number of bytes.
    #[error("invalid content-length")]
    InvalidContentLength,
    /// The byte after `content-length` bytes of body is not the NUL that ends the frame.
    #[error("frame body not followed by nul")]
    MissingNul,
    /// A `heart-beat` header is not two comma-separated numbers of milliseconds.
    #[error("invalid heart-beat header")]
    InvalidHeartBeat,
}

impl StompError {
    /// Builds [`StompError::UnknownCommand`] from raw bytes, keeping them printable and short.
    fn unknown_command(raw: &[u8]) -> Self {
        let shown = raw
            .iter()
            .take(MAX_REPORTED_COMMAND)
            .map(|&b| {
                if b.is_ascii_graphic() {
                    char::from(b)
                } else {
                    '?'
                }
            })
            .collect();
        Self::UnknownCommand(shown)
    }
}

/// Reads one item from the front of `buf`: a frame, a run of heart-beat EOLs, or `Incomplete`.
///
/// The caller drops the consumed bytes and calls again while bytes remain. `Incomplete` is only
/// returned while `buf` is shorter than [`Limits::max_frame_bytes`]; every other limit is checked as
/// soon as the offending bytes are present.
pub fn parse_frame(buf: &[u8], limits: &Limits) -> Result<Parsed, StompError> {
    let eols = leading_eols(buf);
    if eols > 0 {
        return Ok(Parsed::HeartBeat(eols));
    }
    let frame_end = buf.len().min(limits.max_frame_bytes);

    let (command, mut pos) = match find(buf, 0, MAX_COMMAND_LINE, frame_end, b'\n') {
        Found::At(nl) => {
            let line = trim_cr(&buf[..nl]);
            let command =
                Command::from_bytes(line).ok_or_else(|| StompError::unknown_command(line))?;
            (command, nl + 1)
        }
        Found::Overlong => return Err(StompError::unknown_command(buf)),
        Found::Missing(end) => {
            let head = trim_cr(&buf[..end]);
            if !Command::ALL
                .iter()
                .any(|c| c.as_str().as_bytes().starts_with(head))
            {
                return Err(StompError::unknown_command(head));
            }
            return need_more(buf, limits);
        }
    };

    let escaped = command.escapes_headers();
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut content_length = None;
    let header_line_cap = limits.max_header_bytes.saturating_add(2);
    loop {
        let full = headers.len() >= limits.max_headers;
        if full && !matches!(buf.get(pos), None | Some(b'\r' | b'\n')) {
            return Err(too_many_headers(limits));
        }
        let nl = match find(buf, pos, header_line_cap, frame_end, b'\n') {
            Found::At(nl) => nl,
            Found::Overlong => return Err(header_too_long(limits)),
            Found::Missing(_) => return need_more(buf, limits),
        };
        let line = trim_cr(&buf[pos..nl]);
        pos = nl + 1;
        if line.is_empty() {
            break;
        }
        if line.len() > limits.max_header_bytes {
            return Err(header_too_long(limits));
        }
        if full {
            return Err(too_many_headers(limits));
        }
        let (name, value) = parse_header(line, escaped)?;
        if content_length.is_none() && name == "content-length" {
            let len = parse_content_length(&value)?;
            if len > limits.max_body_bytes {
                return Err(StompError::BodyTooLarge {
                    limit: limits.max_body_bytes,
                });
            }
            // The frame still needs a blank line, the body and the NUL.
            if pos.saturating_add(len).saturating_add(2) > limits.max_frame_bytes {
                return Err(frame_too_large(limits));
            }
            content_length = Some(len);
        }
        headers.push((name, value));
    }

    let body_end = match content_length {
        Some(len) => {
            let nul = pos.saturating_add(len);
            if nul >= limits.max_frame_bytes {
                return Err(frame_too_large(limits));
            }
            match buf.get(nul) {
                None => return Ok(Parsed::Incomplete),
                Some(0) => nul,
                Some(_) => return Err(StompError::MissingNul),
            }
        }
        None => {
            let cap = limits.max_body_bytes.saturating_add(1);
            match find(buf, pos, cap, frame_end, 0) {
                Found::At(nul) => nul,
                Found::Overlong => {
                    return Err(StompError::BodyTooLarge {
                        limit: limits.max_body_bytes,
                    });
                }
                Found::Missing(_) => return need_more(buf, limits),
            }
        }
    };
    let frame = Frame {
        command,
        headers,
        body: Bytes::copy_from_slice(&buf[pos..body_end]),
    };
    Ok(Parsed::Frame(frame, body_end + 1))
}

/// Parses a `heart-beat` header value `cx,cy` (milliseconds, `0` meaning none) into `(cx, cy)`.
pub fn parse_heart_beat(v: &str) -> Result<(u64, u64), StompError> {
    let (cx, cy) = v.split_once(',').ok_or(StompError::InvalidHeartBeat)?;
    Ok((parse_millis(cx)?, parse_millis(cy)?))
}

/// Negotiates heart-beating from the client's `(cx, cy)` and the server's `(sx, sy)` headers; returns
/// `(server sends every ms, server expects from the client every ms)`, `0` meaning none.
pub fn negotiate_heart_beat(client: (u64, u64), server: (u64, u64)) -> (u64, u64) {
    let period = |a: u64, b: u64| if a == 0 || b == 0 { 0 } else { a.max(b) };
    (period(server.0, client.1), period(client.0, server.1))
}

/// Result of looking for a byte within a bounded window.
enum Found {
    /// At this index of the buffer.
    At(usize),
    /// Not within the cap: the line or body is over its limit.
    Overlong,
    /// Not in the bytes present, which end at this index (buffer end or frame limit).
    Missing(usize),
}

/// Looks for `byte` in `buf[from..]` within `cap` bytes and before `frame_end`.
fn find(buf: &[u8], from: usize, cap: usize, frame_end: usize, byte: u8) -> Found {
    let cap_end = from.saturating_add(cap);
    let end = cap_end.min(frame_end).max(from);
    let window = buf.get(from..end).unwrap_or_default();
    match window.iter().position(|&b| b == byte) {
        Some(i) => Found::At(from + i),
        None if end == cap_end => Found::Overlong,
        None => Found::Missing(end),
    }
}

/// Answers `Incomplete`, unless the buffer already holds a whole frame's worth of bytes.
fn need_more(buf: &[u8], limits: &Limits) -> Result<Parsed, StompError> {
    if buf.len() >= limits.max_frame_bytes {
        Err(frame_too_large(limits))
    } else {
        Ok(Parsed::Incomplete)
    }
}

fn frame_too_large(limits: &Limits) -> StompError {
    StompError::FrameTooLarge {
        limit: limits.max_frame_bytes,
    }
}

fn too_many_headers(limits: &Limits) -> StompError {
    StompError::TooManyHeaders {
        limit: limits.max_headers,
    }
}

fn header_too_long(limits: &Limits) -> StompError {
    StompError::HeaderTooLong {
        limit: limits.max_header_bytes,
    }
}

/// Counts the heart-beat EOLs at the front of `buf`; a `\r` not yet followed by `\n` is left.
fn leading_eols(buf: &[u8]) -> usize {
    let mut i = 0;
    loop {
        match (buf.get(i), buf.get(i + 1)) {
            (Some(b'\n'), _) => i += 1,
            (Some(b'\r'), Some(b'\n')) => i += 2,
            _ => return i,
        }
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Splits a header line at its first `:` and decodes both sides.
fn parse_header(line: &[u8], escaped: bool) -> Result<(String, String), StompError> {
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(StompError::InvalidHeader("missing colon"))?;
    if colon == 0 {
        return Err(StompError::InvalidHeader("empty name"));
    }
    let name = decode_field(&line[..colon], escaped)?;
    let value = decode_field(&line[colon + 1..], escaped)?;
    Ok((name, value))
}

/// Unescapes (if `escaped`) and checks one header name or value.
fn decode_field(raw: &[u8], escaped: bool) -> Result<String, StompError> {
    if raw.contains(&b'\r') {
        return Err(StompError::InvalidHeader("carriage return"));
    }
    if !escaped || !raw.contains(&b'\\') {
        return std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|_| StompError::InvalidUtf8);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter();
    while let Some(&b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        out.push(match bytes.next() {
            Some(b'n') => b'\n',
            Some(b'r') => b'\r',
            Some(b'c') => b':',
            Some(b'\\') => b'\\',
            _ => return Err(StompError::InvalidEscape),
        });
    }
    // Escapes only produce ASCII, so checking UTF-8 after unescaping is equivalent to before.
    String::from_utf8(out).map_err(|_| StompError::InvalidUtf8)
}

fn parse_content_length(v: &str) -> Result<usize, StompError> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(StompError::InvalidContentLength);
    }
    v.parse().map_err(|_| StompError::InvalidContentLength)
}

fn parse_millis(v: &str) -> Result<u64, StompError> {
    let v = v.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(StompError::InvalidHeartBeat);
    }
    v.parse().map_err(|_| StompError::InvalidHeartBeat)
}
