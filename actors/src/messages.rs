//! The [`ractor::Message`] impls of this crate's actor messages, and the depth of their mailboxes.
//!
//! ractor's `cluster` feature (on for the workspace, for ractor_cluster) drops ractor's blanket
//! `impl Message for T`, so every message type says here what it is. Each one is local: the default
//! impl is not serializable, so a reference to one of these actors cannot be used from another node.
//! Only a node's router crosses nodes (`banter-cluster`); rooms and users are reached through it, never
//! mirrored on every peer (ARCHITECTURE.md, section 2).
//!
//! **Mailbox depth.** ractor tells no one how many messages wait in an actor's mailbox, so the
//! messages of rooms, users' actors and directories count themselves: boxing one for a mailbox
//! wraps it in a [`Queued`] that adds one to its kind's depth, and the depth goes down when the
//! actor takes it out, or when the mailbox is dropped with it still inside (an actor that
//! crashed). The count is therefore
//! exact whatever happens to a message; it costs two atomic operations per message.
//! [`mailbox_depths`] reads the node's totals.

use std::sync::atomic::{AtomicI64, Ordering};

use ractor::message::{BoxedDowncastErr, BoxedMessage};
use ractor::{ActorId, Message};

use crate::account::AccountMessage;
use crate::directory::{DirectoryMessage, Entity};
use crate::room::RoomMessage;

/// Messages waiting in every room actor's mailbox on this node.
static ROOMS_QUEUED: AtomicI64 = AtomicI64::new(0);
/// Messages waiting in every user's actor's mailbox on this node.
static ACCOUNTS_QUEUED: AtomicI64 = AtomicI64::new(0);
/// Messages waiting in every directory's mailbox on this node.
static DIRECTORIES_QUEUED: AtomicI64 = AtomicI64::new(0);

/// The messages waiting in mailboxes on this node, by kind of actor (`room`, `user`,
/// `directory`).
pub fn mailbox_depths() -> [(&'static str, i64); 3] {
    [
        ("room", ROOMS_QUEUED.load(Ordering::Relaxed).max(0)),
        ("user", ACCOUNTS_QUEUED.load(Ordering::Relaxed).max(0)),
        (
            "directory",
            DIRECTORIES_QUEUED.load(Ordering::Relaxed).max(0),
        ),
    ]
}

/// A message on its way through a mailbox: counted in `depth` from boxing until it is taken out
/// or dropped.
struct Queued<M> {
    msg: Option<M>,
    depth: &'static AtomicI64,
}

impl<M> Queued<M> {
    fn new(msg: M, depth: &'static AtomicI64) -> Self {
        depth.fetch_add(1, Ordering::Relaxed);
        Self {
            msg: Some(msg),
            depth,
        }
    }

    fn take(mut self) -> Result<M, BoxedDowncastErr> {
        self.msg.take().ok_or(BoxedDowncastErr)
    }
}

impl<M> Drop for Queued<M> {
    fn drop(&mut self) {
        self.depth.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<M: Send + 'static> Message for Queued<M> {}

/// Implements [`Message`] for a local message type whose mailbox depth is counted in `$depth`.
macro_rules! counted {
    ($depth:expr) => {
        fn box_message(self, pid: &ActorId) -> Result<BoxedMessage, BoxedDowncastErr> {
            Queued::new(self, &$depth).box_message(pid)
        }

        fn from_boxed(m: BoxedMessage) -> Result<Self, BoxedDowncastErr> {
            Queued::<Self>::from_boxed(m)?.take()
        }
    };
}

impl<E: Entity> Message for DirectoryMessage<E> {
    counted!(DIRECTORIES_QUEUED);
}

impl Message for RoomMessage {
    counted!(ROOMS_QUEUED);
}

impl Message for AccountMessage {
    counted!(ACCOUNTS_QUEUED);
}

#[cfg(test)]
mod tests {
    use ractor::{Actor, ActorProcessingErr, ActorRef};
    use tokio::sync::{Semaphore, mpsc};

    use super::*;

    /// A message type counted like a room's, with its own depth.
    static PROBES_QUEUED: AtomicI64 = AtomicI64::new(0);
    struct Probe(u32);
    impl Message for Probe {
        counted!(PROBES_QUEUED);
    }

    /// Handles a probe once the gate lets it, reports its number, fails on 0.
    struct Gated;
    impl Actor for Gated {
        type Msg = Probe;
        type State = (std::sync::Arc<Semaphore>, mpsc::UnboundedSender<u32>);
        type Arguments = Self::State;
        async fn pre_start(
            &self,
            _: ActorRef<Probe>,
            args: Self::State,
        ) -> Result<Self::State, ActorProcessingErr> {
            Ok(args)
        }
        async fn handle(
            &self,
            _: ActorRef<Probe>,
            Probe(n): Probe,
            (gate, seen): &mut Self::State,
        ) -> Result<(), ActorProcessingErr> {
            gate.acquire().await?.forget();
            if n == 0 {
                return Err("probe 0 fails the actor".into());
            }
            let _ = seen.send(n);
            Ok(())
        }
    }

    fn depth() -> i64 {
        PROBES_QUEUED.load(Ordering::Relaxed)
    }

    /// Waits until the depth is `n`; fails after 5 s.
    async fn settles_at(n: i64) {
        let wait = async {
            while depth() != n {
                tokio::task::yield_now().await;
            }
        };
        if tokio::time::timeout(std::time::Duration::from_secs(5), wait)
            .await
            .is_err()
        {
            panic!("the depth stayed at {}, not {n}", depth());
        }
    }

    #[tokio::test]
    async fn depth_counts_what_waits_and_what_a_crash_drops() {
        let gate = std::sync::Arc::new(Semaphore::new(0));
        let (tx, mut seen) = mpsc::unbounded_channel();
        let (actor, handle) = Actor::spawn(None, Gated, (gate.clone(), tx)).await.unwrap();
        for n in 1..=3 {
            actor.cast(Probe(n)).unwrap();
        }
        // The first is taken out and waits at the gate; two wait in the mailbox.
        settles_at(2).await;
        gate.add_permits(2);
        assert_eq!(seen.recv().await, Some(1));
        assert_eq!(seen.recv().await, Some(2));
        settles_at(0).await;
        // Probe 3 is being handled (taken out), 0 fails the actor, 4 and 5 die with its mailbox.
        for n in [0, 4, 5] {
            actor.cast(Probe(n)).unwrap();
        }
        assert_eq!(depth(), 3);
        gate.add_permits(2);
        assert_eq!(seen.recv().await, Some(3));
        handle.await.unwrap();
        drop(actor);
        assert_eq!(depth(), 0, "what the crash dropped is no longer counted");
    }
}
