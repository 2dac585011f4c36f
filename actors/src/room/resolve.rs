//! Appends whose outcome is unknown: the journal gave up on them (a delivery timeout, a purged
//! request) without knowing whether they became durable.
//!
//! The sender is told at once (`outcome unknown: …`, resending with the same nonce is safe), and the
//! seq waits in [`RoomState::unresolved`] while later seqs go on being released in order. A task reads
//! the journal for the unresolved seqs (never in a handler) and casts what it found back as
//! [`RoomMessage::Resolved`]:
//! - a seq the journal holds with the same message id is acknowledged late: its nonce is remembered as
//!   durable (a resend gets its RECEIPT), resends that waited get it too, it goes into the ring and is
//!   fanned out to subscribers — *after* higher seqs, as a seq-less room item, so sessions that are past
//!   it deliver it anyway; clients order messages by their `seq` header;
//! - a seq the journal lacks on two reads [`CONFIRM_PAUSE`] apart stays a permanent gap (the room
//!   never assigns it again); its nonce is forgotten and resends that waited for it are published as
//!   new messages. The second read is there because a broker that stalled may still be working
//!   through requests it received before the first read (a frozen process's socket buffers);
//! - a read that fails is retried with backoff; after [`MAX_FAILURES`] in a row the room gives up on
//!   those seqs (their resends hear that the outcome is still unknown; what landed is in history).

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use ractor::ActorRef;
use tracing::{info, warn};
use uuid::Uuid;

use super::{Request, Room, RoomMessage, RoomState, unknown_outcome};
use crate::delivery::Outbound;
use crate::model::{ChatMessage, Seq};
use crate::ports::JournalError;

/// Failed journal reads in a row after which the room stops looking for its unresolved seqs.
const MAX_FAILURES: u32 = 8;
/// Pause before the first retry of a failed read; doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(200);
const MAX_PAUSE: Duration = Duration::from_secs(5);
/// Pause before the read that confirms a seq the journal lacked.
const CONFIRM_PAUSE: Duration = Duration::from_secs(1);

/// An append whose outcome is unknown (see the module doc).
pub(super) struct Unresolved {
    pub(super) message: ChatMessage,
    pub(super) tail: Bytes,
    pub(super) nonce: Option<Box<str>>,
    pub(super) waiters: Vec<Request>,
    /// Journal reads that did not find it so far.
    pub(super) misses: u8,
}

impl RoomState {
    /// Returns the resends waiting on the message of `seq` while it is pending or unresolved.
    pub(super) fn waiters_of(&mut self, seq: Seq) -> Option<&mut Vec<Request>> {
        if let Some(u) = self.unresolved.get_mut(&seq) {
            return Some(&mut u.waiters);
        }
        let front = self.pending.front()?.seq;
        let p = self
            .pending
            .get_mut(usize::try_from(seq.checked_sub(front)?).ok()?)?;
        (p.seq == seq).then_some(&mut p.waiters)
    }
}

impl Room {
    /// Publishes resends whose first message was not stored, as new messages under their nonce.
    pub(super) fn republish(
        myself: &ActorRef<RoomMessage>,
        state: &mut RoomState,
        resends: Vec<Request>,
    ) {
        for r in resends {
            // The first resend is published again; the others find its nonce pending and wait on it.
            Self::publish(myself, state, r, None);
        }
    }

