//! The WebSocket upgrade: `Origin` checks and subprotocol negotiation.

use anyhow::{Result, bail, ensure};
use banter_tests::stomp::SUBPROTOCOL;
use banter_tests::{Node, StompClient, Witness, shared_node};
use tokio_tungstenite::tungstenite;

#[tokio::test]
async fn foreign_origin_is_refused_and_no_origin_is_fine() {
    let node = shared_node().await.expect("shared node");
    node.check(origins(node).await);
}

async fn origins(node: &Node) -> Result<()> {
    let mut w = Witness::new(node).await?;
    let user = node.api().new_user("origin").await?;
    let ws = node.ws_url();

    for origin in [
        "http://evil.example",
        "http://127.0.0.1.evil.example",
        "null",
    ] {
        match StompClient::open_with(&ws, Some(SUBPROTOCOL), Some(origin)).await {
            Err(tungstenite::Error::Http(resp)) => {
                ensure!(
                    resp.status() == 403,
                    "Origin {origin}: expected 403, got {}",
                    resp.status()
                )
            }
            Err(e) => bail!("Origin {origin}: expected an HTTP 403 refusal, got {e}"),
            Ok(_) => bail!("Origin {origin}: the upgrade was accepted"),
        }
    }
    w.assert_served().await?;

    // No Origin (not a browser): fine, with or without the subprotocol.
    let mut c = StompClient::open_with(&ws, Some(SUBPROTOCOL), None).await?;
    ensure!(
        c.subprotocol.as_deref() == Some(SUBPROTOCOL),
        "server chose {:?}",
        c.subprotocol
    );
    c.stomp_connect(&user.token).await?;
    let mut c = StompClient::open_with(&ws, None, None).await?;
    ensure!(
        c.subprotocol.is_none(),
        "no subprotocol offered, none chosen: {:?}",
        c.subprotocol
    );
    c.stomp_connect(&user.token).await?;

    // The node's own origin (same host as the Host header) is allowed by default.
    let own = format!("http://127.0.0.1:{}", node.port());
    let mut c = StompClient::open_with(&ws, Some(SUBPROTOCOL), Some(&own)).await?;
    c.stomp_connect(&user.token).await?;
    w.assert_served().await
}
