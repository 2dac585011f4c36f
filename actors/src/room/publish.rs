//! Adding to the room: a message, or an event that changes an earlier one.
//!
//! Every SEND is checked (membership, the room still served here, its nonce), then given the next
//! seq, encoded once and appended to the journal; `release` answers it once the journal has it.
//!
//! **Edits and deletes** are items of the room like messages: they take a seq, are journaled in
//! the room's order, RECEIPTed, fanned out (`event: edit` / `event: delete` with a `target-seq`) and
//! stored; the store and the ring apply them to their message. Before one is accepted the room
//! checks its target: a message (not an event) of the room, not deleted (nor being deleted by an
//! append in flight), whose author is the sender — or, for a delete, the sender owns the room. A
//! target in the ring is checked there; an older one is read from the store by a task (never in the
//! handler) that hands the request back as [`RoomMessage::TargetLoaded`]; at most
//! [`MAX_LOOKUPS`] such reads run per room, beyond that the SEND is refused as busy.

use std::sync::Arc;

use ractor::ActorRef;
use uuid::Uuid;

use super::nonces::NonceState;
use super::release::Pending;
use super::{Request, Room, RoomError, RoomMessage, RoomState};
use crate::delivery::Outbound;
use crate::directory::DirectoryMessage;
use crate::model::{ChatMessage, Marks, MessageKind, RoomKind, Seq};
use crate::shard::Term;

/// Store reads of edits' and deletes' targets one room runs at once.
pub(super) const MAX_LOOKUPS: usize = 32;

/// What the room knows of an event's target.
enum Target {
    /// It may be changed.
    Ok,
    /// It may not, for this reason.
    Refused(RoomError),
    /// It is older than the ring: the store knows.
    Unknown,
}

impl Room {
    /// Checks a request and, when it passes, appends it to the journal (see the module doc).
    /// `loaded` is its target as the store holds it, once read.
    pub(super) fn publish(
        myself: &ActorRef<RoomMessage>,
        state: &mut RoomState,
        request: Request,
        loaded: Option<&ChatMessage>,
    ) {
        let user = request.session.user();
        if !state.is_member(user) {
            return request.fail(RoomError::NotMember(state.id));
        }
        let Some(term) = state.term() else {
            return request.fail(RoomError::Moved(state.id));
        };
        if state.kind == RoomKind::Feed
            && request.draft.kind == MessageKind::Post
            && state.feeder != Some(user)
        {
            return request.fail(RoomError::FeedRoom(state.id));
        }
        if let Some(n) = request.nonce.as_deref() {
            match state.nonces.get(user, n) {
                Some(NonceState::Done { seq, message_id }) => {
                    if let Some(receipt_id) = request.receipt {
                        request.session.offer(Outbound::Receipt {
                            receipt_id,
                            seq,
                            message_id,
                        });
                    }
                    return;
                }
                Some(NonceState::Pending(seq)) => {
                    if let Some(waiters) = state.waiters_of(seq) {
                        return waiters.push(request);
                    }
                }
                None => {}
            }
        }
        if let Some(target) = request.draft.kind.target() {
            match state.check_target(&request, target, loaded) {
                Target::Ok => {}
                Target::Refused(e) => return request.fail(e),
                Target::Unknown if state.lookups >= MAX_LOOKUPS => {
                    return request.fail(RoomError::Busy(state.id));
                }
                Target::Unknown => return Self::look_up(myself, state, request, target),
            }
        }
        Self::accept(state, term, request);
    }

    /// Gives a checked request the next seq and appends it to the journal.
    fn accept(state: &mut RoomState, term: Term, request: Request) {
        let Request {
            session,
            receipt,
            trace,
            nonce,
            draft,
        } = request;
        state.next_seq += 1;
        let msg = ChatMessage {
            room_id: state.id,
            seq: state.next_seq,
            message_id: Uuid::now_v7(),
            sender_id: session.user(),
            body: draft.body,
            created_at_ms: state.ports.clock.now_ms(),
            nonce: nonce.clone(),
            attachments: draft.attachments,
            kind: draft.kind,
            content_type: draft.content_type,
            marks: Marks::default(),
        };
        let sender_name = state.name_of(session.user());
        let tail = state.frames.message_tail(&msg, &sender_name);
        let (seq, message_id) = (msg.seq, msg.message_id);
        if let Some(n) = nonce.as_deref() {
            state.nonces.insert(session.user(), n, seq);
        }
        // While the trace is exported, the message's hop through this room is a span of its own
        // (until it is acknowledged), and the journal's hangs under it.
        let span = state.ports.spans.begin("room.publish", &trace);
        let trace = span.as_ref().map_or(trace, |s| s.traceparent());
        state.ports.journal.append(&msg, term, &trace, &state.sink);
        state.pending.push_back(Pending {
            span,
            seq,
            message_id,
            message: Some(msg),
            tail,
            sender: session,
            receipt,
            nonce: nonce.map(String::into_boxed_str),
            waiters: Vec::new(),
            outcome: None,
            settled: false,
        });
    }

