//! The room actor: the single writer of one room.
//!
//! It checks membership, assigns `seq = last_seq + 1`, encodes the MESSAGE frame once, appends to the
//! journal without awaiting it (the journal reports to the room's [`AppendSink`], which puts
//! [`RoomMessage::Journaled`] in its mailbox, one per group commit), and only when the journal has the
//! message — in seq order — answers the sender, keeps it in the ring buffer and fans it out to
//! subscribed sessions. Typing and read events are fanned out the same way, never journaled.
//!
//! Activation (`activate`) loads the true last seq and refills the ring, so a restarted room never
//! reuses a seq; typing, read markers and leaving are in `members`.
//!
//! A SEND may carry a nonce (`nonces`): a resend with the same sender and nonce is answered with the
//! first message's RECEIPT, never made a second message. An append whose journal outcome is unknown
//! (`resolve`) is reported so to its sender, its seq is never given out again, and a journal read off
//! the handler tells whether it landed: then it is delivered late (after higher seqs) and its nonce
//! answers resends; else its seq stays a gap.
//!
//! The ring (`ring`) also answers history readers ([`RoomMessage::GetRecent`]): the store lags the
//! journal while a persister is behind, and the ring holds the newest acknowledged messages, stored or
//! not, with no network call in the handler.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::time::Instant;
use tracing::{debug, instrument, warn};
use uuid::Uuid;

use crate::delivery::{SessionId, SessionRef};
use crate::directory::DirectoryMessage;
use crate::encode::RoomFrames;
use crate::model::{Attachment, ChatMessage, MessageKind, RoomId, RoomKind, Seq, UserId};
use crate::ports::{AppendSink, JournalError, Ports};
use crate::shard::Term;
use crate::trace::TraceParent;

mod activate;
mod entity;
mod members;
mod nonces;
mod publish;
mod release;
mod resolve;
mod ring;
mod subscribers;

pub use entity::Rooms;
use members::ReadMarker;
use nonces::Nonces;
pub use release::Request;
use release::{Pending, unknown_outcome};
use resolve::Unresolved;
use ring::Ring;
use subscribers::Subscribers;

/// Nonces a room remembers (see [`RoomMessage::Publish`]).
const NONCES_PER_ROOM: usize = 4096;

/// Settings of room actors.
#[derive(Clone, Debug)]
pub struct RoomConfig {
    /// Recent messages kept in memory.
    pub ring_size: usize,
    /// Time with no subscriber and no traffic after which the room passivates.
    pub idle_timeout: Duration,
    /// Shortest time between two typing events of one user that are fanned out.
    pub typing_interval: Duration,
    /// Sessions one user may have on a node (`ws.max_sessions_per_user`): another node's subscribers
    /// of the room are refused past it per user, since no real node has more.
    pub max_sessions_per_user: usize,
}

/// Why a room refused a request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RoomError {
    /// The user is not a member of the room.
    #[error("not a member of room {0}")]
    NotMember(RoomId),
    /// The room does not exist.
    #[error("room {0} does not exist")]
    NotFound(RoomId),
    /// The room could not be reached or started.
    #[error("room {0} is unavailable: {1}")]
    Unavailable(RoomId, String),
    /// Another node serves the room now (or is about to): the request was not carried out. A
    /// message sent again (with the same nonce) reaches the room where it lives.
    #[error("room {0} moved to another node: send again (with the same nonce)")]
    Moved(RoomId),
    /// An edit or a delete names no message of the room (none with that seq, or an event's).
    #[error("room {0} has no message {1}")]
    UnknownMessage(RoomId, Seq),
    /// An edit or a delete names a deleted message.
    #[error("message {0} was deleted")]
    MessageDeleted(Seq),
    /// Someone else than its author tried to edit a message.
    #[error("only its author may edit message {0}")]
    NotAuthor(Seq),
    /// Someone else than its author or a room owner tried to delete a message.
    #[error("only its author or an owner of the room may delete message {0}")]
    NotAllowedToDelete(Seq),
    /// People do not post in a feed room: its source does.
    #[error("room {0} is a feed: only its source posts in it")]
    FeedRoom(RoomId),
    /// Too many edits and deletes of old messages wait for the store in this room.
    #[error("room {0} is busy: send again later")]
    Busy(RoomId),
}