    /// Starts a journal read of the unresolved seqs unless one is under way or none is left.
    pub(super) fn start_resolving(myself: &ActorRef<RoomMessage>, state: &mut RoomState) {
        if state.resolving {
            return;
        }
        let (Some(&from), Some(&to)) = (
            state.unresolved.keys().next(),
            state.unresolved.keys().next_back(),
        ) else {
            return;
        };
        let pause = match state.resolve_failures {
            0 if state.unresolved.values().any(|u| u.misses > 0) => CONFIRM_PAUSE,
            0 => Duration::ZERO,
            n => FIRST_PAUSE
                .saturating_mul(1 << (n - 1).min(16))
                .min(MAX_PAUSE),
        };
        state.resolving = true;
        state.tasks_in_flight += 1;
        let (journal, room, me) = (state.ports.journal.clone(), state.id, myself.clone());
        let limit = u32::try_from(to - from + 1).unwrap_or(u32::MAX);
        tokio::spawn(async move {
            tokio::time::sleep(pause).await;
            let found = journal.read_after(room, from - 1, limit).await.map(|msgs| {
                msgs.into_iter()
                    .filter(|m| m.seq <= to)
                    .map(|m| (m.seq, m.message_id))
                    .collect()
            });
            let _ = me.cast(RoomMessage::Resolved { upto: to, found });
        });
    }

    /// Settles the unresolved seqs up to `upto` with what the journal read found (see the module doc).
    pub(super) fn on_resolved(
        myself: &ActorRef<RoomMessage>,
        state: &mut RoomState,
        upto: Seq,
        found: Result<Vec<(Seq, Uuid)>, JournalError>,
    ) {
        state.tasks_in_flight = state.tasks_in_flight.saturating_sub(1);
        state.resolving = false;
        let seqs: Vec<Seq> = state.unresolved.range(..=upto).map(|(s, _)| *s).collect();
        match found {
            Ok(found) => {
                state.resolve_failures = 0;
                let found: HashMap<Seq, Uuid> = found.into_iter().collect();
                let mut again = Vec::new();
                for seq in seqs {
                    let Some(mut u) = state.unresolved.remove(&seq) else {
                        continue;
                    };
                    if found.get(&seq) == Some(&u.message.message_id) {
                        state.landed(u);
                    } else if u.misses == 0 {
                        u.misses = 1;
                        state.unresolved.insert(seq, u);
                    } else {
                        info!(room_id = %state.id, seq, "message of unknown outcome is not in the journal; its seq stays unused");
                        if let Some(nonce) = &u.nonce {
                            state.nonces.forget(u.message.sender_id, nonce, seq);
                        }
                        again.extend(u.waiters);
                    }
                }
                Self::republish(myself, state, again);
            }
            Err(e) => {
                state.resolve_failures += 1;
                warn!(room_id = %state.id, upto, failures = state.resolve_failures, error = %e, "cannot read the journal for messages of unknown outcome");
                if state.resolve_failures >= MAX_FAILURES {
                    state.resolve_failures = 0;
                    for seq in seqs {
                        let Some(u) = state.unresolved.remove(&seq) else {
                            continue;
                        };
                        if let Some(nonce) = &u.nonce {
                            state.nonces.forget(u.message.sender_id, nonce, seq);
                        }
                        for w in u.waiters {
                            w.session.offer(Outbound::Failed {
                                receipt_id: w.receipt,
                                message: unknown_outcome(u.message.message_id, seq),
                            });
                        }
                    }
                }
            }
        }
        Self::start_resolving(myself, state);
    }
}

impl RoomState {
    /// Acknowledges late a message of unknown outcome that the journal holds.
    fn landed(&mut self, u: Unresolved) {
        if !self.still_serving() {
            // The room stops after this message; its next owner reads the record from the journal.
            return;
        }
        let (seq, message_id) = (u.message.seq, u.message.message_id);
        info!(room_id = %self.id, seq, "message of unknown outcome is in the journal");
        if let Some(nonce) = &u.nonce {
            self.nonces
                .done(u.message.sender_id, nonce, seq, message_id);
        }
        for w in u.waiters {
            if let Some(receipt_id) = w.receipt {
                w.session.offer(Outbound::Receipt {
                    receipt_id,
                    seq,
                    message_id,
                });
            }
        }
        // Without a seq: a session that delivered higher seqs already takes it all the same.
        self.fan_out(None, &u.tail, None, None);
        let sender = self.name_of(u.message.sender_id);
        self.ring.insert(u.message, u.tail, sender);
    }
}
