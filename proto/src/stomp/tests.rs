use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;

mod encode;
mod heart_beat;

fn parse(buf: &[u8]) -> Result<Parsed, StompError> {
    parse_frame(buf, &Limits::default())
}

/// Parses one frame that must take the whole buffer.
fn parse_one(buf: &[u8]) -> Frame {
    match parse(buf) {
        Ok(Parsed::Frame(frame, used)) => {
            assert_eq!(used, buf.len(), "frame did not take the whole buffer");
            frame
        }
        other => panic!("expected a frame, got {other:?}"),
    }
}

fn err(buf: &[u8], limits: &Limits) -> StompError {
    match parse_frame(buf, limits) {
        Err(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn small() -> Limits {
    Limits {
        max_frame_bytes: 128,
        max_headers: 3,
        max_header_bytes: 32,
        max_body_bytes: 64,
    }
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

/// What `encode` then `parse_frame` must give back: the first `content-length` carries the body's
/// length, and one is appended for a non-empty body without one.
fn normalized(mut frame: Frame) -> Frame {
    let len = frame.body.len().to_string();
    match frame
        .headers
        .iter_mut()
        .find(|(n, _)| n == "content-length")
    {
        Some((_, v)) => *v = len,
        None if !frame.body.is_empty() => frame.headers.push(("content-length".into(), len)),
        None => {}
    }
    frame
}

// ---- commands ----

#[test]
fn commands_round_trip_through_their_names() {
    for command in Command::ALL {
        assert_eq!(
            Command::from_bytes(command.as_str().as_bytes()),
            Some(command)
        );
        assert_eq!(command.as_str().parse::<Command>(), Ok(command));
        assert_eq!(command.to_string(), command.as_str());
        assert!(command.as_str().len() + 2 <= MAX_COMMAND_LINE);
    }
    assert_eq!(Command::from_bytes(b"send"), None);
    assert_eq!(
        "send".parse::<Command>(),
        Err(StompError::UnknownCommand("send".into()))
    );
    assert!(Command::Send.is_client_command());
    assert!(!Command::Message.is_client_command());
    assert!(!Command::Connect.escapes_headers());
    assert!(!Command::Connected.escapes_headers());
    assert!(Command::Stomp.escapes_headers());
}

// ---- spec examples ----

#[test]
fn parses_spec_connect_frame_without_unescaping() {
    let frame = parse_one(
        b"CONNECT\naccept-version:1.2\nhost:stomp.github.org\nlogin:a\\nb\npasscode:x:y\n\n\0",
    );
    assert_eq!(frame.command, Command::Connect);
    assert_eq!(
        frame.headers,
        headers(&[
            ("accept-version", "1.2"),
            ("host", "stomp.github.org"),
            ("login", "a\\nb"),
            ("passcode", "x:y"),
        ])
    );
    assert!(frame.body.is_empty());
}

#[test]
fn parses_spec_send_frame_with_nul_terminated_body() {
    let frame =
        parse_one(b"SEND\ndestination:/queue/a\ncontent-type:text/plain\n\nhello queue a\n\0");
    assert_eq!(frame.command, Command::Send);
    assert_eq!(frame.header("destination"), Some("/queue/a"));
    assert_eq!(frame.header("content-type"), Some("text/plain"));
    assert_eq!(frame.body, Bytes::from_static(b"hello queue a\n"));
}

#[test]
fn first_repeated_header_wins() {
    let frame = parse_one(b"MESSAGE\nfoo:World\nfoo:Hello\n\n\0");
    assert_eq!(frame.header("foo"), Some("World"));
    assert_eq!(frame.headers.len(), 2);
    assert_eq!(frame.header("bar"), None);
}

#[test]
fn first_content_length_frames_the_body() {
    let frame = parse_one(b"SEND\ncontent-length:2\ncontent-length:5\n\nab\0");
    assert_eq!(frame.body, Bytes::from_static(b"ab"));
}

#[test]
fn content_length_body_may_hold_nul() {
    let frame = parse_one(b"SEND\ndestination:/a\ncontent-length:5\n\na\0b\0c\0");
    assert_eq!(frame.body, Bytes::from_static(b"a\0b\0c"));
}

#[test]
fn crlf_line_endings_are_accepted() {
    let frame = parse_one(b"SUBSCRIBE\r\nid:0\r\ndestination:/queue/foo\r\nack:client\r\n\r\n\0");
    assert_eq!(
        frame.headers,
        headers(&[
            ("id", "0"),
            ("destination", "/queue/foo"),
            ("ack", "client")
        ])
    );
}

#[test]
fn headers_are_unescaped_except_in_connect_frames() {
    let frame = parse_one(b"SEND\na\\cb:c\\nd\\\\e\\r\n\n\0");
    assert_eq!(frame.headers, headers(&[("a:b", "c\nd\\e\r")]));
    let frame = parse_one(b"CONNECTED\nversion:1.2\\c\n\n\0");
    assert_eq!(frame.header("version"), Some("1.2\\c"));
}

#[test]
fn unicode_and_empty_values_are_kept_verbatim() {
    let frame = parse_one("SEND\n x :é ✓ \nempty:\n\n\0".as_bytes());
    assert_eq!(frame.headers, headers(&[(" x ", "é ✓ "), ("empty", "")]));
}

#[test]
fn leading_eols_are_heart_beats() {
    assert_eq!(parse(b"\n"), Ok(Parsed::HeartBeat(1)));
    assert_eq!(parse(b"\r\n\n\r\nSEND"), Ok(Parsed::HeartBeat(5)));
    assert_eq!(parse(b"\r"), Ok(Parsed::Incomplete));
    assert_eq!(parse(b""), Ok(Parsed::Incomplete));
    // A run of heart-beats longer than a frame is still only heart-beats.
    let many = vec![b'\n'; 10 * small().max_frame_bytes];
    assert_eq!(
        parse_frame(&many, &small()),
        Ok(Parsed::HeartBeat(many.len()))
    );
}

#[test]
fn parses_several_frames_and_heart_beats_from_one_buffer() {
    let buf = b"SEND\ndestination:/a\n\nx\0\nDISCONNECT\nreceipt:7\n\n\0\r\nSEND\n";
    let mut rest = &buf[..];
    let mut items = Vec::new();
    loop {
        match parse(rest).expect("valid stream") {
            Parsed::Frame(frame, used) => {
                items.push(frame.command.as_str().to_owned());
                rest = &rest[used..];
            }
            Parsed::HeartBeat(used) => {
                items.push(format!("hb{used}"));
                rest = &rest[used..];
            }
            Parsed::Incomplete => break,
        }
    }
    assert_eq!(items, ["SEND", "hb1", "DISCONNECT", "hb2"]);
    assert_eq!(rest, b"SEND\n");
}

// ---- errors ----

#[test]
fn unknown_command_is_rejected_early_and_shown_safely() {
    let limits = Limits::default();
    assert_eq!(
        err(b"FOO\n\n\0", &limits),
        StompError::UnknownCommand("FOO".into())
    );
    // Not a prefix of any command: no need to wait for the EOL.
    assert_eq!(err(b"XY", &limits), StompError::UnknownCommand("XY".into()));
    assert_eq!(err(b"\0", &limits), StompError::UnknownCommand("?".into()));
    assert_eq!(
        err(b"\x01B\xffD\r\n", &limits),
        StompError::UnknownCommand("?B?D".into())
    );
    // A prefix of a command that runs past the longest command line.
    let long = b"SUBSCRIBESUBSCRIBESUBSCRIBE";
    assert_eq!(
        err(long, &limits),
        StompError::UnknownCommand("SUBSCRIBESUBSCRI".into())
    );
    assert_eq!(parse(b"SUBSC"), Ok(Parsed::Incomplete));
    assert_eq!(
        err(b"SEND \n\n\0", &limits).to_string(),
        "unknown command 'SEND?'"
    );
}

#[test]
fn frame_too_large_without_content_length() {
    let limits = Limits {
        max_frame_bytes: 16,
        ..Limits::default()
    };
    let ok = parse_frame(b"SEND\n\n012345678\0", &limits);
    assert!(matches!(ok, Ok(Parsed::Frame(_, 16))));
    assert_eq!(
        parse_frame(b"SEND\n\n012345678", &limits),
        Ok(Parsed::Incomplete)
    );
    let e = err(b"SEND\n\n0123456789", &limits);
    assert_eq!(e, StompError::FrameTooLarge { limit: 16 });
    let e = err(b"SEND\n\n0123456789a\0", &limits);
    assert_eq!(e, StompError::FrameTooLarge { limit: 16 });
    // Partial header line at the limit.
    let e = err(b"SEND\nabcdefghijk", &limits);
    assert_eq!(e, StompError::FrameTooLarge { limit: 16 });
    assert_eq!(
        parse_frame(b"SEND\nabcdefghij", &limits),
        Ok(Parsed::Incomplete)
    );
}

#[test]
fn frame_too_large_from_content_length_before_body_arrives() {
    let limits = Limits {
        max_frame_bytes: 40,
        ..Limits::default()
    };
    // 5 + 18 = 23 bytes of headers; 23 + 1 + 16 + 1 = 41 > 40, known at the header line.
    let e = err(b"SEND\ncontent-length:16\n", &limits);
    assert_eq!(e, StompError::FrameTooLarge { limit: 40 });
    assert_eq!(
        parse_frame(b"SEND\ncontent-length:15\n", &limits),
        Ok(Parsed::Incomplete)
    );
    // Headers after the content-length push the frame over.
    let e = err(b"SEND\ncontent-length:10\nx:12345\n\n", &limits);
    assert_eq!(e, StompError::FrameTooLarge { limit: 40 });
}

#[test]
fn body_too_large_is_rejected_at_the_content_length_header() {
    let limits = small();
    let e = err(b"SEND\ncontent-length:65\n", &limits);
    assert_eq!(e, StompError::BodyTooLarge { limit: 64 });
    let e = err(
        b"SEND\ncontent-length:99999999999999999999\n",
        &Limits::default(),
    );
    assert_eq!(e, StompError::InvalidContentLength);
    let body = [b'a'; 65];
    let e = err(&[b"SEND\n\n".as_slice(), &body].concat(), &limits);
    assert_eq!(e, StompError::BodyTooLarge { limit: 64 });
    let ok = [b"SEND\n\n".as_slice(), &body[..64], b"\0"].concat();
    assert!(matches!(parse_frame(&ok, &limits), Ok(Parsed::Frame(..))));
}

#[test]
fn too_many_headers_is_rejected_at_the_first_byte_of_one_more() {
    let limits = small();
    let ok = b"SEND\na:1\nb:2\nc:3\n\n\0";
    assert!(matches!(parse_frame(ok, &limits), Ok(Parsed::Frame(..))));
    let e = err(b"SEND\na:1\nb:2\nc:3\nd", &limits);
    assert_eq!(e, StompError::TooManyHeaders { limit: 3 });
    let e = err(b"SEND\na:1\nb:2\nc:3\n\rd:4\n", &limits);
    assert_eq!(e, StompError::TooManyHeaders { limit: 3 });
    assert_eq!(
        parse_frame(b"SEND\na:1\nb:2\nc:3\n\r", &limits),
        Ok(Parsed::Incomplete)
    );
}

#[test]
fn header_too_long_is_rejected_without_waiting_for_the_eol() {
    let limits = small();
    let line = |n: usize| [b"SEND\n".as_slice(), &vec![b'a'; n - 2], b":x"].concat();
    let exact = [line(32), b"\r\n\n\0".to_vec()].concat();
    assert!(matches!(
        parse_frame(&exact, &limits),
        Ok(Parsed::Frame(..))
    ));
    let over = [line(33), b"\n\n\0".to_vec()].concat();
    assert_eq!(err(&over, &limits), StompError::HeaderTooLong { limit: 32 });
    // 34 bytes without an EOL cannot be a line of at most 32 bytes, even with "\r\n" next.
    assert_eq!(parse_frame(&line(33), &limits), Ok(Parsed::Incomplete));
    assert_eq!(
        err(&line(34), &limits),
        StompError::HeaderTooLong { limit: 32 }
    );
}

#[test]
fn malformed_header_lines_are_invalid() {
    let limits = Limits::default();
    let cases: [(&[u8], &str); 4] = [
        (b"SEND\nnocolon\n\n\0", "missing colon"),
        (b"SEND\n:value\n\n\0", "empty name"),
        (b"SEND\na:b\rc\n\n\0", "carriage return"),
        (b"CONNECT\na\r:b\n\n\0", "carriage return"),
    ];
    for (buf, reason) in cases {
        assert_eq!(err(buf, &limits), StompError::InvalidHeader(reason));
    }
}

#[test]
fn unknown_or_truncated_escapes_are_invalid() {
    let limits = Limits::default();
    for buf in [
        b"SEND\na:\\t\n\n\0".as_slice(),
        b"SEND\na:b\\\n\n\0",
        b"SEND\na\\:b\n\n\0",
        b"MESSAGE\nx\\C:1\n\n\0",
    ] {
        assert_eq!(err(buf, &limits), StompError::InvalidEscape);
    }
}

#[test]
fn invalid_utf8_in_headers_is_rejected() {
    let limits = Limits::default();
    assert_eq!(err(b"SEND\n\xff:a\n\n\0", &limits), StompError::InvalidUtf8);
    assert_eq!(err(b"SEND\na:\xc3\n\n\0", &limits), StompError::InvalidUtf8);
    assert_eq!(
        err(b"CONNECT\na:\xc3\\n\n\n\0", &limits),
        StompError::InvalidUtf8
    );
    // The body is raw bytes.
    let frame = parse_one(b"SEND\n\n\xff\xfe\0");
    assert_eq!(frame.body, Bytes::from_static(b"\xff\xfe"));
}

#[test]
fn invalid_content_lengths_are_rejected() {
    let limits = Limits::default();
    for value in ["", "abc", "-1", "+5", " 5", "5 ", "0x10", "1.0"] {
        let buf = format!("SEND\ncontent-length:{value}\n\n\0");
        assert_eq!(
            err(buf.as_bytes(), &limits),
            StompError::InvalidContentLength,
            "{value:?}"
        );
    }
    let frame = parse_one(b"SEND\ncontent-length:0003\n\nabc\0");
    assert_eq!(frame.body, Bytes::from_static(b"abc"));
}

#[test]
fn missing_nul_after_content_length_body_is_rejected() {
    let limits = Limits::default();
    assert_eq!(
        err(b"SEND\ncontent-length:2\n\nabc\0", &limits),
        StompError::MissingNul
    );
    assert_eq!(
        parse(b"SEND\ncontent-length:2\n\nab"),
        Ok(Parsed::Incomplete)
    );
}

#[test]
fn trailing_garbage_after_a_frame_is_an_unknown_command() {
    let buf = b"SEND\n\nhi\0garbage";
    let Ok(Parsed::Frame(_, used)) = parse(buf) else {
        panic!("expected a frame")
    };
    assert_eq!(
        err(&buf[used..], &Limits::default()),
        StompError::UnknownCommand("garbage".into())
    );
}

#[test]
fn error_texts_fit_an_error_frame_header() {
    let errors = [
        StompError::UnknownCommand("X".into()),
        StompError::FrameTooLarge { limit: 1 },
        StompError::BodyTooLarge { limit: 1 },
        StompError::TooManyHeaders { limit: 1 },
        StompError::HeaderTooLong { limit: 1 },
        StompError::InvalidHeader("missing colon"),
        StompError::InvalidEscape,
        StompError::InvalidUtf8,
        StompError::InvalidContentLength,
        StompError::MissingNul,
        StompError::InvalidHeartBeat,
    ];
    for e in errors {
        let text = e.to_string();
        assert!(text.len() < 64, "{text}");
        assert!(!text.contains(['\n', '\r', ':']), "{text}");
        let lower = text.replace('X', "x");
        assert_eq!(lower, lower.to_lowercase());
    }
}

// ---- streaming ----

/// Asserts every strict prefix of `buf` is `Incomplete` and `buf` itself is one frame.
fn assert_prefixes_incomplete(buf: &[u8], limits: &Limits) {
    for k in 0..buf.len() {
        assert_eq!(
            parse_frame(&buf[..k], limits),
            Ok(Parsed::Incomplete),
            "prefix {k} of {buf:?}"
        );
    }
    assert!(matches!(parse_frame(buf, limits), Ok(Parsed::Frame(_, n)) if n == buf.len()));
}

#[test]
fn byte_by_byte_prefixes_are_incomplete_until_the_nul() {
    let limits = Limits::default();
    assert_prefixes_incomplete(
        b"SEND\r\ndestination:/queue/a\r\ncontent-length:5\r\n\r\na\0b\0c\0",
        &limits,
    );
    assert_prefixes_incomplete(b"SUBSCRIBE\nid:1\ndestination:/a\n\n\0", &limits);
    assert_prefixes_incomplete(b"UNSUBSCRIBE\r\nid:1\r\n\r\n\0", &limits);
    assert_prefixes_incomplete(b"SEND\nx\\c:y\\n\n\nbody\0", &limits);
    let error = Frame::new(Command::Error)
        .with_header("message", "bad frame")
        .with_body("details\n");
    assert_prefixes_incomplete(&error.to_bytes(), &limits);
}

// ---- properties ----

fn any_command() -> impl Strategy<Value = Command> {
    proptest::sample::select(Command::ALL.to_vec())
}

/// Header text, rich in the octets that need escaping and in multi-byte characters.
fn any_text(min: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just(':'),
            Just('\n'),
            Just('\r'),
            Just('\\'),
            Just('c'),
            Just('n'),
            Just('é'),
            Just('✓'),
            Just('\u{1F600}'),
            Just('\0'),
            any::<char>(),
        ],
        min..12,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// Text that CONNECT/CONNECTED can carry: no EOL, and no `:` in a name.
fn raw_text(name: bool) -> impl Strategy<Value = String> {
    any_text(usize::from(name)).prop_map(move |s| {
        let bad = |c: char| c == '\n' || c == '\r' || (name && c == ':');
        s.replace(bad, "_")
    })
}

fn any_frame() -> impl Strategy<Value = Frame> {
    let escaped = (
        any_command().prop_filter("escaped", |c| c.escapes_headers()),
        proptest::collection::vec((any_text(1), any_text(0)), 0..8),
    );
    let raw = (
        prop_oneof![Just(Command::Connect), Just(Command::Connected)],
        proptest::collection::vec((raw_text(true), raw_text(false)), 0..8),
    );
    (
        prop_oneof![3 => escaped, 1 => raw],
        proptest::collection::vec(any::<u8>(), 0..200),
        any::<bool>(),
    )
        .prop_map(|((command, headers), body, explicit_length)| {
            let mut frame = Frame {
                command,
                headers,
                body: body.into(),
            };
            if explicit_length {
                frame
                    .headers
                    .push(("content-length".into(), frame.body.len().to_string()));
            }
            frame
        })
}

fn roomy() -> Limits {
    Limits {
        max_frame_bytes: 1 << 20,
        max_headers: 64,
        max_header_bytes: 1 << 12,
        max_body_bytes: 1 << 16,
    }
}

fn any_limits() -> impl Strategy<Value = Limits> {
    (0usize..300, 0usize..10, 0usize..80, 0usize..200).prop_map(
        |(max_frame_bytes, max_headers, max_header_bytes, max_body_bytes)| Limits {
            max_frame_bytes,
            max_headers,
            max_header_bytes,
            max_body_bytes,
        },
    )
}

/// Parses `buf` item by item until an error or `Incomplete`, checking the streaming contract.
fn drain(buf: &[u8], limits: &Limits) -> Vec<Frame> {
    let mut rest = buf;
    let mut frames = Vec::new();
    loop {
        match parse_frame(rest, limits) {
            Ok(Parsed::Frame(frame, used)) => {
                assert!(used > 0 && used <= rest.len() && used <= limits.max_frame_bytes);
                assert!(frame.headers.len() <= limits.max_headers);
                assert!(frame.body.len() <= limits.max_body_bytes);
                frames.push(frame);
                rest = &rest[used..];
            }
            Ok(Parsed::HeartBeat(used)) => {
                assert!(used > 0 && used <= rest.len());
                rest = &rest[used..];
            }
            Ok(Parsed::Incomplete) => {
                assert!(
                    rest.len() < limits.max_frame_bytes,
                    "incomplete past the limit"
                );
                return frames;
            }
            Err(e) => {
                assert!(!e.to_string().contains('\n'));
                return frames;
            }
        }
    }
}

/// Bytes drawn mostly from STOMP's own alphabet, so random input reaches the deep paths.
fn stompish_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"SEND\n".to_vec()),
        Just(b"CONNECT\r\n".to_vec()),
        Just(b"content-length:".to_vec()),
        Just(b"3".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b":".to_vec()),
        Just(b"\\".to_vec()),
        Just(b"\\c".to_vec()),
        Just(b"\0".to_vec()),
        Just(b"a".to_vec()),
        proptest::collection::vec(any::<u8>(), 1..4),
    ];
    proptest::collection::vec(piece, 0..60).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encode_then_parse_round_trips(frame in any_frame()) {
        let bytes = frame.to_bytes();
        match parse_frame(&bytes, &roomy()) {
            Ok(Parsed::Frame(parsed, used)) => {
                prop_assert_eq!(used, bytes.len());
                prop_assert_eq!(parsed, normalized(frame));
            }
            other => prop_assert!(false, "{:?} for {:?}", other, bytes),
        }
    }

    #[test]
    fn nul_terminated_bodies_round_trip(
        frame in any_frame(),
        body in proptest::collection::vec(1u8.., 0..100),
    ) {
        let mut frame = frame;
        frame.headers.retain(|(n, _)| n != "content-length");
        frame.body = body.into();
        let mut out = BytesMut::new();
        out.extend_from_slice(frame.command.as_str().as_bytes());
        out.extend_from_slice(b"\n");
        for (n, v) in &frame.headers {
            write_field(n, frame.command.escapes_headers(), true, &mut out);
            out.extend_from_slice(b":");
            write_field(v, frame.command.escapes_headers(), false, &mut out);
            out.extend_from_slice(b"\n");
        }
        out.extend_from_slice(b"\n");
        out.extend_from_slice(&frame.body);
        out.extend_from_slice(b"\0");
        prop_assert_eq!(parse_frame(&out, &roomy()), Ok(Parsed::Frame(frame, out.len())));
    }

    #[test]
    fn concatenated_frames_and_heart_beats_parse_in_order(
        items in proptest::collection::vec((any_frame(), 0usize..3, any::<bool>()), 0..6),
    ) {
        let mut buf = BytesMut::new();
        for (frame, beats, crlf) in &items {
            for _ in 0..*beats {
                buf.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
            }
            frame.encode(&mut buf);
        }
        let expected: Vec<Frame> = items.into_iter().map(|(f, _, _)| normalized(f)).collect();
        prop_assert_eq!(drain(&buf, &roomy()), expected);
    }

    #[test]
    fn every_prefix_of_a_frame_is_incomplete(frame in any_frame()) {
        let bytes = frame.to_bytes();
        for k in 0..bytes.len() {
            prop_assert_eq!(parse_frame(&bytes[..k], &roomy()), Ok(Parsed::Incomplete));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_nor_wait_past_the_limit(
        bytes in proptest::collection::vec(any::<u8>(), 0..700),
        limits in any_limits(),
    ) {
        drain(&bytes, &limits);
        drain(&bytes, &Limits::default());
    }

    #[test]
    fn stompish_bytes_never_panic_nor_wait_past_the_limit(
        bytes in stompish_bytes(),
        limits in any_limits(),
    ) {
        drain(&bytes, &limits);
        drain(&bytes, &roomy());
    }

    #[test]
    fn damaged_frames_never_panic_nor_wait_past_the_limit(
        frames in proptest::collection::vec(any_frame(), 1..4),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        limits in any_limits(),
    ) {
        let mut buf = BytesMut::new();
        for frame in &frames {
            frame.encode(&mut buf);
        }
        let mut bytes = buf.to_vec();
        let truncated = &bytes[..cut.index(bytes.len() + 1)];
        drain(truncated, &limits);
        drain(truncated, &roomy());
        let at = flip.index(bytes.len());
        bytes[at] = byte;
        drain(&bytes, &limits);
        drain(&bytes, &roomy());
    }
}
