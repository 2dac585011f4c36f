//! The baseline: the plainest broadcast server on the same stack (tokio + tokio-tungstenite + the
//! same STOMP codec), speaking just enough STOMP for the load generator — CONNECT, SUBSCRIBE, SEND
//! with receipts — and sending MESSAGE frames with the same headers and sizes as Banter's. No actors,
//! no auth, no persistence, no limits: its numbers are the ceiling of this stack on this machine.
//!
//! A room is a `tokio::sync::broadcast` channel; a SEND takes the room's lock, numbers the message,
//! encodes its MESSAGE frame once and broadcasts the shared bytes; each connection's task writes
//! what it receives, batching whatever is already queued into one flush.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use banter_proto::stomp::{self, Command, Frame, Limits, Parsed};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;

use crate::client::SUBSCRIPTION;

/// Frames a room buffers for its slowest subscriber before that one misses some.
const ROOM_BUFFER: usize = 65_536;
/// Frames written before one flush.
const WRITE_BATCH: usize = 64;

struct Room {
    /// Last seq; the lock also orders numbering with broadcasting.
    seq: Mutex<u64>,
    tx: broadcast::Sender<Bytes>,
}

#[derive(Default)]
struct Rooms(Mutex<HashMap<String, Arc<Room>>>);

impl Rooms {
    fn get(&self, destination: &str) -> Arc<Room> {
        let mut rooms = self.0.lock().unwrap_or_else(|e| e.into_inner());
        rooms
            .entry(destination.to_owned())
            .or_insert_with(|| {
                Arc::new(Room {
                    seq: Mutex::new(0),
                    tx: broadcast::channel(ROOM_BUFFER).0,
                })
            })
            .clone()
    }
}

impl Room {
    fn publish(&self, destination: &str, body: Bytes) {
        let mut seq = self.seq.lock().unwrap_or_else(|e| e.into_inner());
        *seq += 1;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let frame = Frame::new(Command::Message)
            .with_header("subscription", SUBSCRIPTION)
            .with_header("destination", destination)
            .with_header("message-id", uuid::Uuid::now_v7().to_string())
            .with_header("event", "message")
            .with_header("seq", seq.to_string())
            .with_header("room-id", destination.rsplit('/').next().unwrap_or(""))
            .with_header("sender-id", "0")
            .with_header("sender", "baseline")
            .with_header("timestamp", now.to_string())
            .with_header("content-type", "text/plain;charset=utf-8")
            .with_body(body);
        // No subscriber is not an error.
        let _ = self.tx.send(frame.to_bytes());
    }
}

/// Serves WebSocket clients on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener) -> Result<()> {
    crate::net::raise_nofile();
    let rooms = Arc::new(Rooms::default());
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(stream, rooms.clone()));
    }
}

fn reply(command: Command, headers: &[(&str, &str)]) -> Message {
    let mut f = Frame::new(command);
    for (n, v) in headers {
        f = f.with_header(*n, *v);
    }
    Message::Binary(f.to_bytes())
}

async fn connection(stream: TcpStream, rooms: Arc<Rooms>) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let limits = Limits::default();
    let mut sub: Option<broadcast::Receiver<Bytes>> = None;
    loop {
        let next = async {
            match sub.as_mut() {
                Some(rx) => rx.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            msg = ws.next() => {
                let Some(Ok(msg)) = msg else { return };
                let data: Bytes = match msg {
                    Message::Text(t) => Bytes::copy_from_slice(t.as_bytes()),
                    Message::Binary(b) => b,
                    Message::Close(_) => return,
                    _ => continue,
                };
                let frame = match stomp::parse_frame(&data, &limits) {
                    Ok(Parsed::Frame(frame, _)) => frame,
                    Ok(_) => continue,
                    Err(e) => {
                        let _ = ws.send(reply(Command::Error, &[("message", &e.to_string())])).await;
                        return;
                    }
                };
                let out = match frame.command {
                    Command::Connect | Command::Stomp => Some(reply(
                        Command::Connected,
                        &[("version", "1.2"), ("heart-beat", "0,0"), ("server", "baseline")],
                    )),
                    Command::Subscribe => {
                        let room = rooms.get(frame.header("destination").unwrap_or(""));
                        sub = Some(room.tx.subscribe());
                        frame.header("receipt").map(|r| reply(Command::Receipt, &[("receipt-id", r)]))
                    }
                    Command::Send => {
                        let destination = frame.header("destination").unwrap_or("");
                        rooms.get(destination).publish(destination, frame.body.clone());
                        frame.header("receipt").map(|r| reply(Command::Receipt, &[("receipt-id", r)]))
                    }
                    Command::Disconnect => return,
                    _ => None,
                };
                if let Some(out) = out && ws.send(out).await.is_err() {
                    return;
                }
            }
            frame = next => {
                let frame = match frame {
                    Ok(frame) => frame,
                    // This subscriber missed frames (the load generator counts them missing).
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => {
                        sub = None;
                        continue;
                    }
                };
                if ws.feed(Message::Binary(frame)).await.is_err() {
                    return;
                }
                let mut batch = 1;
                while batch < WRITE_BATCH {
                    let Some(rx) = sub.as_mut() else { break };
                    match rx.try_recv() {
                        Ok(frame) => {
                            if ws.feed(Message::Binary(frame)).await.is_err() {
                                return;
                            }
                            batch += 1;
                        }
                        Err(_) => break,
                    }
                }
                if ws.flush().await.is_err() {
                    return;
                }
            }
        }
    }
}
