//! Hostile peers on the cluster port: plain TCP clients that write garbage, broken frames, huge
//! length prefixes, undecodable or out-of-place protobuf, nothing at all, or too many connections.
//!
//! Each test runs a node here (A) that a good peer process (B) has connected to, attacks A, and
//! checks that only the hostile connections were closed, that B's session lived on and still
//! answers, and that nothing in this process panicked.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use banter_cluster::guard::Caps;
use banter_cluster::{NodeEvent, NodeEventKind, RouterMessage};
use ractor::ActorRef;
use ractor_cluster::NodeId;
use support::frames::{self, closed_within, field, frame, send};
use support::{COOKIE, Local, Peer, ask, exclusive, probe, router_on};
use tokio::io::AsyncWriteExt;

/// The frame limit of these tests (the default).
const MAX_FRAME: u64 = 1 << 20;
/// The handshake deadline of these tests, short to keep them fast.
const HANDSHAKE: Duration = Duration::from_millis(800);
/// Well within [`HANDSHAKE`]: a connection closed by then was closed for what it sent.
const AT_ONCE: Duration = Duration::from_millis(400);

/// A under attack, and its good peer B.
struct Setup {
    a: Local,
    b: Peer,
    b_session: NodeId,
    b_router: ActorRef<RouterMessage>,
}

