//! The actors' messages as they cross nodes: conversions between [`Outbound`], [`SubscribeOk`],
//! [`RoomError`] and session addresses and their `banter.v1` envelope parts.
//!
//! Decoding trusts nothing: a field that does not fit (a message id that is not 16 bytes, a backfill
//! range upside down, an unknown refusal code, a missing oneof) is a [`WireError`], which the router
//! counts and drops; never a panic.

use banter_proto::v1;
use bytes::Bytes;

use crate::delivery::{NodeId, Outbound, SessionId};
use crate::model::ChatMessage;
use crate::model::{RoomId, UserId};
use crate::room::{Recent, RoomError, SubscribeOk, Window};

/// Why an envelope part does not make an actors' message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A required field or oneof is absent.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A field has a value it cannot have.
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// Codes of [`RoomError`] on the wire (stable).
const NOT_MEMBER: &str = "not_member";
const NOT_FOUND: &str = "not_found";
const UNAVAILABLE: &str = "unavailable";
const MOVED: &str = "moved";

impl From<Outbound> for v1::to_session::Item {
    fn from(item: Outbound) -> Self {
        use v1::to_session::Item;
        match item {
            Outbound::Room {
                room_id,
                seq,
                tail,
                accepted_at_ms,
            } => Item::RoomEvent(v1::RoomEvent {
                room_id: room_id.0,
                seq,
                tail,
                accepted_at_ms,
            }),
            Outbound::User { tail } => Item::UserEvent(v1::UserEvent { tail }),
            Outbound::Receipt {
                receipt_id,
                seq,
                message_id,
            } => Item::Receipt(v1::Receipt {
                receipt_id,
                seq,
                message_id: Bytes::copy_from_slice(message_id.as_bytes()),
            }),
            Outbound::Failed {
                receipt_id,
                message,
            } => Item::Failed(v1::Failed {
                receipt_id,
                message,
            }),
            Outbound::SubscriptionLost { room_id } => {
                Item::SubscriptionLost(v1::SubscriptionLost { room_id: room_id.0 })
            }
        }
    }
}

impl TryFrom<v1::to_session::Item> for Outbound {
    type Error = WireError;

    fn try_from(item: v1::to_session::Item) -> Result<Self, WireError> {
        use v1::to_session::Item;
        Ok(match item {
            Item::RoomEvent(e) => Outbound::Room {
                room_id: RoomId(e.room_id),
                seq: e.seq,
                tail: e.tail,
                accepted_at_ms: e.accepted_at_ms,
            },
            Item::UserEvent(e) => Outbound::User { tail: e.tail },
            Item::Receipt(r) => Outbound::Receipt {
                receipt_id: r.receipt_id,
                seq: r.seq,
                message_id: uuid::Uuid::from_slice(&r.message_id)
                    .map_err(|_| WireError::Invalid("receipt message id"))?,
            },
            Item::Failed(f) => Outbound::Failed {
                receipt_id: f.receipt_id,
                message: f.message,
            },
            Item::SubscriptionLost(l) => Outbound::SubscriptionLost {
                room_id: RoomId(l.room_id),
            },
        })
    }
}

impl From<SubscribeOk> for v1::SubscribeOk {
    fn from(ok: SubscribeOk) -> Self {
        v1::SubscribeOk {
            backfill: ok
                .backfill
                .map(|(first, last)| v1::SeqRange { first, last }),
            replay: ok
                .replay
                .into_iter()
                .map(|(seq, tail)| v1::ReplayItem { seq, tail })
                .collect(),
            last_seq: ok.last_seq,
        }
    }
}

impl TryFrom<v1::SubscribeOk> for SubscribeOk {
    type Error = WireError;

    fn try_from(ok: v1::SubscribeOk) -> Result<Self, WireError> {
        let backfill = match ok.backfill {
            Some(r) if r.first > r.last || r.last > ok.last_seq => {
                return Err(WireError::Invalid("backfill range"));
            }
            Some(r) => Some((r.first, r.last)),
            None => None,
        };
        let replay: Vec<_> = ok.replay.into_iter().map(|r| (r.seq, r.tail)).collect();
        let in_order = replay.windows(2).all(|w| w[0].0 < w[1].0);
        if !in_order || replay.last().is_some_and(|(seq, _)| *seq > ok.last_seq) {
            return Err(WireError::Invalid("replay seqs"));
        }
        Ok(SubscribeOk {
            backfill,
            replay,
            last_seq: ok.last_seq,
        })
    }
}

impl From<Recent> for v1::Recent {
    fn from(r: Recent) -> Self {
        v1::Recent {
            acked_seq: r.acked_seq,
            window: r.window.map(|w| v1::Window {
                from: w.from,
                messages: w.messages.iter().map(ChatMessage::to_proto).collect(),
            }),
        }
    }
}

impl TryFrom<v1::Recent> for Recent {
    type Error = WireError;

    fn try_from(r: v1::Recent) -> Result<Self, WireError> {
        let window = match r.window {
            None => None,
            Some(w) => {
                let messages = w
                    .messages
                    .into_iter()
                    .map(ChatMessage::from_proto)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| WireError::Invalid("message id"))?;
                let newest_first = messages.windows(2).all(|p| p[0].seq > p[1].seq);
                let in_range = messages
                    .iter()
                    .all(|m| m.seq > w.from && m.seq <= r.acked_seq);
                if !newest_first || !in_range {
                    return Err(WireError::Invalid("window seqs"));
                }
                Some(Window {
                    from: w.from,
                    messages,
                })
            }
        };
        Ok(Recent {
            acked_seq: r.acked_seq,
            window,
        })
    }
}

/// A room's refusal on the wire.
pub fn refusal(e: &RoomError) -> v1::RoomRefusal {
    let code = e.code();
    let message = match e {
        RoomError::Unavailable(_, why) => why.clone(),
        other => other.to_string(),
    };
    v1::RoomRefusal {
        code: code.to_owned(),
        message,
    }
}

/// The [`RoomError`] a refusal of `room` stands for.
pub fn room_error(room: RoomId, r: v1::RoomRefusal) -> Result<RoomError, WireError> {
    match r.code.as_str() {
        NOT_MEMBER => Ok(RoomError::NotMember(room)),
        NOT_FOUND => Ok(RoomError::NotFound(room)),
        UNAVAILABLE => Ok(RoomError::Unavailable(room, r.message)),
        MOVED => Ok(RoomError::Moved(room)),
        _ => Err(WireError::Invalid("refusal code")),
    }
}

/// A session's address on the wire.
pub fn session_addr(id: SessionId, user: UserId) -> v1::SessionAddr {
    v1::SessionAddr {
        node: id.node.0,
        session: id.local,
        user_id: user.0,
    }
}

/// The session and user an address names.
pub fn from_session_addr(a: Option<v1::SessionAddr>) -> Result<(SessionId, UserId), WireError> {
    let a = a.ok_or(WireError::Missing("session"))?;
    Ok((SessionId::new(NodeId(a.node), a.session), UserId(a.user_id)))
}

#[cfg(test)]
mod tests;
