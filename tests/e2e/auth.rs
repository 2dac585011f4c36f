//! The per-IP limit on login and register attempts (`limits.auth_per_minute`).

use anyhow::{Context, ensure};
use banter_tests::api::TEST_PASSWORD;
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
