//! What the node's unit tests seed a store with: one user and a few group rooms it owns, and the
//! messages they write.

use banter_actors::model::{ChatMessage, NewUser, RoomId, RoomKind, Seq, UserId};
use banter_actors::ports::Store;
use uuid::Uuid;

/// Creates user `alice` and `rooms` group rooms owned by her (named `room 0`, `room 1`, …); returns
/// her id and the rooms' ids.
pub async fn seed(store: &dyn Store, rooms: usize) -> (UserId, Vec<RoomId>) {
    let user = store
        .create_user(NewUser {
            username: "alice".into(),
            display_name: "Alice".into(),
            password_hash: "x".into(),
            created_at_ms: 0,
        })
        .await
        .expect("user")
        .id;
    let mut ids = Vec::with_capacity(rooms);
    for i in 0..rooms {
        let name = format!("room {i}");
        let room = store.create_room(RoomKind::Group, &name, user, 0).await;
        ids.push(room.expect("room").id);
    }
    (user, ids)
}

/// Message `seq` of `room` from `sender`, with a fresh id and a body naming both.
pub fn message(room: RoomId, seq: Seq, sender: UserId) -> ChatMessage {
    ChatMessage {
        room_id: room,
        seq,
        message_id: Uuid::now_v7(),
        sender_id: sender,
        body: format!("message {seq} of room {room}"),
        created_at_ms: 1_700_000_000_000 + seq as i64,
        nonce: None,
        attachments: Vec::new(),
        ..Default::default()
    }
}
