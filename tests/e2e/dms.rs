//! Leaving a DM is reversible: the one who left is out of the room (no list entry, no history, no
//! sending) until they open the DM again with `POST /api/dms`, which adds them back, to the same room
//! with its whole history. The other user is not moved either way.

use anyhow::{Result, ensure};
use banter_tests::stomp::room_dest;
use banter_tests::{Node, StompClient, shared_node};

#[tokio::test]
async fn a_dm_left_comes_back_when_opened_again() {
    let node = shared_node().await.expect("shared node");
    node.check(leave_and_reopen(node).await);
}

async fn leave_and_reopen(node: &Node) -> Result<()> {
    let api = node.api();
    let alice = api.new_user("dmleave").await?;
    let bob = api.new_user("dmstay").await?;
    let (status, dm) = api.dm(&alice.token, bob.id).await?;
    ensure!(status == 201, "a new DM is 201, got {status}");
    let mut bob_c = StompClient::connect(&node.ws_url(), &bob.token).await?;
    let first = bob_c.send_confirmed(&room_dest(dm.id), "before").await?;

    api.leave(&alice.token, dm.id).await?;
    ensure!(
        api.room_summary(&alice.token, dm.id).await?.is_none(),
        "the DM left is not in alice's list"
    );
    api.history_raw(&alice.token, dm.id, None, None)
        .await?
        .assert_error(403, "forbidden");
    let members: Vec<i64> = api
        .members(&bob.token, dm.id)
        .await?
        .iter()
        .map(|m| m.user_id)
        .collect();
    ensure!(members == vec![bob.id], "bob stays alone: {members:?}");
    let second = bob_c
        .send_confirmed(&room_dest(dm.id), "while away")
        .await?;

    // Opening it again is the same room, with alice back in it.
    let (status, again) = api.dm(&alice.token, bob.id).await?;
    ensure!(status == 200, "an existing DM is 200, got {status}");
    ensure!(
        again.id == dm.id,
        "the same room: {} vs {}",
        again.id,
        dm.id
    );
    ensure!(
        api.room_summary(&alice.token, dm.id).await?.is_some(),
        "the DM is back in alice's list"
    );
    let mut members: Vec<i64> = api
        .members(&alice.token, dm.id)
        .await?
        .iter()
        .map(|m| m.user_id)
        .collect();
    members.sort_unstable();
    let mut both = vec![alice.id, bob.id];
    both.sort_unstable();
    ensure!(members == both, "both are members again: {members:?}");
    let seqs: Vec<u64> = api
        .history(&alice.token, dm.id, None, None)
        .await?
        .messages
        .iter()
        .map(|m| m.seq)
        .collect();
    ensure!(
        seqs == vec![second.seq, first.seq],
        "alice sees the whole history, also what was sent while she was out: {seqs:?}"
    );
    // Opening it once more changes nothing.
    let (status, _) = api.dm(&alice.token, bob.id).await?;
    ensure!(status == 200, "still 200, got {status}");
    Ok(())
}
