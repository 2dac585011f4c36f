use super::*;

#[tokio::test]
async fn password_hash_and_verify() {
    let pw = Passwords::default();
    let hash = pw.hash("correct horse".to_owned()).await.expect("hash");
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(
        pw.verify(hash.clone(), "correct horse".to_owned())
            .await
            .expect("a hashing slot")
    );
    assert!(
        !pw.verify(hash.clone(), "correct horsE".to_owned())
            .await
            .expect("a hashing slot")
    );
    assert!(
        !pw.verify(hash, String::new())
            .await
            .expect("a hashing slot")
    );
    // Same password, fresh salt, different hash.
    let again = pw.hash("correct horse".to_owned()).await.expect("hash");
    assert!(
        pw.verify(again.clone(), "correct horse".to_owned())
            .await
            .expect("a hashing slot")
    );
    assert_ne!(
        again,
        pw.hash("correct horse".to_owned()).await.expect("hash")
    );
}

#[tokio::test]
async fn changed_cost_keeps_old_hashes_valid() {
    let cheap = Passwords::new(64, 1).expect("params");
    let hash = cheap.hash("correct horse".to_owned()).await.expect("hash");
    assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
    // A node whose cost was raised still checks hashes made before, with their own parameters.
    let strong = Passwords::default();
    assert!(
        strong
            .verify(hash.clone(), "correct horse".to_owned())
            .await
            .expect("a hashing slot")
    );
    assert!(
        !strong
            .verify(hash, "wrong horse".to_owned())
            .await
            .expect("a hashing slot")
    );
    assert!(Passwords::new(0, 1).is_err());
    assert!(Passwords::new(64, 0).is_err());
}

#[tokio::test]
async fn unreadable_hash_never_matches() {
    let pw = Passwords::default();
    assert!(
        !pw.verify("not a phc string".to_owned(), "x".to_owned())
            .await
            .expect("a hashing slot")
    );
    assert!(
        !pw.verify(String::new(), String::new())
            .await
            .expect("a hashing slot")
    );
}

/// Returns the argon2 algorithm, version and parameters of a PHC string.
fn phc_params(phc: &str) -> (String, Option<u32>, argon2::Params) {
    let hash = PasswordHash::new(phc).expect("a PHC string");
    let params = argon2::Params::try_from(&hash).expect("argon2 parameters");
    (hash.algorithm.to_string(), hash.version, params)
}

#[tokio::test]
async fn dummy_verify_does_the_same_work() {
    for pw in [
        Passwords::default(),
        Passwords::new(256, 3).expect("params"),
    ] {
        // The dummy hash has the configured algorithm, version and cost (memory, passes, lanes,
        // output length), like a real hash made now: checking it costs what checking a real one does.
        let real = pw.hash("the real one".to_owned()).await.expect("hash");
        let (algorithm, version, params) = phc_params(pw.dummy_hash());
        assert_eq!((algorithm.as_str(), version), ("argon2id", Some(0x13)));
        let cost = |p: &argon2::Params| {
            let output = p.output_len().unwrap_or(argon2::Params::DEFAULT_OUTPUT_LEN);
            (p.m_cost(), p.t_cost(), p.p_cost(), output)
        };
        assert_eq!(
            cost(&params),
            cost(pw.argon.params()),
            "the configured cost"
        );
        assert_eq!(phc_params(&real), (algorithm, version, params));
        // And the dummy check really runs argon2 on it: only the computation can tell the dummy
        // password from a guess.
        assert!(
            pw.verify_dummy(String::from_utf8(DUMMY_PASSWORD.to_vec()).expect("utf-8"))
                .await
                .expect("a hashing slot")
        );
        assert!(
            !pw.verify_dummy("guess".to_owned())
                .await
                .expect("a hashing slot")
        );
    }
    let (_, _, params) = phc_params(Passwords::default().dummy_hash());
    assert_eq!(
        (params.m_cost(), params.t_cost(), params.p_cost()),
        (19456, 2, 1)
    );
}

// Real time, bounded waits: tokio's test-util (a paused clock) is not enabled for this crate.
#[tokio::test]
async fn busy_hashing_slots_make_callers_wait_then_fail() {
    let wait = Duration::from_millis(200);
    let pw = Passwords::new(64, 1).expect("params").with_limits(1, wait);
    let held = pw.permit().await.expect("the only slot");
    // With the only slot taken, every kind of work waits for it, then gives up as busy, without
    // having run anything on the blocking pool (a 64 KiB hash takes well under the wait).
    let started = std::time::Instant::now();
    let hash = pw.hash("correct horse".to_owned()).await;
    assert!(matches!(hash, Err(AuthError::Busy)), "{hash:?}");
    let waited = started.elapsed();
    assert!(waited >= wait && waited < 10 * wait, "{waited:?}");
    let waiting: Vec<_> = (0..50)
        .map(|_| {
            let pw = pw.clone();
            tokio::spawn(async move { pw.verify_dummy("guess".to_owned()).await })
        })
        .collect();
    for w in waiting {
        let r = w.await.expect("task");
        assert!(matches!(r, Err(AuthError::Busy)), "{r:?}");
    }
    let err = AuthError::Busy;
    assert_eq!(err.code(), "busy");
    // Once the slot is free, work goes through again.
    drop(held);
    let hash = pw.hash("correct horse".to_owned()).await.expect("hash");
    assert!(
        pw.verify(hash, "correct horse".to_owned())
            .await
            .expect("slot")
    );
}

#[tokio::test]
async fn a_slot_freed_within_the_wait_is_taken() {
    let pw = Passwords::new(64, 1)
        .expect("params")
        .with_limits(1, Duration::from_secs(30));
    let held = pw.permit().await.expect("the only slot");
    let waiter = tokio::spawn({
        let pw = pw.clone();
        async move { pw.hash("correct horse".to_owned()).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiter.is_finished(), "waits for the slot");
    drop(held);
    let hash = waiter.await.expect("task").expect("got the slot in time");
    assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
}

#[tokio::test]
async fn running_hashes_never_exceed_the_limit() {
    let pw = Passwords::new(1024, 1)
        .expect("params")
        .with_limits(2, Duration::from_secs(60));
    let work: Vec<_> = (0..8)
        .map(|i| {
            let pw = pw.clone();
            tokio::spawn(async move { pw.hash(format!("password {i}")).await })
        })
        .collect();
    let mut peak_busy = 0;
    while !work.iter().all(tokio::task::JoinHandle::is_finished) {
        peak_busy = peak_busy.max(2 - pw.permits.available_permits());
        tokio::task::yield_now().await;
    }
    for w in work {
        w.await.expect("task").expect("hash");
    }
    assert!(peak_busy <= 2, "{peak_busy}");
    assert_eq!(pw.permits.available_permits(), 2, "every slot is returned");
}
