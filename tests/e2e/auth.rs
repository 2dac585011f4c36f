//! The limits on login and register attempts: per client IP (`limits.auth_per_minute`), that IP
//! taken from `X-Forwarded-For` only when a trusted proxy (`http.trusted_proxies`) sent it, and per
//! account (`limits.login_per_account_per_minute`).

use anyhow::{Context, ensure};
use banter_tests::api::{Api, Resp, TEST_PASSWORD};
use banter_tests::{NodeBuilder, Witness, unique};
use serde_json::json;

/// Attempts allowed per minute on the test node.
const PER_MINUTE: usize = 5;

#[tokio::test]
async fn login_and_register_are_rate_limited_per_ip() {
    let node = NodeBuilder::new("authlimit")
        .env("BANTER_LIMITS__AUTH_PER_MINUTE", PER_MINUTE)
        .start()
        .await
        .expect("node");
    let r = async {
        let api = node.api();
        // Attempt 1: the witness registers.
        let mut w = Witness::new(&node).await?;
        // Attempts 2..: wrong passwords count like any attempt.
        let mut statuses = vec![201];
        let mut refused = None;
        for _ in 0..3 * PER_MINUTE {
            let r = api
                .post(
                    "/api/auth/login",
                    None,
                    &json!({"username": w.user.username, "password": "wrong password"}),
                )
                .await?;
            statuses.push(r.status);
            if r.status == 429 {
                refused = Some(r);
                break;
            }
            r.assert_error(401, "invalid_credentials");
        }
        let refused = refused
            .with_context(|| format!("no 429 after {} attempts: {statuses:?}", statuses.len()))?;
        refused.assert_error(429, "rate_limited");
        ensure!(
            statuses.len() > PER_MINUTE,
            "{PER_MINUTE} attempts per minute are allowed before 429: {statuses:?}"
        );
        // Register is limited by the same budget, and so is a correct login.
        api.post(
            "/api/auth/register",
            None,
            &json!({"username": unique("late"), "password": TEST_PASSWORD}),
        )
        .await?
        .assert_error(429, "rate_limited");
        api.post(
            "/api/auth/login",
            None,
            &json!({"username": w.user.username, "password": w.user.password}),
        )
        .await?
        .assert_error(429, "rate_limited");
        // Everything else is still served.
        ensure!(
            api.me(&w.user.token).await?.id == w.user.id,
            "authenticated REST still works"
        );
        w.assert_served().await
    }
    .await;
    node.check(r);
}

/// Logs in as `username` with `password`, sent through a proxy that says the client is `forwarded`.
async fn login_via(
    api: &Api,
    forwarded: &str,
    username: &str,
    password: &str,
) -> anyhow::Result<Resp> {
    let req = api
        .http()
        .post(api.url("/api/auth/login"))
        .header("X-Forwarded-For", forwarded)
        .json(&json!({"username": username, "password": password}));
    api.send(req).await
}

/// Returns the `Retry-After` of a login refused through a proxy, in seconds.
async fn retry_after_via(api: &Api, forwarded: &str, username: &str) -> anyhow::Result<u64> {
    let r = api
        .http()
        .post(api.url("/api/auth/login"))
        .header("X-Forwarded-For", forwarded)
        .json(&json!({"username": username, "password": "wrong password"}))
        .send()
        .await?;
    ensure!(r.status() == 429, "expected 429, got {}", r.status());
    let secs = r
        .headers()
        .get("retry-after")
        .context("a 429 has Retry-After")?
        .to_str()?
        .parse()?;
    Ok(secs)
}

