//! The key set against a real (SQLite) store shared by several nodes, on a clock the tests move.

use std::sync::atomic::AtomicI64;
use std::time::Duration;

use banter_actors::model::UserId;
use banter_actors::ports::Store;
use banter_store::SqliteStore;
use serde_json::json;

use super::*;
use crate::config::AuthConfig;

const S: i64 = 1000;

/// A wall clock the test sets; starts at the real time, since `exp` is checked against that.
struct ManualClock(AtomicI64);

impl ManualClock {
    fn new() -> Arc<ManualClock> {
        Arc::new(ManualClock(AtomicI64::new(SystemClock.now_ms())))
    }

    fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Rotation 100 s, reloads every 10 s (lead 30 s), tokens live up to 60 s.
fn policy() -> KeyPolicy {
    KeyPolicy::from_config(&AuthConfig {
        key_rotation_secs: 100,
        key_refresh_secs: 10,
        access_ttl_secs: 60,
        refresh_ttl_secs: 20,
        ..AuthConfig::default()
    })
    .expect("valid policy")
}

async fn memory_store() -> Arc<dyn Store> {
    Arc::new(SqliteStore::open("sqlite::memory:").await.expect("store"))
}

/// A node's keys on `store`, with a data dir of its own (no key file).
async fn node(store: &Arc<dyn Store>, clock: &Arc<ManualClock>) -> AuthKeys {
    let dir = tempfile::tempdir().expect("tempdir");
    AuthKeys::open(store.clone(), clock.clone(), policy(), dir.path())
        .await
        .expect("keys open")
}

async fn generations(store: &Arc<dyn Store>) -> Vec<(i64, String)> {
    let rows = store.signing_keys().await.expect("list");
    rows.into_iter().map(|r| (r.generation, r.kid)).collect()
}

fn access(keys: &AuthKeys, now_ms: i64) -> String {
    keys.issue(7, "alice", now_ms, 60, 20).access_token
}

fn kid_of_token(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("header")
        .kid
        .expect("kid")
}

/// A token of this node's claims under a kid of our shape that no key has.
fn random_kid_token(keys: &AuthKeys) -> String {
    // The low 64 bits of a UUIDv7 are random.
    let kid = format!("{:016x}", Uuid::now_v7().as_u128() as u64);
    let mut header = jsonwebtoken::Header::new(Algorithm::EdDSA);
    header.kid = Some(kid);
    let now = SystemClock.now_ms() / 1000;
    let claims = json!({"sub": "7", "name": "x", "typ": "access", "jti": "j", "iat": now,
                        "exp": now + 60, "iss": "banter", "aud": "banter"});
    jsonwebtoken::encode(&header, &claims, &keys.signing_pair().encoding).expect("encode")
}

fn loads(keys: &AuthKeys) -> u64 {
    keys.inner.tickets.load(Ordering::SeqCst)
}

#[tokio::test]
async fn nodes_on_one_store_share_one_key() {
    let store = memory_store().await;
    let clock = ManualClock::new();
    // Two nodes start at once on an empty store: one key is created, the other node loads it.
    let (a, b) = tokio::join!(node(&store, &clock), node(&store, &clock));
    let rows = generations(&store).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, 1);
    assert_eq!((a.kid(), b.kid()), (rows[0].1.clone(), rows[0].1.clone()));
    assert_eq!(a.jwks(), b.jwks());
    let token = access(&a, clock.now_ms());
    let claims = b.verify(&token, TokenType::Access).await.expect("verifies");
    assert_eq!(claims.user_id().expect("sub"), UserId(7));
    // A node started later loads the same key too.
    assert_eq!(node(&store, &clock).await.kids(), a.kids());
    assert_eq!(generations(&store).await.len(), 1);
}