impl Setup {
    async fn start(name: &str, caps: Caps) -> Setup {
        let mut a = Local::start(name, |config| {
            config.max_frame_bytes = MAX_FRAME;
            config.handshake_timeout = HANDSHAKE;
            config.caps = caps;
        })
        .await;
        let b = Peer::start(
            "b",
            COOKIE,
            &["--connect", &a.node.local_addr().to_string()],
        )
        .await;
        let ready = a.event(NodeEventKind::Ready).await;
        assert!(ready.incoming);
        let b_router = router_on(ready.node_id).await;
        Setup {
            a,
            b,
            b_session: ready.node_id,
            b_router,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.a.node.local_addr()
    }

    /// Checks that B's session saw no event since the setup, and B still answers.
    async fn check_b_served(&mut self) {
        let b_events: Vec<NodeEvent> = self
            .a
            .drain_events()
            .into_iter()
            .filter(|e| e.node_id == self.b_session)
            .collect();
        assert!(b_events.is_empty(), "B's session was touched: {b_events:?}");
        assert_eq!(ask(&self.b_router, probe(16)).await, probe(16));
        assert_eq!(self.a.node.sessions().await.expect("sessions").len(), 1);
        assert_eq!(support::panics(), 0, "nothing panicked");
    }

    async fn stop(self) {
        self.a.stop().await;
        self.b.stop().await;
    }
}

fn default_caps() -> Caps {
    Caps {
        total: 64,
        per_ip: 32,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bytes_close_their_own_session_at_once() {
    let _turn = exclusive().await;
    let mut setup = Setup::start("a-bad", default_caps()).await;

    let mut truncated = frame(&[0u8; 100]);
    truncated.truncate(8 + 10);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // Text: its first 8 bytes read as a length of ~5e18.
        (
            "garbage",
            b"GET / HTTP/1.1\r\nHost: banter\r\n\r\n".to_vec(),
        ),
        ("length u64::MAX", u64::MAX.to_be_bytes().to_vec()),
        ("length 2^40", (1u64 << 40).to_be_bytes().to_vec()),
        ("length limit + 1", (MAX_FRAME + 1).to_be_bytes().to_vec()),
        ("undecodable protobuf", frame(&[0xff; 16])),
        ("unknown wire type", frame(&[0x0f, 0x00])),
        // A handshake message out of order (a ClientChallenge before any Name).
        (
            "out-of-order handshake",
            frame(&field(1, &field(5, &field(2, &[1, 2, 3])))),
        ),
    ];
    for (name, bytes) in &cases {
        let mut stream = send(setup.addr(), bytes).await;
        assert!(
            closed_within(&mut stream, AT_ONCE).await,
            "{name}: the node keeps the connection"
        );
    }
    // A truncated frame and then EOF.
    let mut stream = send(setup.addr(), &truncated).await;
    stream.shutdown().await.expect("half-close");
    assert!(closed_within(&mut stream, AT_ONCE).await, "truncated frame");

    let count = cases.len() as u64 + 1;
    for _ in 0..count {
        setup
            .a
            .event_where(|e| e.kind == NodeEventKind::Disconnected && e.incoming)
            .await;
    }
    assert_eq!(setup.a.node.stats().unauthenticated(), count);
    assert_eq!(setup.a.node.stats().handshake_timeouts(), 0);
    setup.check_b_served().await;
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_or_chattering_unauthenticated_peers_are_cut_at_the_handshake_deadline() {
    let _turn = exclusive().await;
    let mut setup = Setup::start("a-silent", default_caps()).await;

    // Silent.
    let silent = send(setup.addr(), &[]).await;
    // Half a frame, then nothing: ractor_cluster's reader waits for the rest with no deadline.
    let mut half = frame(&[0u8; 100]);
    half.truncate(8 + 10);
    let half = send(setup.addr(), &half).await;
    // A Name, then frames that are valid but not part of the handshake: ractor_cluster decodes each,
    // logs "Control message received on unauthenticated NodeSession" and keeps the session.
    let mut chatter = frames::frame(&frames::auth_name("mallory@nowhere"));
    for _ in 0..200 {
        chatter.extend_from_slice(&frame(&frames::control_ping()));
    }
    let chatter = send(setup.addr(), &chatter).await;

    let mut streams = [silent, half, chatter];
    tokio::time::sleep(AT_ONCE).await;
    for stream in &mut streams {
        assert!(
            !closed_within(stream, Duration::from_millis(10)).await,
            "ractor_cluster itself closes none of them"
        );
    }
    for stream in &mut streams {
        assert!(
            closed_within(stream, HANDSHAKE * 2).await,
            "the handshake deadline closes it"
        );
    }
    // The node server counts a session once it has seen it end, a moment after the socket closed.
    for _ in 0..3 {
        setup
            .a
            .event_where(|e| e.kind == NodeEventKind::Disconnected && e.incoming)
            .await;
    }
    assert_eq!(setup.a.node.stats().handshake_timeouts(), 3);
    assert_eq!(setup.a.node.stats().unauthenticated(), 3);
    setup.check_b_served().await;
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_caps_are_refused_and_slots_come_back() {
    let _turn = exclusive().await;
    // B holds one of the four slots of 127.0.0.1.
    let mut setup = Setup::start(
        "a-caps",
        Caps {
            total: 64,
            per_ip: 4,
        },
    )
    .await;

    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = send(setup.addr(), &[]).await;
        assert!(!closed_within(&mut stream, Duration::from_millis(50)).await);
        held.push(stream);
    }
    for _ in 0..2 {
        let mut stream = send(setup.addr(), &[]).await;
        assert!(
            closed_within(&mut stream, AT_ONCE).await,
            "over the cap: closed"
        );
    }
    assert_eq!(setup.a.node.stats().refused(), 2);

    // The held connections go (the peers hang up); their slots are free again.
    drop(held);
    for _ in 0..3 {
        setup
            .a
            .event_where(|e| e.kind == NodeEventKind::Disconnected && e.incoming)
            .await;
    }
    let mut stream = send(setup.addr(), &[]).await;
    assert!(!closed_within(&mut stream, Duration::from_millis(100)).await);
    assert_eq!(setup.a.node.stats().refused(), 2);
    drop(stream);
    setup.check_b_served().await;
    setup.stop().await;
}

/// Peak resident memory of this process so far, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Sends, unauthenticated, `frames` frames of at most `max_frame` bytes that decode into ~16 times
/// their size (empty repeated records); returns the growth of the peak RSS in MiB.
async fn amplify(addr: SocketAddr, max_frame: u64, frames: usize) -> f64 {
    let before = peak_rss_kib();
    let payload = frames::control_spawn(frames::spawn_actors_within(max_frame as usize));
    assert!(payload.len() as u64 <= max_frame);
    let one = frame(&payload);
    let mut stream = send(addr, &frames::frame(&frames::auth_name("mallory@nowhere"))).await;
    for _ in 0..frames {
        if stream.write_all(&one).await.is_err() {
            break;
        }
    }
    // Time for the node to decode what it has read.
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(stream);
    (peak_rss_kib().saturating_sub(before)) as f64 / 1024.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_frame_decodes_into_about_sixteen_times_its_size() {
    let _turn = exclusive().await;
    let mut setup = Setup::start("a-amp", default_caps()).await;
    let growth = amplify(setup.addr(), MAX_FRAME, 1).await;
    println!("amplification: one {MAX_FRAME}-byte frame, peak RSS +{growth:.1} MiB");
    setup.check_b_served().await;
    setup.stop().await;
}

/// The same with ractor_cluster's default limit (16 MiB) and a stream of frames; heavy, so by hand:
/// `cargo test --workspace --test hostile -- --ignored --nocapture amplification_at_the_default_limit`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "allocates hundreds of MiB"]
async fn amplification_at_the_default_limit() {
    let _turn = exclusive().await;
    let limit = ractor_cluster::DEFAULT_MAX_INBOUND_FRAME_SIZE;
    let mut a = Local::start("a-amp16", |config| {
        config.max_frame_bytes = limit;
        config.handshake_timeout = Duration::from_secs(5);
    })
    .await;
    let growth = amplify(a.node.local_addr(), limit, 1).await;
    println!("amplification: one {limit}-byte frame, peak RSS +{growth:.1} MiB");
    let growth = amplify(a.node.local_addr(), limit, 8).await;
    println!("amplification: eight {limit}-byte frames more, peak RSS +{growth:.1} MiB");
    assert_eq!(support::panics(), 0);
    let _ = a.drain_events();
    a.stop().await;
}
