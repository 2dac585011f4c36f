//! Bad REST input: each answered with the exact status and JSON `error.code`, with nothing broken for
//! anyone else afterwards (a [`Witness`] connection is still served). Codes not named in
//! `docs/PROTOCOL.md` follow the brief's list: `invalid_json` (body not JSON), `bad_request` (JSON of
//! the wrong shape, wrong content type, bad query parameters), `payload_too_large`,
//! `unauthorized` (no bearer), `invalid_token`, `forbidden`, `not_found`.

use anyhow::{Context, Result, ensure};
use banter_tests::api::TEST_PASSWORD;
use banter_tests::{Node, Witness, shared_node, unique};
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

/// Runs `case` against the shared node, then checks a witness connection is still served.
async fn on_shared<F>(case: F)
where
    F: AsyncFnOnce(&Node) -> Result<()>,
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
async fn malformed_json_is_refused() {
    on_shared(async |node| {
        let api = node.api();
        let req = api
            .http()
            .post(api.url("/api/auth/register"))
            .header(CONTENT_TYPE, "application/json")
            .body(r#"{"username": "abc", "password": "#);
        api.send(req).await?.assert_error(400, "invalid_json");

        let user = api.new_user("json").await?;
        let req = api
            .http()
            .post(api.url("/api/rooms"))
            .bearer_auth(&user.token)
            .header(CONTENT_TYPE, "application/json")
            .body("{name: unquoted}");
        api.send(req).await?.assert_error(400, "invalid_json");

        // Valid JSON of the wrong shape.
        api.post(
            "/api/auth/register",
            None,
            &json!({"username": unique("shape")}),
        )
        .await?
        .assert_error(400, "bad_request");
        api.post(
            "/api/auth/login",
            None,
            &json!({"username": 5, "password": true}),
        )
        .await?
        .assert_error(400, "bad_request");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn wrong_content_type_is_refused() {
    on_shared(async |node| {
        let api = node.api();
        let body = json!({"username": unique("ctype"), "password": TEST_PASSWORD}).to_string();
        let req = api
            .http()
            .post(api.url("/api/auth/register"))
            .header(CONTENT_TYPE, "text/plain")
            .body(body.clone());
        api.send(req)
            .await?
            .assert_error(415, "unsupported_media_type");
        let req = api.http().post(api.url("/api/auth/register")).body(body);
        api.send(req)
            .await?
            .assert_error(415, "unsupported_media_type");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn oversized_http_body_is_refused() {
    on_shared(async |node| {
        let api = node.api();
        let body = json!({"username": unique("big"), "password": TEST_PASSWORD, "display_name": "x".repeat(70_000)});
        api.post("/api/auth/register", None, &body)
            .await?
            .assert_error(413, "payload_too_large");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn username_and_password_rules() {
    on_shared(async |node| {
        let api = node.api();
        let too_long = format!("a{}", "b".repeat(32));
        let bad = [
            "ab",
            "1abc",
            "_abc",
            ".abc",
            "a-bc",
            "abc def",
            " abcd",
            "\u{e5}lice",
            "abc..def",
            "abcdef.",
            "ab'c--",
            too_long.as_str(),
            "",
        ];
        for name in bad {
            api.post(
                "/api/auth/register",
                None,
                &json!({"username": name, "password": TEST_PASSWORD}),
            )
            .await?
            .assert_error(400, "invalid_username");
        }
        // 3 and 32 characters, mixed case: accepted and stored lowercase.
        let base = format!("Mixed.Case_{}", banter_tests::util::random_hex(8));
        let s = api.register(&base, TEST_PASSWORD).await?;
        ensure!(
            s.user.username == base.to_lowercase(),
            "stored lowercase: {:?}",
            s.user
        );
        let max = format!("m{}", &banter_tests::util::random_hex(31));
        ensure!(max.len() == 32, "32 characters");
        api.register(&max, TEST_PASSWORD)
            .await
            .context("a 32-character username is valid")?;

        for password in ["short77".to_owned(), "p".repeat(129)] {
            api.post(
                "/api/auth/register",
                None,
                &json!({"username": unique("pw"), "password": password}),
            )
            .await?
            .assert_error(400, "invalid_password");
        }
        api.register(&unique("pw"), &"p".repeat(8))
            .await
            .context("8 characters are enough")?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn duplicate_username_is_refused_case_insensitively() {
    on_shared(async |node| {
        let api = node.api();
        let name = unique("dup");
        api.register(&name, TEST_PASSWORD).await?;
        for variant in [name.clone(), name.to_uppercase()] {
            api.post(
                "/api/auth/register",
                None,
                &json!({"username": variant, "password": TEST_PASSWORD}),
            )
            .await?
            .assert_error(409, "username_taken");
        }
        let url = api.url_with("/api/users/available", &[("username", name.to_uppercase())]);
        let v: Value = api.send(api.http().get(url)).await?.expect(200)?;
        ensure!(
            v["available"] == false,
            "a taken name is not available: {v}"
        );
        let free = unique("free");
        let url = api.url_with("/api/users/available", &[("username", free.clone())]);
        let v: Value = api.send(api.http().get(url)).await?.expect(200)?;
        ensure!(v["available"] == true, "a free name is available: {v}");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn wrong_credentials_are_refused() {
    on_shared(async |node| {
        let api = node.api();
        let user = api.new_user("cred").await?;
        api.post(
            "/api/auth/login",
            None,
            &json!({"username": user.username, "password": "wrong password"}),
        )
        .await?
        .assert_error(401, "invalid_credentials");
        api.post(
            "/api/auth/login",
            None,
            &json!({"username": unique("nobody"), "password": TEST_PASSWORD}),
        )
        .await?
        .assert_error(401, "invalid_credentials");
        api.login(&user.username, &user.password)
            .await
            .context("the right password works")?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn bearer_tokens_are_checked() {
    on_shared(async |node| {
        let api = node.api();
        let user = api.new_user("bearer").await?;
        for path in ["/api/rooms", "/api/users/me"] {
            api.get(path, None).await?.assert_error(401, "unauthorized");
            let req = api
                .http()
                .get(api.url(path))
                .header("Authorization", "Basic YWxpY2U6c2VjcmV0");
            api.send(req).await?.assert_error(401, "unauthorized");
            api.get(path, Some("garbage"))
                .await?
                .assert_error(401, "invalid_token");
            api.get(path, Some(&user.refresh_token))
                .await?
                .assert_error(401, "invalid_token");
        }
        api.post("/api/rooms", None, &json!({"name": "x"}))
            .await?
            .assert_error(401, "unauthorized");
        // Refresh tokens rotate: the first use works, a second use of the same token does not (and
        // revokes the session, see sessions.rs).
        let s = api.refresh(&user.refresh_token).await?;
        ensure!(s.user.id == user.id, "refresh returns the same user");
        api.post(
            "/api/auth/refresh",
            None,
            &json!({"refresh_token": user.refresh_token}),
        )
        .await?
        .assert_error(401, "refresh_token_reused");
        api.post(
            "/api/auth/refresh",
            None,
            &json!({"refresh_token": user.token}),
        )
        .await?
        .assert_error(401, "invalid_token");
        api.me(&s.access_token)
            .await
            .context("the new access token works")?;
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn unknown_rooms_and_users_are_not_found() {
    on_shared(async |node| {
        let api = node.api();
        let user = api.new_user("lost").await?;
        api.post("/api/rooms/999999999/join", Some(&user.token), &json!({}))
            .await?
            .assert_error(404, "not_found");
        api.post(
            "/api/dms",
            Some(&user.token),
            &json!({"user_id": 999_999_999}),
        )
        .await?
        .assert_error(404, "not_found");
        Ok(())
    })
    .await;
}

#[tokio::test]
async fn sql_metacharacters_are_data() {
    on_shared(async |node| {
        let api = node.api();
        let user = api.new_user("sql").await?;
        let names = [
            format!("Robert'); DROP TABLE rooms;-- {}", unique("x")),
            format!("\" OR 1=1 -- % _ \\ \u{2603} {}", unique("y")),
            "%".to_owned(),
            "_".to_owned(),
        ];
        for name in &names {
            let room = api.create_room(&user.token, name).await?;
            ensure!(
                &room.name == name,
                "created name {:?} != {name:?}",
                room.name
            );
            ensure!(
                &api.room(&user.token, room.id).await?.name == name,
                "GET room returns the name literally"
            );
            let listed = api
                .room_summary(&user.token, room.id)
                .await?
                .context("listed")?;
            ensure!(
                &listed.room.name == name,
                "GET /api/rooms returns the name literally"
            );
        }

        // Prefix search matches literally: `_` and `%` are not wildcards.
        let base = format!("q{}", banter_tests::util::random_hex(10));
        let underscore = format!("{base}_ab");
        let plain = format!("{base}xab");
        api.register(&underscore, TEST_PASSWORD).await?;
        api.register(&plain, TEST_PASSWORD).await?;
        let names_of = |users: Vec<banter_tests::User>| {
            let mut v: Vec<String> = users.into_iter().map(|u| u.username).collect();
            v.sort();
            v
        };
        let mut both = vec![underscore.clone(), plain.clone()];
        both.sort();
        ensure!(
            names_of(api.search_users(&user.token, &base, None).await?) == both,
            "prefix {base}"
        );
        ensure!(
            names_of(
                api.search_users(&user.token, &format!("{base}_"), None)
                    .await?
            ) == vec![underscore.clone()],
            "'_' is literal"
        );
        ensure!(
            api.search_users(&user.token, &format!("{base}%"), None)
                .await?
                .is_empty(),
            "'%' is literal"
        );
        for prefix in ["%", "_%", "' OR '1'='1", "\\", "\"; --"] {
            let found = api.search_users(&user.token, prefix, None).await?;
            ensure!(
                found.is_empty(),
                "prefix {prefix:?} matches nothing literally, got {found:?}"
            );
        }
        Ok(())
    })
    .await;
}
