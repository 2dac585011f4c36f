//! Sessions end: logout revokes a session's refresh token chain (with the refresh token or the access
//! token, idempotently), and a replayed refresh token revokes its chain, the thief's and the victim's
//! tokens alike.

use anyhow::{Context, ensure};
use banter_tests::{Node, Witness, shared_node};
use serde_json::json;

async fn on_shared<F>(case: F)
where
    F: AsyncFnOnce(&Node) -> anyhow::Result<()>,
{
    let node = shared_node().await.expect("shared node");
    let r = async {
        let mut w = Witness::new(node).await?;
        case(node).await?;
        w.assert_served().await
    }
    .await;
    node.check(r);
}

#[tokio::test]
async fn logout_revokes_the_session_and_only_it() {
    on_shared(async |node| {
        let api = node.api();
        let user = api.new_user("logout").await?;
        let laptop = api.login(&user.username, &user.password).await?;
        let logout = |body: serde_json::Value| {
            let api = api.clone();
            async move { api.post("/api/auth/logout", None, &body).await }
        };

        let r = logout(json!({"refresh_token": user.refresh_token})).await?;
        ensure!(r.status == 204 && r.body.is_null(), "logout: {r:?}");
        api.post(
            "/api/auth/refresh",
            None,
            &json!({"refresh_token": user.refresh_token}),
        )
        .await?
        .assert_error(401, "invalid_token");
        // Idempotent.
        let again = logout(json!({"refresh_token": user.refresh_token})).await?;
        ensure!(again.status == 204, "second logout: {again:?}");

        // The other session lives on, through refreshes; its access token alone logs it out.
        let laptop = api.refresh(&laptop.refresh_token).await?;
        let req = api
            .http()
            .post(api.url("/api/auth/logout"))
            .bearer_auth(&laptop.access_token);
        let r = api.send(req).await?;
        ensure!(r.status == 204, "logout with the access token: {r:?}");
        api.post(
            "/api/auth/refresh",
            None,
            &json!({"refresh_token": laptop.refresh_token}),
        )
        .await?
        .assert_error(401, "invalid_token");
        // Logging in again starts a working session.
        let back = api.login(&user.username, &user.password).await?;
        api.refresh(&back.refresh_token)
            .await
            .context("a new session refreshes")?;

        // What logout refuses.
        logout(json!({})).await?.assert_error(401, "missing_token");
        let r = api
            .send(api.http().post(api.url("/api/auth/logout")))
            .await?;
        r.assert_error(401, "missing_token");
        logout(json!({"refresh_token": "garbage"}))
            .await?
            .assert_error(401, "invalid_token");
        logout(json!({"refresh_token": back.access_token}))
            .await?
            .assert_error(401, "invalid_token");
        logout(json!({"refresh_token": back.refresh_token, "extra": 1}))
            .await?
            .assert_error(400, "invalid_json");
        let req = api
            .http()
            .post(api.url("/api/auth/logout"))
            .header("content-type", "application/json")
            .body("{not json");
        api.send(req).await?.assert_error(400, "invalid_json");
        let req = api
            .http()
            .post(api.url("/api/auth/logout"))
            .header("Authorization", "Basic YWxpY2U6c2VjcmV0");
        api.send(req).await?.assert_error(401, "unauthorized");
        api.refresh(&back.refresh_token)
            .await
            .err()
            .context("back's token was rotated by its refresh")?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn a_replayed_refresh_token_revokes_its_chain() {
    on_shared(async |node| {
        let api = node.api();
        let victim = api.new_user("replayed").await?;
        let other_device = api.login(&victim.username, &victim.password).await?;
        // The victim refreshes twice; a thief kept the first refresh token.
        let stolen = victim.refresh_token.clone();
        let s1 = api.refresh(&victim.refresh_token).await?;
        let s2 = api.refresh(&s1.refresh_token).await?;
        api.post("/api/auth/refresh", None, &json!({"refresh_token": stolen}))
            .await?
            .assert_error(401, "refresh_token_reused");
        // The whole chain is gone: the victim's newest token too, so both must log in again.
        api.post(
            "/api/auth/refresh",
            None,
            &json!({"refresh_token": s2.refresh_token}),
        )
        .await?
        .assert_error(401, "invalid_token");
        api.post("/api/auth/refresh", None, &json!({"refresh_token": stolen}))
            .await?
            .assert_error(401, "invalid_token");
        // Another session of the same user is another chain.
        api.refresh(&other_device.refresh_token)
            .await
            .context("the other device's session survives")?;
        let fresh = api.login(&victim.username, &victim.password).await?;
        api.refresh(&fresh.refresh_token)
            .await
            .context("a new login works")?;
        Ok(())
    })
    .await;
}
