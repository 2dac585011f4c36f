//! What actors hand to the light per-connection sessions: a [`SessionHandle`] (a bounded outbox and a
//! kill switch) and the [`Outbound`] items put into it.
//!
//! Sessions are identified across the cluster ([`SessionId`]: node and number) and reached through a
//! [`SessionRef`]: the outbox of a session of this node, or the link ([`PeerOutbox`]) to the node of
//! another. A room sends one frame per node for all of that node's subscribers
//! ([`PeerOutbox::fan_out`]).
//!
//! Frames are pre-encoded by the room once per message ([`Outbound::Room`] carries the shared tail of a
//! STOMP MESSAGE frame); each session only adds its own `subscription` header when writing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;

use crate::model::{RoomId, Seq, UserId};
use crate::trace::TraceParent;

/// What a chat message's fan-out carries besides its frame: when its room accepted it (for the
/// sessions' send → deliver histogram), and while its trace is exported the context of its span
/// at the room (other nodes' fan-out spans hang under it).
#[derive(Clone, Copy, Debug)]
pub struct Stamp<'a> {
    /// When the room accepted the message (ms since the Unix epoch, the room's node's clock).
    pub accepted_at_ms: i64,
    /// The message's `room.publish` span, while its trace is exported.
    pub trace: Option<&'a TraceParent>,
}

/// One incarnation of a node of the cluster: a `banter` process that restarts gets a new one, so a
/// session or a lease of its previous life is never mistaken for one of this life. The embedded single
/// node is [`NodeId::SINGLE`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u32);

impl NodeId {
    /// The node of a process that is not part of a cluster.
    pub const SINGLE: NodeId = NodeId(0);
}

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// Identifies one connection in the whole cluster: the node that holds its socket, and its number
/// there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId {
    /// The node holding the connection.
    pub node: NodeId,
    /// The connection's number on that node.
    pub local: u64,
}

impl SessionId {
    /// Session `local` of `node`.
    pub fn new(node: NodeId, local: u64) -> SessionId {
        SessionId { node, local }
    }
}

/// A bare number is a session of the single node (tests, the embedded node).
impl From<u64> for SessionId {
    fn from(local: u64) -> SessionId {
        SessionId::new(NodeId::SINGLE, local)
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/s{}", self.node, self.local)
    }
}

/// One item for a session to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    /// An event of a room the session subscribed to: the MESSAGE frame after its `subscription` line.
    /// `seq` is set for chat messages (the session tracks it for resume), `None` for typing and read events.
    Room {
        /// Room of the event.
        room_id: RoomId,
        /// Seq of a chat message.
        seq: Option<Seq>,
        /// Shared, pre-encoded frame tail.
        tail: Bytes,
        /// For a chat message, when its room accepted it (ms since the Unix epoch, the room's
        /// node's clock): the session times send → deliver from it. 0 for other events.
        accepted_at_ms: i64,
    },
    /// An event for the user's own queue (`/user/queue/events`): the MESSAGE frame tail.
    User {
        /// Shared, pre-encoded frame tail.
        tail: Bytes,
    },
    /// A message the session sent is durable.
    Receipt {
        /// The client's `receipt` header.
        receipt_id: String,
        /// Seq the message got.
        seq: Seq,
        /// Id the message got.
        message_id: uuid::Uuid,
    },
    /// A request of the session failed; the session answers with an ERROR frame and closes.
    Failed {
        /// The client's `receipt` header, when the request had one.
        receipt_id: Option<String>,
        /// What went wrong, fit for the ERROR frame's `message` header.
        message: String,
    },
    /// The room the session subscribed to stopped unexpectedly (it crashed); the session subscribes
    /// again from the last seq it delivered, which respawns the room.
    SubscriptionLost {
        /// Room that was lost.
        room_id: RoomId,
    },
}

impl Outbound {
    /// Bytes the item holds, as counted against a session's byte budget (frame tails; a small fixed
    /// cost for the others).
    fn weight(&self) -> usize {
        match self {
            Outbound::Room { tail, .. } | Outbound::User { tail } => tail.len(),
            _ => 64,
        }
    }
}

/// A session as actors see it: where to put items for it, and how to close it when it lags.
#[derive(Clone, Debug)]
pub struct SessionHandle {
    /// Connection id, unique in the cluster.
    pub id: SessionId,
    /// Authenticated user of the connection.
    pub user: UserId,
    tx: flume::Sender<Outbound>,
    slow: Arc<AtomicBool>,
    /// Bytes queued (see [`Outbound::weight`]) and the most allowed.
    queued: Arc<AtomicUsize>,
    max_bytes: usize,
}

/// The session's side of a [`SessionHandle`].
#[derive(Debug)]
pub struct SessionInbox {
    rx: flume::Receiver<Outbound>,
    queued: Arc<AtomicUsize>,
    /// Set when an actor found the session too slow.
    pub slow: SlowSignal,
}

