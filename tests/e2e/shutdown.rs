//! A graceful stop (SIGTERM): every client is told to go elsewhere — a STOMP ERROR saying so, then a
//! WebSocket close with code 1012 ("service restart") — whether it is chatting or has not even sent
//! CONNECT yet; acknowledged messages are all in history after a restart; the process exits cleanly
//! and in bounded time, with no session left behind.

use std::time::Duration;

use anyhow::{Result, ensure};
use banter_tests::stomp::room_dest;
use banter_tests::{Node, NodeBuilder, StompClient};

/// WebSocket close code "service restart".
const SERVICE_RESTART: u16 = 1012;

#[tokio::test]
async fn sigterm_sends_every_client_elsewhere() {
    let mut node = NodeBuilder::new("shutdown").start().await.expect("node");
    let r = sigterm(&mut node).await;
    node.check(r);
}

async fn sigterm(node: &mut Node) -> Result<()> {
    let api = node.api();
    let alice = api.new_user("leaving").await?;
    let room = api.create_room(&alice.token, "closing time").await?;
    let mut chatting = StompClient::connect(&node.ws_url(), &alice.token).await?;
    let sub = "closing";
    chatting.subscribe(&room_dest(room.id), sub, None).await?;
    let mut acked = Vec::new();
    for i in 0..5 {
        let r = chatting
            .send_confirmed(&room_dest(room.id), &format!("before the stop {i}"))
            .await?;
        acked.push(r.seq);
        chatting.recv_message(sub).await?;
    }
    // Connected at the WebSocket level only: the stop must not wait for its CONNECT timeout.
    let mut silent = StompClient::open(&node.ws_url()).await?;

    let status = node.terminate(Duration::from_secs(15)).await?;
    ensure!(status.success(), "the node exits cleanly: {status}");
    for (name, client) in [("chatting", &mut chatting), ("silent", &mut silent)] {
        let message = client.expect_error().await?;
        ensure!(
            message.contains("reconnect elsewhere"),
            "{name} client: ERROR says to reconnect elsewhere: {message}"
        );
        client.expect_closed().await?;
        ensure!(
            client.close_code() == Some(SERVICE_RESTART),
            "{name} client: close code {:?}, expected {SERVICE_RESTART}",
            client.close_code()
        );
    }

    node.restart().await?;
    let history = node.api().full_history(&alice.token, room.id, 100).await?;
    let mut seqs: Vec<u64> = history.iter().map(|m| m.seq).collect();
    seqs.sort_unstable();
    ensure!(
        seqs == acked,
        "history after the restart: {seqs:?}, acknowledged {acked:?}"
    );
    Ok(())
}