impl RoomError {
    /// The text of the ERROR frame a sender gets: the stable code first (`not_author: …`), as a
    /// refused attachment's is, except for the four errors older than codes, whose text clients
    /// already match.
    pub fn client_message(&self) -> String {
        match self {
            RoomError::NotMember(_)
            | RoomError::NotFound(_)
            | RoomError::Unavailable(..)
            | RoomError::Moved(_) => self.to_string(),
            _ => format!("{}: {self}", self.code()),
        }
    }

    /// The error's stable code (refusals cross nodes with it).
    pub fn code(&self) -> &'static str {
        match self {
            RoomError::NotMember(_) => "not_member",
            RoomError::NotFound(_) => "not_found",
            RoomError::Unavailable(..) => "unavailable",
            RoomError::Moved(_) => "moved",
            RoomError::UnknownMessage(..) => "unknown_message",
            RoomError::MessageDeleted(_) => "message_deleted",
            RoomError::NotAuthor(_) => "not_author",
            RoomError::NotAllowedToDelete(_) => "not_allowed",
            RoomError::FeedRoom(_) => "feed_room",
            RoomError::Busy(_) => "busy",
        }
    }
}

/// What a subscriber gets back: the messages it missed, then it is live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeOk {
    /// Seqs (inclusive range) to read from the store before `replay`: older than the ring.
    pub backfill: Option<(Seq, Seq)>,
    /// Pre-encoded frame tails of missed messages from the ring, in seq order.
    pub replay: Vec<(Seq, Bytes)>,
    /// Highest acknowledged seq at the time of subscribing.
    pub last_seq: Seq,
}

/// Acknowledged messages of a range of seqs: every one with a seq in `(from, upper]`, for the `upper`
/// of the question, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Exclusive lower bound of the range the messages cover completely.
    pub from: Seq,
    /// The messages, newest first.
    pub messages: Vec<ChatMessage>,
}

/// What a room answers to [`RoomMessage::GetRecent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recent {
    /// Highest acknowledged seq.
    pub acked_seq: Seq,
    /// The newest messages of the asked range from the ring, or `None` when the ring does not reach
    /// back far enough (the caller then reads the journal).
    pub window: Option<Window>,
}

/// What a SEND asks a room to add: a message, or an edit or a delete of an earlier one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Draft {
    /// Validated UTF-8 text (the new body of an edit; empty for a delete).
    pub body: String,
    /// Files attached, as the sender's actor checked them (a message's only).
    pub attachments: Vec<Attachment>,
    /// A message, an edit or a delete.
    pub kind: MessageKind,
    /// The body's content type when it is not plain text (a feed's JSON).
    pub content_type: Option<String>,
}

impl Draft {
    /// A plain text message.
    pub fn text(body: impl Into<String>) -> Draft {
        Draft {
            body: body.into(),
            ..Draft::default()
        }
    }
}

