//! One STOMP session: a task per WebSocket, not an actor (an idle connection must stay small).
//!
//! It authenticates CONNECT, registers in the node's users table (which caps a user's sessions and
//! holds their shared send budget), turns frames into room commands, and writes what actors put in its bounded outbox. Every bad frame is
//! answered with an ERROR frame and the connection is closed, as STOMP 1.2 prescribes; nothing a client
//! sends can affect another connection. A client too slow to drain its outbox is closed with an ERROR
//! and resumes by seq.
//!
//! What a client can make a session hold is bounded: the write buffer is flushed once it passes
//! [`FLUSH_BYTES`] and every write has a deadline (`ws.write_timeout_ms`; a client that stops reading is
//! dropped); a resume streams its backfill page by page under a node-wide cap on backfills running at
//! once; a room is reached only once the user is known to be a member (one store lookup per room,
//! cached), so a non-member never makes a room activate; typing and read frames are coalesced before
//! they reach the room and charged to the user's send budget. The session ends when its access token
//! expires.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use banter_actors::delivery::{Outbound, SessionHandle, SessionInbox};
use banter_actors::encode::USER_QUEUE;
use banter_actors::model::{MessageKind, RoomId, Seq, UserId};
use banter_actors::room::{Draft, RoomError, RoomMessage, SubscribeOk};
use banter_actors::route::Direct;
use banter_actors::rules;
use banter_actors::trace::TraceParent;
use banter_actors::user::Attached;
use banter_proto::stomp::{self, Command, Frame, Limits};
use bytes::{BufMut, Bytes, BytesMut};

use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior, interval, sleep_until, timeout};
use tracing::{Instrument, debug, instrument};

use crate::state::AppState;

use super::frames::{Fatal, Target, fatal, parse_destination, reconnect_elsewhere, required};

mod attach;
mod backfill;
mod connect;
mod io;
mod known;
mod meter;
mod trace;

use io::{append_message, close_with_error, next_frame, stopping, take_frame, too_slow};
use known::KnownRooms;
use meter::{Meter, refuse};
use trace::send_trace;

const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes of pending frames past which the session writes them out before it buffers more.
const FLUSH_BYTES: usize = 64 * 1024;

struct RoomSub {
    id: String,
    /// `MESSAGE` and this subscription's header, encoded once: each delivery adds the room's tail.
    prefix: Bytes,
    last_seq: Seq,
    /// The room actor, when it lives on this node.
    actor: Direct,
}

struct Session {
    state: AppState,
    socket: WebSocket,
    handle: SessionHandle,
    user: UserId,
    /// The session's place in the users table: it leaves the table when the session is dropped.
    _attached: Attached,
    rooms: HashMap<RoomId, RoomSub>,
    /// Rooms the user is known to be a member of, with what was last passed on to each.
    known: KnownRooms,
    user_sub: Option<String>,
    limits: Limits,
    /// Longest time one write may take before the connection is dropped.
    write_timeout: Duration,
    /// When the access token of CONNECT expires: the session ends then.
    expires: Instant,
    /// Frames waiting to be written, back to back; `ends` marks where each one ends.
    out: BytesMut,
    ends: Vec<usize>,
    meter: Meter,
}

/// Runs a connection to its end.
///
/// Each phase (CONNECT, serving, the close) is a boxed future of its own: a future is as large as its
/// largest state, so an idle connection would otherwise hold the room CONNECT and the close need,
/// besides its own. Each box is allocated once per connection.
#[instrument(name = "ws.session", skip_all)]
pub(super) async fn run(state: AppState, socket: WebSocket) {
    let Some(mut open) = Box::pin(open(state, socket)).await else {
        return;
    };
    let result = match open.session.flush().await {
        Ok(()) => {
            Box::pin(open.session.serve(
                &mut open.inbox,
                &mut open.buf,
                open.heart_beat,
                &mut open.shutdown,
            ))
            .await
        }
        Err(e) => Err(e),
    };
    open.session.end();
    let write_timeout = open.session.write_timeout;
    Box::pin(close(open.session.socket, result, write_timeout)).await;
}

/// A connection past CONNECT, ready to serve.
struct Open {
    session: Session,
    inbox: SessionInbox,
    /// Bytes read and not yet parsed.
    buf: BytesMut,
    heart_beat: (u64, u64),
    shutdown: watch::Receiver<bool>,
}

