//! REST history while the persister is behind: every RECEIPTed message is in history, the newest
//! ones from the room (its ring) and the Kafka journal, before MySQL has them.
//!
//! A gateway-only node whose rooms keep RING messages in memory and a persister-only process share a
//! broker and a database. STORED messages are sent and stored; the persister is SIGKILLed; LAGGING more
//! are sent, each with a RECEIPT, and stay in the journal only (checked in MySQL). History then holds
//! all of them, in one page and paged with limits whose pages cross the ring and the store — those
//! below the ring are read from the journal. So it does after the gateway restarts (the room activates
//! again from MySQL and the journal), and after the persister comes back and stores them, once each.

use std::collections::HashSet;

use anyhow::{Context, Result, ensure};
use banter_tests::stomp::room_dest;
use banter_tests::{Api, Node, StompClient, unique};

use super::support::{
    Acked, RoomRows, STORE_WAIT, check, check_history, kafka_node, prerequisites, room_rows,
    wait_rows,
};

/// Messages each room keeps in memory: fewer than the lag, so some pages come from the journal.
const RING: u64 = 8;
/// Messages stored before the persister is killed.
const STORED: u64 = 12;
/// Messages sent while no persister runs.
const LAGGING: u64 = 30;

#[tokio::test]
async fn history_has_every_receipted_message_while_the_persister_is_behind() {
    let Some((mysql, broker)) =
        prerequisites("history_has_every_receipted_message_while_the_persister_is_behind").await
    else {
        return;
    };
    let mut gateway = kafka_node("history-gateway", &broker)
        .mysql(&mysql)
        .env("BANTER_NODE__ROLES", "[gateway]")
        .env("BANTER_ROOMS__RING_SIZE", RING)
        .start()
        .await
        .expect("gateway node");
    let db = gateway
        .mysql_database()
        .expect("the gateway has a database")
        .to_owned();
    let mut persister = kafka_node("history-persister", &broker)
        .env("BANTER_STORE__URL", format!("{mysql}/{db}"))
        .env("BANTER_NODE__ROLES", "[persister]")
        .start()
        .await
        .expect("persister node");
    check(scenario(&mut gateway, &mut persister, &mysql, &db).await);
}

async fn scenario(gateway: &mut Node, persister: &mut Node, mysql: &str, db: &str) -> Result<()> {
    let api = gateway.api();
    let alice = api.new_user("alice").await?;
    let room = api.create_room(&alice.token, &unique("tail")).await?.id;
    let dest = room_dest(room);
    let mut c = StompClient::connect(&gateway.ws_url(), &alice.token).await?;
    let mut acked = Vec::new();
    for i in 0..STORED {
        acked.push(send(&mut c, &dest, &format!("stored {i}")).await?);
    }
    wait_rows(mysql, db, room, STORED, STORE_WAIT).await?;

    persister.kill9();
    for i in 0..LAGGING {
        acked.push(send(&mut c, &dest, &format!("lagging {i}")).await?);
    }
    c.disconnect().await?;
    let n = STORED + LAGGING;
    ensure!(
        acked.iter().map(|a| a.seq).eq(1..=n),
        "receipts' seqs are not 1..={n}"
    );
    let rows = room_rows(mysql, db, room).await?;
    ensure!(
        rows.max_seq == STORED && rows.rows == STORED,
        "scenario: MySQL should hold only the first {STORED} messages, it holds {rows:?}"
    );

    check_pages(&api, &alice.token, room, &acked)
        .await
        .context("with the room active")?;

    // A new activation of the room: its ring is refilled from MySQL and the journal's tail.
    gateway.restart().await?;
    check_pages(&api, &alice.token, room, &acked)
        .await
        .context("after the gateway restarted")?;

    persister.restart().await?;
    wait_rows(mysql, db, room, n, STORE_WAIT).await?;
    let rows = room_rows(mysql, db, room).await?;
    ensure!(
        rows == RoomRows {
            rows: n,
            distinct_ids: n,
            min_seq: 1,
            max_seq: n,
        },
        "the messages table holds {rows:?} for room {room}, expected {n} rows with seqs 1..={n}"
    );
    check_pages(&api, &alice.token, room, &acked)
        .await
        .context("once the persister caught up")?;
    Ok(())
}

async fn send(c: &mut StompClient, dest: &str, body: &str) -> Result<Acked> {
    let r = c.send_confirmed(dest, body).await?;
    Ok(Acked {
        seq: r.seq,
        message_id: r.message_id,
        body: body.to_owned(),
    })
}

/// Checks that history holds exactly the `acked` messages (seqs 1..=N): in one page, walking back with
/// several page sizes, and on pages that start right above, at and below the store's newest message.
async fn check_pages(api: &Api, token: &str, room: i64, acked: &[Acked]) -> Result<()> {
    let n = acked.len() as u64;
    let refs: Vec<&Acked> = acked.iter().collect();
    let sent: HashSet<String> = acked.iter().map(|a| a.body.clone()).collect();
    let page = api.history(token, room, None, Some(200)).await?;
    ensure!(
        page.next_before.is_none(),
        "one page of 200 holds all {n}, yet next_before is {:?}",
        page.next_before
    );
    for limit in [1, 5, 7, 50] {
        let mut history = api
            .full_history(token, room, limit)
            .await
            .with_context(|| format!("walking back {limit} at a time"))?;
        history.reverse();
        check_history(&history, &refs, &sent, true)
            .with_context(|| format!("walking back {limit} at a time"))?;
        ensure!(
            history.len() as u64 == n,
            "walking back {limit} at a time: {} messages, {n} acknowledged",
            history.len()
        );
    }
    for before in [
        STORED,
        STORED + 1,
        STORED + 2,
        STORED + 4,
        n - RING,
        n - RING + 2,
        n + 1,
    ] {
        let limit = 5;
        let page = api.history(token, room, Some(before), Some(limit)).await?;
        let seqs: Vec<u64> = page.messages.iter().map(|m| m.seq).collect();
        let want: Vec<u64> = (1..before).rev().take(limit as usize).collect();
        ensure!(
            seqs == want,
            "page before {before}, limit {limit}: seqs {seqs:?}, expected {want:?}"
        );
        ensure!(
            page.next_before == want.last().copied().filter(|s| *s > 1),
            "page before {before}: next_before {:?}",
            page.next_before
        );
        for m in &page.messages {
            let a = &acked[(m.seq - 1) as usize];
            ensure!(
                m.message_id == a.message_id && m.body == a.body,
                "seq {} in history as {} {:?}, acknowledged as {} {:?}",
                m.seq,
                m.message_id,
                m.body,
                a.message_id,
                a.body
            );
        }
    }
    Ok(())
}