/// Messages of a [`Room`].
pub enum RoomMessage {
    /// Adds a message (or an edit or a delete of one) from the session's user; the session gets
    /// [`Outbound::Receipt`] (when `receipt` is set) once it is durable, or [`Outbound::Failed`].
    Publish {
        /// Sending session (its user is the sender).
        session: SessionRef,
        /// The client's `receipt` header.
        receipt: Option<String>,
        /// W3C trace context of the SEND.
        trace: TraceParent,
        /// The client's idempotency key (`nonce` header): a resend with the same sender and nonce
        /// creates no second message while the room remembers the first (its last
        /// [`NONCES_PER_ROOM`] nonces, and across restarts those of its last `ring_size` messages,
        /// which carry their nonce); it is answered with the first one's RECEIPT once that is durable.
        nonce: Option<String>,
        /// What to add.
        draft: Draft,
    },
    /// A store read of the message an edit or a delete changes (one older than the ring) finished.
    TargetLoaded {
        /// The edit or delete, waiting for it.
        request: Box<Request>,
        /// The message, `None` when the room has no such message, or why it could not be read.
        found: Result<Option<ChatMessage>, String>,
    },
    /// Subscribes a session; messages after `since` are replayed first.
    Subscribe {
        /// The session.
        session: SessionRef,
        /// Last seq the client has.
        since: Option<Seq>,
        /// Replay plan, or why not.
        reply: RpcReplyPort<Result<SubscribeOk, RoomError>>,
    },
    /// Removes a session's subscription.
    Unsubscribe {
        /// The session.
        session_id: SessionId,
    },
    /// Tells members that `user` is typing.
    Typing {
        /// Session of the typing user.
        session: SessionRef,
    },
    /// Raises a member's read marker and tells the members.
    MarkRead {
        /// Session of the reader.
        session: SessionRef,
        /// Seq read up to.
        seq: Seq,
    },
    /// A user became a member (the store already has it).
    MemberJoined {
        /// New member.
        user: UserId,
        /// The member's username.
        username: String,
    },
    /// A user left (the store already has it); their subscriptions end.
    MemberLeft {
        /// Former member.
        user: UserId,
    },
    /// The journal settled the appends of seqs `first..=last`.
    Journaled {
        /// First seq settled.
        first: Seq,
        /// Last seq settled.
        last: Seq,
        /// Outcome of each of them.
        result: Result<(), JournalError>,
    },
    /// A journal read looking for the unresolved seqs up to `upto` (appends whose outcome was
    /// unknown) finished: the `(seq, message id)` it found among them, or why it could not read.
    Resolved {
        /// Highest unresolved seq the read covered.
        upto: Seq,
        /// What the journal holds of them.
        found: Result<Vec<(Seq, Uuid)>, JournalError>,
    },
    /// A read marker write finished: the marker now stored, or `None` when the write failed.
    ReadStored {
        /// Reader.
        user: UserId,
        /// Marker now stored.
        seq: Option<Seq>,
    },
    /// Periodic check for passivation.
    IdleCheck,
    /// Checks that this node still serves the room (its shard may have gone to another node); a
    /// room that lost it stops, and its subscribers resubscribe where it lives now.
    CheckOwner,
    /// Stops once no work is pending (sent by the directory after a passivation request).
    Stop,
    /// Returns the highest acknowledged seq and the subscriber count.
    GetInfo(RpcReplyPort<(Seq, usize)>),
    /// Returns the newest `limit` acknowledged messages with a seq above `after` and below `before`
    /// (no bound when `None`), for history readers whose store page ends at `after`. Answered from
    /// memory: one comparison when nothing is newer than `after`.
    GetRecent {
        /// Highest seq the reader already has (the newest in its store page).
        after: Seq,
        /// Exclusive upper bound (the page's `before`).
        before: Option<Seq>,
        /// Most messages wanted.
        limit: u32,
        /// The answer.
        reply: RpcReplyPort<Recent>,
    },
}

/// The room actor (one per active room).
pub struct Room;

/// Arguments of a [`Room`].
pub struct RoomArguments {
    /// Room to serve.
    pub room_id: RoomId,
    /// Store, journal, clock.
    pub ports: Ports,
    /// Settings.
    pub config: RoomConfig,
    /// The directory that spawned it, for passivation and re-routing.
    pub directory: ActorRef<DirectoryMessage<Rooms>>,
}

/// State of a [`Room`].
pub struct RoomState {
    id: RoomId,
    ports: Ports,
    config: RoomConfig,
    directory: ActorRef<DirectoryMessage<Rooms>>,
    /// Where the journal reports this room's appends.
    sink: Arc<dyn AppendSink>,
    frames: RoomFrames,
    members: HashMap<UserId, Arc<str>>,
    /// Members who may delete anyone's message.
    owners: HashSet<UserId>,
    /// Group, DM or feed.
    kind: RoomKind,
    /// A feed room's source's user: the only one who posts in it.
    feeder: Option<UserId>,
    /// Store reads of the messages that edits and deletes change, under way.
    lookups: usize,
    /// Read markers of members that set one while the room was active.
    reads: HashMap<UserId, ReadMarker>,
    /// Last seq assigned.
    next_seq: Seq,
    /// Last seq acknowledged (released in order).
    acked_seq: Seq,
    ring: Ring,
    pending: VecDeque<Pending>,
    /// Nonces of recent messages and what became of them.
    nonces: Nonces,
    /// Appends whose outcome was unknown, by seq, until a journal read tells whether they landed.
    unresolved: BTreeMap<Seq, Unresolved>,
    /// A journal read of the unresolved seqs is under way.
    resolving: bool,
    /// Failed journal reads of the unresolved seqs in a row.
    resolve_failures: u32,
    subscribers: Subscribers,
    typing: HashMap<UserId, Instant>,
    tasks_in_flight: usize,
    last_activity: Instant,
    /// Asked the directory to passivate it.
    passivation_requested: bool,
    /// Told to stop: finishes what is pending, hands new work back to the directory.
    stopping: bool,
    /// This node may no longer serve the room (its shard went to another node): it stops after the
    /// message at hand, acknowledging nothing more.
    lost: bool,
}

