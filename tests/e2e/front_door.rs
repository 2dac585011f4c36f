//! Hostile HTTP clients at the front door (issue #17): a slow-loris client, an idle connection, a
//! request body that never finishes, and one address opening more connections than allowed. Each is
//! closed or refused within its bound, with the JSON error body where there is an answer, while a
//! client from another address is still served.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use banter_tests::{Node, NodeBuilder, StompClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

/// Opens a TCP connection to the node from source address `from` (any 127.x.y.z works on loopback).
async fn connect_from(node: &Node, from: [u8; 4]) -> Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0)))?;
    let to = SocketAddr::from(([127, 0, 0, 1], node.port()));
    Ok(socket.connect(to).await?)
}

/// Reads until the peer closes (or `within` passes); returns what was read and how long it took.
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> Result<(String, Duration)> {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = within
            .checked_sub(started.elapsed())
            .context("the connection is still open")?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => anyhow::bail!(
                "the connection is still open after {within:?}; got {:?}",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    Ok((
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    ))
}

/// A plain `GET /healthz` from address `from`: the node still serves it.
async fn healthz_from(node: &Node, from: [u8; 4]) -> Result<()> {
    let mut s = connect_from(node, from).await?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: banter\r\nconnection: close\r\n\r\n")
        .await?;
    let (answer, _) = read_to_close(&mut s, Duration::from_secs(5)).await?;
    ensure!(
        answer.starts_with("HTTP/1.1 200"),
        "healthz answered {answer:?}"
    );
    Ok(())
}

#[tokio::test]
async fn slow_headers_idle_connections_and_slow_bodies_are_cut_off() {
    let node = NodeBuilder::new("deadlines")
        .env("BANTER_HTTP__HEADER_READ_TIMEOUT_MS", 600)
        .env("BANTER_HTTP__REQUEST_TIMEOUT_MS", 800)
        .start()
        .await
        .expect("node");
    node.check(deadlines(&node).await);
}

async fn deadlines(node: &Node) -> Result<()> {
    // Slow loris: a header line every 200 ms, never the blank line that ends them.
    let mut loris = connect_from(node, [127, 0, 0, 1]).await?;
    loris.write_all(b"GET /healthz HTTP/1.1\r\n").await?;
    let trickle = async {
        for i in 0..50 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if loris
                .write_all(format!("x-slow-{i}: 1\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
    };
    let started = Instant::now();
    trickle.await;
    let (_, _) = read_to_close(&mut loris, Duration::from_secs(1))
        .await
        .context("slow-loris connection")?;
    ensure!(
        started.elapsed() < Duration::from_secs(5),
        "the slow-loris connection lived {:?}",
        started.elapsed()
    );

    // A connection that never sends anything.
    let mut idle = connect_from(node, [127, 0, 0, 1]).await?;
    let (_, took) = read_to_close(&mut idle, Duration::from_secs(5))
        .await
        .context("idle connection")?;
    ensure!(
        took < Duration::from_secs(3),
        "idle connection lived {took:?}"
    );

    // A body announced but sent too slowly: 408 with the JSON error body.
    let mut slow_body = connect_from(node, [127, 0, 0, 1]).await?;
    slow_body
        .write_all(
            b"POST /api/auth/login HTTP/1.1\r\nhost: banter\r\ncontent-type: application/json\r\n\
              content-length: 100\r\n\r\n{\"username\":",
        )
        .await?;
    let (answer, took) = read_to_close(&mut slow_body, Duration::from_secs(5))
        .await
        .context("slow body")?;
    ensure!(
        answer.starts_with("HTTP/1.1 408") && answer.contains("\"request_timeout\""),
        "slow body answered {answer:?}"
    );
    ensure!(took < Duration::from_secs(3), "slow body lived {took:?}");
    healthz_from(node, [127, 0, 0, 2]).await
}

#[tokio::test]
async fn connections_past_the_caps_are_refused_with_a_reason() {
    let node = NodeBuilder::new("conncaps")
        .env("BANTER_HTTP__MAX_CONNECTIONS_PER_IP", 4)
        .env("BANTER_HTTP__MAX_CONNECTIONS", 8)
        // The held connections send nothing: they must outlast a slow run (a loaded machine once
        // took over the default 10 s between the first and the refused one, and the node had
        // closed the first, freeing its slot).
        .env("BANTER_HTTP__HEADER_READ_TIMEOUT_MS", 120_000)
        .start()
        .await
        .expect("node");
    node.check(caps(&node).await);
}

async fn caps(node: &Node) -> Result<()> {
    // One address takes its share: three idle connections and a WebSocket session.
    let hogger = [127, 0, 0, 3];
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from(node, hogger).await?);
    }
    let alice = node.api().new_user("alice").await?;
    let session = StompClient::connect(&node.ws_url(), &alice.token).await?;
    // The session came from 127.0.0.1; the hogger's fourth connection is still allowed, its fifth not.
    held.push(connect_from(node, hogger).await?);
    let mut refused = connect_from(node, hogger).await?;
    // A bound on a hang, not a speed: with the browser tests' Chromium beside the suite on two
    // cores, the refusal once took over 5 s to be read.
    let (answer, _) = read_to_close(&mut refused, Duration::from_secs(30)).await?;
    ensure!(
        answer.starts_with("HTTP/1.1 429")
            && answer.contains("\"too_many_connections_from_address\""),
        "fifth connection from one address got {answer:?}"
    );
    // Another address is served while the node has room.
    healthz_from(node, [127, 0, 0, 4]).await?;

    // Fill the node: 4 held + the session + 3 more from other addresses = 8.
    for last in 5..8u8 {
        held.push(connect_from(node, [127, 0, 0, last]).await?);
    }
    let mut over = connect_from(node, [127, 0, 0, 9]).await?;
    let (answer, _) = read_to_close(&mut over, Duration::from_secs(30)).await?;
    ensure!(
        answer.starts_with("HTTP/1.1 503") && answer.contains("\"too_many_connections\""),
        "connection past the node's cap got {answer:?}"
    );
    // Slots come back when connections close; the WebSocket counted until it ended.
    drop(held);
    session.disconnect().await?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match healthz_from(node, [127, 0, 0, 9]).await {
            Ok(()) => break,
            Err(e) if Instant::now() >= deadline => return Err(e.context("after the hogs left")),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let refusals = node
        .metric_sum("banter_refused_total")
        .await?
        .unwrap_or(0.0);
    ensure!(refusals >= 2.0, "refusals counted: {refusals}");
    Ok(())
}
