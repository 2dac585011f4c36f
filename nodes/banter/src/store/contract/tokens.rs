//! Contract cases: refresh token ids (single use, expiry, races).

use std::sync::Arc;

use banter_actors::ports::{Store, StoreError};

use super::user;

pub(crate) async fn refresh_token_is_single_use(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    store
        .put_refresh_token("jti-a", alice.id, 10_000)
        .await
        .unwrap();
    store
        .put_refresh_token("jti-b", bob.id, 10_000)
        .await
        .unwrap();
    let again = store.put_refresh_token("jti-a", bob.id, 20_000).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");

    assert_eq!(
        store.take_refresh_token("jti-a", 5_000).await.unwrap(),
        Some(alice.id)
    );
    assert_eq!(
        store.take_refresh_token("jti-a", 5_000).await.unwrap(),
        None,
        "taken once"
    );
    assert_eq!(
        store.take_refresh_token("JTI-B", 5_000).await.unwrap(),
        None,
        "ids are exact"
    );
    assert_eq!(
        store.take_refresh_token("jti-b", 5_000).await.unwrap(),
        Some(bob.id)
    );
    assert_eq!(
        store.take_refresh_token("unknown", 5_000).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .take_refresh_token("' OR '1'='1", 5_000)
            .await
            .unwrap(),
        None
    );
}

pub(crate) async fn refresh_token_expires(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    store
        .put_refresh_token("old", alice.id, 1_000)
        .await
        .unwrap();
    store
        .put_refresh_token("edge", alice.id, 1_000)
        .await
        .unwrap();
    store
        .put_refresh_token("fresh", alice.id, 1_000)
        .await
        .unwrap();
    assert_eq!(
        store.take_refresh_token("old", 2_000).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(
        store.take_refresh_token("old", 500).await.unwrap(),
        None,
        "and gone"
    );
    assert_eq!(
        store.take_refresh_token("edge", 1_000).await.unwrap(),
        None,
        "valid until, not at"
    );
    assert_eq!(
        store.take_refresh_token("fresh", 999).await.unwrap(),
        Some(alice.id)
    );
}

pub(crate) async fn refresh_token_races_have_one_winner(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    for round in 0..5 {
        let jti = format!("raced-{round}");
        store
            .put_refresh_token(&jti, alice.id, i64::MAX)
            .await
            .unwrap();
        let takers: Vec<_> = (0..16)
            .map(|_| {
                let (store, jti) = (store.clone(), jti.clone());
                tokio::spawn(async move { store.take_refresh_token(&jti, 0).await })
            })
            .collect();
        let mut winners = 0;
        for taker in takers {
            if let Some(user) = taker.await.expect("task panicked").expect("take failed") {
                assert_eq!(user, alice.id);
                winners += 1;
            }
        }
        assert_eq!(winners, 1, "round {round}");
    }
}

pub(crate) async fn expired_refresh_tokens_are_purged(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    for (jti, exp) in [("a", 1_000), ("b", 2_000), ("c", 3_000)] {
        store.put_refresh_token(jti, alice.id, exp).await.unwrap();
    }
    assert_eq!(store.purge_refresh_tokens(2_000).await.unwrap(), 2);
    assert_eq!(store.purge_refresh_tokens(2_000).await.unwrap(), 0);
    assert_eq!(
        store.take_refresh_token("c", 2_500).await.unwrap(),
        Some(alice.id),
        "an unexpired token survives the purge"
    );
}