/// Set when an actor found a session too slow to keep up. It needs no wake-up of its own: it is set
/// only when the outbox is full, so the session has items to take and checks it when it takes them.
#[derive(Debug)]
pub struct SlowSignal(Arc<AtomicBool>);

impl SessionHandle {
    /// Creates a handle and its inbox with room for `capacity` items, whatever their size.
    pub fn new(
        id: impl Into<SessionId>,
        user: UserId,
        capacity: usize,
    ) -> (SessionHandle, SessionInbox) {
        Self::bounded(id, user, capacity, usize::MAX)
    }

    /// Creates a handle and its inbox with room for `capacity` items holding at most `max_bytes`.
    pub fn bounded(
        id: impl Into<SessionId>,
        user: UserId,
        capacity: usize,
        max_bytes: usize,
    ) -> (SessionHandle, SessionInbox) {
        let id = id.into();
        // flume's queue grows with what is queued (tokio's allocates a block of 32 items and a
        // cache-padded channel up front: 2.4 KiB per connection, most of an idle one's cost).
        let (tx, rx) = flume::bounded(capacity.max(1));
        let slow = Arc::new(AtomicBool::new(false));
        let queued = Arc::new(AtomicUsize::new(0));
        (
            SessionHandle {
                id,
                user,
                tx,
                slow: slow.clone(),
                queued: queued.clone(),
                max_bytes,
            },
            SessionInbox {
                rx,
                queued,
                slow: SlowSignal(slow),
            },
        )
    }

    /// Puts an item in the outbox without waiting. When the outbox is full (in items or in bytes) the
    /// session is too slow: it is told to close (it can resume by seq) and `false` is returned.
    /// Durable messages are never dropped silently.
    ///
    /// The item that passes the byte budget is still queued, so the session finds the slow signal
    /// when it takes it (the outbox is bounded by the budget plus one item).
    pub fn offer(&self, item: Outbound) -> bool {
        let weight = item.weight();
        let queued = self.queued.fetch_add(weight, Ordering::Relaxed) + weight;
        match self.tx.try_send(item) {
            Ok(()) if queued > self.max_bytes => {
                self.close_slow();
                false
            }
            Ok(()) => true,
            Err(e) => {
                self.queued.fetch_sub(weight, Ordering::Relaxed);
                if matches!(e, flume::TrySendError::Full(_)) {
                    self.close_slow();
                }
                false
            }
        }
    }

    /// Returns whether the session is gone (its inbox was dropped) or was told to close.
    pub fn is_closed(&self) -> bool {
        self.tx.is_disconnected() || self.slow.load(Ordering::Relaxed)
    }

    fn close_slow(&self) {
        self.slow.store(true, Ordering::Relaxed);
    }
}

impl SessionInbox {
    /// Waits for the next item; `None` once every handle is gone.
    pub async fn recv(&mut self) -> Option<Outbound> {
        let item = self.rx.recv_async().await.ok()?;
        self.queued.fetch_sub(item.weight(), Ordering::Relaxed);
        Some(item)
    }

    /// Takes the next item if one is queued.
    pub fn try_recv(&mut self) -> Option<Outbound> {
        let item = self.rx.try_recv().ok()?;
        self.queued.fetch_sub(item.weight(), Ordering::Relaxed);
        Some(item)
    }
}

impl SlowSignal {
    /// Tells whether an actor found the session too slow to keep up.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Another node's sessions as the actors of this node see them: the link to that node. The cluster
/// layer implements it over its transport; every call only queues (bounded), never waits.
///
/// A call that returns `false` found the link gone or its queue full. Either way the link is dropped:
/// the other node then tells its sessions that their subscriptions to this node's rooms are lost, and
/// they subscribe again from the last seq they have (no gap, no duplicate), as a too-slow local
/// session would.
pub trait PeerOutbox: Send + Sync + std::fmt::Debug + 'static {
    /// The node behind the link.
    fn node(&self) -> NodeId;
    /// Queues `item` for one session of that node (a RECEIPT, an error, a user event).
    fn offer(&self, session: SessionId, item: Outbound) -> bool;
    /// Queues one room event for every session of that node subscribed to `room`, except those of
    /// `skip_user`: one frame crosses the link, however many sessions it reaches.
    fn fan_out(
        &self,
        room: RoomId,
        seq: Option<Seq>,
        tail: Bytes,
        skip_user: Option<UserId>,
        stamp: Option<Stamp<'_>>,
    ) -> bool;
    /// Ends the subscriptions of `user`'s sessions of that node to `room` (the user left it).
    fn drop_user(&self, room: RoomId, user: UserId);
    /// Tells that node's subscribers of `room` that their subscription is lost (the room stopped
    /// unexpectedly): they subscribe again.
    fn room_lost(&self, room: RoomId);
}

