//! Encoding of the STOMP MESSAGE frames that actors fan out, once per event (see [`crate::delivery`]).
//! Each method returns the frame's tail: everything after the per-subscriber `subscription` line.
//!
//! A room's frames repeat its destination and id: [`RoomFrames`] formats them once per room, and
//! numbers and ids go through stack buffers, so a message's frame costs one allocation (its bytes).

use banter_proto::stomp::encode_message_tail;
use bytes::Bytes;
use uuid::Uuid;

use crate::model::{Attachment, ChatMessage, MessageKind, RoomId, Seq, UserId};

/// Content type of a plain text body.
const PLAIN_TEXT: &str = "text/plain;charset=utf-8";

/// Destination of a room's subscription.
pub fn room_destination(room: RoomId) -> String {
    format!("/rooms/{room}")
}

/// Destination of a user's own event queue.
pub const USER_QUEUE: &str = "/user/queue/events";

/// The frames of one room's events.
#[derive(Clone, Debug)]
pub struct RoomFrames {
    room: RoomId,
    destination: String,
    room_id: String,
}

impl RoomFrames {
    /// Encoder for `room`'s events.
    pub fn new(room: RoomId) -> RoomFrames {
        RoomFrames {
            room,
            destination: room_destination(room),
            room_id: room.to_string(),
        }
    }

    /// Returns the tail of the MESSAGE frame of one of the room's items: a message (`event:
    /// message`, with `edited-at` or `deleted-at` when a later event changed it) or an event that
    /// changes one (`event: edit` with the new body, `event: delete`; `target-seq` names the message).
    pub fn message_tail(&self, msg: &ChatMessage, sender_name: &str) -> Bytes {
        debug_assert_eq!(msg.room_id, self.room, "a message of another room");
        let (mut seq, mut sender, mut ts) = (
            itoa::Buffer::new(),
            itoa::Buffer::new(),
            itoa::Buffer::new(),
        );
        let mut id = Uuid::encode_buffer();
        let headers = [
            ("destination", self.destination.as_str()),
            (
                "message-id",
                msg.message_id.hyphenated().encode_lower(&mut id),
            ),
            ("event", msg.kind.event()),
            ("seq", seq.format(msg.seq)),
            ("room-id", &self.room_id),
            ("sender-id", sender.format(msg.sender_id.0)),
            ("sender", sender_name),
            ("timestamp", ts.format(msg.created_at_ms)),
            (
                "content-type",
                msg.content_type.as_deref().unwrap_or(PLAIN_TEXT),
            ),
        ];
        let plain = msg.attachments.is_empty()
            && msg.kind == MessageKind::Post
            && msg.marks == crate::model::Marks::default();
        if plain {
            return encode_message_tail(&headers, msg.body.as_bytes());
        }
        // Encoded once per message, like the rest of the frame.
        let (mut target, mut edited, mut deleted) = (
            itoa::Buffer::new(),
            itoa::Buffer::new(),
            itoa::Buffer::new(),
        );
        let attachments = (!msg.attachments.is_empty()).then(|| Attachment::json(&msg.attachments));
        let mut with = headers.to_vec();
        if let Some(t) = msg.kind.target() {
            with.push(("target-seq", target.format(t)));
        }
        if let Some(at) = msg.marks.edited_at_ms {
            with.push(("edited-at", edited.format(at)));
        }
        if let Some(at) = msg.marks.deleted_at_ms {
            with.push(("deleted-at", deleted.format(at)));
        }
        if let Some(json) = &attachments {
            with.push(("attachments", json));
        }
        encode_message_tail(&with, msg.body.as_bytes())
    }

    /// Returns the tail of a typing event.
    pub fn typing_tail(&self, user: UserId, username: &str) -> Bytes {
        let (mut id, mut user_id) = (Uuid::encode_buffer(), itoa::Buffer::new());
        encode_message_tail(
            &[
                ("destination", &self.destination),
                (
                    "message-id",
                    Uuid::now_v7().hyphenated().encode_lower(&mut id),
                ),
                ("event", "typing"),
                ("room-id", &self.room_id),
                ("user-id", user_id.format(user.0)),
                ("username", username),
            ],
            b"",
        )
    }

    /// Returns the tail of a read-marker event.
    pub fn read_tail(&self, user: UserId, seq: Seq) -> Bytes {
        let (mut id, mut user_id, mut seq_buf) = (
            Uuid::encode_buffer(),
            itoa::Buffer::new(),
            itoa::Buffer::new(),
        );
        encode_message_tail(
            &[
                ("destination", &self.destination),
                (
                    "message-id",
                    Uuid::now_v7().hyphenated().encode_lower(&mut id),
                ),
                ("event", "read"),
                ("room-id", &self.room_id),
                ("user-id", user_id.format(user.0)),
                ("seq", seq_buf.format(seq)),
            ],
            b"",
        )
    }
}

