//! A STOMP 1.2 client over WebSocket, on the project's own codec (`banter_proto::stomp`).
//!
//! One frame per WebSocket message, as `docs/PROTOCOL.md` says. Received frames go to an inbox in
//! arrival order; `recv_*` methods that look for a particular frame take it out and leave the others
//! for later, so a test can await "the RECEIPT for r7" without losing a MESSAGE that came first.
//! Heart-beats (lone EOLs) are skipped. Every wait is bounded.

use std::collections::VecDeque;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use banter_proto::stomp::{Command, Frame, Limits, Parsed, parse_frame};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use crate::frames::*;

/// The subprotocol the server speaks.
pub const SUBPROTOCOL: &str = "v12.stomp";
/// Default bound of every wait for a frame.
pub const TIMEOUT: Duration = Duration::from_secs(15);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A STOMP connection.
pub struct StompClient {
    ws: Ws,
    inbox: VecDeque<Frame>,
    limits: Limits,
    closed: Option<String>,
    close_code: Option<u16>,
    /// The CONNECTED frame, once connected.
    pub connected: Option<Frame>,
    /// Subprotocol the server chose in the upgrade response.
    pub subprotocol: Option<String>,
    receipts: u64,
}

impl std::fmt::Debug for StompClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StompClient")
            .field("inbox", &self.inbox.len())
            .field("closed", &self.closed)
            .finish()
    }
}

