//! The room's memory of client nonces: which message a `(sender, nonce)` pair became, so that a
//! resend of it (after a lost connection, or an unknown outcome) creates no second message.
//!
//! Bounded: it remembers the last [`Nonces::capacity`] nonces, oldest forgotten first. A nonce is kept
//! with its message in the journal and the store, and an activation remembers those of the messages it
//! refills its ring with (the room's last `ring_size`), so a restart forgets only older ones. A resend
//! of a forgotten nonce is a new message.

use std::collections::{HashMap, VecDeque};

use uuid::Uuid;

use crate::model::{Seq, UserId};

/// What a remembered nonce's message became.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum NonceState {
    /// It got this seq; its append is not settled yet, or its outcome is being resolved.
    Pending(Seq),
    /// It is durable with this seq and id.
    Done {
        /// Seq of the message.
        seq: Seq,
        /// Id of the message.
        message_id: Uuid,
    },
}

impl NonceState {
    fn seq(self) -> Seq {
        match self {
            NonceState::Pending(seq) | NonceState::Done { seq, .. } => seq,
        }
    }
}

type Key = (UserId, Box<str>);

/// The remembered nonces of one room (see the module doc).
pub(super) struct Nonces {
    map: HashMap<Key, NonceState>,
    /// Keys in the order they were remembered, with the seq they got (a key forgotten and
    /// remembered again is listed twice; only the entry whose seq matches evicts it).
    order: VecDeque<(Key, Seq)>,
    capacity: usize,
}

impl Nonces {
    /// Returns an empty memory of at most `capacity` nonces (at least one).
    pub(super) fn new(capacity: usize) -> Nonces {
        Nonces {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Returns what the message of `(user, nonce)` became, when it is remembered.
    pub(super) fn get(&self, user: UserId, nonce: &str) -> Option<NonceState> {
        self.map.get(&(user, Box::from(nonce))).copied()
    }

    /// Remembers that `(user, nonce)` got `seq`, forgetting the oldest nonce when full.
    pub(super) fn insert(&mut self, user: UserId, nonce: &str, seq: Seq) {
        while self.order.len() >= self.capacity {
            let Some((key, seq)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&key).is_some_and(|s| s.seq() == seq) {
                self.map.remove(&key);
            }
        }
        let key: Key = (user, Box::from(nonce));
        self.map.insert(key.clone(), NonceState::Pending(seq));
        self.order.push_back((key, seq));
    }

    /// Records that the message of `(user, nonce)` with `seq` is durable.
    pub(super) fn done(&mut self, user: UserId, nonce: &str, seq: Seq, message_id: Uuid) {
        if let Some(state) = self.map.get_mut(&(user, Box::from(nonce)))
            && state.seq() == seq
        {
            *state = NonceState::Done { seq, message_id };
        }
    }

    /// Forgets `(user, nonce)` when its message is `seq` (it was not stored: a resend is new).
    pub(super) fn forget(&mut self, user: UserId, nonce: &str, seq: Seq) {
        let key: Key = (user, Box::from(nonce));
        if self.map.get(&key).is_some_and(|s| s.seq() == seq) {
            self.map.remove(&key);
        }
    }

    /// Returns how many nonces it remembers at most.
    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: UserId = UserId(1);
    const B: UserId = UserId(2);

    #[test]
    fn a_nonce_is_per_sender_and_follows_its_message() {
        let mut n = Nonces::new(8);
        n.insert(A, "x", 1);
        assert_eq!(n.get(A, "x"), Some(NonceState::Pending(1)));
        assert_eq!(n.get(B, "x"), None, "another sender's nonce is another key");
        let id = Uuid::now_v7();
        n.done(A, "x", 2, id);
        assert_eq!(n.get(A, "x"), Some(NonceState::Pending(1)), "not its seq");
        n.done(A, "x", 1, id);
        assert_eq!(
            n.get(A, "x"),
            Some(NonceState::Done {
                seq: 1,
                message_id: id
            })
        );
        n.insert(B, "y", 2);
        n.forget(B, "y", 2);
        assert_eq!(n.get(B, "y"), None);
    }

    #[test]
    fn the_oldest_nonce_is_forgotten_first() {
        let mut n = Nonces::new(2);
        assert_eq!(n.capacity(), 2);
        n.insert(A, "1", 1);
        n.insert(A, "2", 2);
        // Forgotten and remembered again: its stale place in the order takes room but evicts nothing.
        n.forget(A, "1", 1);
        n.insert(A, "1", 3);
        assert_eq!(n.get(A, "2"), Some(NonceState::Pending(2)));
        n.insert(A, "3", 4);
        assert_eq!(n.get(A, "2"), None, "the oldest one goes");
        assert_eq!(n.get(A, "1"), Some(NonceState::Pending(3)));
        assert_eq!(n.get(A, "3"), Some(NonceState::Pending(4)));
    }
}
