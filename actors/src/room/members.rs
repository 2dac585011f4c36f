//! What members do besides posting: typing events (fanned out at most once per interval per user,
//! never stored), read markers (coalesced per member, written once at a time and only when they
//! rise, fanned out once stored) and leaving.

use std::sync::Arc;

use ractor::ActorRef;
use tokio::time::Instant;
use tracing::warn;

use super::{Room, RoomError, RoomMessage, RoomState};
use crate::delivery::{Outbound, SessionRef};
use crate::model::{Seq, UserId};

/// One member's read marker: what the store holds, what was asked for, whether a write is under way.
/// At most one write per member is in flight; markers asked for meanwhile coalesce into the next one.
#[derive(Default)]
pub(super) struct ReadMarker {
    pub(super) stored: Seq,
    pub(super) wanted: Seq,
    pub(super) writing: bool,
}

impl Room {
    /// Tells the other members that the session's user is typing, at most once per interval.
    pub(super) fn on_typing(state: &mut RoomState, session: SessionRef) {
        if !state.is_member(session.user()) {
            session.offer(Outbound::Failed {
                receipt_id: None,
                message: RoomError::NotMember(state.id).to_string(),
            });
            return;
        }
        let now = Instant::now();
        let interval = state.config.typing_interval;
        if state
            .typing
            .get(&session.user())
            .is_some_and(|t| now.duration_since(*t) < interval)
        {
            return;
        }
        state.typing.insert(session.user(), now);
        let name = state
            .members
            .get(&session.user())
            .cloned()
            .unwrap_or_else(|| Arc::from(""));
        let tail = state.frames.typing_tail(session.user(), &name);
        state.fan_out(None, &tail, Some(session.user()), None);
    }

    /// Forgets a member who left; their subscriptions end.
    pub(super) fn on_member_left(state: &mut RoomState, user: UserId) {
        state.members.remove(&user);
        state.reads.remove(&user);
        state.typing.remove(&user);
        state.subscribers.remove_user(user);
    }

    /// Raises a member's read marker: a marker that does not rise is ignored; the store is written
    /// once at a time per member (markers asked for meanwhile coalesce), and members are told once it
    /// is stored.
    pub(super) fn mark_read(
        myself: &ActorRef<RoomMessage>,
        state: &mut RoomState,
        session: SessionRef,
        seq: Seq,
    ) {
        if !state.is_member(session.user()) {
            session.offer(Outbound::Failed {
                receipt_id: None,
                message: RoomError::NotMember(state.id).to_string(),
            });
            return;
        }
        let seq = seq.min(state.acked_seq);
        let marker = state.reads.entry(session.user()).or_default();
        if seq <= marker.wanted {
            return;
        }
        marker.wanted = seq;
        Self::write_read(myself, state, session.user());
    }

    /// Starts a store write of `user`'s wanted read marker unless one is under way or it is stored.
    fn write_read(myself: &ActorRef<RoomMessage>, state: &mut RoomState, user: UserId) {
        let Some(marker) = state.reads.get_mut(&user) else {
            return;
        };
        if marker.writing || marker.wanted <= marker.stored {
            return;
        }
        marker.writing = true;
        let (store, room, seq, me) = (
            state.ports.store.clone(),
            state.id,
            marker.wanted,
            myself.clone(),
        );
        state.tasks_in_flight += 1;
        tokio::spawn(async move {
            let stored = match store.mark_read(room, user, seq).await {
                Ok(stored) => Some(stored),
                Err(e) => {
                    warn!(room_id = %room, user_id = %user, error = %e, "read marker not stored");
                    None
                }
            };
            let _ = me.cast(RoomMessage::ReadStored { user, seq: stored });
        });
    }

    pub(super) fn on_read_stored(
        myself: &ActorRef<RoomMessage>,
        state: &mut RoomState,
        user: UserId,
        stored: Option<Seq>,
    ) {
        state.tasks_in_flight = state.tasks_in_flight.saturating_sub(1);
        let Some(marker) = state.reads.get_mut(&user) else {
            return;
        };
        marker.writing = false;
        match stored {
            Some(seq) if seq > marker.stored => {
                marker.stored = seq;
                marker.wanted = marker.wanted.max(seq);
                let tail = state.frames.read_tail(user, seq);
                state.fan_out(None, &tail, None, None);
                // A marker asked for while this one was being written.
                Self::write_read(myself, state, user);
            }
            Some(_) => {}
            // Forget what failed, so that the member's next marker tries again.
            None => marker.wanted = marker.stored,
        }
    }
}