impl RoomState {
    /// Delivers a room event to its subscribers (see [`Subscribers::fan_out`]); a chat message's
    /// `stamp` says when the room accepted it and names its span while its trace is exported.
    fn fan_out(
        &mut self,
        seq: Option<Seq>,
        tail: &Bytes,
        skip_user: Option<UserId>,
        stamp: Option<crate::delivery::Stamp<'_>>,
    ) {
        self.subscribers.fan_out(seq, tail, skip_user, stamp);
    }

    /// Whether this node may still serve the room; marks it lost when not.
    fn still_serving(&mut self) -> bool {
        self.term().is_some()
    }

    /// The term under which this node serves the room now; `None` (and the room marked lost) when
    /// it may no longer.
    fn term(&mut self) -> Option<Term> {
        let term = self.ports.ownership.serving(self.id).filter(|_| !self.lost);
        if term.is_none() && !self.lost {
            warn!(room_id = %self.id, "this node lost the room's shard; the room stops");
            self.lost = true;
        }
        term
    }

    fn is_member(&self, user: UserId) -> bool {
        self.members.contains_key(&user)
    }

    fn idle(&self) -> bool {
        self.subscribers.is_empty() && self.pending.is_empty() && self.tasks_in_flight == 0
    }
}

impl Room {
    fn subscribe(
        state: &mut RoomState,
        session: SessionRef,
        since: Option<Seq>,
    ) -> Result<SubscribeOk, RoomError> {
        if !state.is_member(session.user()) {
            return Err(RoomError::NotMember(state.id));
        }
        if !state.still_serving() {
            return Err(RoomError::Moved(state.id));
        }
        let last_seq = state.acked_seq;
        let mut ok = SubscribeOk {
            backfill: None,
            replay: Vec::new(),
            last_seq,
        };
        if let Some(since) = since.filter(|s| *s < last_seq) {
            let ring_first = state.ring.first_seq().unwrap_or(last_seq + 1);
            if since + 1 < ring_first {
                ok.backfill = Some((since + 1, ring_first - 1));
            }
            ok.replay = state.ring.tails_after(since);
        }
        if state.subscribers.insert(session).is_err() {
            return Err(RoomError::Unavailable(
                state.id,
                "too many subscriptions of one user from one node".into(),
            ));
        }
        Ok(ok)
    }
}

impl Room {
    fn on_journaled(
        myself: &ActorRef<RoomMessage>,
        state: &mut RoomState,
        first: Seq,
        last: Seq,
        result: Result<(), JournalError>,
    ) {
        let Some(front) = state.pending.front().map(|p| p.seq) else {
            return;
        };
        // Seqs below the front were settled already (an activation's leftovers never are).
        let skip = front.saturating_sub(first);
        let start = first.saturating_sub(front) as usize;
        let count = (last + 1).saturating_sub(first).saturating_sub(skip) as usize;
        for p in state.pending.iter_mut().skip(start).take(count) {
            p.outcome = Some(result.clone());
        }
        let again = state.release();
        Self::republish(myself, state, again);
        Self::start_resolving(myself, state);
    }

    /// Forgets typing marks that expired, and asks to passivate once idle long enough.
    fn on_idle_check(myself: &ActorRef<RoomMessage>, state: &mut RoomState) {
        let interval = state.config.typing_interval;
        state.typing.retain(|_, t| t.elapsed() < interval);
        if !state.passivation_requested
            && state.idle()
            && state.last_activity.elapsed() >= state.config.idle_timeout
        {
            state.passivation_requested = true;
            let _ = state
                .directory
                .cast(DirectoryMessage::Passivate(state.id, myself.clone()));
        }
    }

    /// Answers a history reader from the ring (see [`RoomMessage::GetRecent`]).
    fn recent(state: &RoomState, after: Seq, before: Option<Seq>, limit: u32) -> Recent {
        let upper = before.map_or(state.acked_seq, |b| {
            b.saturating_sub(1).min(state.acked_seq)
        });
        Recent {
            acked_seq: state.acked_seq,
            window: state.ring.window(after, upper, limit as usize),
        }
    }
}

