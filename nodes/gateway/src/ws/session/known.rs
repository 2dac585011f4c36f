//! The rooms a session knows its user is a member of, and what it last passed on to each of them.
//!
//! A room is reached (and so activated) only once the user is known to be a member: the first frame
//! for a room costs one store lookup, later ones none. Typing and read frames are coalesced here,
//! before they cost the room a mailbox entry: a typing event at most once per [`TYPING_INTERVAL`] per
//! room, a read marker only when it rises.

use std::collections::HashMap;
use std::time::Duration;

use banter_actors::model::{RoomId, Seq};
use banter_actors::room::RoomError;
use tokio::time::{Instant, timeout};

use super::{CALL_TIMEOUT, Session};
use crate::ws::frames::{Fatal, fatal};

/// Shortest time between two typing events of one session for one room that reach the room (the room
/// itself fans out at most one a second per user).
pub(super) const TYPING_INTERVAL: Duration = Duration::from_millis(1000);

/// Most rooms remembered; past it the cache starts again empty (each room then costs one more lookup).
const MAX_KNOWN: usize = 4096;

#[derive(Default)]
struct Known {
    /// Highest read marker passed on to the room.
    read: Seq,
    /// When a typing event was last passed on.
    typing: Option<Instant>,
}

/// See the module documentation.
#[derive(Default)]
pub(super) struct KnownRooms(HashMap<RoomId, Known>);

impl KnownRooms {
    /// Tells whether the user is known to be a member of `room`.
    pub(super) fn contains(&self, room: RoomId) -> bool {
        self.0.contains_key(&room)
    }

    /// Remembers that the user is a member of `room`.
    pub(super) fn insert(&mut self, room: RoomId) {
        if self.0.len() >= MAX_KNOWN && !self.0.contains_key(&room) {
            self.0.clear();
        }
        self.0.entry(room).or_default();
    }

    /// Forgets `room` (the room said the user is not a member any more).
    pub(super) fn remove(&mut self, room: RoomId) {
        self.0.remove(&room);
    }

    /// Returns whether a typing event for `room` should be passed on now, and notes it if so.
    pub(super) fn typing_due(&mut self, room: RoomId, now: Instant) -> bool {
        let known = self.0.entry(room).or_default();
        if known
            .typing
            .is_some_and(|t| now.duration_since(t) < TYPING_INTERVAL)
        {
            return false;
        }
        known.typing = Some(now);
        true
    }

    /// Returns whether a read marker at `seq` raises what was passed on for `room`, and notes it if so.
    pub(super) fn read_rises(&mut self, room: RoomId, seq: Seq) -> bool {
        let known = self.0.entry(room).or_default();
        if seq <= known.read {
            return false;
        }
        known.read = seq;
        true
    }
}

impl Session {
    /// Succeeds when the user is a member of `room`: known already (subscribed, or looked up before),
    /// else looked up in the store. A room is never activated for a user who is not a member.
    pub(super) async fn ensure_member(&mut self, room: RoomId) -> Result<(), Fatal> {
        if self.rooms.contains_key(&room) || self.known.contains(room) {
            return Ok(());
        }
        let store = self.state.store();
        let unavailable = || fatal(format!("room {room} is unavailable, try again"));
        match timeout(CALL_TIMEOUT, store.member_role(room, self.user)).await {
            Ok(Ok(Some(_))) => {
                self.known.insert(room);
                Ok(())
            }
            Ok(Ok(None)) => match timeout(CALL_TIMEOUT, store.room(room)).await {
                Ok(Ok(Some(_))) => Err(fatal(RoomError::NotMember(room).to_string())),
                Ok(Ok(None)) => Err(fatal(RoomError::NotFound(room).to_string())),
                _ => Err(unavailable()),
            },
            _ => Err(unavailable()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn typing_passes_once_per_interval() {
        let mut k = KnownRooms::default();
        let room = RoomId(1);
        assert!(k.typing_due(room, Instant::now()));
        assert!(!k.typing_due(room, Instant::now()));
        tokio::time::advance(TYPING_INTERVAL / 2).await;
        assert!(!k.typing_due(room, Instant::now()));
        assert!(k.typing_due(RoomId(2), Instant::now()), "per room");
        tokio::time::advance(TYPING_INTERVAL / 2).await;
        assert!(k.typing_due(room, Instant::now()));
    }

    #[test]
    fn read_markers_pass_only_when_they_rise() {
        let mut k = KnownRooms::default();
        let room = RoomId(1);
        assert!(!k.read_rises(room, 0));
        assert!(k.read_rises(room, 5));
        assert!(!k.read_rises(room, 5));
        assert!(!k.read_rises(room, 3));
        assert!(k.read_rises(room, 6));
    }

    #[test]
    fn the_cache_is_bounded() {
        let mut k = KnownRooms::default();
        for i in 0..(MAX_KNOWN as i64 + 10) {
            k.insert(RoomId(i));
        }
        assert!(k.0.len() <= MAX_KNOWN);
        assert!(k.contains(RoomId(MAX_KNOWN as i64 + 9)));
    }
}
