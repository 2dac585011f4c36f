//! What the node's unit tests seed a store with: one user and a few group rooms it owns.

use banter_actors::model::{NewUser, RoomId, RoomKind, UserId};
use banter_actors::ports::Store;

/// Creates user `alice` and `rooms` group rooms owned by her (named `room 0`, `room 1`, …); returns
/// her id and the rooms' ids.
pub(crate) async fn seed(store: &dyn Store, rooms: usize) -> (UserId, Vec<RoomId>) {
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
