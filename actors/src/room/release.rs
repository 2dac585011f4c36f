//! Settling appends: what a room keeps of each append in flight ([`Pending`]), and their release
//! in seq order once the journal has settled them (RECEIPTs, fan-out, the ring; failures and
//! unknown outcomes answered as such).

use bytes::Bytes;
use tracing::warn;
use uuid::Uuid;

use super::{Draft, RoomError, RoomMessage, RoomState, Unresolved};
use crate::delivery::{Outbound, SessionRef, Stamp};
use crate::model::{ChatMessage, Seq};
use crate::ports::JournalError;
use crate::trace::{HopSpan, TraceParent};

/// A session's request to add to the room ([`RoomMessage::Publish`]); while it waits — for its
/// target to be read, or as a resend of a nonce whose message is not settled yet — the room keeps it.
pub struct Request {
    pub(super) session: SessionRef,
    pub(super) receipt: Option<String>,
    pub(super) trace: TraceParent,
    pub(super) nonce: Option<String>,
    pub(super) draft: Draft,
}

impl Request {
    /// Answers the sender that the request failed.
    pub(super) fn fail(self, error: RoomError) {
        self.session.offer(Outbound::Failed {
            receipt_id: self.receipt,
            message: error.client_message(),
        });
    }

    /// The request as the message that asked for it.
    pub(super) fn into_publish(self) -> RoomMessage {
        RoomMessage::Publish {
            session: self.session,
            receipt: self.receipt,
            trace: self.trace,
            nonce: self.nonce,
            draft: self.draft,
        }
    }
}

pub(super) struct Pending {
    pub(super) seq: Seq,
    pub(super) message_id: Uuid,
    /// The record, moved into the ring once acknowledged.
    pub(super) message: Option<ChatMessage>,
    pub(super) tail: Bytes,
    pub(super) sender: SessionRef,
    pub(super) receipt: Option<String>,
    /// The client's nonce, remembered in [`RoomState::nonces`].
    pub(super) nonce: Option<Box<str>>,
    /// Resends of the same nonce that arrived meanwhile.
    pub(super) waiters: Vec<Request>,
    pub(super) outcome: Option<Result<(), JournalError>>,
    pub(super) settled: bool,
    /// The message's `room.publish` span, while its trace is exported: it ends when the outcome is
    /// known.
    pub(super) span: Option<Box<dyn HopSpan>>,
}

impl Drop for Pending {
    /// A room that crashes with appends in flight cannot tell whether they became durable: the sender
    /// is told so rather than left waiting.
    fn drop(&mut self) {
        if !self.settled {
            let message = format!(
                "room restarted before message {} was confirmed; check history before resending",
                self.message_id
            );
            for w in self.waiters.drain(..) {
                w.session.offer(Outbound::Failed {
                    receipt_id: w.receipt,
                    message: message.clone(),
                });
            }
            self.sender.offer(Outbound::Failed {
                receipt_id: self.receipt.take(),
                message,
            });
        }
    }
}

impl RoomState {
    /// Releases the settled appends at the front of the queue, in seq order: an acknowledged one is
    /// answered, fanned out and kept in the ring; a failed one is answered; one whose outcome is
    /// unknown is answered so and waits in `unresolved` for a journal read (later seqs are released
    /// meanwhile). Returns the resends to publish anew (their first message was not stored).
    pub(super) fn release(&mut self) -> Vec<Request> {
        let mut again = Vec::new();
        while self.pending.front().is_some_and(|p| p.outcome.is_some()) {
            let Some(mut p) = self.pending.pop_front() else {
                break;
            };
            p.settled = true;
            let mut outcome = p.outcome.take();
            if matches!(outcome, Some(Ok(()))) && !self.still_serving() {
                // Durable in the journal, but a newer owner may have fenced it off: the sender
                // cannot be told either way, and nothing is delivered.
                outcome = Some(Err(JournalError::Unknown(
                    "this node lost the room before acknowledging".into(),
                )));
            }
            match outcome {
                Some(Ok(())) => {
                    ::metrics::counter!(crate::metrics::MESSAGES_ACCEPTED).increment(1);
                    self.acked_seq = p.seq;
                    if let Some(nonce) = &p.nonce {
                        self.nonces
                            .done(p.sender.user(), nonce, p.seq, p.message_id);
                    }
                    let receipts = p.receipt.take().map(|r| (&p.sender, r)).into_iter();
                    let resends = p.waiters.iter_mut().filter_map(|w| {
                        let r = w.receipt.take()?;
                        Some((&w.session, r))
                    });
                    for (session, receipt_id) in receipts.chain(resends) {
                        session.offer(Outbound::Receipt {
                            receipt_id,
                            seq: p.seq,
                            message_id: p.message_id,
                        });
                    }
                    let tail = std::mem::take(&mut p.tail);
                    let trace = p.span.as_ref().map(|s| s.traceparent());
                    let stamp = Stamp {
                        accepted_at_ms: p.message.as_ref().map_or(0, |m| m.created_at_ms),
                        trace: trace.as_ref(),
                    };
                    self.fan_out(Some(p.seq), &tail, None, Some(stamp));
                    if let Some(mut span) = p.span.take() {
                        span.set("room.seq", p.seq as i64);
                        span.set("room.subscribers", self.subscribers.len() as i64);
                        span.end(None);
                    }
                    if let Some(message) = p.message.take() {
                        let sender = self.name_of(message.sender_id);
                        self.ring.push(message, tail, sender);
                    }
                }
                Some(Err(e)) if e.is_unknown() => {
                    warn!(room_id = %self.id, seq = p.seq, error = %e, "message outcome unknown");
                    if let Some(span) = p.span.take() {
                        span.end(Some(&e.to_string()));
                    }
                    crate::metrics::refused("unknown_outcome");
                    p.sender.offer(Outbound::Failed {
                        receipt_id: p.receipt.take(),
                        message: unknown_outcome(p.message_id, p.seq),
                    });
                    if let Some(message) = p.message.take() {
                        self.unresolved.insert(
                            p.seq,
                            Unresolved {
                                message,
                                tail: std::mem::take(&mut p.tail),
                                nonce: p.nonce.take(),
                                waiters: std::mem::take(&mut p.waiters),
                                misses: 0,
                            },
                        );
                    }
                }
                Some(Err(e)) => {
                    warn!(room_id = %self.id, seq = p.seq, error = %e, "message not stored");
                    if let Some(span) = p.span.take() {
                        span.end(Some(&e.to_string()));
                    }
                    crate::metrics::refused("not_stored");
                    if let Some(nonce) = &p.nonce {
                        self.nonces.forget(p.sender.user(), nonce, p.seq);
                    }
                    p.sender.offer(Outbound::Failed {
                        receipt_id: p.receipt.take(),
                        message: format!("message not stored: {e}"),
                    });
                    again.append(&mut p.waiters);
                }
                None => {}
            }
        }
        again
    }
}

/// Returns the text of the ERROR a sender gets when the journal cannot tell whether its message is
/// durable.
pub(super) fn unknown_outcome(message_id: Uuid, seq: Seq) -> String {
    format!(
        "outcome unknown: message {message_id} (seq {seq}) may or may not be stored; \
         resending it with the same nonce is safe"
    )
}
