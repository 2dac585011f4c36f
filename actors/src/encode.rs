//! Encoding of the STOMP MESSAGE frames that actors fan out, once per event (see [`crate::delivery`]).
//! Each method returns the frame's tail: everything after the per-subscriber `subscription` line.
//!
//! A room's frames repeat its destination and id: [`RoomFrames`] formats them once per room, and
//! numbers and ids go through stack buffers, so a message's frame costs one allocation (its bytes).

use banter_proto::stomp::encode_message_tail;
use bytes::Bytes;
use uuid::Uuid;

use crate::model::{Attachment, ChatMessage, RoomId, Seq, UserId};

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

    /// Returns the tail of the MESSAGE frame of one of the room's chat messages.
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
            ("event", "message"),
            ("seq", seq.format(msg.seq)),
            ("room-id", &self.room_id),
            ("sender-id", sender.format(msg.sender_id.0)),
            ("sender", sender_name),
            ("timestamp", ts.format(msg.created_at_ms)),
            ("content-type", "text/plain;charset=utf-8"),
        ];
        if msg.attachments.is_empty() {
            return encode_message_tail(&headers, msg.body.as_bytes());
        }
        // Encoded once per message, like the rest of the frame.
        let attachments = Attachment::json(&msg.attachments);
        let mut with = headers.to_vec();
        with.push(("attachments", &attachments));
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
