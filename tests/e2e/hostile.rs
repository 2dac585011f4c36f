//! Hostile clients (issue #17): each test plays a client that tries, on purpose, to make the node hold
//! something without bound, then shows it bounded — the abuser is refused or dropped with a clear
//! reason, and everyone else keeps being served.
//!
//! | abuse | bound |
//! |---|---|
//! | a subscriber that stops reading (zero TCP window) | dropped at the write deadline; others keep their RECEIPTs and deliveries |
//! | many resumes from seq 0 of a long history on connections that do not read | streamed page by page under a node-wide cap: memory stays flat, a reader still resumes completely |
//! | typing, read and SEND frames to a room one is not a member of | ERROR, and the room is never activated |
//! | a flood of read markers | coalesced (one event for members), charged to the send budget (ERROR past it) |
//! | a session kept open past its token's expiry | ERROR `access token expired`, closed |
//! | more WebSocket sessions than allowed for one user | ERROR on CONNECT past the cap |

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use banter_proto::stomp::Command;
use banter_tests::stomp::{
    TIMEOUT, assert_error_message, frame, header, header_u64, is_event, room_dest,
};
use banter_tests::{Node, NodeBuilder, StompClient, Witness, shared_node, unique};
use bytes::Bytes;

/// A receive buffer small enough that a client which stops reading closes its window at once.
const SMALL_WINDOW: u32 = 4096;

/// A node for bulk traffic (the harness lifts the send budget of test nodes; commits skip `fsync`).
fn unthrottled(name: &str) -> NodeBuilder {
    NodeBuilder::new(name).env("BANTER_STORE__SQLITE_SYNCHRONOUS", "normal")
}

/// Sends `count` messages of `size` bytes to `room`, pipelined in windows of 100, and returns their
/// seqs in the order the RECEIPTs name them.
async fn send_many(
    client: &mut StompClient,
    room: i64,
    count: usize,
    size: usize,
) -> Result<Vec<u64>> {
    let dest = room_dest(room);
    let mut seqs = Vec::with_capacity(count);
    let mut sent = 0;
    while sent < count {
        let window: Vec<String> = (sent..count.min(sent + 100))
            .map(|i| {
                let mut body = format!("m{i} ");
                body.extend(std::iter::repeat_n('x', size.saturating_sub(body.len())));
                body
            })
            .collect();
        let mut ids = Vec::new();
        for body in &window {
            let r = client.next_receipt_id();
            client.send(&dest, body, Some(&r)).await?;
            ids.push(r);
        }
        for r in ids {
            let f = client.recv_receipt(&r).await?;
            seqs.push(header_u64(&f, "seq").context("RECEIPT without seq")?);
        }
        sent += window.len();
    }
    Ok(seqs)
}

/// Receives `count` chat messages on `sub` and returns their seqs.
async fn receive_seqs(client: &mut StompClient, sub: &str, count: usize) -> Result<Vec<u64>> {
    let mut seqs = Vec::with_capacity(count);
    for _ in 0..count {
        let f = client.recv_message(sub).await?;
        seqs.push(header_u64(&f, "seq").context("MESSAGE without seq")?);
    }
    Ok(seqs)
}

/// Polls metric `name` until it reaches `at_least`, for at most `within`.
async fn metric_reaches(node: &Node, name: &str, at_least: f64, within: Duration) -> Result<f64> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let v = node.metric_sum(name).await?.unwrap_or(0.0);
        if v >= at_least {
            return Ok(v);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{name} is {v}, expected at least {at_least} within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads what a dropped client still has buffered and checks that the connection then ends.
async fn ends_after_its_buffer(client: &mut StompClient) -> Result<()> {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !client.is_closed() {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the dropped client's connection is still open"
        );
        match client.recv_frame(Duration::from_secs(5)).await {
            Ok(f) => ensure!(
                !matches!(f.command, Command::Error) || header(&f, "message").is_some(),
                "ERROR frame without a message"
            ),
            Err(_) if client.is_closed() => break,
            Err(e) => return Err(e.context("reading a dropped client's buffer")),
        }
    }
    Ok(())
}

