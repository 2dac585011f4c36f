//! Heart-beat headers and the limits that follow the body cap.

use super::*;

#[test]
fn heart_beat_header_parses_and_negotiates() {
    assert_eq!(parse_heart_beat("0,0"), Ok((0, 0)));
    assert_eq!(parse_heart_beat("10000, 5000"), Ok((10_000, 5_000)));
    for bad in [
        "",
        "1",
        "1,",
        ",1",
        "a,1",
        "-1,0",
        "+1,0",
        "1,2,3",
        "99999999999999999999,0",
    ] {
        assert_eq!(
            parse_heart_beat(bad),
            Err(StompError::InvalidHeartBeat),
            "{bad}"
        );
    }
    // Client can send every 1s and wants every 5s; server sends every 10s and wants every 20s.
    assert_eq!(
        negotiate_heart_beat((1000, 5000), (10_000, 20_000)),
        (10_000, 20_000)
    );
    assert_eq!(
        negotiate_heart_beat((30_000, 5000), (1000, 20_000)),
        (5000, 30_000)
    );
    assert_eq!(negotiate_heart_beat((0, 0), (10_000, 10_000)), (0, 0));
    assert_eq!(negotiate_heart_beat((1000, 1000), (0, 0)), (0, 0));
}

#[test]
fn limits_follow_the_body_cap() {
    let limits = Limits::default().with_max_body_bytes(1024 * 1024);
    assert_eq!(limits.max_body_bytes, 1024 * 1024);
    assert_eq!(limits.max_frame_bytes, 1024 * 1024 + 16 * 1024);
    let limits = Limits::default().with_max_body_bytes(100);
    assert_eq!(limits.max_frame_bytes, Limits::default().max_frame_bytes);
    assert_eq!(
        Limits::default()
            .with_max_body_bytes(usize::MAX)
            .max_frame_bytes,
        usize::MAX
    );
}