/// A session on another node: its id, its user, and the link to its node.
#[derive(Clone, Debug)]
pub struct RemoteSession {
    /// The session.
    pub id: SessionId,
    /// Its authenticated user.
    pub user: UserId,
    /// The link to its node.
    pub peer: Arc<dyn PeerOutbox>,
}

/// A session wherever it is: what actors keep as a session's reply path and as a room's subscriber.
#[derive(Clone, Debug)]
pub enum SessionRef {
    /// A session of this node: its outbox.
    Local(SessionHandle),
    /// A session of another node, reached through the link to it.
    Remote(RemoteSession),
}

impl SessionRef {
    /// The session's id.
    pub fn id(&self) -> SessionId {
        match self {
            SessionRef::Local(h) => h.id,
            SessionRef::Remote(r) => r.id,
        }
    }

    /// The session's user.
    pub fn user(&self) -> UserId {
        match self {
            SessionRef::Local(h) => h.user,
            SessionRef::Remote(r) => r.user,
        }
    }

    /// Queues an item for the session without waiting; `false` when it cannot take it (see
    /// [`SessionHandle::offer`] and [`PeerOutbox`]).
    pub fn offer(&self, item: Outbound) -> bool {
        match self {
            SessionRef::Local(h) => h.offer(item),
            SessionRef::Remote(r) => r.peer.offer(r.id, item),
        }
    }

    /// Whether the session is known to be gone: a local one whose inbox was dropped or that was told
    /// to close. A remote one is never known gone here (its node tells when it ends).
    pub fn is_closed(&self) -> bool {
        match self {
            SessionRef::Local(h) => h.is_closed(),
            SessionRef::Remote(_) => false,
        }
    }
}

impl From<SessionHandle> for SessionRef {
    fn from(h: SessionHandle) -> SessionRef {
        SessionRef::Local(h)
    }
}

/// Sends [`Outbound::SubscriptionLost`] when dropped: a room keeps one per subscriber, so a room that
/// crashes (its state dropped) tells each subscriber to subscribe again.
#[derive(Debug)]
pub struct LostGuard {
    /// The subscriber.
    pub session: SessionHandle,
    /// The room.
    pub room_id: RoomId,
    armed: bool,
}

impl LostGuard {
    /// Arms a guard for `session` in `room_id`.
    pub fn new(session: SessionHandle, room_id: RoomId) -> LostGuard {
        LostGuard {
            session,
            room_id,
            armed: true,
        }
    }

    /// Drops the guard without telling the session (an orderly unsubscribe or passivation).
    pub fn disarm(mut self) {
        self.armed = false;
    }

    /// Disarms the guard where it stands (for one about to be dropped inside a collection).
    pub fn disarm_in_place(&mut self) {
        self.armed = false;
    }
}

impl Drop for LostGuard {
    fn drop(&mut self) {
        if self.armed {
            self.session.offer(Outbound::SubscriptionLost {
                room_id: self.room_id,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn full_outbox_marks_the_session_too_slow() {
        let (h, mut inbox) = SessionHandle::new(1, UserId(1), 1);
        assert!(h.offer(Outbound::User { tail: Bytes::new() }));
        assert!(!h.offer(Outbound::User { tail: Bytes::new() }));
        assert!(h.is_closed());
        assert!(inbox.slow.is_set());
        assert!(inbox.try_recv().is_some());
    }

    #[tokio::test]
    async fn outbox_over_its_byte_budget_marks_the_session_too_slow() {
        let (h, mut inbox) = SessionHandle::bounded(1, UserId(1), 100, 250);
        let item = || Outbound::User {
            tail: Bytes::from(vec![b'x'; 100]),
        };
        assert!(h.offer(item()) && h.offer(item()));
        assert!(!inbox.slow.is_set());
        // Taking items frees their bytes.
        assert!(inbox.try_recv().is_some());
        assert!(h.offer(item()));
        assert!(!h.offer(item()), "300 bytes queued of 250");
        assert!(inbox.slow.is_set());
        // The item that passed the budget is queued: the session finds the signal when it takes it.
        let mut taken = 0;
        while inbox.try_recv().is_some() {
            taken += 1;
        }
        assert_eq!(taken, 3);
    }

    #[tokio::test]
    async fn dropped_guard_reports_the_lost_room() {
        let (h, mut inbox) = SessionHandle::new(1, UserId(1), 4);
        drop(LostGuard::new(h.clone(), RoomId(7)));
        LostGuard::new(h, RoomId(8)).disarm();
        match inbox.try_recv() {
            Some(Outbound::SubscriptionLost { room_id }) => assert_eq!(room_id, RoomId(7)),
            other => panic!("unexpected {other:?}"),
        }
        assert!(inbox.try_recv().is_none());
    }
}
