//! Resume: a client that was away subscribes with `since:<last seq>` and gets exactly the messages
//! it missed, in order, then the live ones — no gap, no duplicate — whether the missed messages are
//! still in the room's ring or only in the store.

use anyhow::{Context, Result, ensure};
use banter_tests::stomp::{header, header_u64, room_dest};
use banter_tests::{Node, NodeBuilder, Receipt, StompClient, shared_node, unique};

#[tokio::test]
async fn resume_after_disconnect_replays_missed_then_live() {
    let node = shared_node().await.expect("shared node");
    node.check(resume(node, 7).await);
}

#[tokio::test]
async fn resume_beyond_the_ring_reads_the_store() {
    let node = NodeBuilder::new("ring16")
        .env("BANTER_ROOMS__RING_SIZE", 16)
        .start()
        .await
        .expect("node");
    node.check(resume(&node, 60).await);
}

/// One delivered chat message: seq, message id, body.
type Seen = (u64, String, String);

fn seen(f: &banter_proto::stomp::Frame) -> Seen {
    (
        header_u64(f, "seq").unwrap_or(0),
        header(f, "message-id").unwrap_or("").to_owned(),
        String::from_utf8_lossy(&f.body).into_owned(),
    )
}

fn expected(r: &Receipt, body: &str) -> Seen {
    (r.seq, r.message_id.clone(), body.to_owned())
}

async fn resume(node: &Node, missed: usize) -> Result<()> {
    let api = node.api();
    let ws = node.ws_url();
    let alice = api.new_user("alice").await?;
    let bob = api.new_user("bob").await?;
    let room = api.create_room(&alice.token, &unique("resume")).await?.id;
    api.join(&bob.token, room).await?;
    let dest = room_dest(room);

    let mut alice_c = StompClient::connect(&ws, &alice.token).await?;
    let mut bob_c = StompClient::connect(&ws, &bob.token).await?;
    bob_c.subscribe(&dest, "r", None).await?;
    let mut last = 0;
    for i in 0..3 {
        let body = format!("before {i}");
        let r = alice_c.send_confirmed(&dest, &body).await?;
        let got = seen(&bob_c.recv_message("r").await?);
        ensure!(
            got == expected(&r, &body),
            "live delivery: {got:?} for {r:?}"
        );
        last = r.seq;
    }
    bob_c.disconnect().await?;

    // Bob is away.
    let mut want = Vec::new();
    for i in 0..missed {
        let body = format!("missed {i}");
        let r = alice_c.send_confirmed(&dest, &body).await?;
        want.push(expected(&r, &body));
    }

    // Bob comes back with the last seq he has; Alice keeps talking while his replay runs.
    let mut bob_c = StompClient::connect(&ws, &bob.token).await?;
    bob_c
        .subscribe_nowait(&dest, "r2", Some(last), Some("resubscribed"))
        .await?;
    for i in 0..3 {
        let body = format!("during replay {i}");
        let r = alice_c.send_confirmed(&dest, &body).await?;
        want.push(expected(&r, &body));
    }
    let r = alice_c.send_confirmed(&dest, "end").await?;
    want.push(expected(&r, "end"));

    let mut got = Vec::new();
    while got.len() < want.len() + 5 {
        let m = seen(&bob_c.recv_message("r2").await?);
        let done = m.2 == "end";
        got.push(m);
        if done {
            break;
        }
    }
    let seqs = |v: &[Seen]| v.iter().map(|s| s.0).collect::<Vec<_>>();
    ensure!(
        got == want,
        "after since:{last} bob must get exactly the {} messages he missed and the live ones, in order\n got seqs  {:?}\n want seqs {:?}",
        want.len(),
        seqs(&got),
        seqs(&want)
    );
    bob_c.recv_receipt("resubscribed").await?;

    // And it stays live, with nothing repeated after the replay.
    let r = alice_c.send_confirmed(&dest, "live again").await?;
    let next = seen(&bob_c.recv_message("r2").await?);
    ensure!(
        next == expected(&r, "live again"),
        "next message after the replay: {next:?}, want {r:?}"
    );
    Ok(())
}

