//! Contract cases: refresh tokens (chains, rotation, replay, logout, expiry, races, atomicity).

use std::sync::Arc;

use banter_actors::ports::{Rotation, Store, StoreError};

use super::user;

pub(crate) async fn refresh_token_rotates_once(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    store
        .put_refresh_token("jti-a", alice.id, "chain-a", 10_000)
        .await
        .unwrap();
    store
        .put_refresh_token("jti-b", bob.id, "chain-b", 10_000)
        .await
        .unwrap();
    let again = store
        .put_refresh_token("jti-a", bob.id, "chain-x", 20_000)
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");

    let rotate = |jti: &'static str, new: &'static str| {
        let store = store.clone();
        async move {
            store
                .rotate_refresh_token(jti, new, 10_000, 5_000)
                .await
                .unwrap()
        }
    };
    assert_eq!(rotate("jti-a", "jti-a2").await, Rotation::Rotated(alice.id));
    assert_eq!(
        rotate("JTI-B", "jti-b2").await,
        Rotation::Refused,
        "ids are exact"
    );
    assert_eq!(rotate("jti-b", "jti-b2").await, Rotation::Rotated(bob.id));
    assert_eq!(
        rotate("jti-a2", "jti-a3").await,
        Rotation::Rotated(alice.id)
    );
    assert_eq!(rotate("unknown", "x1").await, Rotation::Refused);
    assert_eq!(rotate("' OR '1'='1", "x2").await, Rotation::Refused);
}

pub(crate) async fn reused_refresh_token_revokes_its_chain(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    store
        .put_refresh_token("a1", alice.id, "phone", 10_000)
        .await
        .unwrap();
    store
        .put_refresh_token("b1", alice.id, "laptop", 10_000)
        .await
        .unwrap();
    for (old, new) in [("a1", "a2"), ("a2", "a3")] {
        let r = store.rotate_refresh_token(old, new, 10_000, 100).await;
        assert_eq!(r.unwrap(), Rotation::Rotated(alice.id));
    }
    // A thief replays a1: the chain goes, the newest token (the victim's) included.
    let replay = store.rotate_refresh_token("a1", "t1", 10_000, 200).await;
    assert_eq!(replay.unwrap(), Rotation::Reused(alice.id));
    for (jti, new) in [("a3", "v1"), ("a2", "t2"), ("a1", "t3"), ("t1", "t4")] {
        let r = store.rotate_refresh_token(jti, new, 10_000, 300).await;
        assert_eq!(r.unwrap(), Rotation::Refused, "{jti} after the replay");
    }
    // Alice's other session is another chain, untouched.
    let other = store.rotate_refresh_token("b1", "b2", 10_000, 300).await;
    assert_eq!(other.unwrap(), Rotation::Rotated(alice.id));
}

pub(crate) async fn revoking_a_chain_logs_it_out(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    store
        .put_refresh_token("a1", alice.id, "phone", 10_000)
        .await
        .unwrap();
    store
        .put_refresh_token("b1", alice.id, "laptop", 10_000)
        .await
        .unwrap();
    let r = store.rotate_refresh_token("a1", "a2", 10_000, 100).await;
    assert_eq!(r.unwrap(), Rotation::Rotated(alice.id));
    assert_eq!(store.revoke_refresh_family("phone", 200).await.unwrap(), 2);
    assert_eq!(
        store.revoke_refresh_family("phone", 300).await.unwrap(),
        0,
        "idempotent"
    );
    assert_eq!(store.revoke_refresh_family("nobody", 300).await.unwrap(), 0);
    for jti in ["a1", "a2"] {
        let r = store.rotate_refresh_token(jti, "x", 10_000, 300).await;
        assert_eq!(r.unwrap(), Rotation::Refused, "{jti}");
    }
    let r = store.rotate_refresh_token("b1", "b2", 10_000, 300).await;
    assert_eq!(r.unwrap(), Rotation::Rotated(alice.id), "another chain");
}

