//! Encoding: frames, escaping, MESSAGE tails.

use super::*;

#[test]
fn encode_escapes_headers_and_adds_content_length() {
    let frame = Frame::new(Command::Message)
        .with_header("a:b", "c\nd\\e\r")
        .with_body("hi");
    assert_eq!(
        &frame.to_bytes()[..],
        b"MESSAGE\na\\cb:c\\nd\\\\e\\r\ncontent-length:2\n\nhi\0"
    );
    assert_eq!(
        &Frame::new(Command::Receipt)
            .with_header("receipt-id", "7")
            .to_bytes()[..],
        b"RECEIPT\nreceipt-id:7\n\n\0"
    );
}

#[test]
fn encode_fixes_a_wrong_content_length() {
    let frame = Frame::new(Command::Send)
        .with_header("content-length", "1")
        .with_header("content-length", "x")
        .with_body("hello");
    assert_eq!(
        &frame.to_bytes()[..],
        b"SEND\ncontent-length:5\ncontent-length:x\n\nhello\0"
    );
}

#[test]
fn encode_does_not_escape_connected_but_keeps_it_valid() {
    let frame = Frame::new(Command::Connected)
        .with_header("version", "1.2")
        .with_header("heart-beat", "0,10000")
        .with_header("server", "banter/0.1 (a:b)")
        .with_header("bad:name", "line\r\nbreak");
    let bytes = frame.to_bytes();
    assert_eq!(
        &bytes[..],
        b"CONNECTED\nversion:1.2\nheart-beat:0,10000\nserver:banter/0.1 (a:b)\nbad?name:line??break\n\n\0"
    );
    let parsed = parse_one(&bytes);
    assert_eq!(parsed.header("server"), Some("banter/0.1 (a:b)"));
}

#[test]
fn message_tail_fan_out_matches_a_whole_encoded_frame() {
    let shared = [
        ("destination", "/topic/room:1"),
        ("message-id", "m\\1"),
        ("content-type", "text/plain"),
    ];
    let body = "héllo\0world".as_bytes();
    let tail = encode_message_tail(&shared, body);
    for id in ["sub-0", "a:b\nc", ""] {
        let mut out = BytesMut::new();
        write_message_with_tail(id, &tail, &mut out);
        let mut whole = Frame::new(Command::Message).with_header("subscription", id);
        for (n, v) in shared {
            whole = whole.with_header(n, v);
        }
        let whole = whole.with_body(Bytes::copy_from_slice(body));
        assert_eq!(&out[..], &whole.to_bytes()[..]);
        assert_eq!(parse_one(&out), normalized(whole));
    }
}

#[test]
fn write_frame_writes_what_encode_writes() {
    let headers = [
        ("receipt-id", "r:1"),
        ("seq", "42"),
        ("content-length", "99"),
    ];
    for (command, body) in [
        (Command::Receipt, &b""[..]),
        (Command::Message, &b"hello"[..]),
        (Command::Connected, &b"a:b"[..]),
    ] {
        let mut frame = Frame::new(command).with_body(Bytes::copy_from_slice(body));
        for (n, v) in headers {
            frame = frame.with_header(n, v);
        }
        let mut out = BytesMut::new();
        write_frame(command, &headers, body, &mut out);
        assert_eq!(out.freeze(), frame.to_bytes());
    }
}

#[test]
fn escape_header_escapes_the_four_octets() {
    let mut out = BytesMut::new();
    escape_header("plain", &mut out);
    escape_header("\\:\n\r✓", &mut out);
    assert_eq!(&out[..], "plain\\\\\\c\\n\\r✓".as_bytes());
}