impl Actor for Room {
    type Msg = RoomMessage;
    type State = RoomState;
    type Arguments = RoomArguments;

    #[instrument(name = "room.activate", skip_all, fields(room_id = %args.room_id))]
    async fn pre_start(
        &self,
        myself: ActorRef<RoomMessage>,
        args: RoomArguments,
    ) -> Result<RoomState, ActorProcessingErr> {
        activate::activate(myself, args).await
    }

    async fn handle(
        &self,
        myself: ActorRef<RoomMessage>,
        message: RoomMessage,
        state: &mut RoomState,
    ) -> Result<(), ActorProcessingErr> {
        if state.stopping {
            // The directory holds new work for the next activation; work that reached this one late
            // (through a subscribed session's direct reference) goes back through the directory.
            match message {
                RoomMessage::Journaled { .. }
                | RoomMessage::Resolved { .. }
                | RoomMessage::TargetLoaded { .. }
                | RoomMessage::ReadStored { .. }
                | RoomMessage::GetInfo(_)
                | RoomMessage::GetRecent { .. } => {}
                RoomMessage::IdleCheck | RoomMessage::Stop | RoomMessage::CheckOwner => {
                    return Ok(());
                }
                other => {
                    let _ = state
                        .directory
                        .cast(DirectoryMessage::Route(state.id, other));
                    return Ok(());
                }
            }
        }
        match message {
            RoomMessage::Publish {
                session,
                receipt,
                trace,
                nonce,
                draft,
            } => {
                state.last_activity = Instant::now();
                let request = Request {
                    session,
                    receipt,
                    trace,
                    nonce,
                    draft,
                };
                Self::publish(&myself, state, request, None);
            }
            RoomMessage::TargetLoaded { request, found } => {
                Self::on_target_loaded(&myself, state, *request, found);
            }
            RoomMessage::Journaled {
                first,
                last,
                result,
            } => Self::on_journaled(&myself, state, first, last, result),
            RoomMessage::Resolved { upto, found } => {
                Self::on_resolved(&myself, state, upto, found);
            }
            RoomMessage::Subscribe {
                session,
                since,
                reply,
            } => {
                state.last_activity = Instant::now();
                let _ = reply.send(Self::subscribe(state, session, since));
            }
            RoomMessage::Unsubscribe { session_id } => state.subscribers.remove(session_id),
            RoomMessage::Typing { session } => Self::on_typing(state, session),
            RoomMessage::MarkRead { session, seq } => {
                state.last_activity = Instant::now();
                Self::mark_read(&myself, state, session, seq);
            }
            RoomMessage::ReadStored { user, seq } => {
                Self::on_read_stored(&myself, state, user, seq);
            }
            RoomMessage::MemberJoined { user, username } => {
                state.members.insert(user, Arc::from(username.as_str()));
            }
            RoomMessage::MemberLeft { user } => Self::on_member_left(state, user),
            RoomMessage::IdleCheck => Self::on_idle_check(&myself, state),
            RoomMessage::CheckOwner => {
                state.still_serving();
            }
            RoomMessage::Stop => state.stopping = true,
            RoomMessage::GetInfo(reply) => {
                let _ = reply.send((state.acked_seq, state.subscribers.len()));
            }
            RoomMessage::GetRecent {
                after,
                before,
                limit,
                reply,
            } => {
                let _ = reply.send(Self::recent(state, after, before, limit));
            }
        }
        if state.lost {
            // Pending appends are answered as unconfirmed, subscribers resubscribe (their guards
            // fire) and find the room where it lives now.
            myself.stop(Some("lost its shard".into()));
        } else if state.stopping && state.pending.is_empty() && state.tasks_in_flight == 0 {
            // Subscribers still here learn it (their guards fire) and resubscribe to the next activation.
            myself.stop(Some("passivated".into()));
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<RoomMessage>,
        state: &mut RoomState,
    ) -> Result<(), ActorProcessingErr> {
        // An orderly stop has no subscriber left; any that remain learn it and resubscribe.
        debug!(room_id = %state.id, "room stopped");
        Ok(())
    }
}

#[cfg(test)]
mod tests;