    /// Reads an event's target from the store in a task, which hands the request back.
    fn look_up(
        myself: &ActorRef<RoomMessage>,
        state: &mut RoomState,
        request: Request,
        target: Seq,
    ) {
        state.lookups += 1;
        state.tasks_in_flight += 1;
        let (store, room, me) = (state.ports.store.clone(), state.id, myself.clone());
        tokio::spawn(async move {
            let found = store
                .messages_after(room, target - 1, 1)
                .await
                .map(|page| page.into_iter().find(|m| m.seq == target))
                .map_err(|e| e.to_string());
            let request = Box::new(request);
            if let Err(ractor::MessagingErr::SendErr(RoomMessage::TargetLoaded {
                request, ..
            })) = me.cast(RoomMessage::TargetLoaded { request, found })
            {
                // The room stopped meanwhile: its sender hears so rather than wait.
                request.fail(RoomError::Unavailable(room, "the room stopped".into()));
            }
        });
    }

    /// Goes on with a request whose target the store was asked for.
    pub(super) fn on_target_loaded(
        myself: &ActorRef<RoomMessage>,
        state: &mut RoomState,
        request: Request,
        found: Result<Option<ChatMessage>, String>,
    ) {
        state.lookups = state.lookups.saturating_sub(1);
        state.tasks_in_flight = state.tasks_in_flight.saturating_sub(1);
        if state.stopping {
            // The next activation takes it (and reads the target again).
            let _ = state
                .directory
                .cast(DirectoryMessage::Route(state.id, request.into_publish()));
            return;
        }
        let target = request.draft.kind.target().unwrap_or(0);
        match found {
            Ok(Some(message)) => Self::publish(myself, state, request, Some(&message)),
            Ok(None) => request.fail(RoomError::UnknownMessage(state.id, target)),
            Err(e) => request.fail(RoomError::Unavailable(state.id, e)),
        }
    }
}

impl RoomState {
    /// The name members know `user` by ("" for one who left).
    pub(super) fn name_of(&self, user: crate::model::UserId) -> Arc<str> {
        self.members
            .get(&user)
            .cloned()
            .unwrap_or_else(|| Arc::from(""))
    }

    /// Whether an append in flight (pending or of unknown outcome) deletes `target`.
    fn deleting(&self, target: Seq) -> bool {
        let deletes = |m: &ChatMessage| m.kind == MessageKind::Delete(target);
        self.pending
            .iter()
            .filter_map(|p| p.message.as_ref())
            .any(deletes)
            || self.unresolved.values().any(|u| deletes(&u.message))
    }

    /// Checks the target of an edit or a delete (see the module doc).
    fn check_target(&self, request: &Request, target: Seq, loaded: Option<&ChatMessage>) -> Target {
        if target == 0 || target > self.acked_seq {
            return Target::Refused(RoomError::UnknownMessage(self.id, target));
        }
        if self.deleting(target) {
            return Target::Refused(RoomError::MessageDeleted(target));
        }
        let held = self.ring.get(target).or(loaded);
        let Some(message) = held else {
            // Within the ring's range a seq it lacks was never acknowledged.
            return match self.ring.first_seq() {
                Some(first) if target >= first => {
                    Target::Refused(RoomError::UnknownMessage(self.id, target))
                }
                _ => Target::Unknown,
            };
        };
        let user = request.session.user();
        match request.draft.kind {
            _ if message.kind != MessageKind::Post => {
                Target::Refused(RoomError::UnknownMessage(self.id, target))
            }
            _ if message.marks.deleted_at_ms.is_some() => {
                Target::Refused(RoomError::MessageDeleted(target))
            }
            MessageKind::Edit(_) if message.sender_id != user => {
                Target::Refused(RoomError::NotAuthor(target))
            }
            MessageKind::Delete(_) if message.sender_id != user && !self.owners.contains(&user) => {
                Target::Refused(RoomError::NotAllowedToDelete(target))
            }
            _ => Target::Ok,
        }
    }
}