/// A subscriber that stops reading is closed as too slow once its outbox overflows (the room never
/// waits for it and drops nothing silently); it resumes from the last seq it got, with no gap.
#[tokio::test]
async fn a_client_that_stops_reading_is_closed_as_too_slow_then_resumes() {
    // The write deadline far away: here the outbox overflows first (`hostile.rs` tests the deadline).
    let node = NodeBuilder::new("slow")
        .env("BANTER_WS__OUTBOX_FRAMES", 8)
        .env("BANTER_WS__WRITE_TIMEOUT_MS", 600_000)
        .env("BANTER_LIMITS__SEND_PER_SECOND", 100_000)
        .env("BANTER_LIMITS__SEND_BURST", 100_000)
        .start()
        .await
        .expect("node");
    node.check(too_slow(&node).await);
}

async fn too_slow(node: &Node) -> Result<()> {
    // Enough bytes to fill the loopback buffers between the node and a client that does not read
    // (a few MB here), so the node's writes to it block and its outbox overflows.
    const MESSAGES: u64 = 3_000;
    let api = node.api();
    let ws = node.ws_url();
    let alice = api.new_user("alice").await?;
    let bob = api.new_user("bob").await?;
    let room = api.create_room(&alice.token, &unique("slow")).await?.id;
    api.join(&bob.token, room).await?;
    let dest = room_dest(room);
    let mut bob_c = StompClient::connect(&ws, &bob.token).await?;
    bob_c.subscribe(&dest, "r", None).await?;

    // Bob reads nothing while Alice sends, a few at a time (her own outbox holds 8 RECEIPTs).
    let mut alice_c = StompClient::connect(&ws, &alice.token).await?;
    let body = "x".repeat(4_000);
    for window in 0..MESSAGES / 4 {
        let ids: Vec<String> = (0..4).map(|i| format!("m{}", window * 4 + i)).collect();
        for id in &ids {
            alice_c
                .send(&dest, &body, Some(id))
                .await
                .with_context(|| format!("sending {id}"))?;
        }
        for id in &ids {
            alice_c
                .recv_receipt(id)
                .await
                .with_context(|| format!("receipt of {id}"))?;
        }
    }

    // Every message went through one commit of the in-process journal (operators see its batches).
    let committed = node
        .metric_sum("banter_journal_commit_messages_sum")
        .await?;
    ensure!(
        committed == Some(MESSAGES as f64),
        "journal commits counted {committed:?} messages"
    );

    // What reached Bob: messages 1..=k in order, then the ERROR, then the end of the connection.
    let mut last = 0;
    let error = loop {
        let f = bob_c.recv_frame(std::time::Duration::from_secs(30)).await?;
        match f.command {
            banter_proto::stomp::Command::Message => {
                let seq = header_u64(&f, "seq").unwrap_or(0);
                ensure!(seq == last + 1, "after seq {last} bob got {seq}");
                last = seq;
            }
            banter_proto::stomp::Command::Error => {
                break header(&f, "message").unwrap_or("").to_owned();
            }
            other => anyhow::bail!("unexpected {other:?} frame"),
        }
    };
    ensure!(error.contains("too slow"), "ERROR: {error}");
    ensure!(
        last < MESSAGES,
        "bob got all {last} messages: never too slow"
    );
    bob_c.expect_closed().await?;

    // Resuming from the last seq he got delivers the rest, in order.
    let mut bob_c = StompClient::connect(&ws, &bob.token).await?;
    bob_c.subscribe(&dest, "r2", Some(last)).await?;
    for want in last + 1..=MESSAGES {
        let f = bob_c.recv_message("r2").await?;
        let seq = header_u64(&f, "seq").unwrap_or(0);
        ensure!(
            seq == want,
            "resumed from {last}: got seq {seq}, want {want}"
        );
    }
    Ok(())
}
