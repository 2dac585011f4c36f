//! Two nodes: the one of this process (A) and a `banter-cluster-peer` process (B).
//!
//! A connects to B, finds B's router in the process group and casts and calls it (the figures are
//! printed: run with `--nocapture`); a wrong cookie; B killed, B frozen.

mod support;

use std::time::{Duration, Instant};

use banter_cluster::router::router_of;
use banter_cluster::{NodeEventKind, RouterMessage, Wire};
use banter_proto::v1::{Envelope, FanOut, envelope};
use ractor::rpc::CallResult;
use support::{COOKIE, GroupChange, GroupWatch, Local, Peer, ask, exclusive, probe, router_on};

/// A chat message's fan-out to a node, about 100 bytes, as a room would send one.
fn chat(seq: u64) -> Envelope {
    Envelope {
        from_node: 1,
        body: Some(envelope::Body::FanOut(FanOut {
            room_id: 42,
            seq: Some(seq),
            tail: "a frame tail with a message of about fifty bytes, like most chat.........."
                .into(),
            skip_user: None,
            epoch: 1,
            sent_at_ms: 1_700_000_000_000,
            traceparent: String::new(),
            accepted_at_ms: 0,
        })),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_casts_to_and_calls_bs_router_found_through_the_process_group() {
    let _turn = exclusive().await;
    let mut b = Peer::start("b", COOKIE, &[]).await;
    let mut a = Local::start("a-casts", |_| {}).await;
    let mut groups = GroupWatch::start().await;

    a.node.connect(b.addr).await.expect("A connects to B");
    let ready = a.event(NodeEventKind::Ready).await;
    assert_eq!(ready.peer_name.as_deref(), Some("b@127.0.0.1"));
    assert!(!ready.incoming);
    b.line_starting("event Ready").await;
    match groups.next().await {
        GroupChange::Join(ids) => assert!(
            ids.iter()
                .any(|id| !id.is_local() && id.node() == ready.node_id),
            "B's router joined the group: {ids:?}"
        ),
        other => panic!("expected B's router to join, got {other:?}"),
    }
    let router = router_on(ready.node_id).await;
    assert_eq!(
        ask(&router, probe(32)).await,
        probe(32),
        "a probe comes back"
    );

    // Casts: the session is one ordered stream, so once B answers the ask behind them it has
    // handled every cast before it. B answers a chat ask with the number of chats it was delivered.
    const CASTS: u64 = 20_000;
    let started = Instant::now();
    for seq in 0..CASTS {
        router
            .cast(RouterMessage::Deliver(Wire::from(chat(seq))))
            .expect("cast");
    }
    let queued = started.elapsed();
    let answer = ask(&router, chat(0)).await;
    let elapsed = started.elapsed();
    match answer.body {
        Some(envelope::Body::FanOut(count)) => {
            assert_eq!(count.seq, Some(CASTS), "B got every cast")
        }
        other => panic!("B answered {other:?}"),
    }
    println!(
        "cast: {CASTS} chat envelopes ({} bytes each) in {elapsed:.2?} = {:.0} msg/s (casting alone took {queued:.2?})",
        prost::Message::encoded_len(&chat(0)),
        CASTS as f64 / elapsed.as_secs_f64()
    );

    // Calls, one at a time.
    const CALLS: usize = 2_000;
    let mut rtts = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let sent = Instant::now();
        ask(&router, probe(64)).await;
        rtts.push(sent.elapsed());
    }
    rtts.sort();
    let mean = rtts.iter().sum::<Duration>() / CALLS as u32;
    println!(
        "call: {CALLS} sequential asks (64-byte probe): mean {mean:.1?}, p50 {:.1?}, p99 {:.1?}, max {:.1?}",
        percentile(&rtts, 0.5),
        percentile(&rtts, 0.99),
        rtts[CALLS - 1]
    );

    // Bytes that are not an envelope cross the wire and are answered "not understood" (an empty
    // envelope), without a panic on either side.
    let garbage = <Wire<Envelope> as ractor::BytesConvertable>::from_bytes(vec![0x0f]);
    assert!(matches!(garbage, Wire::Malformed { .. }));
    let answer = ractor::call_t!(router, RouterMessage::Ask, 5_000, garbage).expect("an answer");
    assert_eq!(answer, Wire::Decoded(Envelope::default()));
    assert_eq!(support::panics(), 0);

    groups.stop();
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_cookie_is_refused_both_ways_and_counted() {
    let _turn = exclusive().await;
    let mut a = Local::start("a-cookie", |_| {}).await;
    let mut b = Peer::start("b", "not-the-cookie", &[]).await;

    // A dials B: the TCP connection is all `connect` waits for, so it succeeds.
    let started = Instant::now();
    a.node.connect(b.addr).await.expect("TCP connects");
    let opened = a.event(NodeEventKind::Opened).await;
    let closed = a
        .event_where(|e| e.kind != NodeEventKind::Opened && e.node_id == opened.node_id)
        .await;
    assert_eq!(
        closed.kind,
        NodeEventKind::Disconnected,
        "never authenticated"
    );
    println!(
        "wrong cookie (A dials B): refused in {:.1?}",
        started.elapsed()
    );
    b.line_starting("event Opened").await;
    b.line_starting("event Disconnected").await;

    // B dials A.
    let c = Peer::start(
        "c",
        "not-the-cookie",
        &["--connect", &a.node.local_addr().to_string()],
    )
    .await;
    let opened = a.event(NodeEventKind::Opened).await;
    assert!(opened.incoming);
    let closed = a
        .event_where(|e| e.kind != NodeEventKind::Opened && e.node_id == opened.node_id)
        .await;
    assert_eq!(
        closed.kind,
        NodeEventKind::Disconnected,
        "never authenticated"
    );

    assert_eq!(a.node.stats().unauthenticated(), 2);
    assert_eq!(
        a.node.stats().handshake_timeouts(),
        0,
        "refused at once, not timed out"
    );
    assert!(a.node.sessions().await.expect("sessions").is_empty());
    assert!(router_of(opened.node_id).is_none());
    assert_eq!(support::panics(), 0);

    a.stop().await;
    b.stop().await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_peer_ends_its_session_router_and_calls_and_is_not_redialled() {
    let _turn = exclusive().await;
    let b = Peer::start("b", COOKIE, &[]).await;
    let b_addr = b.addr;
    let mut a = Local::start("a-killed", |_| {}).await;
    let mut groups = GroupWatch::start().await;
    a.node.connect(b.addr).await.expect("A connects to B");
    let ready = a.event(NodeEventKind::Ready).await;
    let _joined = groups.next().await;
    let router = router_on(ready.node_id).await;

    // A call in flight when B dies: B is frozen first so that it cannot answer.
    b.freeze().await;
    let in_flight = tokio::spawn({
        let router = router.clone();
        async move {
            let asked = router
                .call(
                    |reply| RouterMessage::Ask(Wire::from(probe(8)), reply),
                    Some(Duration::from_secs(10)),
                )
                .await;
            (asked, Instant::now())
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let killed = Instant::now();
    b.kill().await;

    let gone = a.event(NodeEventKind::Disconnected).await;
    assert_eq!(gone.node_id, ready.node_id);
    let noticed = killed.elapsed();
    let (asked, answered) = in_flight.await.expect("the call task");
    assert!(
        matches!(asked, Ok(CallResult::SenderError)),
        "the call ends as soon as the session does: {asked:?}"
    );
    match groups.next().await {
        GroupChange::Leave(ids) => assert!(ids.iter().any(|id| id.node() == ready.node_id)),
        other => panic!("expected B's router to leave, got {other:?}"),
    }
    println!(
        "peer killed: session event after {noticed:.1?}, in-flight call failed after {:.1?}, router left the group",
        answered.duration_since(killed)
    );
    assert!(router_of(ready.node_id).is_none());
    assert!(
        router
            .cast(RouterMessage::Deliver(Wire::from(probe(1))))
            .is_err(),
        "the stale router reference refuses casts"
    );

    // Nothing redials: B is back on the same address, and A stays without a session.
    let b2 = Peer::start("b", COOKIE, &["--listen", &b_addr.to_string()]).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(a.node.sessions().await.expect("sessions").is_empty());
    assert!(
        a.drain_events()
            .iter()
            .all(|e| e.kind != NodeEventKind::Opened),
        "no new session"
    );
    assert_eq!(support::panics(), 0);

    groups.stop();
    a.stop().await;
    b2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_peer_goes_unnoticed() {
    let _turn = exclusive().await;
    let b = Peer::start("b", COOKIE, &[]).await;
    let mut a = Local::start("a-frozen", |_| {}).await;
    a.node.connect(b.addr).await.expect("A connects to B");
    let ready = a.event(NodeEventKind::Ready).await;
    let router = router_on(ready.node_id).await;

    b.freeze().await;
    let frozen = Instant::now();
    let asked = router
        .call(
            |reply| RouterMessage::Ask(Wire::from(probe(8)), reply),
            Some(Duration::from_millis(300)),
        )
        .await;
    // The derive's reply bridge drops the caller's port at the same deadline, so a remote call past
    // its timeout usually ends as `SenderError`, like one whose session died.
    assert!(
        matches!(asked, Ok(CallResult::Timeout | CallResult::SenderError)),
        "{asked:?}"
    );
    println!(
        "frozen peer: a call with a 300 ms timeout ended as {:?} after {:.1?}",
        asked.as_ref().map(|r| match r {
            CallResult::Timeout => "Timeout",
            CallResult::SenderError => "SenderError",
            CallResult::Success(_) => "Success",
        }),
        frozen.elapsed()
    );
    assert!(frozen.elapsed() >= Duration::from_millis(290));
    tokio::time::sleep(Duration::from_secs(2).saturating_sub(frozen.elapsed())).await;
    // ractor_cluster pings every 1 to 5 s but never acts on a missing pong.
    assert!(
        a.drain_events()
            .iter()
            .all(|e| e.kind != NodeEventKind::Disconnected),
        "a frozen peer is not detected"
    );
    assert!(router_of(ready.node_id).is_some());

    b.thaw();
    assert_eq!(
        ask(&router, probe(8)).await,
        probe(8),
        "the session lived on"
    );
    assert_eq!(support::panics(), 0);
    a.stop().await;
    b.stop().await;
}
