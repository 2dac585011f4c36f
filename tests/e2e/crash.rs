//! Crash: the node is killed with SIGKILL while a sender pipelines SENDs with receipts. After a
//! restart every message that got a RECEIPT (and every one a member saw) is in history, and new
//! messages get seqs above every seq seen before: nothing acknowledged is lost, no seq is reused. Both
//! SQLite commit modes (`store.sqlite_synchronous`) are checked. A SEND's `nonce` outlives the crash:
//! a resend after the restart gets the first RECEIPT and makes no second message.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use banter_proto::stomp::Command;
use banter_tests::stomp::{Receipt, describe, frame, header_u64, parse_receipt, room_dest};
use banter_tests::{Node, NodeBuilder, StompClient, unique};

/// Most SENDs sent and not yet answered.
const WINDOW: u64 = 64;
/// Receipts to collect before the kill.
const KILL_AFTER: usize = 150;
/// Upper bound of SENDs (the kill comes long before).
const MAX_SENDS: u64 = 5_000;

#[tokio::test]
async fn sigkill_mid_conversation_loses_no_acknowledged_message() {
    let mut node = NodeBuilder::new("crash").start().await.expect("node");
    let r = crash(&mut node).await;
    node.check(r);
}

/// The same with `store.sqlite_synchronous = "normal"`: no `fsync` per commit, and still nothing
/// acknowledged is lost when the process is killed (the OS keeps what was written).
#[tokio::test]
async fn sigkill_loses_nothing_with_normal_sqlite_sync() {
    let mut node = NodeBuilder::new("crash-normal")
        .env("BANTER_STORE__SQLITE_SYNCHRONOUS", "normal")
        .start()
        .await
        .expect("node");
    let r = crash(&mut node).await;
    node.check(r);
}

#[tokio::test]
async fn a_nonce_is_honoured_after_sigkill_and_restart() {
    let mut node = NodeBuilder::new("crash-nonce").start().await.expect("node");
    let r = resend_after_crash(&mut node).await;
    node.check(r);
}

/// Sends `body` with a `nonce` and a receipt, and returns its RECEIPT.
async fn send_nonce(
    c: &mut StompClient,
    dest: &str,
    receipt: &str,
    body: &str,
    nonce: &str,
) -> Result<Receipt> {
    c.send_frame(&frame(
        Command::Send,
        &[
            ("destination", dest),
            ("content-type", "text/plain;charset=utf-8"),
            ("receipt", receipt),
            ("nonce", nonce),
        ],
        bytes::Bytes::copy_from_slice(body.as_bytes()),
    ))
    .await?;
    let f = c.recv_receipt(receipt).await?;
    parse_receipt(&f)
}

async fn resend_after_crash(node: &mut Node) -> Result<()> {
    let api = node.api();
    let ws = node.ws_url();
    let alice = api.new_user("alice").await?;
    let room = api
        .create_room(&alice.token, &unique("crash-nonce"))
        .await?
        .id;
    let dest = room_dest(room);
    let mut c = StompClient::connect(&ws, &alice.token).await?;
    c.send_confirmed(&dest, "before").await?;
    let first = send_nonce(&mut c, &dest, "n-1", "only once", "crash-nonce-1").await?;
    c.send_confirmed(&dest, "after").await?;

    node.kill9();
    node.restart().await?;

    let mut c = StompClient::connect(&ws, &alice.token).await?;
    let again = send_nonce(&mut c, &dest, "n-again", "only once", "crash-nonce-1").await?;
    ensure!(
        (again.seq, again.message_id.as_str()) == (first.seq, first.message_id.as_str()),
        "the resend after the restart must get the first RECEIPT: first {first:?}, again {again:?}"
    );
    let history = api.full_history(&alice.token, room, 50).await?;
    let copies: Vec<u64> = history
        .iter()
        .filter(|m| m.body == "only once")
        .map(|m| m.seq)
        .collect();
    ensure!(
        copies == [first.seq],
        "history must hold the message once, at seq {}: {copies:?}",
        first.seq
    );
    // The room goes on after the last seq it gave out.
    let next = c.send_confirmed(&dest, "new").await?;
    ensure!(
        next.seq == first.seq + 2,
        "seq after the restart: {}",
        next.seq
    );
    Ok(())
}

