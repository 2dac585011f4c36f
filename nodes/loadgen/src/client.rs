//! One STOMP 1.2 client over a WebSocket: connect (from a chosen source address), CONNECT,
//! SUBSCRIBE with a receipt, SEND. Frames go out as text messages, one frame per message.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use banter_proto::stomp::{Command, Frame};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::wire::ServerFrame;

/// A WebSocket carrying STOMP.
pub type Ws = WebSocketStream<TcpStream>;

/// Subscription id every load-generator client uses for its one room.
pub const SUBSCRIPTION: &str = "s0";

/// Longest wait for a CONNECTED or a subscription's RECEIPT.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// Opens `ws://server/ws` from `source` and sends CONNECT with `token` (when given) as `passcode`;
/// returns once CONNECTED arrives. `heart_beat` is the client's offer (`0,0`: none).
pub async fn connect(
    server: SocketAddr,
    source: Option<Ipv4Addr>,
    token: Option<&str>,
    heart_beat: (u64, u64),
) -> Result<Ws> {
    let stream = crate::net::connect_from(source, server).await?;
    let url = format!("ws://{server}/ws");
    let (mut ws, _) = tokio_tungstenite::client_async(url.as_str(), stream)
        .await
        .with_context(|| format!("websocket handshake with {url}"))?;
    let mut connect = Frame::new(Command::Connect)
        .with_header("accept-version", "1.2")
        .with_header("host", "banter")
        .with_header("heart-beat", format!("{},{}", heart_beat.0, heart_beat.1));
    if let Some(token) = token {
        connect = connect.with_header("passcode", token);
    }
    send_frame(&mut ws, &connect).await?;
    expect(&mut ws, b"CONNECTED", None).await?;
    Ok(ws)
}

/// Subscribes to `destination` as [`SUBSCRIPTION`] and waits for the server to confirm it.
pub async fn subscribe(ws: &mut Ws, destination: &str) -> Result<()> {
    let frame = Frame::new(Command::Subscribe)
        .with_header("id", SUBSCRIPTION)
        .with_header("destination", destination)
        .with_header("receipt", "subscribed");
    send_frame(ws, &frame).await?;
    expect(ws, b"RECEIPT", Some("subscribed")).await
}

/// Sends one frame and flushes.
pub async fn send_frame(ws: &mut Ws, frame: &Frame) -> Result<()> {
    ws.send(text(frame)).await.context("send frame")
}

/// Encodes a frame as a WebSocket text message.
pub fn text(frame: &Frame) -> Message {
    let bytes = frame.to_bytes();
    // Our frames are ASCII headers and UTF-8 bodies.
    Message::Text(String::from_utf8_lossy(&bytes).into_owned().into())
}

/// Reads until a frame with `command` (and, for a RECEIPT, `receipt-id` = `receipt`) arrives;
/// fails on ERROR, on close and after [`HANDSHAKE_TIMEOUT`]. Other frames are skipped.
async fn expect(ws: &mut Ws, command: &[u8], receipt: Option<&str>) -> Result<()> {
    let wait = async {
        while let Some(msg) = ws.next().await {
            let msg = msg.context("read")?;
            let Some(data) = payload(&msg) else {
                if let Message::Close(c) = msg {
                    bail!("closed by the server: {c:?}");
                }
                continue;
            };
            let Some(frame) = ServerFrame::parse(data) else {
                bail!("unreadable frame from the server");
            };
            if frame.command == b"ERROR" {
                bail!("server ERROR: {}", frame.header_str("message"));
            }
            if frame.command == command
                && receipt.is_none_or(|r| frame.header("receipt-id") == Some(r.as_bytes()))
            {
                return Ok(());
            }
        }
        Err(anyhow!("connection closed"))
    };
    tokio::time::timeout(HANDSHAKE_TIMEOUT, wait)
        .await
        .map_err(|_| {
            anyhow!(
                "no {} within {HANDSHAKE_TIMEOUT:?}",
                String::from_utf8_lossy(command)
            )
        })?
}

/// Bytes of a text or binary message; `None` for control messages.
pub fn payload(msg: &Message) -> Option<&[u8]> {
    match msg {
        Message::Text(t) => Some(t.as_bytes()),
        Message::Binary(b) => Some(b),
        _ => None,
    }
}
