//! The broker stalls (SIGSTOP) under senders, for longer than the journal's message timeout: it holds
//! its connections and answers nothing, then resumes (SIGCONT) and may well write what it received
//! meanwhile. Every SEND carries a `nonce`; each ends either RECEIPTed or with an ERROR saying its
//! outcome is unknown (never "not stored", never a hang). After SIGCONT every sender resends with the
//! same nonce: each gets a RECEIPT naming the first attempt's seq and id when the broker wrote it, and
//! history holds each message exactly once.

use std::time::Duration;

use anyhow::{Result, bail, ensure};
use banter_proto::stomp::Command;
use banter_tests::stomp::{describe, frame, header, parse_receipt, room_dest};
use banter_tests::{StompClient, eventually, unique};
use bytes::Bytes;

use super::support::{STORE_WAIT, check, kafka_node, prerequisites};

/// `journal.kafka.message_timeout_ms` of the node.
const MESSAGE_TIMEOUT_MS: u64 = 3000;
/// How long the broker stays frozen (beyond the message timeout).
const STALL: Duration = Duration::from_millis(6000);
/// SENDs made while the broker is frozen, one connection each (an ERROR closes its connection).
const SENDERS: usize = 5;

fn send(dest: &str, i: usize, receipt: &str) -> banter_proto::stomp::Frame {
    frame(
        Command::Send,
        &[
            ("destination", dest),
            ("receipt", receipt),
            ("nonce", &format!("stall-{i}")),
        ],
        Bytes::from(format!("stalled {i}")),
    )
}

#[tokio::test]
async fn a_stalled_broker_gives_receipts_or_unknown_outcomes_and_resends_store_once() {
    let Some((mysql_url, mut broker)) =
        prerequisites("a_stalled_broker_gives_receipts_or_unknown_outcomes_and_resends_store_once")
            .await
    else {
        return;
    };
    let node = kafka_node("durable-stall", &broker)
        .mysql(&mysql_url)
        .env(
            "BANTER_JOURNAL__KAFKA__MESSAGE_TIMEOUT_MS",
            MESSAGE_TIMEOUT_MS,
        )
        .start()
        .await
        .expect("node");
    let r = async {
        let api = node.api();
        let ws = node.ws_url();
        let alice = api.new_user("alice").await?;
        let room = api.create_room(&alice.token, &unique("stall")).await?.id;
        let dest = room_dest(room);
        let mut first = StompClient::connect(&ws, &alice.token).await?;
        let before = first.send_confirmed(&dest, "before the stall").await?;

        let mut clients = Vec::new();
        for _ in 0..SENDERS {
            clients.push(StompClient::connect(&ws, &alice.token).await?);
        }
        broker.freeze()?;
        for (i, c) in clients.iter_mut().enumerate() {
            c.send_frame(&send(&dest, i, &format!("r{i}"))).await?;
        }
        let mut unknown = 0;
        let wait = Duration::from_millis(MESSAGE_TIMEOUT_MS) + Duration::from_secs(10);
        for (i, c) in clients.iter_mut().enumerate() {
            let f = c
                .recv_where(wait, "an answer to the SEND", |f| {
                    matches!(f.command, Command::Receipt | Command::Error)
                })
                .await?;
            match f.command {
                Command::Receipt => {}
                Command::Error => {
                    let message = header(&f, "message").unwrap_or_default();
                    ensure!(
                        message.starts_with("outcome unknown:")
                            && header(&f, "receipt-id") == Some(format!("r{i}").as_str()),
                        "SEND {i} during the stall got {}",
                        describe(&f)
                    );
                    unknown += 1;
                }
                _ => bail!("unexpected {}", describe(&f)),
            }
        }
        eprintln!("{unknown} of {SENDERS} SENDs during the stall had an unknown outcome");
        tokio::time::sleep(STALL.saturating_sub(Duration::from_millis(MESSAGE_TIMEOUT_MS))).await;
        broker.thaw()?;

        // Every sender resends with its nonce: a RECEIPT each, with the first seq when it landed.
        let mut receipts = Vec::new();
        for i in 0..SENDERS {
            let mut c = StompClient::connect(&ws, &alice.token).await?;
            c.send_frame(&send(&dest, i, &format!("again{i}"))).await?;
            let f = c
                .recv_where(STORE_WAIT, "the RECEIPT of the resend", |f| {
                    matches!(f.command, Command::Receipt | Command::Error)
                })
                .await?;
            ensure!(
                matches!(f.command, Command::Receipt),
                "resend {i} got {}",
                describe(&f)
            );
            let r = parse_receipt(&f)?;
            ensure!(r.seq > before.seq, "resend {i} got seq {}", r.seq);
            receipts.push(r);
        }
        let after = first_or_new(&ws, &alice.token, &dest).await?;
        ensure!(
            receipts.iter().all(|r| r.seq < after),
            "the room goes on above every seq it gave out"
        );

        // Every acknowledged message is in history once (history merges the journaled tail the
        // store lacks, so this does not wait for the persister: after a stall, tansu's consumer
        // group does not always give the persister its partitions back, see the stop note of #17).
        let history = eventually("every resent message in history", STORE_WAIT, || {
            let api = api.clone();
            let token = alice.token.clone();
            async move {
                let h = api.full_history(&token, room, 200).await?;
                let stalled = h.iter().filter(|m| m.body.starts_with("stalled ")).count();
                Ok((stalled >= SENDERS).then_some(h))
            }
        })
        .await?;
        for (i, r) in receipts.iter().enumerate() {
            let body = format!("stalled {i}");
            let rows: Vec<_> = history.iter().filter(|m| m.body == body).collect();
            ensure!(
                rows.len() == 1,
                "message {i} is in history {} times",
                rows.len()
            );
            ensure!(
                rows[0].seq == r.seq && rows[0].message_id == r.message_id,
                "message {i}: history has seq {} id {}, the RECEIPT said seq {} id {}",
                rows[0].seq,
                rows[0].message_id,
                r.seq,
                r.message_id
            );
        }
        Ok(())
    }
    .await;
    let _ = broker.thaw();
    check(r);
}

/// Sends one more message on a fresh connection; returns its seq.
async fn first_or_new(ws: &str, token: &str, dest: &str) -> Result<u64> {
    let mut c = StompClient::connect(ws, token).await?;
    Ok(c.send_confirmed(dest, "after the stall").await?.seq)
}
