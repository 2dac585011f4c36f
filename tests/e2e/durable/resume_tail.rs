//! Resume while the persister is behind: a client that subscribes with `since` below the room's ring
//! gets every RECEIPTed message after `since`, in order, with no gap and no duplicate, although MySQL
//! lacks the newest ones (they are in the Kafka journal only).
//!
//! A gateway-only node whose rooms keep RING messages in memory and a persister-only process share a
//! broker and a database. STORED messages are sent and stored; the persister is SIGKILLed; LAGGING more
//! are sent, each with a RECEIPT, and stay in the journal only (checked in MySQL). A new STOMP client
//! then subscribes with `since:SINCE`: its backfill spans the store, the journal-only part below the
//! ring, then the ring's replay, then a live message. So it does after the gateway restarts.

use anyhow::{Context, Result, ensure};
use banter_tests::stomp::{header, header_u64};
use banter_tests::{Node, StompClient};

use super::support::{Acked, check};
use super::tail::{Split, Tail, send, split, unpersisted_tail};

/// The resuming client's last seen seq: far below the ring, inside the store.
const SINCE: u64 = 3;

#[tokio::test]
async fn resume_below_the_ring_has_every_receipted_message_while_the_persister_is_behind() {
    let test = "resume_below_the_ring_has_every_receipted_message_while_the_persister_is_behind";
    let Some(mut split) = split(test, "resume").await else {
        return;
    };
    check(scenario(&mut split).await);
}

async fn scenario(s: &mut Split) -> Result<()> {
    let Tail {
        alice,
        dest,
        mut acked,
        ..
    } = unpersisted_tail(s).await?;
    let gateway = &mut s.gateway;
    let mut c = StompClient::connect(&gateway.ws_url(), &alice.token).await?;
    check_resume(gateway, &alice.token, &dest, &mut c, &mut acked)
        .await
        .context("with the room active")?;
    c.disconnect().await?;

    // A new activation of the room: its ring is refilled from MySQL and the journal's tail.
    gateway.restart().await?;
    let mut c = StompClient::connect(&gateway.ws_url(), &alice.token).await?;
    check_resume(gateway, &alice.token, &dest, &mut c, &mut acked)
        .await
        .context("after the gateway restarted")?;
    c.disconnect().await
}

/// A new client subscribes with `since:SINCE` and must get exactly the `acked` messages above SINCE,
/// in order, then a live message sent by `sender` (appended to `acked`), with nothing in between.
async fn check_resume(
    gateway: &Node,
    token: &str,
    dest: &str,
    sender: &mut StompClient,
    acked: &mut Vec<Acked>,
) -> Result<()> {
    let mut c = StompClient::connect(&gateway.ws_url(), token).await?;
    c.subscribe(dest, "resume", Some(SINCE)).await?;
    let live = send(sender, dest, &format!("live {}", acked.len())).await?;
    let live_id = live.message_id.clone();
    acked.push(live);
    let want: Vec<(u64, &str, &str)> = acked
        .iter()
        .filter(|a| a.seq > SINCE)
        .map(|a| (a.seq, a.message_id.as_str(), a.body.as_str()))
        .collect();
    let mut got = Vec::with_capacity(want.len());
    // Until the live message; a gap shows as a timeout, reported with what came.
    while got.len() < want.len() + 5 {
        let f = match c.recv_message("resume").await {
            Ok(f) => f,
            Err(e) => {
                let seqs: Vec<u64> = got.iter().map(|g: &(u64, String, String)| g.0).collect();
                return Err(e.context(format!(
                    "after since:{SINCE}, {} of {} messages came, seqs {seqs:?}",
                    got.len(),
                    want.len()
                )));
            }
        };
        let m = (
            header_u64(&f, "seq").unwrap_or(0),
            header(&f, "message-id").unwrap_or("").to_owned(),
            String::from_utf8_lossy(&f.body).into_owned(),
        );
        let done = m.1 == live_id;
        got.push(m);
        if done {
            break;
        }
    }
    let got_seqs: Vec<u64> = got.iter().map(|g| g.0).collect();
    let want_seqs: Vec<u64> = want.iter().map(|w| w.0).collect();
    ensure!(
        got.iter()
            .map(|(s, id, b)| (*s, id.as_str(), b.as_str()))
            .eq(want.iter().copied()),
        "after since:{SINCE} the client must get every receipted message, in order, once\n \
         got seqs  {got_seqs:?}\n want seqs {want_seqs:?}"
    );
    c.disconnect().await
}