impl StompClient {
    /// Opens the WebSocket, offering `subprotocol` (none when `None`) and sending `origin` as the
    /// `Origin` header when given. Returns tungstenite's error as is (e.g. `Error::Http` with the
    /// refusal's status).
    pub async fn open_with(
        ws_url: &str,
        subprotocol: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Self, tungstenite::Error> {
        let mut req = ws_url.into_client_request()?;
        if let Some(p) = subprotocol {
            req.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_str(p).expect("header value"),
            );
        }
        if let Some(o) = origin {
            req.headers_mut()
                .insert("Origin", HeaderValue::from_str(o).expect("header value"));
        }
        let (ws, resp) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(req))
            .await
            .map_err(|_| {
                tungstenite::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "websocket upgrade timed out",
                ))
            })??;
        let chosen = resp
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(StompClient {
            ws,
            inbox: VecDeque::new(),
            limits: Limits::default(),
            closed: None,
            close_code: None,
            connected: None,
            subprotocol: chosen,
            receipts: 0,
        })
    }

    /// Connects and authenticates like [`StompClient::connect`] over a socket whose receive buffer
    /// is `recv_buffer` bytes: a client that then stops reading closes its TCP window quickly (a
    /// zero-window reader).
    pub async fn connect_small_window(ws_url: &str, token: &str, recv_buffer: u32) -> Result<Self> {
        let req = ws_url.into_client_request()?;
        let host = req.uri().host().context("ws url host")?;
        let port = req.uri().port_u16().context("ws url port")?;
        let addr = tokio::net::lookup_host((host, port))
            .await?
            .next()
            .context("ws url address")?;
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_recv_buffer_size(recv_buffer)?;
        let stream = socket.connect(addr).await?;
        let (ws, _) = tokio::time::timeout(
            TIMEOUT,
            tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(stream)),
        )
        .await
        .context("websocket upgrade timed out")??;
        let mut c = StompClient {
            ws,
            inbox: VecDeque::new(),
            limits: Limits::default(),
            closed: None,
            close_code: None,
            connected: None,
            subprotocol: None,
            receipts: 0,
        };
        c.stomp_connect(token).await?;
        Ok(c)
    }

    /// Opens the WebSocket offering `v12.stomp` and checks the server chose it; no STOMP frame sent.
    pub async fn open(ws_url: &str) -> Result<Self> {
        let c = Self::open_with(ws_url, Some(SUBPROTOCOL), None)
            .await
            .with_context(|| format!("websocket upgrade to {ws_url}"))?;
        if c.subprotocol.as_deref() != Some(SUBPROTOCOL) {
            bail!(
                "server chose subprotocol {:?}, expected {SUBPROTOCOL}",
                c.subprotocol
            );
        }
        Ok(c)
    }

    /// Opens the WebSocket offering no subprotocol; no STOMP frame sent.
    pub async fn open_plain(ws_url: &str) -> Result<Self> {
        Self::open_with(ws_url, None, None)
            .await
            .with_context(|| format!("websocket upgrade to {ws_url}"))
    }

    /// Connects (subprotocol `v12.stomp`) and authenticates with `token`; waits for CONNECTED.
    pub async fn connect(ws_url: &str, token: &str) -> Result<Self> {
        let mut c = Self::open(ws_url).await?;
        c.stomp_connect(token).await?;
        Ok(c)
    }

    /// Connects offering no subprotocol and authenticates with `token`; waits for CONNECTED.
    pub async fn connect_no_subprotocol(ws_url: &str, token: &str) -> Result<Self> {
        let mut c = Self::open_plain(ws_url).await?;
        c.stomp_connect(token).await?;
        Ok(c)
    }

    /// Sends CONNECT with `authorization: Bearer <token>` and no heart-beats; waits for CONNECTED.
    pub async fn stomp_connect(&mut self, token: &str) -> Result<Frame> {
        let bearer = format!("Bearer {token}");
        let f = frame(
            Command::Connect,
            &[
                ("accept-version", "1.2"),
                ("host", "banter"),
                ("authorization", &bearer),
                ("heart-beat", "0,0"),
            ],
            Bytes::new(),
        );
        self.connect_with(f).await
    }

    /// Sends a CONNECT (or STOMP) frame made by the caller and waits for CONNECTED.
    pub async fn connect_with(&mut self, connect: Frame) -> Result<Frame> {
        self.send_frame(&connect).await?;
        let f = self
            .recv_frame(TIMEOUT)
            .await
            .context("waiting for CONNECTED")?;
        if !matches!(f.command, Command::Connected) {
            bail!("expected CONNECTED, got {}", describe(&f));
        }
        self.connected = Some(f.clone());
        Ok(f)
    }

    /// Sends a frame as a text WebSocket message.
    pub async fn send_frame(&mut self, f: &Frame) -> Result<()> {
        self.send_raw(&encode(f)).await
    }

    /// Sends bytes as one WebSocket message: text when valid UTF-8, binary otherwise.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        match std::str::from_utf8(bytes) {
            Ok(s) => self.ws.send(WsMessage::text(s.to_owned())).await?,
            Err(_) => self.ws.send(WsMessage::binary(bytes.to_vec())).await?,
        }
        Ok(())
    }

    /// Sends bytes as one binary WebSocket message.
    pub async fn send_binary(&mut self, bytes: &[u8]) -> Result<()> {
        self.ws.send(WsMessage::binary(bytes.to_vec())).await?;
        Ok(())
    }

    /// Returns a fresh receipt id.
    pub fn next_receipt_id(&mut self) -> String {
        self.receipts += 1;
        format!("r-{}", self.receipts)
    }

    /// Sends SUBSCRIBE (with `since` when given) and a receipt, and waits for that RECEIPT. Frames that
    /// arrive before it (e.g. replayed messages) stay in the inbox.
    pub async fn subscribe(
        &mut self,
        destination: &str,
        id: &str,
        since: Option<u64>,
    ) -> Result<()> {
        let r = self.next_receipt_id();
        self.subscribe_nowait(destination, id, since, Some(&r))
            .await?;
        self.recv_receipt(&r)
            .await
            .with_context(|| format!("subscribing to {destination}"))?;
        Ok(())
    }

    /// Sends SUBSCRIBE without waiting for anything.
    pub async fn subscribe_nowait(
        &mut self,
        destination: &str,
        id: &str,
        since: Option<u64>,
        receipt: Option<&str>,
    ) -> Result<()> {
        let since = since.map(|s| s.to_string());
        let mut h = vec![("destination", destination), ("id", id), ("ack", "auto")];
        if let Some(s) = &since {
            h.push(("since", s));
        }
        if let Some(r) = receipt {
            h.push(("receipt", r));
        }
        self.send_frame(&frame(Command::Subscribe, &h, Bytes::new()))
            .await
    }

    /// Sends SEND with a text body and an optional receipt.
    pub async fn send(
        &mut self,
        destination: &str,
        body: &str,
        receipt: Option<&str>,
    ) -> Result<()> {
        let mut h = vec![
            ("destination", destination),
            ("content-type", "text/plain;charset=utf-8"),
        ];
        if let Some(r) = receipt {
            h.push(("receipt", r));
        }
        self.send_frame(&frame(
            Command::Send,
            &h,
            Bytes::copy_from_slice(body.as_bytes()),
        ))
        .await
    }

    /// Sends SEND with a receipt and waits for its RECEIPT; returns the seq and message id.
    pub async fn send_confirmed(&mut self, destination: &str, body: &str) -> Result<Receipt> {
        let r = self.next_receipt_id();
        self.send(destination, body, Some(&r)).await?;
        let f = self.recv_receipt(&r).await?;
        parse_receipt(&f)
    }

    /// Sends an `edit` (with the new text) or a `delete` (with `body` empty) of the message
    /// `target` to `destination`, with a receipt, and waits for its RECEIPT.
    pub async fn send_event(
        &mut self,
        destination: &str,
        event: &str,
        target: u64,
        body: &str,
    ) -> Result<Receipt> {
        let r = self.next_receipt_id();
        self.send_event_nowait(destination, event, target, body, &r)
            .await?;
        let f = self.recv_receipt(&r).await?;
        parse_receipt(&f)
    }

    /// Sends an `edit` or a `delete` of the message `target`, with receipt `receipt`, and does not
    /// wait.
    pub async fn send_event_nowait(
        &mut self,
        destination: &str,
        event: &str,
        target: u64,
        body: &str,
        receipt: &str,
    ) -> Result<()> {
        let target = target.to_string();
        let h = [
            ("destination", destination),
            ("event", event),
            ("target-seq", target.as_str()),
            ("receipt", receipt),
        ];
        self.send_frame(&frame(
            Command::Send,
            &h,
            Bytes::copy_from_slice(body.as_bytes()),
        ))
        .await
    }

    /// Sends a typing event to room `room`.
    pub async fn typing(&mut self, room: i64) -> Result<()> {
        let d = format!("/rooms/{room}/typing");
        self.send_frame(&frame(Command::Send, &[("destination", &d)], Bytes::new()))
            .await
    }

    /// Raises the read marker of room `room` to `seq`.
    pub async fn mark_read(&mut self, room: i64, seq: u64) -> Result<()> {
        let d = format!("/rooms/{room}/read");
        let s = seq.to_string();
        self.send_frame(&frame(
            Command::Send,
            &[("destination", &d), ("seq", &s)],
            Bytes::new(),
        ))
        .await
    }

    /// Returns the next frame (inbox first), waiting at most `timeout`.
    pub async fn recv_frame(&mut self, timeout: Duration) -> Result<Frame> {
        if let Some(f) = self.inbox.pop_front() {
            return Ok(f);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.read_more(deadline).await?;
            if let Some(f) = self.inbox.pop_front() {
                return Ok(f);
            }
        }
    }

    /// Returns the first frame (inbox first) for which `pred` holds, leaving the others in the inbox;
    /// waits at most `timeout`.
    pub async fn recv_where(
        &mut self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Frame) -> bool,
    ) -> Result<Frame> {
        if let Some(i) = self.inbox.iter().position(&pred) {
            return Ok(self.inbox.remove(i).expect("index in range"));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let seen = self.inbox.len();
            self.read_more(deadline).await.map_err(|e| {
                let pending: Vec<String> = self.inbox.iter().map(describe).collect();
                anyhow!("waiting for {what}: {e:#}; unmatched frames: {pending:?}")
            })?;
            if let Some(i) = self.inbox.iter().skip(seen).position(&pred) {
                return Ok(self.inbox.remove(seen + i).expect("index in range"));
            }
        }
    }

    /// Waits for the RECEIPT with `receipt-id: id`; an ERROR frame instead fails with its message.
    pub async fn recv_receipt(&mut self, id: &str) -> Result<Frame> {
        let f = self
            .recv_where(TIMEOUT, &format!("RECEIPT {id}"), |f| {
                (matches!(f.command, Command::Receipt) && header(f, "receipt-id") == Some(id))
                    || matches!(f.command, Command::Error)
            })
            .await?;
        if matches!(f.command, Command::Error) {
            bail!("expected RECEIPT {id}, got {}", describe(&f));
        }
        Ok(f)
    }

    /// Waits for the next MESSAGE with `event:<event>` for which `pred` holds; others stay in the inbox.
    pub async fn recv_event(
        &mut self,
        event: &str,
        pred: impl Fn(&Frame) -> bool,
    ) -> Result<Frame> {
        self.recv_where(TIMEOUT, &format!("event:{event}"), |f| {
            is_event(f, event) && pred(f)
        })
        .await
    }

    /// Waits for the next chat message (`event:message`) on subscription `sub`.
    pub async fn recv_message(&mut self, sub: &str) -> Result<Frame> {
        self.recv_where(TIMEOUT, &format!("event:message on {sub}"), |f| {
            is_event(f, "message") && header(f, "subscription") == Some(sub)
        })
        .await
    }

    /// Waits for the next ERROR frame (frames before it stay in the inbox) and returns its `message`
    /// header.
    pub async fn expect_error(&mut self) -> Result<String> {
        let f = self.expect_error_frame().await?;
        header(&f, "message")
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("ERROR frame without a message header: {}", describe(&f)))
    }

    /// Waits for the next ERROR frame and returns it. Frames that arrived before it (e.g. receipts
    /// of earlier SENDs) are dropped, so that [`StompClient::expect_closed`] sees only what follows.
    pub async fn expect_error_frame(&mut self) -> Result<Frame> {
        let is_error = |f: &Frame| matches!(f.command, Command::Error);
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            if let Some(i) = self.inbox.iter().position(is_error) {
                self.inbox.drain(..i);
                return Ok(self.inbox.pop_front().expect("the ERROR frame"));
            }
            self.read_more(deadline).await.map_err(|e| {
                let pending: Vec<String> = self.inbox.iter().map(describe).collect();
                anyhow!("waiting for an ERROR frame: {e:#}; other frames: {pending:?}")
            })?;
        }
    }

    /// Waits until the server has closed the connection (close frame, EOF or reset); any further STOMP
    /// frame is an error.
    pub async fn expect_closed(&mut self) -> Result<()> {
        if let Some(f) = self.inbox.pop_front() {
            bail!("expected the connection to close, got {}", describe(&f));
        }
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            match self.read_more(deadline).await {
                Ok(()) => {
                    if let Some(f) = self.inbox.pop_front() {
                        bail!("expected the connection to close, got {}", describe(&f));
                    }
                }
                Err(e) if self.closed.is_some() => {
                    let _ = e;
                    return Ok(());
                }
                Err(e) => return Err(e.context("waiting for the server to close the connection")),
            }
        }
    }

    /// The code of the server's WebSocket close frame, once one arrived (`None` before, or when the
    /// connection ended without one).
    pub fn close_code(&self) -> Option<u16> {
        self.close_code
    }

    /// Whether the server has closed the connection (as seen so far).
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// Sends DISCONNECT with a receipt, waits for it, then closes the WebSocket.
    pub async fn disconnect(mut self) -> Result<()> {
        let r = self.next_receipt_id();
        self.send_frame(&frame(
            Command::Disconnect,
            &[("receipt", &r)],
            Bytes::new(),
        ))
        .await?;
        self.recv_receipt(&r).await?;
        let _ = self.ws.close(None).await;
        Ok(())
    }

    /// Drops the connection without DISCONNECT (as a crashed client would).
    pub async fn abort(mut self) {
        let _ = self.ws.close(None).await;
    }

    /// Reads one WebSocket message into the inbox (or records that the connection closed).
    async fn read_more(&mut self, deadline: tokio::time::Instant) -> Result<()> {
        if let Some(why) = &self.closed {
            bail!("connection closed ({why})");
        }
        let msg = match tokio::time::timeout_at(deadline, self.ws.next()).await {
            Err(_) => bail!("timed out"),
            Ok(None) => {
                self.closed = Some("end of stream".into());
                bail!("connection closed (end of stream)");
            }
            Ok(Some(Err(e))) => {
                let why = format!("websocket error: {e}");
                self.closed = Some(why.clone());
                bail!("connection closed ({why})");
            }
            Ok(Some(Ok(m))) => m,
        };
        let data: Bytes = match msg {
            WsMessage::Text(t) => Bytes::copy_from_slice(t.as_bytes()),
            WsMessage::Binary(b) => b,
            WsMessage::Close(c) => {
                self.close_code = c.as_ref().map(|c| u16::from(c.code));
                let why = format!("close frame {c:?}");
                self.closed = Some(why.clone());
                bail!("connection closed ({why})");
            }
            WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => return Ok(()),
        };
        let mut off = 0;
        while off < data.len() {
            match parse_frame(&data[off..], &self.limits) {
                Ok(Parsed::Frame(f, n)) => {
                    self.inbox.push_back(f);
                    off += n.max(1);
                }
                Ok(Parsed::HeartBeat(n)) => off += n.max(1),
                Ok(Parsed::Incomplete) => {
                    bail!(
                        "server sent an incomplete frame: {:?}",
                        String::from_utf8_lossy(&data[off..])
                    )
                }
                Err(e) => bail!(
                    "server sent an unparsable frame ({e:?}): {:?}",
                    String::from_utf8_lossy(&data[off..])
                ),
            }
        }
        Ok(())
    }
}
