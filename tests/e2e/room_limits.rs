//! A hostile client against the room budgets and the room and member pages: creating rooms, opening
//! DMs and joining past `limits.rooms_per_hour`, `dms_per_hour`, `joins_per_minute` (429 `rate_limited`
//! with `Retry-After`) and past `limits.max_rooms_per_user` (403 `too_many_rooms`); paging `GET
//! /api/rooms` and `GET /api/rooms/{id}/members` with `after` and `limit`, and bad cursors and limits
//! (400 `invalid_cursor`, `invalid_limit`). A witness connection is served throughout.

use std::collections::HashSet;

use anyhow::{Context, Result, ensure};
use banter_tests::api::{Api, Resp};
use banter_tests::{Node, NodeBuilder, Witness, shared_node, unique};
use serde_json::{Value, json};

/// Posts `body` to `path` as `token`; returns the answer and its `Retry-After` header (seconds).
async fn post(api: &Api, path: &str, token: &str, body: &Value) -> Result<(Resp, Option<u64>)> {
    let r = api
        .http()
        .post(api.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .with_context(|| format!("POST {path}"))?;
    let retry_after = r
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .with_context(|| format!("Retry-After {v:?} is not whole seconds"))
        })
        .transpose()?;
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = r.bytes().await?;
    let (body, is_json) = match serde_json::from_slice::<Value>(&bytes) {
        Ok(v) => (v, true),
        Err(_) => (
            Value::String(String::from_utf8_lossy(&bytes).into_owned()),
            false,
        ),
    };
    Ok((
        Resp {
            status,
            body,
            is_json,
            content_type,
        },
        retry_after,
    ))
}

/// Asserts a 429 `rate_limited` whose `Retry-After` is within `1..=max_secs`.
#[track_caller]
fn assert_throttled((resp, retry_after): &(Resp, Option<u64>), max_secs: u64) {
    resp.assert_error(429, "rate_limited");
    assert!(
        retry_after.is_some_and(|s| (1..=max_secs).contains(&s)),
        "Retry-After {retry_after:?} should be 1..={max_secs} s: {}",
        resp.body
    );
}

/// Returns the ids of a page of `GET path` (`rooms` → `id`, `members` → `user_id`) and `next_after`.
async fn page(
    api: &Api,
    token: &str,
    path: &str,
    field: &str,
    after: Option<i64>,
    limit: Option<u32>,
) -> Result<(Vec<i64>, Option<i64>)> {
    let mut q = Vec::new();
    if let Some(a) = after {
        q.push(("after", a.to_string()));
    }
    if let Some(l) = limit {
        q.push(("limit", l.to_string()));
    }
    let url = api.url_with(path, &q);
    let body = api
        .send(api.http().get(url).bearer_auth(token))
        .await?
        .expect(200)?;
    let (list, key) = match field {
        "rooms" => (&body["rooms"], "id"),
        _ => (&body["members"], "user_id"),
    };
    let ids = list
        .as_array()
        .with_context(|| format!("{field} in {body}"))?
        .iter()
        .map(|v| v[key].as_i64().context("id"))
        .collect::<Result<Vec<_>>>()?;
    let next = body
        .get("next_after")
        .with_context(|| format!("next_after is always present: {body}"))?
        .as_i64();
    Ok((ids, next))
}

/// Pages through `path` with `limit`; returns every id in page order and the number of pages.
async fn all_pages(
    api: &Api,
    token: &str,
    path: &str,
    field: &str,
    limit: u32,
) -> Result<(Vec<i64>, usize)> {
    let mut all = Vec::new();
    let mut after = None;
    for pages in 1..1000 {
        let (ids, next) = page(api, token, path, field, after, Some(limit)).await?;
        ensure!(ids.len() <= limit as usize, "page over {limit}: {ids:?}");
        all.extend(ids);
        match next {
            Some(n) => {
                ensure!(
                    after.is_none_or(|a| n > a),
                    "next_after {n} did not move on"
                );
                after = Some(n);
            }
            None => return Ok((all, pages)),
        }
    }
    anyhow::bail!("{path} never ended")
}

