//! Contract cases: token signing keys (round trip, unique generations, racing rotations, deletion).

use std::sync::Arc;

use banter_actors::ports::{SigningKey, Store, StoreError};

/// Returns a key of `generation`: its bytes cover every byte value (0x00 and 0xff included), so a
/// store that treats them as text shows.
fn key(generation: i64, kid: &str) -> SigningKey {
    let private_key: Vec<u8> = (0..=255u8).rev().chain([0, 0, 0x80]).collect();
    SigningKey {
        generation,
        kid: kid.to_owned(),
        private_key,
        public_key: (0..32).map(|i| (i * 8) as u8).collect(),
        created_at_ms: 1_700_000_000_000 + generation,
        signs_from_ms: 1_700_000_060_000 + generation,
    }
}

pub(crate) async fn signing_keys_round_trip(store: Arc<dyn Store>) {
    assert!(store.signing_keys().await.unwrap().is_empty());
    let (first, second) = (key(1, "0123456789abcdef"), key(2, "fedcba9876543210"));
    // Inserted out of order, listed by generation.
    store.insert_signing_key(&second).await.unwrap();
    store.insert_signing_key(&first).await.unwrap();
    assert_eq!(store.signing_keys().await.unwrap(), [first, second]);
}

pub(crate) async fn signing_key_generation_is_unique(store: Arc<dyn Store>) {
    let first = key(1, "aaaaaaaaaaaaaaaa");
    store.insert_signing_key(&first).await.unwrap();
    let same_generation = SigningKey {
        public_key: vec![1; 32],
        ..key(1, "bbbbbbbbbbbbbbbb")
    };
    let err = store.insert_signing_key(&same_generation).await;
    assert!(matches!(err, Err(StoreError::Conflict(_))), "{err:?}");
    let same_kid = key(2, "aaaaaaaaaaaaaaaa");
    let err = store.insert_signing_key(&same_kid).await;
    assert!(matches!(err, Err(StoreError::Conflict(_))), "{err:?}");
    // Kids are exact.
    store
        .insert_signing_key(&key(2, "AAAAAAAAAAAAAAAA"))
        .await
        .unwrap();
    let kept = store.signing_keys().await.unwrap();
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[0], first, "the loser changed nothing");
}

pub(crate) async fn signing_key_races_have_one_winner(store: Arc<dyn Store>) {
    for generation in 1..=3 {
        let racers: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let candidate = key(generation, &format!("g{generation}-node{i}"));
                    let r = store.insert_signing_key(&candidate).await;
                    (candidate, r)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for racer in racers {
            let (candidate, r) = racer.await.expect("task panicked");
            match r {
                Ok(()) => winners.push(candidate),
                Err(StoreError::Conflict(_)) => {}
                Err(e) => panic!("generation {generation}: {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "generation {generation}");
        let listed = store.signing_keys().await.unwrap();
        assert_eq!(listed.last(), winners.first(), "generation {generation}");
        assert_eq!(listed.len(), usize::try_from(generation).unwrap());
    }
}

pub(crate) async fn old_signing_keys_are_deleted(store: Arc<dyn Store>) {
    for generation in 1..=4 {
        store
            .insert_signing_key(&key(generation, &format!("kid-{generation}")))
            .await
            .unwrap();
    }
    assert_eq!(store.delete_signing_keys_before(1).await.unwrap(), 0);
    assert_eq!(store.delete_signing_keys_before(3).await.unwrap(), 2);
    assert_eq!(
        store.delete_signing_keys_before(3).await.unwrap(),
        0,
        "idempotent, as nodes racing to delete need"
    );
    let left: Vec<i64> = store
        .signing_keys()
        .await
        .unwrap()
        .iter()
        .map(|k| k.generation)
        .collect();
    assert_eq!(left, [3, 4]);
}