async fn crash(node: &mut Node) -> Result<()> {
    let api = node.api();
    let ws = node.ws_url();
    let alice = api.new_user("alice").await?;
    let bob = api.new_user("bob").await?;
    let room = api.create_room(&alice.token, &unique("crash")).await?.id;
    api.join(&bob.token, room).await?;
    let dest = room_dest(room);

    // Bob watches the room until the connection dies.
    let mut bob_c = StompClient::connect(&ws, &bob.token).await?;
    bob_c.subscribe(&dest, "r", None).await?;
    let bob_task = tokio::spawn(async move {
        let mut seqs = Vec::new();
        while let Ok(m) = bob_c.recv_message("r").await {
            seqs.push(header_u64(&m, "seq").unwrap_or(0));
        }
        seqs
    });

    // Alice pipelines SENDs with receipts; the node is killed mid-stream.
    let mut alice_c = StompClient::connect(&ws, &alice.token).await?;
    let mut acked: BTreeMap<u64, (String, String)> = BTreeMap::new();
    let (mut sent, mut answered, mut killed) = (0u64, 0u64, false);
    let mut outstanding_at_kill = 0;
    'conversation: loop {
        while sent < MAX_SENDS && sent - answered < WINDOW {
            if alice_c
                .send(&dest, &format!("crash {sent}"), Some(&format!("c{sent}")))
                .await
                .is_err()
            {
                break 'conversation;
            }
            sent += 1;
        }
        let f = match alice_c.recv_frame(Duration::from_secs(15)).await {
            Ok(f) => f,
            Err(_) if killed => break,
            Err(e) => return Err(e.context("alice's connection failed before the kill")),
        };
        match f.command {
            Command::Receipt => {
                let r = parse_receipt(&f)?;
                let i: u64 = r
                    .receipt_id
                    .trim_start_matches('c')
                    .parse()
                    .context("receipt id")?;
                if acked
                    .insert(r.seq, (r.message_id, format!("crash {i}")))
                    .is_some()
                {
                    bail!("seq {} acknowledged twice", r.seq);
                }
                answered += 1;
            }
            Command::Error => bail!("ERROR during the conversation: {}", describe(&f)),
            _ => {}
        }
        if acked.len() >= KILL_AFTER && !killed {
            outstanding_at_kill = sent - answered;
            node.kill9();
            killed = true;
        }
    }
    ensure!(
        outstanding_at_kill > 0,
        "the kill came while SENDs were in flight"
    );
    ensure!(
        killed && acked.len() >= KILL_AFTER,
        "the node was killed after {} receipts",
        acked.len()
    );
    let bob_seen: Vec<u64> = tokio::time::timeout(Duration::from_secs(30), bob_task)
        .await
        .context("bob's reader did not notice the kill")??;

    node.restart().await?;

    // The old access token still works: the signing key lives in the data dir.
    let history = api.full_history(&alice.token, room, 200).await?;
    let stored: BTreeMap<u64, (String, String)> = history
        .iter()
        .map(|m| (m.seq, (m.message_id.clone(), m.body.clone())))
        .collect();
    ensure!(stored.len() == history.len(), "history has duplicate seqs");
    let lost: Vec<u64> = acked
        .iter()
        .filter(|(seq, v)| stored.get(seq) != Some(v))
        .map(|(seq, _)| *seq)
        .collect();
    ensure!(
        lost.is_empty(),
        "{} of {} acknowledged messages are missing or changed after the crash: seqs {:?}",
        lost.len(),
        acked.len(),
        lost
    );
    let unseen: Vec<u64> = bob_seen
        .iter()
        .filter(|s| !stored.contains_key(s))
        .copied()
        .collect();
    ensure!(
        unseen.is_empty(),
        "messages delivered to bob but not in history: {unseen:?}"
    );
    let distinct: BTreeSet<u64> = bob_seen.iter().copied().collect();
    ensure!(distinct.len() == bob_seen.len(), "bob got a seq twice");

    let max_seen = acked
        .keys()
        .chain(stored.keys())
        .chain(bob_seen.iter())
        .copied()
        .max()
        .unwrap_or(0);
    let mut alice_c = StompClient::connect(&ws, &alice.token).await?;
    let mut prev = max_seen;
    for i in 0..5 {
        let r = alice_c
            .send_confirmed(&dest, &format!("after restart {i}"))
            .await?;
        ensure!(
            r.seq > prev,
            "seq {} after the restart reuses or goes below {prev} (max seen {max_seen})",
            r.seq
        );
        prev = r.seq;
    }
    let check = api.history(&alice.token, room, None, Some(5)).await?;
    ensure!(
        check.messages.first().map(|m| m.body.as_str()) == Some("after restart 4"),
        "the newest message is the last one sent: {:?}",
        check.messages.first()
    );
    Ok(())
}
