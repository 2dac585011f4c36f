//! What the load generator reads and writes on the wire: a light reader for the few headers it needs
//! from server frames (no allocation per frame, since a fan-out run reads millions), and the body of
//! its own messages, which carries what the receivers check.
//!
//! Body: `lg.<step>.<sender>.<n>.<intended µs>.` padded with `x` to the configured size, where `n`
//! counts the sender's messages from 1 and the time is µs since the run's epoch.

use std::fmt::Write as _;

/// A server frame, borrowed from the WebSocket message that carried it.
#[derive(Clone, Copy, Debug)]
pub struct ServerFrame<'a> {
    /// Command line (`MESSAGE`, `RECEIPT`, …), empty for a heart-beat.
    pub command: &'a [u8],
    head: &'a [u8],
    /// Body, without the NUL terminator.
    pub body: &'a [u8],
}

impl<'a> ServerFrame<'a> {
    /// Splits a frame into command, headers and body; `None` when it has no blank line.
    pub fn parse(raw: &'a [u8]) -> Option<ServerFrame<'a>> {
        let raw = raw
            .strip_prefix(b"\r\n")
            .or(raw.strip_prefix(b"\n"))
            .unwrap_or(raw);
        if raw.is_empty() {
            return Some(ServerFrame {
                command: b"",
                head: b"",
                body: b"",
            });
        }
        let line_end = raw.iter().position(|&b| b == b'\n')?;
        let command = trim_cr(&raw[..line_end]);
        let rest = &raw[line_end + 1..];
        let (head, body) = match find(rest, b"\n\n") {
            Some(i) => (&rest[..i], &rest[i + 2..]),
            None if rest.first() == Some(&b'\n') => (&rest[..0], &rest[1..]),
            None => {
                let i = find(rest, b"\r\n\r\n")?;
                (&rest[..i], &rest[i + 4..])
            }
        };
        let body = match body.iter().rposition(|&b| b == 0) {
            Some(nul) => &body[..nul],
            None => body,
        };
        Some(ServerFrame {
            command,
            head,
            body,
        })
    }

    /// Value of the first header called `name` (no unescaping: the headers read here have none).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        let name = name.as_bytes();
        self.head.split(|&b| b == b'\n').find_map(|line| {
            let line = trim_cr(line);
            let rest = line.strip_prefix(name)?;
            rest.strip_prefix(b":")
        })
    }

    /// Header `name` as a number.
    pub fn header_u64(&self, name: &str) -> Option<u64> {
        parse_u64(self.header(name)?)
    }

    /// Header `name` as text (lossy).
    pub fn header_str(&self, name: &str) -> String {
        self.header(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses ASCII decimal digits.
pub fn parse_u64(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    v.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
    })
}

/// What a message body says about its sending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Rate step it was sent in.
    pub step: u32,
    /// Sender index within the run.
    pub sender: u32,
    /// Sender's message counter, from 1.
    pub n: u64,
    /// Intended send time, µs since the run's epoch.
    pub at_us: u64,
}

impl Stamp {
    /// Writes the body for this stamp, padded with `x` to `size` bytes (longer when the stamp needs it).
    pub fn write_body(&self, size: usize, out: &mut String) {
        out.clear();
        let _ = write!(
            out,
            "lg.{}.{}.{}.{}.",
            self.step, self.sender, self.n, self.at_us
        );
        while out.len() < size {
            out.push('x');
        }
    }

    /// Reads a stamp from a body written by [`Stamp::write_body`].
    pub fn read(body: &[u8]) -> Option<Stamp> {
        let rest = body.strip_prefix(b"lg.")?;
        let mut parts = rest.splitn(5, |&b| b == b'.');
        let step = parse_u64(parts.next()?)?;
        let sender = parse_u64(parts.next()?)?;
        let n = parse_u64(parts.next()?)?;
        let at_us = parse_u64(parts.next()?)?;
        Some(Stamp {
            step: u32::try_from(step).ok()?,
            sender: u32::try_from(sender).ok()?,
            n,
            at_us,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_headers_and_body() {
        let raw = b"MESSAGE\nsubscription:s0\nseq:42\nevent:message\n\nlg.1.7.3.99.xx\0";
        let f = ServerFrame::parse(raw).expect("frame");
        assert_eq!(f.command, b"MESSAGE");
        assert_eq!(f.header_u64("seq"), Some(42));
        assert_eq!(f.header("event"), Some(&b"message"[..]));
        assert_eq!(f.header("se"), None);
        assert_eq!(
            Stamp::read(f.body),
            Some(Stamp {
                step: 1,
                sender: 7,
                n: 3,
                at_us: 99
            })
        );
        let hb = ServerFrame::parse(b"\n").expect("heart-beat");
        assert!(hb.command.is_empty());
        let crlf = ServerFrame::parse(b"RECEIPT\r\nreceipt-id:7\r\n\r\n\0").expect("crlf");
        assert_eq!(crlf.header_u64("receipt-id"), Some(7));
        let bare = ServerFrame::parse(b"CONNECTED\n\n\0").expect("no headers");
        assert_eq!(bare.command, b"CONNECTED");
        assert!(ServerFrame::parse(b"MESSAGE").is_none());
    }

    #[test]
    fn stamp_round_trip_and_padding() {
        let s = Stamp {
            step: 2,
            sender: 1234,
            n: 99_999,
            at_us: 123_456_789,
        };
        let mut body = String::new();
        s.write_body(150, &mut body);
        assert_eq!(body.len(), 150);
        assert_eq!(Stamp::read(body.as_bytes()), Some(s));
        s.write_body(4, &mut body);
        assert_eq!(Stamp::read(body.as_bytes()), Some(s));
        assert_eq!(Stamp::read(b"hello"), None);
        assert_eq!(Stamp::read(b"lg.1.2.x.4."), None);
        assert_eq!(parse_u64(b"99999999999999999999"), None);
    }
}
