//! The receiving side of a node's links: what this node's router delivers into.
//!
//! A room on another node sends one [`PeerOutbox::fan_out`](crate::delivery::PeerOutbox) per node;
//! here it reaches every session of this node subscribed to that room ([`Hub::fan_out`]). Items for
//! one session (a RECEIPT, an error, a user event) find it by id ([`Hub::offer`]). Sessions register
//! when they connect and subscribe here when a room of another node accepted them.
//!
//! It is shared by the router and the sessions, so it is a sharded map behind short `std` mutexes,
//! never held across an await; a delivery is a non-blocking push into a session's bounded outbox.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use tracing::debug;

use crate::delivery::{NodeId, Outbound, SessionHandle, SessionId};
use crate::model::{RoomId, Seq, UserId};

const SHARDS: usize = 16;

/// One shard of a sharded map.
type Shard<K, V> = Mutex<HashMap<K, V>>;

/// The sessions of this node subscribed to a room of another node, and that node.
#[derive(Default)]
struct RoomSubs {
    node: NodeId,
    sessions: Vec<SessionHandle>,
}

/// Sessions of this node, by id and by the remote rooms they subscribed to.
pub struct Hub {
    sessions: Box<[Shard<SessionId, SessionHandle>]>,
    rooms: Box<[Shard<RoomId, RoomSubs>]>,
    hasher: std::collections::hash_map::RandomState,
}

impl Default for Hub {
    fn default() -> Self {
        Hub::new()
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

impl Hub {
    /// An empty hub.
    pub fn new() -> Hub {
        Hub {
            sessions: (0..SHARDS).map(|_| Mutex::default()).collect(),
            rooms: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: Default::default(),
        }
    }

    fn shard<'a, K: Hash, V>(&self, shards: &'a [Mutex<V>], key: &K) -> MutexGuard<'a, V> {
        let i = self.hasher.hash_one(key) as usize % shards.len();
        // A poisoned shard only means a panic elsewhere mid-update of plain maps: still usable.
        shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a session of this node, so that items for it find it.
    pub fn register(&self, handle: SessionHandle) {
        self.shard(&self.sessions, &handle.id)
            .insert(handle.id, handle);
    }

    /// Forgets a session that ended (and its remote subscriptions, given the rooms it had).
    pub fn unregister(&self, session: SessionId, rooms: impl IntoIterator<Item = RoomId>) {
        self.shard(&self.sessions, &session).remove(&session);
        for room in rooms {
            self.unsubscribe(room, session);
        }
    }

    /// Queues an item for a session of this node; `false` when it is unknown or cannot take it.
    pub fn offer(&self, session: SessionId, item: Outbound) -> bool {
        let handle = self.shard(&self.sessions, &session).get(&session).cloned();
        handle.is_some_and(|h| h.offer(item))
    }

    /// Records that a session subscribes to a room of `node` (before it asks, so that no event
    /// that follows the room's answer is missed).
    ///
    /// All of a room's sessions here are subscribed on one node, the one recorded: a link that
    /// goes down loses the rooms recorded on it ([`Hub::rooms_on`]), and an unsubscribe goes
    /// there. So when the room moved and a session subscribes on its new node, the sessions still
    /// subscribed on the old one are told their subscription is lost (they subscribe again, by
    /// seq, where it lives now) — else they would stay here, fed only while some other session
    /// draws the new node's fan-outs, and miss what follows without a sign.
    pub fn subscribe(&self, room: RoomId, node: NodeId, handle: SessionHandle) {
        let elsewhere = {
            let mut rooms = self.shard(&self.rooms, &room);
            let subs = rooms.entry(room).or_default();
            let elsewhere = if subs.node == node {
                Vec::new()
            } else {
                std::mem::take(&mut subs.sessions)
            };
            subs.node = node;
            subs.sessions.retain(|h| h.id != handle.id);
            subs.sessions.push(handle.clone());
            elsewhere
        };
        for h in elsewhere.into_iter().filter(|h| h.id != handle.id) {
            debug!(room_id = %room, session = %h.id, %node, "the room moved: an old subscription is lost");
            h.offer(Outbound::SubscriptionLost { room_id: room });
        }
    }

    /// Forgets a session's subscription to a room.
    pub fn unsubscribe(&self, room: RoomId, session: SessionId) {
        let mut rooms = self.shard(&self.rooms, &room);
        if let Some(subs) = rooms.get_mut(&room) {
            subs.sessions.retain(|h| h.id != session);
            if subs.sessions.is_empty() {
                rooms.remove(&room);
            }
        }
    }

    /// Delivers a room event to every session subscribed to it here, except `skip_user`'s; returns
    /// how many got it. A session that cannot take it is told to close (see
    /// [`SessionHandle::offer`]) and forgotten.
    pub fn fan_out(
        &self,
        room: RoomId,
        seq: Option<Seq>,
        tail: &Bytes,
        skip_user: Option<UserId>,
        accepted_at_ms: i64,
    ) -> usize {
        let mut rooms = self.shard(&self.rooms, &room);
        let Some(subs) = rooms.get_mut(&room) else {
            return 0;
        };
        let mut delivered = 0;
        subs.sessions.retain(|h| {
            if skip_user == Some(h.user) {
                return true;
            }
            let ok = h.offer(Outbound::Room {
                room_id: room,
                seq,
                tail: tail.clone(),
                accepted_at_ms,
            });
            delivered += usize::from(ok);
            ok
        });
        if subs.sessions.is_empty() {
            rooms.remove(&room);
        }
        delivered
    }

    /// Ends the subscriptions of `user`'s sessions to `room` (the user left it).
    pub fn drop_user(&self, room: RoomId, user: UserId) {
        let mut rooms = self.shard(&self.rooms, &room);
        if let Some(subs) = rooms.get_mut(&room) {
            subs.sessions.retain(|h| h.user != user);
            if subs.sessions.is_empty() {
                rooms.remove(&room);
            }
        }
    }

    /// Tells every session subscribed to `room` here that the subscription is lost (the room
    /// stopped, or the link to its node went down); they subscribe again by seq.
    pub fn room_lost(&self, room: RoomId) {
        let subs = self.shard(&self.rooms, &room).remove(&room);
        for h in subs.into_iter().flat_map(|s| s.sessions) {
            h.offer(Outbound::SubscriptionLost { room_id: room });
        }
    }

    /// Rooms of `node` with subscribers here (for a link that went down: each is lost).
    pub fn rooms_on(&self, node: NodeId) -> Vec<RoomId> {
        self.rooms
            .iter()
            .flat_map(|s| {
                let map = s.lock().unwrap_or_else(|e| e.into_inner());
                map.iter()
                    .filter(|(_, subs)| subs.node == node)
                    .map(|(room, _)| *room)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The node of `room` as its subscribers here last subscribed, if any does.
    pub fn node_of(&self, room: RoomId) -> Option<NodeId> {
        self.shard(&self.rooms, &room).get(&room).map(|s| s.node)
    }

    /// Sessions registered here.
    pub fn sessions(&self) -> usize {
        self.sessions
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }
}

#[cfg(test)]
mod tests;
