//! Encoding of the STOMP MESSAGE frames that actors fan out, once per event (see [`crate::delivery`]).
//! Each function returns the frame's tail: everything after the per-subscriber `subscription` line.

use banter_proto::stomp::encode_message_tail;
use bytes::Bytes;
use uuid::Uuid;

use crate::model::{ChatMessage, RoomId, Seq, UserId};

/// Destination of a room's subscription.
pub fn room_destination(room: RoomId) -> String {
    format!("/rooms/{room}")
}

/// Destination of a user's own event queue.
pub const USER_QUEUE: &str = "/user/queue/events";

/// Returns the tail of the MESSAGE frame of a chat message.
pub fn message_tail(msg: &ChatMessage, sender_name: &str) -> Bytes {
    let dest = room_destination(msg.room_id);
    let id = msg.message_id.to_string();
    let seq = msg.seq.to_string();
    let room = msg.room_id.to_string();
    let sender = msg.sender_id.to_string();
    let ts = msg.created_at_ms.to_string();
    encode_message_tail(
        &[
            ("destination", &dest),
            ("message-id", &id),
            ("event", "message"),
            ("seq", &seq),
            ("room-id", &room),
            ("sender-id", &sender),
            ("sender", sender_name),
            ("timestamp", &ts),
            ("content-type", "text/plain;charset=utf-8"),
        ],
        msg.body.as_bytes(),
    )
}

/// Returns the tail of a typing event.
pub fn typing_tail(room: RoomId, user: UserId, username: &str) -> Bytes {
    let dest = room_destination(room);
    let id = Uuid::now_v7().to_string();
    let (room, user) = (room.to_string(), user.to_string());
    encode_message_tail(
        &[
            ("destination", &dest),
            ("message-id", &id),
            ("event", "typing"),
            ("room-id", &room),
            ("user-id", &user),
            ("username", username),
        ],
        b"",
    )
}

/// Returns the tail of a read-marker event.
pub fn read_tail(room: RoomId, user: UserId, seq: Seq) -> Bytes {
    let dest = room_destination(room);
    let id = Uuid::now_v7().to_string();
    let (room, user, seq) = (room.to_string(), user.to_string(), seq.to_string());
    encode_message_tail(
        &[
            ("destination", &dest),
            ("message-id", &id),
            ("event", "read"),
            ("room-id", &room),
            ("user-id", &user),
            ("seq", &seq),
        ],
        b"",
    )
}

/// Returns the tail of an event on the user's own queue; `body` is JSON.
pub fn user_event_tail(event: &str, body: &[u8]) -> Bytes {
    let id = Uuid::now_v7().to_string();
    encode_message_tail(
        &[
            ("destination", USER_QUEUE),
            ("message-id", &id),
            ("event", event),
            ("content-type", "application/json"),
        ],
        body,
    )
}
