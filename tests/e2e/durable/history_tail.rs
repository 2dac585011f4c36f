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
use banter_tests::Api;

use super::support::{Acked, STORE_WAIT, check, check_history, ensure_stored_once, wait_rows};
use super::tail::{LAGGING, RING, STORED, Split, Tail, split, unpersisted_tail};

#[tokio::test]
async fn history_has_every_receipted_message_while_the_persister_is_behind() {
    let test = "history_has_every_receipted_message_while_the_persister_is_behind";
    let Some(mut split) = split(test, "history").await else {
        return;
    };
    check(scenario(&mut split).await);
}

async fn scenario(s: &mut Split) -> Result<()> {
    let Tail {
        alice, room, acked, ..
    } = unpersisted_tail(s).await?;
    let api = s.gateway.api();
    let n = STORED + LAGGING;
    check_pages(&api, &alice.token, room, &acked)
        .await
        .context("with the room active")?;

    // A new activation of the room: its ring is refilled from MySQL and the journal's tail.
    s.gateway.restart().await?;
    check_pages(&api, &alice.token, room, &acked)
        .await
        .context("after the gateway restarted")?;

    s.persister.restart().await?;
    wait_rows(&s.mysql, &s.db, room, n, STORE_WAIT).await?;
    ensure_stored_once(&s.mysql, &s.db, room, n).await?;
    check_pages(&api, &alice.token, room, &acked)
        .await
        .context("once the persister caught up")?;
    Ok(())
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
