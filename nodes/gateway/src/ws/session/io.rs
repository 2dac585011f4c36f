//! A session's socket: reading whole STOMP frames out of WebSocket messages, waiting for the node's
//! shutdown, and ending a connection with an ERROR frame and a close, all within deadlines.

use std::time::Duration;

use futures::SinkExt;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use banter_proto::stomp::{self, Command, Frame, Limits, Parsed};
use bytes::{Bytes, BytesMut};
use tokio::sync::watch;
use tokio::time::timeout;
use tracing::debug;

use super::super::frames::{Fatal, fatal, unwritable};
use super::Session;

impl Session {
    /// Writes whatever frames are pending, one WebSocket message per frame, flushed once, within the
    /// write deadline; past it, or when the connection is gone, the session ends without more writes.
    pub(super) async fn flush(&mut self) -> Result<(), Fatal> {
        if self.out.is_empty() {
            return Ok(());
        }
        let ends = std::mem::take(&mut self.ends);
        let frames = self.out.split().freeze();
        self.meter.wrote(frames.len(), ends.len());
        let socket = &mut self.socket;
        let write = async move {
            let mut start = 0;
            for end in ends {
                let frame = frames.slice(start..end);
                start = end;
                let Ok(text) = Utf8Bytes::try_from(frame) else {
                    continue;
                };
                socket.feed(Message::Text(text)).await?;
            }
            socket.flush().await
        };
        match timeout(self.write_timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(unwritable("connection closed by the client")),
            Err(_) => {
                crate::metrics::session_dropped("write_deadline");
                Err(unwritable("client stopped reading: write deadline passed"))
            }
        }
    }
}

/// Resolves once the node is shutting down (never, if its signal is gone).
pub(super) async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

pub(super) async fn next_frame(
    socket: &mut WebSocket,
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<Frame>, Fatal> {
    loop {
        if let Some(f) = take_frame(buf, limits)? {
            return Ok(Some(f));
        }
        match socket.recv().await {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Ok(None),
            Some(Ok(m)) => append_message(buf, m),
        }
    }
}

pub(super) fn append_message(buf: &mut BytesMut, m: Message) {
    match m {
        Message::Text(t) => buf.extend_from_slice(t.as_bytes()),
        Message::Binary(b) => buf.extend_from_slice(&b),
        Message::Ping(_) | Message::Pong(_) | Message::Close(_) => {}
    }
}

/// Takes the next whole frame out of `buf`, skipping heart-beats.
pub(super) fn take_frame(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Frame>, Fatal> {
    loop {
        match stomp::parse_frame(buf, limits).map_err(|e| fatal(e.to_string()))? {
            Parsed::Frame(f, n) => {
                let _ = buf.split_to(n);
                return Ok(Some(f));
            }
            Parsed::HeartBeat(n) => {
                let _ = buf.split_to(n);
            }
            Parsed::Incomplete => return Ok(None),
        }
    }
}

pub(super) fn too_slow() -> Fatal {
    crate::metrics::session_dropped("too_slow");
    fatal("client too slow to receive its messages; reconnect and resume with 'since'")
}

pub(super) async fn send_bytes(socket: &mut WebSocket, bytes: Bytes) -> Result<(), axum::Error> {
    let text = Utf8Bytes::try_from(bytes).map_err(axum::Error::new)?;
    socket.send(Message::Text(text)).await
}

/// Ends a connection: an ERROR frame then a close, both within `deadline`; a connection that takes no
/// more writes is just dropped.
pub(super) async fn close_with_error(socket: &mut WebSocket, e: Fatal, deadline: Duration) {
    if e.unwritable {
        debug!(reason = %e.message, "dropping session");
        return;
    }
    debug!(message = %e.message, "closing session with an error");
    let close = e.close_code.map(|code| CloseFrame {
        code,
        reason: Utf8Bytes::from_static("reconnect elsewhere"),
    });
    let mut frame =
        Frame::new(Command::Error).with_header("message", e.message.replace(['\n', '\r'], " "));
    if let Some(r) = e.receipt_id {
        frame = frame.with_header("receipt-id", r);
    }
    if let Some(t) = e.trace_id {
        frame = frame.with_header("trace-id", t);
    }
    let frame = frame
        .with_header("content-type", "text/plain")
        .with_body(Bytes::from(e.message.into_bytes()));
    let _ = timeout(deadline, async {
        let _ = send_bytes(socket, frame.to_bytes()).await;
        let _ = socket.send(Message::Close(close)).await;
    })
    .await;
}
