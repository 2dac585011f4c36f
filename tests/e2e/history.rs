//! History: keyset paging (`before`, `limit`, newest first) through 500 messages with no gap and no
//! duplicate, the documented limits, and access for members only.

use std::collections::HashMap;

use anyhow::{Context, Result, ensure};
use banter_tests::stomp::room_dest;
use banter_tests::{Node, StompClient, shared_node, unique};

const MESSAGES: u64 = 500;

#[tokio::test]
async fn history_pages_back_through_500_messages() {
    let node = shared_node().await.expect("shared node");
    node.check(history_500(node).await);
}

async fn history_500(node: &Node) -> Result<()> {
    let api = node.api();
    let alice = api.new_user("hist").await?;
    let outsider = api.new_user("outsider").await?;
    let room = api.create_room(&alice.token, &unique("history")).await?.id;
    let dest = room_dest(room);

    // Pipeline every SEND, then collect the receipts.
    let mut c = StompClient::connect(&node.ws_url(), &alice.token).await?;
    for i in 0..MESSAGES {
        c.send(&dest, &format!("message {i:03}"), Some(&format!("h{i}")))
            .await?;
    }
    let mut sent: HashMap<u64, (String, String)> = HashMap::new();
    for i in 0..MESSAGES {
        let f = c.recv_receipt(&format!("h{i}")).await?;
        let r = banter_tests::stomp::parse_receipt(&f)?;
        ensure!(
            r.seq == i + 1,
            "message {i} of a fresh room got seq {} (expected {})",
            r.seq,
            i + 1
        );
        sent.insert(r.seq, (r.message_id, format!("message {i:03}")));
    }

    // The default page: the newest 50.
    let first = api.history(&alice.token, room, None, None).await?;
    let seqs: Vec<u64> = first.messages.iter().map(|m| m.seq).collect();
    let want: Vec<u64> = (MESSAGES - 49..=MESSAGES).rev().collect();
    ensure!(
        seqs == want,
        "default page is the newest 50, newest first: {seqs:?}"
    );
    ensure!(
        first.next_before.is_some(),
        "more pages follow the default page"
    );

    // Page back with an odd limit: every message exactly once, newest first, as sent.
    let all = api.full_history(&alice.token, room, 37).await?;
    let seqs: Vec<u64> = all.iter().map(|m| m.seq).collect();
    let want: Vec<u64> = (1..=MESSAGES).rev().collect();
    ensure!(
        seqs == want,
        "paging with limit 37 returns seqs 500..1 with no gap or duplicate, got {} items: {:?}",
        seqs.len(),
        seqs
    );
    for m in &all {
        let (id, body) = sent.get(&m.seq).context("sent seq")?;
        ensure!(
            &m.message_id == id && &m.body == body,
            "message {} is stored as sent: {m:?}",
            m.seq
        );
        ensure!(
            m.sender_id == alice.id && m.room_id == room,
            "sender and room of {m:?}"
        );
    }
    // Pages follow `next_before` exactly: the second page of 37 starts right below the first.
    let p1 = api.history(&alice.token, room, None, Some(37)).await?;
    let nb = p1.next_before.context("next_before on a full page")?;
    let p2 = api.history(&alice.token, room, Some(nb), Some(37)).await?;
    ensure!(
        p2.messages.first().map(|m| m.seq) == p1.messages.last().map(|m| m.seq - 1),
        "page 2 starts right below page 1"
    );
    // `before` in the middle.
    let mid = api.history(&alice.token, room, Some(101), Some(3)).await?;
    let seqs: Vec<u64> = mid.messages.iter().map(|m| m.seq).collect();
    ensure!(
        seqs == vec![100, 99, 98],
        "before=101&limit=3 gives 100, 99, 98: {seqs:?}"
    );
    // The oldest page says it is the last.
    let last = api.history(&alice.token, room, Some(3), Some(50)).await?;
    let seqs: Vec<u64> = last.messages.iter().map(|m| m.seq).collect();
    ensure!(
        seqs == vec![2, 1] && last.next_before.is_none(),
        "oldest page: {seqs:?} next_before {:?}",
        last.next_before
    );

    // limit: 200 is the most; above it is clamped to 200 or refused with 400 bad_request.
    let p = api.history(&alice.token, room, None, Some(200)).await?;
    ensure!(
        p.messages.len() == 200,
        "limit=200 returns 200 messages, got {}",
        p.messages.len()
    );
    let r = api.history_raw(&alice.token, room, None, Some(500)).await?;
    if r.status == 200 {
        let n = r.body["messages"].as_array().map_or(0, Vec::len);
        ensure!(
            n == 200,
            "limit=500 must be clamped to 200, got {n} messages"
        );
    } else {
        r.assert_error(400, "bad_request");
    }
    // Nonsense parameters are refused, each with its code: integers are decimal digits only.
    for (name, value, code) in [
        ("before", "abc", "invalid_cursor"),
        ("before", "-1", "invalid_cursor"),
        ("before", "+5", "invalid_cursor"),
        ("before", "1.5", "invalid_cursor"),
        ("before", "9223372036854775808", "invalid_cursor"),
        ("limit", "abc", "invalid_limit"),
        ("limit", "-1", "invalid_limit"),
        ("limit", "2147483648", "invalid_limit"),
    ] {
        let url = api.url_with(
            &format!("/api/rooms/{room}/messages"),
            &[(name, value.into())],
        );
        api.send(api.http().get(url).bearer_auth(&alice.token))
            .await?
            .assert_error(400, code);
    }

    // Only members read a room.
    api.history_raw(&outsider.token, room, None, None)
        .await?
        .assert_error(403, "forbidden");
    api.get(&format!("/api/rooms/{room}"), Some(&outsider.token))
        .await?
        .assert_error(403, "forbidden");
    api.get(&format!("/api/rooms/{room}/messages"), None)
        .await?
        .assert_error(401, "unauthorized");
    Ok(())
}