#[tokio::test]
async fn the_key_file_of_an_older_node_becomes_generation_1() {
    let store = memory_store().await;
    let clock = ManualClock::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join(KEY_FILE);
    std::fs::create_dir_all(file.parent().expect("keys dir")).expect("mkdir");
    let pkcs8 = generate_pkcs8().expect("key");
    std::fs::write(&file, &pkcs8).expect("write key file");
    // A token the node signed before the upgrade.
    let old = KeyPair::from_pkcs8(&pkcs8).expect("pair");
    let before = AuthKeys::with_set(
        KeySet {
            ticket: 0,
            keys: vec![ScheduledKey {
                generation: 0,
                signs_from_ms: 0,
                verify_until_ms: None,
                pair: old.clone(),
            }],
        },
        policy(),
        clock.clone(),
        None,
    );
    let token = access(&before, clock.now_ms());

    let keys = AuthKeys::open(store.clone(), clock.clone(), policy(), dir.path())
        .await
        .expect("open");
    assert_eq!(generations(&store).await, [(1, old.kid.clone())]);
    assert_eq!(keys.kid(), old.kid);
    keys.verify(&token, TokenType::Access)
        .await
        .expect("a token from before the upgrade stays valid");
    assert!(file.is_file(), "the file is left in place");

    // Another node's own key file is not imported into a store that has a key.
    let other = tempfile::tempdir().expect("tempdir");
    let other_file = other.path().join(KEY_FILE);
    std::fs::create_dir_all(other_file.parent().expect("keys dir")).expect("mkdir");
    std::fs::write(&other_file, generate_pkcs8().expect("key")).expect("write");
    let b = AuthKeys::open(store.clone(), clock.clone(), policy(), other.path())
        .await
        .expect("open");
    assert_eq!(b.kids(), std::slice::from_ref(&old.kid));
    assert_eq!(generations(&store).await.len(), 1);
}

#[tokio::test]
async fn a_corrupt_key_file_fails_an_empty_store_only() {
    let store = memory_store().await;
    let clock = ManualClock::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join(KEY_FILE);
    std::fs::create_dir_all(file.parent().expect("keys dir")).expect("mkdir");
    std::fs::write(&file, b"not a key").expect("write");
    let err = AuthKeys::open(store.clone(), clock.clone(), policy(), dir.path())
        .await
        .expect_err("corrupt key file");
    assert!(matches!(err, AuthError::KeyFormat { .. }), "{err:?}");
    assert_eq!(err.code(), "internal_error");
    assert!(generations(&store).await.is_empty());
    // Once the store has a key the file is never read.
    node(&store, &clock).await;
    AuthKeys::open(store.clone(), clock.clone(), policy(), dir.path())
        .await
        .expect("the file is ignored");
}

