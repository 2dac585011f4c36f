//! A hostile client against the room and member pages: paging `GET /api/rooms` and `GET
//! /api/rooms/{id}/members` with `after` and `limit`, and bad cursors and limits (400
//! `invalid_cursor`, `invalid_limit`). A witness connection is served throughout.

use std::collections::HashSet;

use anyhow::{Context, Result, ensure};
use banter_tests::api::Api;
use banter_tests::{Node, Witness, shared_node, unique};

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