#[tokio::test]
async fn creating_opening_and_joining_are_budgeted_per_user() {
    let node = NodeBuilder::new("roombudget")
        .env("BANTER_LIMITS__ROOMS_PER_HOUR", 3)
        .env("BANTER_LIMITS__DMS_PER_HOUR", 2)
        .env("BANTER_LIMITS__JOINS_PER_MINUTE", 3)
        .start()
        .await
        .expect("node");
    let r = async {
        let mut w = Witness::new(&node).await?;
        let api = node.api();
        let mallory = api.new_user("mallory").await?;
        let bob = api.new_user("bob").await?;

        // Rooms: three, then 429 with a wait of about 20 minutes (one room every 1,200 s).
        let mut made = Vec::new();
        for i in 0..3 {
            let (r, _) = post(
                &api,
                "/api/rooms",
                &mallory.token,
                &json!({"name": format!("spam {i}")}),
            )
            .await?;
            made.push(r.expect(201)?["id"].as_i64().context("room id")?);
        }
        for _ in 0..5 {
            let refused = post(
                &api,
                "/api/rooms",
                &mallory.token,
                &json!({"name": "one more"}),
            )
            .await?;
            assert_throttled(&refused, 1200);
        }
        // Bob has a budget of his own.
        let bobs = api.create_room(&bob.token, &unique("bobs")).await?;

        // DMs: two new ones, then 429; reopening one is free and still answers 200.
        let peers = [
            api.new_user("peer").await?,
            api.new_user("peer").await?,
            api.new_user("peer").await?,
        ];
        for p in &peers[..2] {
            let (r, _) = post(&api, "/api/dms", &mallory.token, &json!({"user_id": p.id})).await?;
            r.expect(201)?;
        }
        assert_throttled(
            &post(
                &api,
                "/api/dms",
                &mallory.token,
                &json!({"user_id": peers[2].id}),
            )
            .await?,
            1800,
        );
        // Probing user ids spends the same budget: no free 404s.
        assert_throttled(
            &post(
                &api,
                "/api/dms",
                &mallory.token,
                &json!({"user_id": i64::MAX}),
            )
            .await?,
            1800,
        );
        for _ in 0..3 {
            let (r, _) = post(
                &api,
                "/api/dms",
                &mallory.token,
                &json!({"user_id": peers[0].id}),
            )
            .await?;
            r.expect(200)?;
        }
        // The peer can still open the DM from their side (their own budget): it is the same room.
        let (status, _) = api.dm(&peers[2].token, mallory.id).await?;
        ensure!(status == 201, "peer opens the DM: {status}");

        // Joins: three attempts a minute (a 404 counts: room ids cannot be probed for free), then 429
        // with a wait of about 20 s. Re-joining a room one is in is free.
        let extra = [
            api.create_room(&bob.token, &unique("open")).await?,
            api.create_room(&peers[0].token, &unique("open")).await?,
        ];
        post(
            &api,
            &format!("/api/rooms/{}/join", bobs.id),
            &mallory.token,
            &json!({}),
        )
        .await?
        .0
        .expect(200)?;
        post(
            &api,
            "/api/rooms/999999999/join",
            &mallory.token,
            &json!({}),
        )
        .await?
        .0
        .assert_error(404, "not_found");
        post(
            &api,
            &format!("/api/rooms/{}/join", extra[0].id),
            &mallory.token,
            &json!({}),
        )
        .await?
        .0
        .expect(200)?;
        let refused = post(
            &api,
            &format!("/api/rooms/{}/join", extra[1].id),
            &mallory.token,
            &json!({}),
        )
        .await?;
        assert_throttled(&refused, 20);
        for room in [bobs.id, made[0]] {
            post(
                &api,
                &format!("/api/rooms/{room}/join"),
                &mallory.token,
                &json!({}),
            )
            .await?
            .0
            .expect(200)
            .with_context(|| format!("re-joining room {room} is free"))?;
        }

        // Nothing refused was made: 3 rooms, 3 DMs (two opened, one received), 2 joins.
        let rooms = api.rooms(&mallory.token).await?;
        let groups = rooms.iter().filter(|r| r.room.kind == "group").count();
        let dms = rooms.iter().filter(|r| r.room.kind == "dm").count();
        ensure!(
            (groups, dms) == (5, 3),
            "mallory's rooms: {groups} groups, {dms} DMs: {rooms:?}"
        );
        ensure!(
            !rooms.iter().any(|r| r.room.id == extra[1].id),
            "the refused join did not happen"
        );
        w.assert_served().await
    }
    .await;
    node.check(r);
}

#[tokio::test]
async fn membership_is_capped_per_user() {
    let node = NodeBuilder::new("roomcap")
        .env("BANTER_LIMITS__MAX_ROOMS_PER_USER", 3)
        .start()
        .await
        .expect("node");
    let r = async {
        let mut w = Witness::new(&node).await?;
        let api = node.api();
        let alice = api.new_user("alice").await?;
        let bob = api.new_user("bob").await?;
        let carol = api.new_user("carol").await?;
        let mine = [
            api.create_room(&alice.token, &unique("a")).await?,
            api.create_room(&alice.token, &unique("b")).await?,
        ];
        let bobs = [
            api.create_room(&bob.token, &unique("c")).await?,
            api.create_room(&bob.token, &unique("d")).await?,
        ];
        api.join(&alice.token, bobs[0].id).await?;

        // At 3 rooms: no fourth by creating, joining or opening a DM.
        post(&api, "/api/rooms", &alice.token, &json!({"name": "fourth"}))
            .await?
            .0
            .assert_error(403, "too_many_rooms");
        post(
            &api,
            &format!("/api/rooms/{}/join", bobs[1].id),
            &alice.token,
            &json!({}),
        )
        .await?
        .0
        .assert_error(403, "too_many_rooms");
        post(
            &api,
            "/api/dms",
            &alice.token,
            &json!({"user_id": carol.id}),
        )
        .await?
        .0
        .assert_error(403, "too_many_rooms");
        // Asking again for what she has is not a new membership.
        api.join(&alice.token, bobs[0].id).await?;
        // Others may still open a DM with her: a user cannot be shut out of being contacted.
        let (status, dm) = api.dm(&bob.token, alice.id).await?;
        ensure!(status == 201, "bob's DM with alice: {status}");
        let (status, again) = api.dm(&alice.token, bob.id).await?;
        ensure!(
            status == 200 && again.id == dm.id,
            "alice reopens it: {status}"
        );
        ensure!(
            api.rooms(&alice.token).await?.len() == 4,
            "3 of her own doing + bob's DM"
        );

        // Leaving makes room again.
        api.leave(&alice.token, mine[0].id).await?;
        api.leave(&alice.token, mine[1].id).await?;
        api.join(&alice.token, bobs[1].id).await?;
        post(
            &api,
            "/api/rooms",
            &alice.token,
            &json!({"name": "over again"}),
        )
        .await?
        .0
        .assert_error(403, "too_many_rooms");
        w.assert_served().await
    }
    .await;
    node.check(r);
}

