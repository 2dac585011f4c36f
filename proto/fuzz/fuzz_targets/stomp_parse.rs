//! Feeds arbitrary bytes to the STOMP parser as a stream, under the default limits and under tiny
//! limits chosen by the first input bytes, checking the streaming contract on the way.
#![no_main]

use banter_proto::stomp::{Frame, Limits, Parsed, parse_frame};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fn drain(mut rest: &[u8], limits: &Limits) {
    loop {
        match parse_frame(rest, limits) {
            Ok(Parsed::Frame(frame, used)) => {
                assert!(used > 0 && used <= rest.len() && used <= limits.max_frame_bytes);
                assert!(frame.headers.len() <= limits.max_headers);
                assert!(frame.body.len() <= limits.max_body_bytes);
                reencode(&frame);
                rest = &rest[used..];
            }
            Ok(Parsed::HeartBeat(used)) => {
                assert!(used > 0 && used <= rest.len());
                rest = &rest[used..];
            }
            Ok(Parsed::Incomplete) => {
                assert!(rest.len() < limits.max_frame_bytes);
                return;
            }
            Err(e) => {
                assert!(!e.to_string().contains(['\n', '\r']));
                return;
            }
        }
    }
}

/// A parsed frame, encoded again, parses back to itself (modulo the content-length the encoder adds).
fn reencode(frame: &Frame) {
    let mut out = BytesMut::new();
    frame.encode(&mut out);
    let roomy = Limits {
        max_frame_bytes: usize::MAX,
        max_headers: usize::MAX,
        max_header_bytes: usize::MAX,
        max_body_bytes: usize::MAX,
    };
    match parse_frame(&out, &roomy) {
        Ok(Parsed::Frame(again, used)) => {
            assert_eq!(used, out.len());
            assert_eq!(again.command, frame.command);
            assert_eq!(again.body, frame.body);
            let original = frame.headers.iter().filter(|(n, _)| n != "content-length");
            let decoded = again.headers.iter().filter(|(n, _)| n != "content-length");
            assert!(original.eq(decoded));
        }
        other => panic!("re-encoded frame did not parse: {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    drain(data, &Limits::default());
    if let [a, b, c, d, rest @ ..] = data {
        let tiny = Limits {
            max_frame_bytes: usize::from(*a) * 2,
            max_headers: usize::from(*b % 16),
            max_header_bytes: usize::from(*c),
            max_body_bytes: usize::from(*d),
        };
        drain(rest, &tiny);
    }
});