/// Returns the tail of an event on the user's own queue; `body` is JSON.
pub fn user_event_tail(event: &str, body: &[u8]) -> Bytes {
    let mut id = Uuid::encode_buffer();
    encode_message_tail(
        &[
            ("destination", USER_QUEUE),
            (
                "message-id",
                Uuid::now_v7().hyphenated().encode_lower(&mut id),
            ),
            ("event", event),
            ("content-type", "application/json"),
        ],
        body,
    )
}

#[cfg(test)]
mod tests {
    use banter_proto::stomp::{Limits, Parsed, parse_frame, write_message_with_tail};
    use bytes::BytesMut;

    use super::*;

    fn headers(tail: &Bytes) -> Vec<(String, String)> {
        let mut frame = BytesMut::new();
        write_message_with_tail("s0", tail, &mut frame);
        match parse_frame(&frame, &Limits::default()) {
            Ok(Parsed::Frame(f, _)) => f.headers,
            other => panic!("not a frame: {other:?}"),
        }
    }

    fn get<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    #[test]
    fn a_message_frame_names_its_room_message_and_sender() {
        let frames = RoomFrames::new(RoomId(12));
        let msg = ChatMessage {
            room_id: RoomId(12),
            seq: 18_446_744_073_709_551_615,
            message_id: Uuid::now_v7(),
            sender_id: UserId(-7),
            body: "hi: there".into(),
            created_at_ms: 1_700_000_000_123,
            nonce: None,
            attachments: Vec::new(),
            ..Default::default()
        };
        let h = headers(&frames.message_tail(&msg, "bob:x"));
        assert_eq!(get(&h, "destination"), "/rooms/12");
        assert_eq!(get(&h, "message-id"), msg.message_id.to_string());
        assert_eq!(get(&h, "seq"), "18446744073709551615");
        assert_eq!(get(&h, "room-id"), "12");
        assert_eq!(get(&h, "sender-id"), "-7");
        assert_eq!(get(&h, "sender"), "bob:x");
        assert_eq!(get(&h, "timestamp"), "1700000000123");
        assert_eq!(get(&h, "content-length"), "9");
    }

    #[test]
    fn events_name_their_target_and_messages_their_marks() {
        let frames = RoomFrames::new(RoomId(2));
        let mut msg = ChatMessage {
            room_id: RoomId(2),
            seq: 9,
            message_id: Uuid::now_v7(),
            sender_id: UserId(1),
            body: "new text".into(),
            kind: MessageKind::Edit(4),
            ..Default::default()
        };
        let h = headers(&frames.message_tail(&msg, "ann"));
        assert_eq!(
            (get(&h, "event"), get(&h, "target-seq"), get(&h, "seq")),
            ("edit", "4", "9")
        );
        assert_eq!(get(&h, "content-type"), "text/plain;charset=utf-8");
        msg.kind = MessageKind::Delete(4);
        msg.body.clear();
        let h = headers(&frames.message_tail(&msg, "ann"));
        assert_eq!((get(&h, "event"), get(&h, "target-seq")), ("delete", "4"));
        // A message a later event changed says so; a plain one names no target and no mark.
        msg.kind = MessageKind::Post;
        msg.marks.edited_at_ms = Some(5);
        msg.marks.deleted_at_ms = Some(6);
        msg.content_type = Some("application/geo+json".into());
        let h = headers(&frames.message_tail(&msg, "ann"));
        assert_eq!(
            (
                get(&h, "event"),
                get(&h, "edited-at"),
                get(&h, "deleted-at")
            ),
            ("message", "5", "6")
        );
        assert_eq!(get(&h, "content-type"), "application/geo+json");
        assert!(h.iter().all(|(n, _)| n != "target-seq"));
    }

    #[test]
    fn typing_and_read_frames_name_the_user() {
        let frames = RoomFrames::new(RoomId(3));
        let h = headers(&frames.typing_tail(UserId(5), "eve"));
        assert_eq!(
            (get(&h, "event"), get(&h, "user-id"), get(&h, "username")),
            ("typing", "5", "eve")
        );
        let h = headers(&frames.read_tail(UserId(5), 77));
        assert_eq!(
            (get(&h, "event"), get(&h, "room-id"), get(&h, "seq")),
            ("read", "3", "77")
        );
        assert!(Uuid::parse_str(get(&h, "message-id")).is_ok());
    }
}