#[tokio::test]
async fn room_and_member_lists_are_keyset_pages() {
    let node: &Node = shared_node().await.expect("shared node");
    let r = async {
        let mut w = Witness::new(node).await?;
        let api = node.api();
        let owner = api.new_user("pager").await?;
        let mut rooms = Vec::new();
        for i in 0..7 {
            rooms.push(
                api.create_room(&owner.token, &unique(&format!("p{i}")))
                    .await?
                    .id,
            );
        }
        rooms.sort_unstable();

        // The default page holds them all, newest activity first (each newer room is created later),
        // with next_after null; the summaries carry last_activity_ms.
        let list = api
            .get("/api/rooms", Some(&owner.token))
            .await?
            .expect(200)?;
        ensure!(list["next_after"].is_null(), "one page: {list}");
        let ids: Vec<i64> = list["rooms"]
            .as_array()
            .context("rooms")?
            .iter()
            .filter_map(|r| r["id"].as_i64())
            .collect();
        let mut newest_first = rooms.clone();
        newest_first.reverse();
        ensure!(ids == newest_first, "newest activity first: {ids:?}");
        ensure!(
            list["rooms"][0]["last_activity_ms"]
                .as_i64()
                .is_some_and(|t| t > 0),
            "{list}"
        );

        // Pages of 1, 2, 3 and 7: every room once, no gap, the last page says so.
        for (limit, expected_pages) in [(1, 7), (2, 4), (3, 3), (7, 1)] {
            let (mut all, pages) =
                all_pages(&api, &owner.token, "/api/rooms", "rooms", limit).await?;
            ensure!(pages == expected_pages, "{pages} pages of {limit}");
            let n = all.len();
            all.sort_unstable();
            all.dedup();
            ensure!(
                all.len() == n && all == rooms,
                "pages of {limit}: {all:?} vs {rooms:?}"
            );
        }
        let (ids, next) = page(
            &api,
            &owner.token,
            "/api/rooms",
            "rooms",
            Some(rooms[4]),
            Some(2),
        )
        .await?;
        ensure!(next.is_none(), "two rooms after the fifth: the last page");
        ensure!(
            ids.iter().copied().collect::<HashSet<_>>() == rooms[5..].iter().copied().collect(),
            "{ids:?}"
        );

        // Members: 6 in one room, paged by user id.
        let room = rooms[0];
        let mut members = vec![owner.id];
        for _ in 0..5 {
            let u = api.new_user("member").await?;
            api.join(&u.token, room).await?;
            members.push(u.id);
        }
        members.sort_unstable();
        let path = format!("/api/rooms/{room}/members");
        let (all, pages) = all_pages(&api, &owner.token, &path, "members", 4).await?;
        ensure!(
            all == members && pages == 2,
            "members by user id in 2 pages: {all:?}"
        );
        let (all, _) = page(&api, &owner.token, &path, "members", None, None).await?;
        ensure!(all == members, "the default page holds them all");

        // Malformed cursors and limits, on both lists.
        for path in ["/api/rooms".to_owned(), path.clone()] {
            for (q, code) in [
                ("after=abc", "invalid_cursor"),
                ("after=-1", "invalid_cursor"),
                ("after=1.5", "invalid_cursor"),
                ("after=99999999999999999999", "invalid_cursor"),
                ("limit=0", "invalid_limit"),
                ("limit=-3", "invalid_limit"),
                ("limit=ten", "invalid_limit"),
                ("limit=100000", "invalid_limit"),
            ] {
                api.get(&format!("{path}?{q}"), Some(&owner.token))
                    .await?
                    .assert_error(400, code);
            }
        }
        api.get("/api/rooms?limit=501", Some(&owner.token))
            .await?
            .assert_error(400, "invalid_limit");
        api.get("/api/rooms?limit=500", Some(&owner.token))
            .await?
            .expect(200)?;
        api.get(
            &format!("/api/rooms/{room}/members?limit=1001"),
            Some(&owner.token),
        )
        .await?
        .assert_error(400, "invalid_limit");
        api.get("/api/rooms?after=1", None)
            .await?
            .assert_error(401, "unauthorized");
        w.assert_served().await
    }
    .await;
    node.check(r);
}
