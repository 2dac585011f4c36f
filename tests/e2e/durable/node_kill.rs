//! The node (gateway and persister in one process) is SIGKILLed while a room is busy. The room's first
//! EARLY messages are stored (offsets committed); then SENDs are pipelined, some journaled but not yet
//! stored (the persister batches for BATCH_MS, so the store is behind at the kill: checked in MySQL),
//! some still in the producer's queue. After a restart the room continues at (highest seq ever
//! receipted or stored) + 1 — store and journal tail together, not the store alone — no seq is reused,
//! and every receipted message is in history.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use banter_tests::stomp::room_dest;
use banter_tests::{Node, StompClient, unique};

use super::support::{
    Acked, STORE_WAIT, SendPlan, Sender, check, check_history, kafka_node, prerequisites,
    room_rows, wait_in_history, wait_rows,
};

/// RECEIPTs before the kill.
const KILL_AFTER: u64 = 200;
/// Messages confirmed and stored before the busy part.
const EARLY: u64 = 20;
/// Messages sent after the restart.
const AFTER: u64 = 5;
/// Age at which the persister writes a batch: long enough that the store is behind the journal when
/// the node is killed, whatever the timing.
const BATCH_MS: u64 = 2000;

#[tokio::test]
async fn node_sigkilled_in_a_busy_room_continues_at_the_next_seq() {
    let Some((mysql, broker)) =
        prerequisites("node_sigkilled_in_a_busy_room_continues_at_the_next_seq").await
    else {
        return;
    };
    let mut node = kafka_node("durable-node-kill", &broker)
        .mysql(&mysql)
        .env("BANTER_PERSISTER__BATCH_ROWS", 100_000)
        .env("BANTER_PERSISTER__BATCH_MS", BATCH_MS)
        .start()
        .await
        .expect("node");
    check(scenario(&mut node, &mysql).await);
}

async fn scenario(node: &mut Node, mysql: &str) -> Result<()> {
    let api = node.api();
    let alice = api.new_user("alice").await?;
    let room = api.create_room(&alice.token, &unique("nkill")).await?.id;
    let dest = room_dest(room);
    // A first part of the room is stored (and its offsets committed) before the busy part, so that
    // after the restart the room's last seq comes from the store and the journal's tail together.
    let mut c = StompClient::connect(&node.ws_url(), &alice.token).await?;
    let mut early = Vec::new();
    for i in 0..EARLY {
        let body = format!("early {i}");
        let r = c.send_confirmed(&dest, &body).await?;
        early.push(Acked {
            seq: r.seq,
            message_id: r.message_id,
            body,
        });
    }
    c.disconnect().await?;
    let database = node
        .mysql_database()
        .context("the node has a database")?
        .to_owned();
    wait_rows(mysql, &database, room, EARLY, STORE_WAIT).await?;

    let mut plan = SendPlan::new("nkill");
    plan.window = 64;
    plan.max = 20_000;
    let sender = Sender::spawn(&node.ws_url(), &alice.token, room, plan);
    sender
        .wait_acked(KILL_AFTER, Duration::from_secs(30))
        .await?;
    node.kill9();
    let mut log = sender.finish_after_close(Duration::from_secs(20)).await?;
    eprintln!("sender at the kill: {}", log.summary());
    ensure!(
        !log.unanswered.is_empty(),
        "the kill came while SENDs were in flight"
    );
    ensure!(
        log.refused.is_empty(),
        "ERRORs before the kill: {:?}",
        log.refused
    );
    log.ensure_seqs_rise()?;
    log.acked.splice(0..0, early);
    let max_acked = log.acked.iter().map(|a| a.seq).max().unwrap_or(0);
    let stored_at_kill = room_rows(mysql, &database, room).await?.max_seq;

    node.restart().await?;
    // The first SEND after the restart activates the room, which must find the journal's tail.
    let mut c = StompClient::connect(&node.ws_url(), &alice.token).await?;
    let mut after = Vec::new();
    for i in 0..AFTER {
        let body = format!("after restart {i}");
        let r = c
            .send_confirmed(&dest, &body)
            .await
            .with_context(|| format!("SEND {i} after the restart"))?;
        after.push(Acked {
            seq: r.seq,
            message_id: r.message_id,
            body,
        });
    }
    let first = after[0].seq;
    ensure!(
        first > max_acked,
        "the first seq after the restart, {first}, reuses or goes below the highest receipted {max_acked}"
    );
    ensure!(
        after.windows(2).all(|w| w[1].seq == w[0].seq + 1),
        "seqs after the restart are not consecutive: {:?}",
        after.iter().map(|a| a.seq).collect::<Vec<_>>()
    );

    let all: Vec<Acked> = log.acked.iter().chain(&after).cloned().collect();
    let history = wait_in_history(&api, &alice.token, room, &all, STORE_WAIT).await?;
    let mut sent = log.bodies();
    sent.extend(after.iter().map(|a| a.body.clone()));
    let before_restart = history
        .iter()
        .filter(|m| m.seq < first)
        .map(|m| m.seq)
        .max()
        .unwrap_or(0);
    eprintln!(
        "highest seq receipted before the kill {max_acked}, in MySQL at the kill {stored_at_kill}, \
         journaled before the kill {before_restart}; first seq after the restart {first}"
    );
    ensure!(
        stored_at_kill >= EARLY && stored_at_kill < before_restart,
        "scenario: at the kill the store should hold the early messages and be behind the journal \
         ({stored_at_kill} stored, {before_restart} journaled)"
    );
    ensure!(
        first == before_restart.max(max_acked) + 1,
        "the room continued at {first}, not at (highest seq receipted or stored = {}) + 1",
        before_restart.max(max_acked)
    );
    // In-flight SENDs were journaled in order or not at all: seqs 1..N with no gap.
    check_history(&history, &all.iter().collect::<Vec<_>>(), &sent, true)?;
    ensure!(
        history.last().map(|m| m.seq) == after.last().map(|a| a.seq),
        "the newest stored message is the last one sent"
    );
    Ok(())
}