/// Reads and checks CONNECT, registers the session; on failure closes the connection with an ERROR.
async fn open(state: AppState, mut socket: WebSocket) -> Option<Open> {
    let limits = connect::frame_limits(&state);
    let write_timeout = Duration::from_millis(state.config.ws.write_timeout_ms.max(1));
    let mut buf = BytesMut::new();
    let mut shutdown = state.shutdown.clone();
    let connect = tokio::select! {
        read = timeout(
            Duration::from_millis(state.config.ws.connect_timeout_ms),
            next_frame(&mut socket, &mut buf, &limits),
        ) => Some(read),
        () = stopping(&mut shutdown) => None,
    };
    let Some(connect) = connect else {
        close_with_error(&mut socket, reconnect_elsewhere(), write_timeout).await;
        return None;
    };
    let frame = match connect {
        Err(_) => {
            let e = fatal("no CONNECT frame in time");
            close_with_error(&mut socket, e, write_timeout).await;
            return None;
        }
        Ok(Err(e)) => {
            close_with_error(&mut socket, e, write_timeout).await;
            return None;
        }
        Ok(Ok(None)) => return None,
        Ok(Ok(Some(f))) => f,
    };
    Meter::frame_in(frame.command);
    let connected = match connect::connect(&state, frame).await {
        Ok(c) => c,
        Err(e) => {
            close_with_error(&mut socket, e, write_timeout).await;
            return None;
        }
    };
    if buf.is_empty() {
        // The CONNECT frame's buffer is let go: an idle connection holds nothing it does not need.
        buf = BytesMut::new();
    }
    let (session, inbox, heart_beat) = Session::new(state, socket, connected, limits);
    Some(Open {
        session,
        inbox,
        buf,
        heart_beat,
        shutdown,
    })
}

/// Ends a connection after serving: a close, or an ERROR frame then a close.
async fn close(mut socket: WebSocket, result: Result<(), Fatal>, write_timeout: Duration) {
    match result {
        Ok(()) => {
            let _ = timeout(write_timeout, socket.send(Message::Close(None))).await;
        }
        Err(e) => close_with_error(&mut socket, e, write_timeout).await,
    }
}

impl Session {
    /// Builds the session of an authenticated connection, with CONNECTED waiting to be written.
    fn new(
        state: AppState,
        socket: WebSocket,
        c: connect::Connected,
        limits: Limits,
    ) -> (Session, SessionInbox, (u64, u64)) {
        let write_timeout = Duration::from_millis(state.config.ws.write_timeout_ms.max(1));
        let session = Session {
            state,
            socket,
            handle: c.handle,
            user: c.user,
            _attached: c.attached,
            rooms: HashMap::new(),
            known: KnownRooms::default(),
            user_sub: None,
            limits,
            write_timeout,
            expires: c.expires,
            ends: vec![c.connected.len()],
            out: c.connected,
            meter: Meter::open(),
        };
        (session, c.inbox, c.heart_beat)
    }

    async fn serve(
        &mut self,
        inbox: &mut SessionInbox,
        buf: &mut BytesMut,
        (send_ms, recv_ms): (u64, u64),
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), Fatal> {
        let mut tick = interval(Duration::from_millis(if send_ms > 0 {
            send_ms
        } else {
            3_600_000
        }));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let recv_grace = Duration::from_millis(recv_ms.saturating_mul(2));
        let heart_beats = send_ms > 0 || recv_ms > 0;
        let mut last_read = Instant::now();
        loop {
            // Frames already buffered are handled before reading more.
            while let Some(frame) = take_frame(buf, &self.limits)? {
                if !self.on_frame(frame).await? {
                    self.flush().await?;
                    return Ok(());
                }
            }
            self.flush().await?;
            // Set only when the outbox is full, i.e. when it has items: checked before taking them, it
            // is never missed, and a slow session is closed before it writes its backlog.
            if inbox.slow.is_set() {
                return Err(too_slow());
            }
            tokio::select! {
                biased;
                item = inbox.recv() => {
                    if inbox.slow.is_set() {
                        return Err(too_slow());
                    }
                    let Some(item) = item else { return Ok(()) };
                    self.on_outbound(item).await?;
                    // Write everything already queued in one go.
                    let mut items = 1;
                    while let Some(item) = inbox.try_recv() {
                        self.on_outbound(item).await?;
                        items += 1;
                        if self.out.len() > FLUSH_BYTES {
                            break;
                        }
                    }
                    Meter::drained(items);
                }
                msg = self.socket.recv() => {
                    match msg {
                        None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Ok(()),
                        Some(Ok(m)) => {
                            last_read = Instant::now();
                            let before = buf.len();
                            append_message(buf, m);
                            Meter::read(buf.len() - before);
                        }
                    }
                }
                _ = tick.tick(), if heart_beats => {
                    if recv_ms > 0 && last_read.elapsed() > recv_grace {
                        return Err(fatal("no heart-beat from client"));
                    }
                    if send_ms > 0 && self.out.is_empty() {
                        self.out.extend_from_slice(b"\n");
                        self.end_frame();
                    }
                }
                () = stopping(shutdown) => return Err(reconnect_elsewhere()),
                () = sleep_until(self.expires) => {
                    return Err(fatal(
                        "access token expired: reconnect with a new token and resume with 'since'",
                    ));
                }
            }
        }
    }

