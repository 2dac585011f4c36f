//! Contract cases: users (registration, lookup, search, profile).

use std::sync::Arc;

use banter_actors::model::{NewUser, UserId};
use banter_actors::ports::{Store, StoreError};
use uuid::Uuid;

use super::user;

pub(crate) async fn create_and_get_user(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    assert!(alice.id.0 > 0);
    assert_eq!(alice.username, "alice");
    assert_eq!(alice.display_name, "alice display");
    assert_eq!(alice.avatar_ref, None);
    assert_eq!(alice.created_at_ms, 1_700_000_000_000);
    let bob = user(&store, "bob").await;
    assert_ne!(alice.id, bob.id);

    assert_eq!(
        store.user_by_id(alice.id).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        store.user_by_username("alice").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(store.user_by_username("ALICE").await.unwrap(), Some(alice));
    assert_eq!(store.user_by_id(UserId(i64::MAX)).await.unwrap(), None);
    assert_eq!(store.user_by_username("nobody").await.unwrap(), None);
}

pub(crate) async fn username_uniqueness_ignores_case(store: Arc<dyn Store>) {
    let bob = user(&store, "Bob").await;
    assert_eq!(bob.username, "bob", "usernames are stored lowercase");
    for taken in ["bob", "BOB", "bOb"] {
        let err = store
            .create_user(NewUser {
                username: taken.to_owned(),
                display_name: "someone else".to_owned(),
                password_hash: "x".to_owned(),
                created_at_ms: 1,
            })
            .await
            .expect_err("a username differing only in case is taken");
        assert!(matches!(err, StoreError::Conflict(_)), "{taken}: {err:?}");
    }
    assert_eq!(store.search_users("", 10).await.unwrap().len(), 1);
}

pub(crate) async fn sql_metacharacters_are_plain_data(store: Arc<dyn Store>) {
    let name = "'; drop table users; --";
    let evil = store
        .create_user(NewUser {
            username: name.to_owned(),
            display_name: "\"; DELETE FROM rooms; -- \\' %_".to_owned(),
            password_hash: "' OR '1'='1".to_owned(),
            created_at_ms: 5,
        })
        .await
        .unwrap();
    assert_eq!(evil.username, name);
    let found = store.user_by_username(name).await.unwrap().expect("stored");
    assert_eq!(found, evil);
    assert_eq!(found.display_name, "\"; DELETE FROM rooms; -- \\' %_");
    assert_eq!(found.password_hash, "' OR '1'='1");
    assert_eq!(store.user_by_username("' or '1'='1").await.unwrap(), None);
    let other = user(&store, "carol").await;
    assert_eq!(store.search_users("'", 10).await.unwrap(), vec![evil]);
    assert_eq!(store.user_by_id(other.id).await.unwrap(), Some(other));
}

pub(crate) async fn search_users_matches_the_prefix_literally(store: Arc<dyn Store>) {
    for name in ["a%b", "a_c", "abc", "a\\d", "a!e", "axe", "b%"] {
        user(&store, name).await;
    }
    let names = |users: Vec<banter_actors::model::User>| {
        users.into_iter().map(|u| u.username).collect::<Vec<_>>()
    };
    let search = |prefix: &'static str, limit| {
        let store = store.clone();
        async move { names(store.search_users(prefix, limit).await.unwrap()) }
    };
    assert_eq!(search("a%", 10).await, ["a%b"]);
    assert_eq!(search("a_", 10).await, ["a_c"]);
    assert_eq!(search("a\\", 10).await, ["a\\d"]);
    assert_eq!(search("a!", 10).await, ["a!e"]);
    assert_eq!(search("%", 10).await, Vec::<String>::new());
    assert_eq!(search("_", 10).await, Vec::<String>::new());
    assert_eq!(search("zz", 10).await, Vec::<String>::new());
    let all_a = search("a", 10).await;
    assert_eq!(all_a.len(), 6);
    let mut sorted = all_a.clone();
    sorted.sort();
    assert_eq!(all_a, sorted, "ordered by username");
    assert_eq!(search("A", 10).await, all_a, "the prefix ignores case");
    assert_eq!(search("a", 2).await, all_a[..2]);
    assert_eq!(search("", 100).await.len(), 7);
    assert_eq!(search("", 0).await.len(), 0);
}

pub(crate) async fn update_profile_sets_and_clears(store: Arc<dyn Store>) {
    let dave = user(&store, "dave").await;
    let avatar = Uuid::now_v7();
    store.set_avatar(dave.id, Some(avatar)).await.unwrap();
    let updated = store
        .update_profile(dave.id, "Dave 🚀 O'Brien")
        .await
        .unwrap();
    assert_eq!(updated.display_name, "Dave 🚀 O'Brien");
    assert_eq!(
        updated.avatar_ref,
        Some(avatar.to_string()),
        "the avatar is not the profile's to change"
    );
    assert_eq!(updated.username, dave.username);
    assert_eq!(updated.password_hash, dave.password_hash);
    assert_eq!(store.user_by_id(dave.id).await.unwrap(), Some(updated));

    assert_eq!(
        store.set_avatar(dave.id, None).await.unwrap(),
        Some(avatar),
        "the former avatar"
    );
    let cleared = store.update_profile(dave.id, "Dave").await.unwrap();
    assert_eq!(cleared.avatar_ref, None);
    assert_eq!(cleared.display_name, "Dave");
    assert_eq!(store.set_avatar(dave.id, None).await.unwrap(), None);
    assert!(matches!(
        store.set_avatar(UserId(i64::MAX), None).await,
        Err(StoreError::NotFound)
    ));

    let missing = store.update_profile(UserId(i64::MAX), "x").await;
    assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
}