pub(crate) async fn failed_rotation_changes_nothing(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let bob = user(&store, "bob").await;
    store
        .put_refresh_token("old", alice.id, "chain", 10_000)
        .await
        .unwrap();
    store
        .put_refresh_token("taken", bob.id, "bobs", 10_000)
        .await
        .unwrap();
    // The new token's insert fails after the old one was marked used: both must be undone.
    let failed = store
        .rotate_refresh_token("old", "taken", 10_000, 100)
        .await;
    assert!(matches!(failed, Err(StoreError::Conflict(_))), "{failed:?}");
    let r = store.rotate_refresh_token("old", "new", 10_000, 200).await;
    assert_eq!(
        r.unwrap(),
        Rotation::Rotated(alice.id),
        "the old token is still valid, not taken for a replay"
    );
    let r = store
        .rotate_refresh_token("taken", "bob2", 10_000, 200)
        .await;
    assert_eq!(
        r.unwrap(),
        Rotation::Rotated(bob.id),
        "bob's token untouched"
    );
}

pub(crate) async fn refresh_token_expires(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    for jti in ["old", "edge", "fresh"] {
        store
            .put_refresh_token(jti, alice.id, jti, 1_000)
            .await
            .unwrap();
    }
    let rotate = |jti: &'static str, now_ms| {
        let store = store.clone();
        async move {
            let new = format!("{jti}-next");
            store
                .rotate_refresh_token(jti, &new, 5_000, now_ms)
                .await
                .unwrap()
        }
    };
    assert_eq!(rotate("old", 2_000).await, Rotation::Refused, "expired");
    assert_eq!(
        rotate("edge", 1_000).await,
        Rotation::Refused,
        "valid until, not at"
    );
    assert_eq!(rotate("fresh", 999).await, Rotation::Rotated(alice.id));
}

pub(crate) async fn refresh_token_races_have_one_winner(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    for round in 0..5 {
        let jti = format!("raced-{round}");
        store
            .put_refresh_token(&jti, alice.id, &jti, i64::MAX)
            .await
            .unwrap();
        let takers: Vec<_> = (0..16)
            .map(|i| {
                let (store, jti) = (store.clone(), jti.clone());
                tokio::spawn(async move {
                    let new = format!("{jti}-{i}");
                    let r = store.rotate_refresh_token(&jti, &new, i64::MAX, 0).await;
                    (new, r)
                })
            })
            .collect();
        let (mut winners, mut replays) = (Vec::new(), 0);
        for taker in takers {
            let (new, r) = taker.await.expect("task panicked");
            match r.expect("rotate failed") {
                Rotation::Rotated(user) => {
                    assert_eq!(user, alice.id);
                    winners.push(new);
                }
                Rotation::Reused(_) => replays += 1,
                Rotation::Refused => {}
            }
        }
        assert_eq!(winners.len(), 1, "round {round}");
        assert!(replays >= 1, "the first loser is a replay, round {round}");
        // The replay revoked the chain, the winner's new token with it.
        let r = store
            .rotate_refresh_token(&winners[0], "after", i64::MAX, 0)
            .await;
        assert_eq!(r.unwrap(), Rotation::Refused, "round {round}");
    }
}

pub(crate) async fn expired_refresh_tokens_are_purged(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    for (jti, exp) in [("a", 1_000), ("b", 2_000), ("c", 3_000)] {
        store
            .put_refresh_token(jti, alice.id, jti, exp)
            .await
            .unwrap();
    }
    // A used token goes when it expires like any other.
    let r = store.rotate_refresh_token("a", "a2", 1_500, 500).await;
    assert_eq!(r.unwrap(), Rotation::Rotated(alice.id));
    assert_eq!(store.purge_refresh_tokens(2_000).await.unwrap(), 3);
    assert_eq!(store.purge_refresh_tokens(2_000).await.unwrap(), 0);
    let r = store.rotate_refresh_token("c", "c2", 9_000, 2_500).await;
    assert_eq!(
        r.unwrap(),
        Rotation::Rotated(alice.id),
        "an unexpired token survives the purge"
    );
}
