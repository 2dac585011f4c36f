//! Contract case: the longest value each rule accepts is stored and read back whole, so validation
//! and every schema agree on field lengths (a column too short would fail or truncate on MySQL).

use std::sync::Arc;

use banter_actors::model::{NewUser, RoomKind};
use banter_actors::ports::{Rotation, Store};
use banter_actors::rules;

use super::message;

pub(crate) async fn longest_accepted_fields_round_trip(store: Arc<dyn Store>) {
    // Four-byte characters (emoji) where characters are counted, so a byte limit would show too.
    let emoji = |n: usize| "🚀".repeat(n);
    let username =
        rules::validate_username(&format!("u{}", "x".repeat(rules::USERNAME_MAX_CHARS - 1)))
            .expect("longest username is valid");
    let display_name =
        rules::validate_display_name(&emoji(rules::DISPLAY_NAME_MAX_CHARS)).expect("valid");
    let user = store
        .create_user(NewUser {
            username: username.clone(),
            display_name: display_name.clone(),
            password_hash: format!(
                "$argon2id$v=19$m=4294967295,t=4294967295,p=255${}",
                "s".repeat(150)
            ),
            created_at_ms: 1,
        })
        .await
        .expect("longest username and display name are stored");
    assert_eq!(
        store.user_by_username(&username).await.unwrap().as_ref(),
        Some(&user)
    );
    assert_eq!(user.display_name, display_name);

    let name = rules::validate_room_name(&emoji(rules::ROOM_NAME_MAX_CHARS)).expect("valid");
    let room = store
        .create_room(RoomKind::Group, &name, user.id, 1)
        .await
        .expect("longest room name is stored");
    assert_eq!(store.room(room.id).await.unwrap().expect("room").name, name);

    // The largest body `limits.max_body_bytes` may allow, ending in a multi-byte character.
    let ceiling = rules::BODY_MAX_BYTES_CEILING;
    let body = format!("{}{}", "b".repeat(ceiling - 4), emoji(1));
    assert_eq!(body.len(), ceiling);
    rules::validate_body(body.as_bytes(), ceiling).expect("valid");
    let msg = message(room.id, 1, user.id, &body);
    assert_eq!(store.insert_messages(&[msg]).await.unwrap(), 1);
    let stored = store.messages_after(room.id, 0, 1).await.unwrap();
    assert_eq!(stored.first().map(|m| m.body.len()), Some(ceiling));
    assert_eq!(stored[0].body, body);

    // Token ids and chains up to the column's 128 characters (ours are 36-character UUIDs).
    let (jti, family, next) = ("j".repeat(128), "f".repeat(128), "n".repeat(128));
    store
        .put_refresh_token(&jti, user.id, &family, 10)
        .await
        .expect("longest token id is stored");
    let r = store.rotate_refresh_token(&jti, &next, 10, 1).await;
    assert_eq!(r.unwrap(), Rotation::Rotated(user.id));
    assert_eq!(store.revoke_refresh_family(&family, 2).await.unwrap(), 2);
}