#[tokio::test]
async fn rotation_publishes_before_signing_and_retires_after_the_last_token() {
    let store = memory_store().await;
    let clock = ManualClock::new();
    let t0 = clock.now_ms();
    let a = node(&store, &clock).await;
    let b = node(&store, &clock).await;
    let k1 = a.kid();
    let first = access(&a, t0);

    // Due at 100 − 30 = 70 s.
    clock.advance(69 * S);
    a.refresh().await.expect("refresh");
    assert_eq!(generations(&store).await.len(), 1, "not due yet");
    clock.advance(S);
    a.refresh().await.expect("refresh");
    let rows = store.signing_keys().await.expect("list");
    assert_eq!(rows.len(), 2);
    assert_eq!(
        (rows[1].generation, rows[1].signs_from_ms),
        (2, t0 + 100 * S)
    );
    let k2 = rows[1].kid.clone();
    // Published: verifiable and in the JWKS, not signing yet.
    assert_eq!(a.kids(), [k1.clone(), k2.clone()]);
    assert_eq!(a.jwks()["keys"].as_array().map(Vec::len), Some(2));
    assert_eq!(a.kid(), k1);
    assert_eq!(kid_of_token(&access(&a, clock.now_ms())), k1);
    // The other node sees it at its next reload, well before it signs.
    assert_eq!(b.kids(), std::slice::from_ref(&k1));
    clock.advance(10 * S);
    b.refresh().await.expect("refresh");
    assert_eq!(b.kids(), a.kids());
    assert_eq!(b.jwks(), a.jwks());

    // At 100 s the new key signs, on both nodes; the old key's tokens still verify on both.
    clock.advance(20 * S);
    for keys in [&a, &b] {
        assert_eq!(keys.kid(), k2);
        let token = access(keys, clock.now_ms());
        assert_eq!(kid_of_token(&token), k2);
        for verifier in [&a, &b] {
            verifier
                .verify_loaded(&token, TokenType::Access)
                .expect("new kid");
            verifier
                .verify_loaded(&first, TokenType::Access)
                .expect("old kid");
        }
    }

    // k1 signed until 100 s, tokens live 60 s, plus a lead of 30 s: it goes at 190 s. (Generation 3
    // was due at 170 s.)
    clock.advance(89 * S + 999);
    b.refresh().await.expect("refresh");
    assert!(b.kids().contains(&k1));
    assert_eq!(generations(&store).await.len(), 3);
    clock.advance(1);
    assert!(
        !a.kids().contains(&k1),
        "past its window even before a reload"
    );
    assert!(matches!(
        a.verify_loaded(&first, TokenType::Access),
        Err(AuthError::BadSignature)
    ));
    b.refresh().await.expect("refresh");
    let left: Vec<i64> = generations(&store).await.iter().map(|g| g.0).collect();
    assert_eq!(left, [2, 3], "the retired key is deleted");
    assert_eq!(b.kids().len(), 2);
    assert!(!b.kids().contains(&k1));
}

#[tokio::test]
async fn racing_rotations_add_one_generation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("banter.db");
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(path.to_str().expect("utf-8"))
            .await
            .expect("store"),
    );
    let clock = ManualClock::new();
    let mut nodes = Vec::new();
    for _ in 0..4 {
        nodes.push(node(&store, &clock).await);
    }
    clock.advance(70 * S);
    let refreshed = futures::future::join_all(nodes.iter().map(AuthKeys::refresh)).await;
    assert!(refreshed.iter().all(Result::is_ok), "{refreshed:?}");
    assert_eq!(generations(&store).await.len(), 2);
    for keys in &nodes {
        assert_eq!(keys.kids(), nodes[0].kids(), "the losers reloaded");
    }
}