    /// Writes the pending frames once they pass [`FLUSH_BYTES`].
    async fn flush_if_large(&mut self) -> Result<(), Fatal> {
        if self.out.len() >= FLUSH_BYTES {
            self.flush().await?;
        }
        Ok(())
    }

    /// Marks the end of a frame just written to `out`.
    fn end_frame(&mut self) {
        self.ends.push(self.out.len());
    }

    fn write(&mut self, frame: Frame) {
        frame.encode(&mut self.out);
        self.end_frame();
    }

    fn write_tail(&mut self, sub_id: &str, tail: &[u8]) {
        stomp::write_message_with_tail(sub_id, tail, &mut self.out);
        self.end_frame();
    }

    /// Handles one client frame; returns `false` when the session should end normally.
    async fn on_frame(&mut self, frame: Frame) -> Result<bool, Fatal> {
        Meter::frame_in(frame.command);
        let receipt = frame.header("receipt").map(str::to_owned);
        let with_receipt = |e: Fatal| Fatal {
            receipt_id: e.receipt_id.or_else(|| receipt.clone()),
            trace_id: e.trace_id.or_else(|| {
                let t = TraceParent::parse(frame.header("traceparent")?)?;
                Some(t.trace_id().to_owned())
            }),
            ..e
        };
        match frame.command {
            Command::Send => {
                if let Err(e) = self.on_send(&frame, receipt.clone()).await {
                    let client = frame.header("traceparent").and_then(TraceParent::parse);
                    self.meter
                        .send_failed(receipt.as_deref(), client, &e.message);
                    return Err(with_receipt(e));
                }
            }
            Command::Subscribe => {
                // Boxed: a subscription (and its backfill) is rare next to SENDs, and inline it
                // would make every idle connection's future as large as its own.
                Box::pin(self.on_subscribe(&frame))
                    .await
                    .map_err(with_receipt)?;
                self.receipt(receipt);
            }
            Command::Unsubscribe => {
                let id = required(&frame, "id")?;
                self.unsubscribe(id).map_err(with_receipt)?;
                self.receipt(receipt);
            }
            Command::Disconnect => {
                self.receipt(receipt);
                return Ok(false);
            }
            Command::Connect | Command::Stomp => {
                return Err(with_receipt(fatal("already connected")));
            }
            Command::Ack | Command::Nack => {
                return Err(with_receipt(fatal(
                    "ACK and NACK are not used: subscriptions are ack:auto",
                )));
            }
            Command::Begin | Command::Commit | Command::Abort => {
                return Err(with_receipt(fatal("transactions are not supported")));
            }
            other => {
                return Err(with_receipt(fatal(format!(
                    "{} is a server frame",
                    other.as_str()
                ))));
            }
        }
        Ok(true)
    }

    fn receipt(&mut self, receipt: Option<String>) {
        if let Some(r) = receipt {
            self.write(Frame::new(Command::Receipt).with_header("receipt-id", r));
        }
    }

