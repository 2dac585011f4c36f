//! A room's subscribers, wherever they are: each session of this node individually (its outbox and a
//! [`LostGuard`]), and the sessions of every other node as one group per node behind that node's link,
//! so that an event crosses to a node once however many of its sessions subscribed (Discord's
//! Manifold, Phoenix.PubSub).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::delivery::{LostGuard, NodeId, Outbound, PeerOutbox, SessionId, SessionRef, Stamp};
use crate::model::{RoomId, Seq, UserId};

/// The subscribers of one room.
pub(super) struct Subscribers {
    room: RoomId,
    local: HashMap<SessionId, LostGuard>,
    remote: HashMap<NodeId, NodeGroup>,
    /// Sessions in all remote groups.
    remote_sessions: usize,
    /// Most sessions of one user one other node may subscribe (no real node lets a user have more):
    /// what a peer can make the room hold is bounded by the room's members.
    max_per_user: usize,
}

/// Why a subscriber was not added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TooMany;

/// The subscribers of one other node. Dropped armed (the room crashed), it tells that node.
struct NodeGroup {
    room: RoomId,
    peer: Arc<dyn PeerOutbox>,
    sessions: HashMap<SessionId, UserId>,
    /// Sessions per user in `sessions`.
    per_user: HashMap<UserId, usize>,
    armed: bool,
}

impl NodeGroup {
    fn forget(&mut self, user: UserId) {
        if let Some(n) = self.per_user.get_mut(&user) {
            *n -= 1;
            if *n == 0 {
                self.per_user.remove(&user);
            }
        }
    }
}

impl Drop for NodeGroup {
    fn drop(&mut self) {
        if self.armed && !self.sessions.is_empty() {
            self.peer.room_lost(self.room);
        }
    }
}

impl Subscribers {
    /// No subscriber yet; another node may subscribe at most `max_per_user` sessions of a user.
    pub(super) fn new(room: RoomId, max_per_user: usize) -> Subscribers {
        Subscribers {
            room,
            local: HashMap::new(),
            remote: HashMap::new(),
            remote_sessions: 0,
            max_per_user: max_per_user.max(1),
        }
    }

    /// Subscribers in all.
    pub(super) fn len(&self) -> usize {
        self.local.len() + self.remote_sessions
    }

    /// Whether there is none.
    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds (or replaces) a subscriber; refuses another node's session past the per-user bound.
    pub(super) fn insert(&mut self, session: SessionRef) -> Result<(), TooMany> {
        match session {
            SessionRef::Local(h) => {
                if let Some(old) = self.local.insert(h.id, LostGuard::new(h, self.room)) {
                    old.disarm();
                }
            }
            SessionRef::Remote(r) => {
                let room = self.room;
                let group = self.remote.entry(r.id.node).or_insert_with(|| NodeGroup {
                    room,
                    peer: r.peer.clone(),
                    sessions: HashMap::new(),
                    per_user: HashMap::new(),
                    armed: true,
                });
                if group.sessions.get(&r.id) == Some(&r.user) {
                    return Ok(());
                }
                let count = group.per_user.get(&r.user).copied().unwrap_or(0);
                if count >= self.max_per_user {
                    if group.sessions.is_empty()
                        && let Some(mut empty) = self.remote.remove(&r.id.node)
                    {
                        empty.armed = false;
                    }
                    return Err(TooMany);
                }
                *group.per_user.entry(r.user).or_default() += 1;
                // A node that restarted is another incarnation with another id: a group's link is
                // the one its first session came through.
                match group.sessions.insert(r.id, r.user) {
                    None => self.remote_sessions += 1,
                    Some(old_user) => group.forget(old_user),
                }
            }
        }
        Ok(())
    }

    /// Removes a subscriber (an orderly unsubscribe: it is not told).
    pub(super) fn remove(&mut self, id: SessionId) {
        if let Some(g) = self.local.remove(&id) {
            g.disarm();
            return;
        }
        if let Some(group) = self.remote.get_mut(&id.node)
            && let Some(user) = group.sessions.remove(&id)
        {
            group.forget(user);
            self.remote_sessions -= 1;
            if group.sessions.is_empty()
                && let Some(mut group) = self.remote.remove(&id.node)
            {
                group.armed = false;
            }
        }
    }

    /// Ends every subscription of `user` (who left the room).
    pub(super) fn remove_user(&mut self, user: UserId) {
        self.local
            .retain(|_, g| g.session.user != user || disarm(g));
        let mut emptied = Vec::new();
        for (node, group) in &mut self.remote {
            let before = group.sessions.len();
            group.sessions.retain(|_, u| *u != user);
            group.per_user.remove(&user);
            let gone = before - group.sessions.len();
            if gone > 0 {
                self.remote_sessions -= gone;
                group.peer.drop_user(self.room, user);
            }
            if group.sessions.is_empty() {
                emptied.push(*node);
            }
        }
        for node in emptied {
            if let Some(mut group) = self.remote.remove(&node) {
                group.armed = false;
            }
        }
    }

    /// Delivers a room event to every subscriber except `skip_user`'s sessions: to each local
    /// session, and once to each node with a subscriber it concerns. Subscribers that cannot take it
    /// are dropped (a local one is told to close; a node's link is dropped, see [`PeerOutbox`]).
    pub(super) fn fan_out(
        &mut self,
        seq: Option<Seq>,
        tail: &Bytes,
        skip_user: Option<UserId>,
        stamp: Option<Stamp<'_>>,
    ) {
        let room = self.room;
        self.local.retain(|_, guard| {
            if skip_user == Some(guard.session.user) {
                return true;
            }
            guard.session.offer(Outbound::Room {
                room_id: room,
                seq,
                tail: tail.clone(),
                accepted_at_ms: stamp.map_or(0, |s| s.accepted_at_ms),
            })
        });
        let mut lost = Vec::new();
        for (node, group) in &self.remote {
            if skip_user.is_some_and(|u| group.sessions.values().all(|s| *s == u)) {
                continue;
            }
            if !group
                .peer
                .fan_out(room, seq, tail.clone(), skip_user, stamp)
            {
                lost.push(*node);
            }
        }
        for node in lost {
            if let Some(mut group) = self.remote.remove(&node) {
                self.remote_sessions -= group.sessions.len();
                group.armed = false;
            }
        }
    }
}

/// Disarms a guard that is being removed; returns `false` so that `retain` drops it.
fn disarm(guard: &mut LostGuard) -> bool {
    guard.disarm_in_place();
    false
}