#[tokio::test]
async fn a_zero_window_reader_is_dropped_at_the_write_deadline_and_others_are_served() {
    // Outbox bounds far above the traffic, so that the write deadline is what ends the reader.
    let node = unthrottled("zerowin")
        .env("BANTER_WS__WRITE_TIMEOUT_MS", 1000)
        .env("BANTER_WS__OUTBOX_BYTES", 1u64 << 30)
        .env("BANTER_WS__OUTBOX_FRAMES", 1_000_000)
        .start()
        .await
        .expect("node");
    node.check(zero_window(&node).await);
}

async fn zero_window(node: &Node) -> Result<()> {
    let api = node.api();
    let ws = node.ws_url();
    let (alice, bob, carol) = (
        api.new_user("alice").await?,
        api.new_user("bob").await?,
        api.new_user("carol").await?,
    );
    let room = api.create_room(&alice.token, &unique("zerowin")).await?.id;
    api.join(&bob.token, room).await?;
    api.join(&carol.token, room).await?;
    let mut sender = StompClient::connect(&ws, &alice.token).await?;
    let mut stalled = StompClient::connect_small_window(&ws, &bob.token, SMALL_WINDOW).await?;
    stalled.subscribe(&room_dest(room), "s", None).await?;
    let mut reader = StompClient::connect(&ws, &carol.token).await?;
    reader.subscribe(&room_dest(room), "r", None).await?;

    // 9 MB: more than the loopback socket buffers can hold for a reader that does not read.
    let count = 3000;
    let reading = tokio::spawn(async move {
        let seqs = receive_seqs(&mut reader, "r", count).await;
        (reader, seqs)
    });
    let sent = send_many(&mut sender, room, count, 3000).await?;
    let (_, got) = reading.await?;
    ensure!(
        got? == sent,
        "the reading member missed or reordered messages"
    );
    metric_reaches(
        node,
        "banter_sessions_dropped_total{reason=\"write_deadline\"}",
        1.0,
        Duration::from_secs(10),
    )
    .await?;
    ends_after_its_buffer(&mut stalled).await?;
    // The node still serves everyone else.
    let after = sender
        .send_confirmed(&room_dest(room), "after the drop")
        .await?;
    ensure!(after.seq == sent[count - 1] + 1);
    Witness::new(node).await?.assert_served().await
}

#[tokio::test]
async fn resumes_of_a_long_history_stream_under_a_cap_and_hold_no_history_in_memory() {
    let node = unthrottled("backfill")
        .env("BANTER_ROOMS__RING_SIZE", 16)
        .env("BANTER_WS__MAX_CONCURRENT_BACKFILLS", 2)
        .env("BANTER_WS__WRITE_TIMEOUT_MS", 1500)
        .start()
        .await
        .expect("node");
    node.check(backfill_bounded(&node).await);
}