#[tokio::test]
async fn an_unknown_kid_reloads_at_most_once_per_interval() {
    let store = memory_store().await;
    let clock = ManualClock::new();
    let a = node(&store, &clock).await;
    let b = node(&store, &clock).await;
    let known = access(&a, clock.now_ms());
    let start = loads(&b);
    for _ in 0..100 {
        b.verify(&known, TokenType::Access).await.expect("known");
    }
    assert_eq!(loads(&b), start, "a known kid never reaches the store");

    clock.advance(70 * S);
    // A client sending random kids: one reload, then refusals without asking the store.
    for _ in 0..100 {
        let err = b.verify(&random_kid_token(&a), TokenType::Access).await;
        assert!(matches!(err, Err(AuthError::BadSignature)), "{err:?}");
    }
    assert_eq!(loads(&b), start + 1);
    // Nor do kids of another shape, or none.
    for kid in [None, Some("not-ours"), Some("0123456789ABCDEF")] {
        let mut header = jsonwebtoken::Header::new(Algorithm::EdDSA);
        header.kid = kid.map(str::to_owned);
        let token = jsonwebtoken::encode(&header, &json!({"sub": "7"}), &a.signing_pair().encoding)
            .expect("encode");
        clock.advance(MISS_RELOAD_EVERY_MS);
        assert!(b.verify(&token, TokenType::Access).await.is_err());
    }
    assert_eq!(loads(&b), start + 1);

    // A random kid spends the turn of this interval; then node A rotates, and its next key signs
    // 30 s later (as of which A signs with it).
    let _ = b.verify(&random_kid_token(&a), TokenType::Access).await;
    assert_eq!(loads(&b), start + 2);
    a.refresh().await.expect("rotation");
    let fresh = access(&a, clock.now_ms() + 30 * S);
    assert_ne!(kid_of_token(&fresh), kid_of_token(&known));
    // B has not reloaded since: within the interval it refuses the new kid without asking.
    let refused = b.verify(&fresh, TokenType::Access).await;
    assert!(
        matches!(refused, Err(AuthError::BadSignature)),
        "{refused:?}"
    );
    clock.advance(MISS_RELOAD_EVERY_MS);
    b.verify(&fresh, TokenType::Access)
        .await
        .expect("the reload finds the new key");
    assert_eq!(loads(&b), start + 3);
    assert_eq!(b.kids(), a.kids());
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_keys() {
    let sqlite = SqliteStore::open("sqlite::memory:").await.expect("store");
    let store: Arc<dyn Store> = Arc::new(sqlite.clone());
    let clock = ManualClock::new();
    let keys = node(&store, &clock).await;
    let token = access(&keys, clock.now_ms());
    sqlite.pool().close().await;
    clock.advance(70 * S);
    let err = keys.refresh().await.expect_err("store closed");
    assert!(matches!(err, AuthError::KeyStore(_)), "{err:?}");
    assert_eq!(err.code(), "unavailable");
    keys.verify(&token, TokenType::Access)
        .await
        .expect("still verifies");
    assert_eq!(kid_of_token(&access(&keys, clock.now_ms())), keys.kid());
    // Opening on a store that cannot answer fails.
    let dir = tempfile::tempdir().expect("tempdir");
    let err = AuthKeys::open(store, clock.clone(), policy(), dir.path()).await;
    assert!(matches!(err, Err(AuthError::KeyStore(_))), "{err:?}");
}

#[tokio::test]
async fn corrupt_rows_are_skipped() {
    let store = memory_store().await;
    let clock = ManualClock::new();
    let keys = node(&store, &clock).await;
    let good = keys.kid();
    let mut corrupt = store.signing_keys().await.expect("list").remove(0);
    corrupt.generation = 2;
    corrupt.kid = "00000000000000aa".into();
    corrupt.private_key = b"garbage".to_vec();
    corrupt.signs_from_ms = clock.now_ms();
    store.insert_signing_key(&corrupt).await.expect("insert");
    keys.refresh().await.expect("refresh");
    assert_eq!(keys.kids(), std::slice::from_ref(&good));
    assert_eq!(keys.kid(), good, "the usable key signs");

    let only_corrupt = memory_store().await;
    corrupt.generation = 1;
    only_corrupt
        .insert_signing_key(&corrupt)
        .await
        .expect("insert");
    let dir = tempfile::tempdir().expect("tempdir");
    let err = AuthKeys::open(only_corrupt, clock.clone(), policy(), dir.path()).await;
    assert!(matches!(err, Err(AuthError::NoUsableKey)), "{err:?}");
}

#[tokio::test]
async fn the_refresh_loop_picks_up_another_nodes_rotation() {
    let store = memory_store().await;
    let clock = ManualClock::new();
    let fast = KeyPolicy::from_config(&AuthConfig {
        key_rotation_secs: 4,
        key_refresh_secs: 1,
        ..AuthConfig::default()
    })
    .expect("policy");
    let dir = tempfile::tempdir().expect("tempdir");
    let a = AuthKeys::open(store.clone(), clock.clone(), fast, dir.path())
        .await
        .expect("open");
    let b = AuthKeys::open(store.clone(), clock.clone(), fast, dir.path())
        .await
        .expect("open");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(crate::housekeeping::refresh_keys(b.clone(), stopped));
    clock.advance(S);
    a.refresh().await.expect("rotation");
    assert_eq!(a.kids().len(), 2);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while b.kids() != a.kids() {
        assert!(tokio::time::Instant::now() < deadline, "b never reloaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send_replace(true);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the loop stops on shutdown")
        .expect("no panic");
}
