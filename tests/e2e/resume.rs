//! Resume: a client that was away subscribes with `since:<last seq>` and gets exactly the messages
//! it missed, in order, then the live ones — no gap, no duplicate — whether the missed messages are
//! still in the room's ring or only in the store.

use anyhow::{Result, ensure};
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
