//! The broker goes away under a sender, with the journal's message timeout at MESSAGE_TIMEOUT_MS.
//!
//! - SIGKILL and restart (same port, data kept) during a send loop: every SEND is answered — a RECEIPT
//!   (the producer retried) or an ERROR frame — within the timeout plus a margin, never left hanging;
//!   sending works again after the restart; every RECEIPTed message ends up in history.
//! - Stopped for longer than the timeout: a SEND (with a `nonce`) gets an ERROR frame naming its
//!   receipt and saying its outcome is unknown (then the connection closes, as after every ERROR): the
//!   journal cannot tell a record the broker never got from one whose answer was lost. Once the broker
//!   is back, a resend with the same nonce is RECEIPTed, the room goes on above every seq it gave
//!   out, and history holds the message exactly once.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use banter_proto::stomp::Command;
use banter_tests::kafka::Broker;
use banter_tests::stomp::{describe, frame, header, parse_receipt, room_dest};
use banter_tests::{Node, StompClient, unique};

use super::support::{
    STORE_WAIT, SendPlan, Sender, check, check_history, kafka_node, prerequisites, wait_in_history,
};

/// `journal.kafka.message_timeout_ms` of these nodes.
const MESSAGE_TIMEOUT_MS: u64 = 4000;
/// What a SEND may wait beyond the message timeout for its answer (the journal settles a failed append
/// at most 5 s after the timeout).
const ANSWER_MARGIN: Duration = Duration::from_secs(6);
/// How long the broker stays down after its SIGKILL (shorter than the message timeout).
const OUTAGE: Duration = Duration::from_millis(1500);

fn answer_within() -> Duration {
    Duration::from_millis(MESSAGE_TIMEOUT_MS) + ANSWER_MARGIN
}

async fn node(name: &str, broker: &Broker, mysql: &str) -> Node {
    kafka_node(name, broker)
        .mysql(mysql)
        .env(
            "BANTER_JOURNAL__KAFKA__MESSAGE_TIMEOUT_MS",
            MESSAGE_TIMEOUT_MS,
        )
        .start()
        .await
        .expect("node")
}

#[tokio::test]
async fn broker_sigkill_and_restart_during_a_send_loop_loses_no_receipted_message() {
    let Some((mysql, mut broker)) =
        prerequisites("broker_sigkill_and_restart_during_a_send_loop_loses_no_receipted_message")
            .await
    else {
        return;
    };
    let node = node("durable-broker-kill", &broker, &mysql).await;
    check(send_loop_across_restart(&node, &mut broker).await);
}

async fn send_loop_across_restart(node: &Node, broker: &mut Broker) -> Result<()> {
    let api = node.api();
    let alice = api.new_user("alice").await?;
    let room = api.create_room(&alice.token, &unique("bkill")).await?.id;
    let mut plan = SendPlan::new("bkill");
    // A window wide enough that SENDs go on being made into the outage, then wait on the broker.
    plan.window = 64;
    plan.rate = Some(100.0);
    plan.answer_within = answer_within();
    plan.reconnect = true;
    let sender = Sender::spawn(&node.ws_url(), &alice.token, room, plan);
    sender.wait_acked(50, Duration::from_secs(20)).await?;

    broker.kill9();
    let (at_kill, sent_at_kill) = (sender.acked(), sender.sent());
    tokio::time::sleep(OUTAGE).await;
    let sent_in_outage = sender.sent() - sent_at_kill;
    let waiting = sender.sent() - sender.acked() - sender.live.refused.load(Ordering::Relaxed);
    broker.restart().await?;
    let at_restart = sender.acked();
    eprintln!(
        "broker SIGKILLed at {at_kill} receipts; {sent_in_outage} SENDs made while it was down, \
         {waiting} waiting for an answer before its restart; restarted at {at_restart} receipts"
    );
    ensure!(
        sent_in_outage > 0 && waiting > 0,
        "scenario: no SEND was made or waiting while the broker was down"
    );
    // Sending works again: the producer reconnected (or was replaced).
    sender
        .wait_acked(at_restart + 100, Duration::from_secs(30))
        .await
        .context("after the broker restart")?;
    let log = sender.finish(answer_within() * 2).await?;
    eprintln!("sender: {}", log.summary());
    for r in &log.refused {
        eprintln!("  refused {:?}: {}", r.body, r.message);
    }
    ensure!(
        log.closed_without_error == 0,
        "{} connections closed without an ERROR frame",
        log.closed_without_error
    );
    for r in &log.refused {
        ensure!(
            r.body.is_some() && !r.message.is_empty(),
            "an ERROR for a SEND must name its receipt and say why: {r:?}"
        );
    }
    log.ensure_seqs_rise()?;

    let history = wait_in_history(&api, &alice.token, room, &log.acked, STORE_WAIT).await?;
    let acked: Vec<_> = log.acked.iter().collect();
    // Seqs of refused messages may be missing: no contiguity here.
    check_history(&history, &acked, &log.bodies(), false)?;
    if log.refused.is_empty() && log.unanswered.is_empty() {
        check_history(&history, &acked, &log.bodies(), true)?;
    }
    Ok(())
}