    async fn on_send(&mut self, frame: &Frame, receipt: Option<String>) -> Result<(), Fatal> {
        let dest = required(frame, "destination")?;
        let session = self.handle.clone();
        // A message's span on this node, while OTLP export is on: it ends once the message is routed.
        let mut span = None;
        let (room, msg) = match parse_destination(dest)? {
            Target::Room(room) => {
                let kind = attach::kind(frame)?;
                let uploads = attach::attachment_ids(frame)?;
                let max_body = self.state.config.limits.max_body_bytes;
                let body = match kind {
                    MessageKind::Delete(_) => String::new(),
                    _ => attach::body(frame, max_body, !uploads.is_empty())?,
                };
                let nonce = match frame.header("nonce") {
                    Some(n) if n.is_empty() || n.len() > rules::NONCE_MAX_BYTES => {
                        return Err(refuse(
                            "invalid",
                            fatal(format!(
                                "header 'nonce' must be 1 to {} bytes",
                                rules::NONCE_MAX_BYTES
                            )),
                        ));
                    }
                    n => n.map(str::to_owned),
                };
                self.ensure_member(room)
                    .await
                    .map_err(|e| refuse("not_member", e))?;
                self.charge().map_err(|e| refuse("rate_limit", e))?;
                let state = self.state.clone();
                let attachments = attach::attach(&state, self.handle.user, room, uploads).await?;
                let (trace, kept) = send_trace(frame.header("traceparent"), room, &mut span);
                if let Some(r) = &receipt {
                    self.meter.sent(r, kept);
                }
                (
                    room,
                    RoomMessage::Publish {
                        session: session.into(),
                        receipt,
                        trace,
                        nonce,
                        draft: Draft {
                            body,
                            attachments,
                            kind,
                            content_type: None,
                        },
                    },
                )
            }
            Target::Typing(room) => {
                self.ensure_member(room).await?;
                self.receipt(receipt);
                if !self.known.typing_due(room, Instant::now()) {
                    Meter::coalesced("typing");
                    return Ok(());
                }
                self.charge()?;
                (
                    room,
                    RoomMessage::Typing {
                        session: session.into(),
                    },
                )
            }
            Target::Read(room) => {
                let seq = required(frame, "seq")?
                    .parse::<Seq>()
                    .map_err(|_| fatal("header 'seq' must be a non-negative integer"))?;
                self.ensure_member(room).await?;
                self.receipt(receipt);
                if !self.known.read_rises(room, seq) {
                    Meter::coalesced("read");
                    return Ok(());
                }
                self.charge()?;
                (
                    room,
                    RoomMessage::MarkRead {
                        session: session.into(),
                        seq,
                    },
                )
            }
            Target::UserQueue => return Err(fatal(format!("cannot SEND to {USER_QUEUE}"))),
        };
        match span {
            Some(span) => self.route(room, msg).instrument(span).await,
            None => self.route(room, msg).await,
        }
        Ok(())
    }

    /// Takes one unit of the user's send budget (shared by all their connections on this node).
    fn charge(&self) -> Result<(), Fatal> {
        self.state.users.charge(self.user).map_err(|_| {
            fatal(format!(
                "rate limit exceeded: at most {} messages per second",
                self.state.config.limits.send_per_second
            ))
        })
    }

    /// Sends a command to a room: straight to its actor while subscribed to a room of this node (a
    /// subscribed room does not passivate), else through the routes.
    async fn route(&mut self, room: RoomId, msg: RoomMessage) {
        let msg = match self.rooms.get(&room).and_then(|sub| sub.actor.as_ref()) {
            Some(actor) => match actor.cast(msg) {
                Ok(()) => return,
                Err(ractor::MessagingErr::SendErr(m)) => m,
                Err(_) => return,
            },
            None => msg,
        };
        self.state.routes.to_room(room, msg).await;
    }

    /// Ends this session's subscription to `room`.
    fn leave(&self, room: RoomId, sub: RoomSub) {
        let session_id = self.handle.id;
        match sub.actor {
            Some(actor) => {
                let _ = actor.cast(RoomMessage::Unsubscribe { session_id });
            }
            None => self.state.routes.unsubscribe(room, session_id),
        }
    }

    async fn on_subscribe(&mut self, frame: &Frame) -> Result<(), Fatal> {
        let dest = required(frame, "destination")?;
        let id = required(frame, "id")?.to_owned();
        if self.user_sub.as_deref() == Some(id.as_str()) || self.rooms.values().any(|s| s.id == id)
        {
            return Err(fatal(format!("subscription id '{id}' is already in use")));
        }
        match parse_destination(dest)? {
            Target::Room(room) => {
                if self.rooms.contains_key(&room) {
                    return Err(fatal(format!("already subscribed to {dest}")));
                }
                let since = match frame.header("since") {
                    Some(s) => Some(
                        s.parse::<Seq>()
                            .map_err(|_| fatal("header 'since' must be a non-negative integer"))?,
                    ),
                    None => None,
                };
                self.ensure_member(room).await?;
                self.subscribe_room(room, id, since).await
            }
            Target::UserQueue => {
                self.user_sub = Some(id);
                Ok(())
            }
            Target::Typing(_) | Target::Read(_) => Err(fatal(format!(
                "cannot SUBSCRIBE to {dest}: typing and read events come on the room's destination"
            ))),
        }
    }