async fn backfill_bounded(node: &Node) -> Result<()> {
    let api = node.api();
    let ws = node.ws_url();
    let (alice, bob) = (api.new_user("alice").await?, api.new_user("bob").await?);
    let room = api.create_room(&alice.token, &unique("backfill")).await?.id;
    api.join(&bob.token, room).await?;
    let mut sender = StompClient::connect(&ws, &alice.token).await?;
    // 2,000 messages of 3.5 KB: 7 MB of frames.
    let sent = send_many(&mut sender, room, 2000, 3500).await?;
    let before = node.rss_bytes()?;

    // Eight connections resume from 0 and never read.
    let mut stalled = Vec::new();
    for i in 0..8 {
        let mut c = StompClient::connect_small_window(&ws, &bob.token, SMALL_WINDOW).await?;
        c.subscribe_nowait(&room_dest(room), &format!("s{i}"), Some(0), None)
            .await?;
        stalled.push(c);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let grown = node.rss_bytes()?.saturating_sub(before);
    eprintln!(
        "backfill: node memory grew by {} KiB while 8 clients resumed without reading",
        grown >> 10
    );
    // Buffering each whole history would hold 8 × 7 MB; streaming holds a page per running backfill.
    ensure!(
        grown < 24 << 20,
        "node memory grew by {} MiB while 8 clients resumed without reading",
        grown >> 20
    );

    // A reader still resumes completely once the stalled ones are dropped and free their permits.
    let mut reader = StompClient::connect(&ws, &bob.token).await?;
    reader
        .subscribe_nowait(&room_dest(room), "r", Some(0), Some("resumed"))
        .await?;
    let got = receive_seqs(&mut reader, "r", sent.len()).await?;
    ensure!(got == sent, "the resume missed or reordered messages");
    reader.recv_receipt("resumed").await?;
    metric_reaches(
        node,
        "banter_sessions_dropped_total{reason=\"write_deadline\"}",
        2.0,
        Duration::from_secs(10),
    )
    .await?;
    for mut c in stalled {
        ends_after_its_buffer(&mut c).await?;
    }
    Ok(())
}

#[tokio::test]
async fn frames_from_a_non_member_never_activate_the_room() {
    let node = NodeBuilder::new("nonmember").start().await.expect("node");
    node.check(non_member(&node).await);
}

async fn non_member(node: &Node) -> Result<()> {
    let api = node.api();
    let ws = node.ws_url();
    let (alice, mallory) = (api.new_user("alice").await?, api.new_user("mallory").await?);
    let room = api.create_room(&alice.token, &unique("private")).await?.id;
    let rooms_active = "banter_actors_active{kind=\"room\"}";
    let dest = room_dest(room);
    let frames = [
        frame(
            Command::Send,
            &[("destination", &format!("{dest}/typing"))],
            Bytes::new(),
        ),
        frame(
            Command::Send,
            &[("destination", &format!("{dest}/read")), ("seq", "1")],
            Bytes::new(),
        ),
        frame(
            Command::Send,
            &[("destination", &dest)],
            Bytes::from_static(b"hi"),
        ),
        frame(
            Command::Subscribe,
            &[("destination", &dest), ("id", "x")],
            Bytes::new(),
        ),
    ];
    for f in &frames {
        let mut c = StompClient::connect(&ws, &mallory.token).await?;
        c.send_frame(f).await?;
        assert_error_message(
            &c.expect_error().await?,
            &format!("not a member of room {room}"),
        );
        c.expect_closed().await?;
    }
    // The gauge is refreshed every second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let active = node.metric_sum(rooms_active).await?.unwrap_or(0.0);
    ensure!(
        active == 0.0,
        "{active} room(s) active after non-member frames"
    );
    // A member's typing frame does activate it: the gauge would have seen the others.
    let mut member = StompClient::connect(&ws, &alice.token).await?;
    member.typing(room).await?;
    metric_reaches(node, rooms_active, 1.0, Duration::from_secs(5)).await?;
    Ok(())
}

#[tokio::test]
async fn read_markers_are_coalesced_and_charged_to_the_send_budget() {
    // The default budget (the harness lifts it for other tests).
    let node = NodeBuilder::new("readflood")
        .env("BANTER_LIMITS__SEND_PER_SECOND", 50)
        .env("BANTER_LIMITS__SEND_BURST", 100)
        .start()
        .await
        .expect("node");
    node.check(read_flood(&node).await);
}

async fn read_flood(node: &Node) -> Result<()> {
    let api = node.api();
    let ws = node.ws_url();
    let (alice, bob) = (api.new_user("alice").await?, api.new_user("bob").await?);
    let room = api.create_room(&alice.token, &unique("reads")).await?.id;
    api.join(&bob.token, room).await?;
    let mut watcher = StompClient::connect(&ws, &bob.token).await?;
    watcher.subscribe(&room_dest(room), "w", None).await?;
    let mut reader = StompClient::connect(&ws, &alice.token).await?;
    let first = reader.send_confirmed(&room_dest(room), "hello").await?;
    watcher.recv_message("w").await?;

    // The same marker many times: one event.
    for _ in 0..30 {
        reader.mark_read(room, first.seq).await?;
    }
    let ev = watcher.recv_event("read", |_| true).await?;
    ensure!(header_u64(&ev, "seq") == Some(first.seq));
    let more = watcher
        .recv_where(Duration::from_millis(800), "a second read event", |f| {
            is_event(f, "read")
        })
        .await;
    ensure!(
        more.is_err(),
        "a marker that did not rise was fanned out again"
    );

    // Rising markers are charged to the budget (default burst 100): the flood ends with an ERROR.
    for seq in (first.seq + 1)..(first.seq + 300) {
        if reader.mark_read(room, seq).await.is_err() {
            break;
        }
    }
    assert_error_message(&reader.expect_error().await?, "rate limit exceeded");
    reader.expect_closed().await?;
    // Markers above the last message are clamped to it: no event for them either.
    let clamped = watcher
        .recv_where(Duration::from_millis(800), "a read event", |f| {
            is_event(f, "read")
        })
        .await;
    ensure!(
        clamped.is_err(),
        "markers past the last message were fanned out"
    );
    Ok(())
}

#[tokio::test]
async fn a_session_ends_when_its_access_token_expires() {
    let node = NodeBuilder::new("expiry")
        .env("BANTER_AUTH__ACCESS_TTL_SECS", 2)
        .start()
        .await
        .expect("node");
    node.check(expiry(&node).await);
}

async fn expiry(node: &Node) -> Result<()> {
    let api = node.api();
    let alice = api.new_user("alice").await?;
    let mut c = StompClient::connect(&node.ws_url(), &alice.token).await?;
    let started = tokio::time::Instant::now();
    assert_error_message(&c.expect_error().await?, "access token expired");
    ensure!(
        started.elapsed() <= Duration::from_secs(4),
        "the session outlived its token by {:?}",
        started.elapsed()
    );
    c.expect_closed().await
}

#[tokio::test]
async fn connect_accepts_a_capitalised_authorization_header() {
    let node = shared_node().await.expect("shared node");
    node.check(capitalised(node).await);
}

async fn capitalised(node: &Node) -> Result<()> {
    let alice = node.api().new_user("alice").await?;
    let mut c = StompClient::open(&node.ws_url()).await?;
    let bearer = format!("Bearer {}", alice.token);
    c.connect_with(frame(
        Command::Connect,
        &[
            ("accept-version", "1.2"),
            ("host", "banter"),
            ("Authorization", &bearer),
        ],
        Bytes::new(),
    ))
    .await?;
    c.disconnect().await
}

#[tokio::test]
async fn sessions_of_one_user_are_capped() {
    let node = NodeBuilder::new("sessioncap")
        .env("BANTER_WS__MAX_SESSIONS_PER_USER", 2)
        .start()
        .await
        .expect("node");
    node.check(session_cap(&node).await);
}

async fn session_cap(node: &Node) -> Result<()> {
    let ws = node.ws_url();
    let alice = node.api().new_user("alice").await?;
    let first = StompClient::connect(&ws, &alice.token).await?;
    let _second = StompClient::connect(&ws, &alice.token).await?;
    let mut third = StompClient::open(&ws).await?;
    let Err(refused) = third.stomp_connect(&alice.token).await else {
        bail!("a third session was accepted");
    };
    let text = format!("{refused:#}");
    ensure!(
        text.contains("too many connections"),
        "refusal said: {text}"
    );
    // Once one ends, a new one is accepted.
    first.disconnect().await?;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        match StompClient::connect(&ws, &alice.token).await {
            Ok(c) => return c.disconnect().await,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.context("a session after one ended")),
        }
    }
}