#[tokio::test]
async fn guesses_from_many_addresses_behind_a_trusted_proxy_are_limited_per_account() {
    const PER_ACCOUNT: usize = 4;
    const PER_ADDRESS: usize = 3;
    // The test process is the proxy: it connects from 127.0.0.1 and forwards made-up addresses.
    let node = NodeBuilder::new("acctlimit")
        .env(
            "BANTER_HTTP__TRUSTED_PROXIES",
            r#"["127.0.0.1", "10.0.0.0/8"]"#,
        )
        .env("BANTER_LIMITS__AUTH_PER_MINUTE", PER_ADDRESS)
        .env("BANTER_LIMITS__LOGIN_PER_ACCOUNT_PER_MINUTE", PER_ACCOUNT)
        .start()
        .await
        .expect("node");
    let r = async {
        let api = node.api();
        let mut w = Witness::new(&node).await?;
        let victim = unique("victim");
        let req = api
            .http()
            .post(api.url("/api/auth/register"))
            .header("X-Forwarded-For", "192.0.2.1")
            .json(&json!({"username": victim, "password": TEST_PASSWORD}));
        api.send(req).await?.expect(201)?;

        // The attacker never uses an address twice, so no address budget runs out; the account's
        // does, whatever the case of the username.
        let mut statuses = Vec::new();
        for i in 0..3 * PER_ACCOUNT {
            let name = if i % 2 == 0 {
                victim.to_uppercase()
            } else {
                victim.clone()
            };
            let r = login_via(&api, &format!("203.0.113.{i}"), &name, "wrong password").await?;
            statuses.push(r.status);
            if r.status == 429 {
                r.assert_error(429, "account_rate_limited");
                break;
            }
            r.assert_error(401, "invalid_credentials");
        }
        ensure!(
            statuses.len() == PER_ACCOUNT + 1,
            "{PER_ACCOUNT} attempts per account, then 429: {statuses:?}"
        );
        ensure!(retry_after_via(&api, "203.0.113.200", &victim).await? >= 1);
        // The right password too is refused for the minute (the price of a per-account limit), and
        // an account that does not exist is limited the same way, so a 429 says nothing about it.
        login_via(&api, "203.0.113.201", &victim, TEST_PASSWORD)
            .await?
            .assert_error(429, "account_rate_limited");
        let ghost = unique("ghost");
        for i in 0..PER_ACCOUNT {
            login_via(&api, &format!("198.18.0.{i}"), &ghost, "wrong password")
                .await?
                .assert_error(401, "invalid_credentials");
        }
        login_via(&api, "198.18.0.200", &ghost, "wrong password")
            .await?
            .assert_error(429, "account_rate_limited");
        // Other accounts are not affected.
        login_via(&api, "203.0.113.202", &w.user.username, &w.user.password)
            .await?
            .expect(200)?;

        // The forwarded address is what the address limit counts: the right-most hop that is not a
        // trusted proxy, whatever the client put left of it.
        for i in 0..PER_ADDRESS {
            let hops = format!("6.6.6.{i}, 198.51.100.7, 10.1.1.1");
            login_via(&api, &hops, &unique("nobody"), "wrong password")
                .await?
                .assert_error(401, "invalid_credentials");
        }
        login_via(&api, "198.51.100.7", &unique("nobody"), "wrong password")
            .await?
            .assert_error(429, "rate_limited");
        login_via(&api, "198.51.100.8", &unique("nobody"), "wrong password")
            .await?
            .assert_error(401, "invalid_credentials");
        w.assert_served().await
    }
    .await;
    node.check(r);
}

#[tokio::test]
async fn forwarded_addresses_from_an_untrusted_peer_are_ignored() {
    // 127.0.0.1 (the test process) is not a trusted proxy here: its X-Forwarded-For is a lie.
    let node = NodeBuilder::new("spoofed")
        .env("BANTER_HTTP__TRUSTED_PROXIES", r#"["10.0.0.1"]"#)
        .env("BANTER_LIMITS__AUTH_PER_MINUTE", PER_MINUTE)
        .start()
        .await
        .expect("node");
    let r = async {
        let api = node.api();
        let mut statuses = Vec::new();
        for i in 0..3 * PER_MINUTE {
            let r = login_via(
                &api,
                &format!("203.0.113.{i}"),
                &unique("nobody"),
                "wrong password",
            )
            .await?;
            statuses.push(r.status);
            if r.status == 429 {
                r.assert_error(429, "rate_limited");
                break;
            }
            r.assert_error(401, "invalid_credentials");
        }
        ensure!(
            statuses.len() == PER_MINUTE + 1,
            "the spoofed addresses share 127.0.0.1's budget of {PER_MINUTE}: {statuses:?}"
        );
        Ok(())
    }
    .await;
    node.check(r);
}
