//! What actors hand to the light per-connection sessions: a [`SessionHandle`] (a bounded outbox and a
//! kill switch) and the [`Outbound`] items put into it.
//!
//! Frames are pre-encoded by the room once per message ([`Outbound::Room`] carries the shared tail of a
//! STOMP MESSAGE frame); each session only adds its own `subscription` header when writing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::model::{RoomId, Seq, UserId};

/// Identifies one connection on this node.
pub type SessionId = u64;

/// One item for a session to write.
#[derive(Debug)]
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

/// A session as actors see it: where to put items for it, and how to close it when it lags.
#[derive(Clone, Debug)]
pub struct SessionHandle {
    /// Connection id, unique on this node.
    pub id: SessionId,
    /// Authenticated user of the connection.
    pub user: UserId,
    tx: mpsc::Sender<Outbound>,
    slow: Arc<AtomicBool>,
}

/// The session's side of a [`SessionHandle`].
#[derive(Debug)]
pub struct SessionInbox {
    /// Items to write, in the order they were put.
    pub rx: mpsc::Receiver<Outbound>,
    /// Set when an actor found the session too slow.
    pub slow: SlowSignal,
}

/// Set when an actor found a session too slow to keep up. It needs no wake-up of its own: it is set
/// only when the outbox is full, so the session has items to take and checks it when it takes them.
#[derive(Debug)]
pub struct SlowSignal(Arc<AtomicBool>);

impl SessionHandle {
    /// Creates a handle and its inbox with room for `capacity` items.
    pub fn new(id: SessionId, user: UserId, capacity: usize) -> (SessionHandle, SessionInbox) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let slow = Arc::new(AtomicBool::new(false));
        (
            SessionHandle {
                id,
                user,
                tx,
                slow: slow.clone(),
            },
            SessionInbox {
                rx,
                slow: SlowSignal(slow),
            },
        )
    }

    /// Puts an item in the outbox without waiting. When the outbox is full the session is too slow: it is
    /// told to close (it can resume by seq) and `false` is returned. Durable messages are never dropped
    /// silently.
    pub fn offer(&self, item: Outbound) -> bool {
        match self.tx.try_send(item) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.close_slow();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Returns whether the session is gone (its inbox was dropped) or was told to close.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed() || self.slow.load(Ordering::Relaxed)
    }

    fn close_slow(&self) {
        self.slow.store(true, Ordering::Relaxed);
    }
}

impl SlowSignal {
    /// Tells whether an actor found the session too slow to keep up.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
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
        assert!(inbox.rx.try_recv().is_ok());
    }

    #[tokio::test]
    async fn dropped_guard_reports_the_lost_room() {
        let (h, mut inbox) = SessionHandle::new(1, UserId(1), 4);
        drop(LostGuard::new(h.clone(), RoomId(7)));
        LostGuard::new(h, RoomId(8)).disarm();
        match inbox.rx.try_recv() {
            Ok(Outbound::SubscriptionLost { room_id }) => assert_eq!(room_id, RoomId(7)),
            other => panic!("unexpected {other:?}"),
        }
        assert!(inbox.rx.try_recv().is_err());
    }
}