#[tokio::test]
async fn broker_down_past_the_message_timeout_gets_an_error_not_a_hang() {
    let Some((mysql, mut broker)) =
        prerequisites("broker_down_past_the_message_timeout_gets_an_error_not_a_hang").await
    else {
        return;
    };
    let node = node("durable-broker-down", &broker, &mysql).await;
    check(long_outage(&node, &mut broker).await);
}

async fn long_outage(node: &Node, broker: &mut Broker) -> Result<()> {
    let api = node.api();
    let ws = node.ws_url();
    let alice = api.new_user("alice").await?;
    let room = api.create_room(&alice.token, &unique("bdown")).await?.id;
    let dest = room_dest(room);
    let mut c = StompClient::connect(&ws, &alice.token).await?;
    let mut before = Vec::new();
    for i in 0..3 {
        before.push(c.send_confirmed(&dest, &format!("before {i}")).await?);
    }

    broker.stop()?;
    let started = tokio::time::Instant::now();
    let during = |receipt: &'static str| {
        frame(
            Command::Send,
            &[
                ("destination", dest.as_str()),
                ("receipt", receipt),
                ("nonce", "outage-1"),
            ],
            bytes::Bytes::from_static(b"during the outage"),
        )
    };
    c.send_frame(&during("down")).await?;
    let f = c
        .recv_where(
            answer_within(),
            "an answer to the SEND during the outage",
            |f| matches!(f.command, Command::Receipt | Command::Error),
        )
        .await?;
    let waited = started.elapsed();
    eprintln!("answer after {waited:?}: {}", describe(&f));
    if !matches!(f.command, Command::Error) {
        bail!(
            "the broker is down, yet the SEND got {} after {waited:?}",
            describe(&f)
        );
    }
    ensure!(
        header(&f, "receipt-id") == Some("down"),
        "the ERROR must name the SEND's receipt: {}",
        describe(&f)
    );
    let message = header(&f, "message").unwrap_or_default();
    ensure!(
        message.starts_with("outcome unknown:") && message.contains("same nonce"),
        "the ERROR must say the outcome is unknown and a resend with the nonce is safe: {message:?}"
    );
    c.expect_closed().await?;

    broker.restart().await?;
    // The resend waits while the room looks the first one up in the journal, then is stored once.
    let mut c = StompClient::connect(&ws, &alice.token).await?;
    c.send_frame(&during("down-again")).await?;
    let f = c
        .recv_where(STORE_WAIT, "the RECEIPT of the resend", |f| {
            matches!(f.command, Command::Receipt | Command::Error)
        })
        .await?;
    ensure!(
        matches!(f.command, Command::Receipt) && header(&f, "receipt-id") == Some("down-again"),
        "the resend with the same nonce must be RECEIPTed: {}",
        describe(&f)
    );
    let resent = parse_receipt(&f)?;
    ensure!(
        resent.seq > before[2].seq,
        "seq {} of the resend is not above {}",
        resent.seq,
        before[2].seq
    );
    // Once the broker is back the room goes on, above every seq it gave out.
    let after = c
        .send_confirmed(&dest, "after the outage")
        .await
        .context("the first SEND after the broker came back")?;
    ensure!(
        after.seq > before[2].seq,
        "seq {} after the outage is not above {}",
        after.seq,
        before[2].seq
    );
    let mut acked = Vec::new();
    for (r, body) in before.iter().zip(["before 0", "before 1", "before 2"]) {
        acked.push(super::support::Acked {
            seq: r.seq,
            message_id: r.message_id.clone(),
            body: body.to_owned(),
        });
    }
    acked.push(super::support::Acked {
        seq: resent.seq,
        message_id: resent.message_id.clone(),
        body: "during the outage".to_owned(),
    });
    acked.push(super::support::Acked {
        seq: after.seq,
        message_id: after.message_id.clone(),
        body: "after the outage".to_owned(),
    });
    let history = wait_in_history(&api, &alice.token, room, &acked, STORE_WAIT).await?;
    ensure!(
        history
            .iter()
            .filter(|m| m.body == "during the outage")
            .count()
            == 1,
        "the message of unknown outcome is in history once: {history:?}"
    );
    let sent = acked.iter().map(|a| a.body.clone()).collect();
    check_history(&history, &acked.iter().collect::<Vec<_>>(), &sent, false)?;
    Ok(())
}