    async fn subscribe_room(
        &mut self,
        room: RoomId,
        sub_id: String,
        since: Option<Seq>,
    ) -> Result<(), Fatal> {
        let (actor, ok) = self.call_subscribe(room, since).await?;
        let mut last = since.map_or(ok.last_seq, |s| s.min(ok.last_seq));
        if let Some((from, to)) = ok.backfill {
            match self.backfill(room, &sub_id, from - 1, to).await {
                Ok(seq) => last = seq,
                Err(e) => {
                    match actor {
                        Some(actor) => {
                            let _ = actor.cast(RoomMessage::Unsubscribe {
                                session_id: self.handle.id,
                            });
                        }
                        None => self.state.routes.unsubscribe(room, self.handle.id),
                    }
                    return Err(e);
                }
            }
        }
        for (seq, tail) in ok.replay {
            if seq > last {
                self.write_tail(&sub_id, &tail);
                last = seq;
            }
        }
        let mut prefix = BytesMut::new();
        stomp::write_message_with_tail(&sub_id, b"", &mut prefix);
        self.rooms.insert(
            room,
            RoomSub {
                prefix: prefix.freeze(),
                id: sub_id,
                last_seq: last,
                actor,
            },
        );
        Ok(())
    }

    async fn call_subscribe(
        &mut self,
        room: RoomId,
        since: Option<Seq>,
    ) -> Result<(Direct, SubscribeOk), Fatal> {
        let subscribed = self
            .state
            .routes
            .subscribe(room, self.handle.clone(), since)
            .await;
        subscribed.map_err(|e| {
            if matches!(e, RoomError::NotMember(_)) {
                self.known.remove(room);
            }
            fatal(e.to_string())
        })
    }

    fn unsubscribe(&mut self, id: &str) -> Result<(), Fatal> {
        if self.user_sub.as_deref() == Some(id) {
            self.user_sub = None;
            return Ok(());
        }
        let room = self
            .rooms
            .iter()
            .find(|(_, s)| s.id == id)
            .map(|(r, _)| *r)
            .ok_or_else(|| fatal(format!("no subscription with id '{id}'")))?;
        if let Some(sub) = self.rooms.remove(&room) {
            self.leave(room, sub);
        }
        Ok(())
    }

    async fn on_outbound(&mut self, item: Outbound) -> Result<(), Fatal> {
        match item {
            Outbound::Room {
                room_id,
                seq,
                tail,
                accepted_at_ms,
            } => {
                if let Some(sub) = self.rooms.get_mut(&room_id) {
                    self.meter.delivering(accepted_at_ms);
                    if let Some(seq) = seq {
                        if seq <= sub.last_seq {
                            return Ok(());
                        }
                        sub.last_seq = seq;
                    }
                    self.out.reserve(sub.prefix.len() + tail.len());
                    self.out.put_slice(&sub.prefix);
                    self.out.put_slice(&tail);
                    self.ends.push(self.out.len());
                }
            }
            Outbound::User { tail } => {
                if let Some(id) = &self.user_sub {
                    stomp::write_message_with_tail(id, &tail, &mut self.out);
                    self.ends.push(self.out.len());
                }
            }
            Outbound::Receipt {
                receipt_id,
                seq,
                message_id,
            } => {
                self.meter.receipted(&receipt_id);
                let (mut seq_text, mut id) = (itoa::Buffer::new(), uuid::Uuid::encode_buffer());
                let headers = [
                    ("receipt-id", receipt_id.as_str()),
                    ("seq", seq_text.format(seq)),
                    ("message-id", message_id.hyphenated().encode_lower(&mut id)),
                ];
                stomp::write_frame(Command::Receipt, &headers, b"", &mut self.out);
                self.end_frame();
            }
            Outbound::Failed {
                receipt_id,
                message,
            } => {
                self.meter
                    .send_failed(receipt_id.as_deref(), None, &message);
                return Err(Fatal {
                    receipt_id,
                    ..fatal(message)
                });
            }
            Outbound::SubscriptionLost { room_id } => {
                if let Some(sub) = self.rooms.remove(&room_id) {
                    debug!(room_id = %room_id, since = sub.last_seq, "room restarted; resubscribing");
                    Box::pin(self.subscribe_room(room_id, sub.id, Some(sub.last_seq))).await?;
                }
            }
        }
        Ok(())
    }

    /// Unregisters the session from its rooms (it leaves the users table when it is dropped).
    fn end(&mut self) {
        let rooms: Vec<_> = self.rooms.drain().collect();
        for (room, sub) in rooms {
            self.leave(room, sub);
        }
        self.state.routes.session_ended(self.handle.id);
        debug!(session = %self.handle.id, "session ended");
    }
}
