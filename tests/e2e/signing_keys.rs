//! Two real nodes on one MariaDB database, as a cluster runs: a token signed on one is accepted by
//! the other over REST and in STOMP CONNECT, both publish the same keys, and with a short rotation
//! period (`BANTER_AUTH__KEY_ROTATION_SECS`) new tokens take the next kid while tokens of the old
//! one stay accepted on both until they expire; then the old key leaves the JWKS and the table.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, ensure};
use banter_tests::node::mysql_url_or_skip;
use banter_tests::util::random_hex;
use banter_tests::{Node, NodeBuilder, StompClient, eventually, mysql, tokens};

/// Returns the kids a node's `/.well-known/jwks.json` lists, sorted.
async fn jwks_kids(node: &Node) -> Result<Vec<String>> {
    let jwks = node
        .api()
        .get("/.well-known/jwks.json", None)
        .await?
        .expect(200)?;
    let keys = jwks["keys"].as_array().context("jwks has keys")?;
    let mut kids = keys
        .iter()
        .map(|k| {
            k["kid"]
                .as_str()
                .map(str::to_owned)
                .context("key has a kid")
        })
        .collect::<Result<Vec<_>>>()?;
    kids.sort_unstable();
    Ok(kids)
}

/// Returns the `(generation, kid)` rows of the signing key table both nodes share.
async fn stored_keys(server: &str, node: &Node) -> Result<Vec<(i64, String)>> {
    let (server, database) = (
        server.to_owned(),
        node.mysql_database().context("a MySQL node")?.to_owned(),
    );
    let out = tokio::task::spawn_blocking(move || {
        mysql::query(
            &server,
            &database,
            "SELECT generation, kid FROM signing_keys ORDER BY generation",
        )
    })
    .await??;
    out.lines()
        .map(|line| {
            let (generation, kid) = line.split_once('\t').context("two columns")?;
            Ok((generation.parse()?, kid.to_owned()))
        })
        .collect()
}

/// Returns the status of `GET /api/users/me` with `token`.
async fn me_status(node: &Node, token: &str) -> Result<u16> {
    Ok(node.api().get("/api/users/me", Some(token)).await?.status)
}

/// Returns how often a node reloaded its keys for a token of an unknown kid (`/metrics`).
async fn unknown_kid_loads(node: &Node) -> Result<f64> {
    let api = node.api();
    let text = api
        .http()
        .get(api.url("/metrics"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| {
            l.starts_with("banter_signing_key_loads_total{") && l.contains("reason=\"unknown_kid\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs().try_into().unwrap_or(i64::MAX))
}

/// Checks that a CONNECT with `token` on `node` gets CONNECTED.
async fn stomp_accepts(node: &Node, token: &str) -> Result<()> {
    let client = StompClient::connect(&node.ws_url(), token)
        .await
        .with_context(|| format!("STOMP CONNECT on {}", node.base_url()))?;
    client.disconnect().await
}

#[tokio::test]
async fn nodes_on_one_database_accept_each_others_tokens() {
    let Some(url) = mysql_url_or_skip("nodes_on_one_database_accept_each_others_tokens") else {
        return;
    };
    let a = NodeBuilder::new("keys-a")
        .mysql(&url)
        .start()
        .await
        .expect("node a");
    let b = NodeBuilder::new("keys-b")
        .same_database_as(&a)
        .start()
        .await
        .expect("node b");
    let r = async {
        let (api_a, api_b) = (a.api(), b.api());
        let alice = api_a.new_user("cluster").await?;
        // A's access token on B: REST and STOMP.
        let me = api_b.me(&alice.token).await.context("A's token on B")?;
        ensure!(me.id == alice.id, "{me:?}");
        stomp_accepts(&b, &alice.token).await?;
        // A's refresh token is refreshed on B, and B's tokens work on A.
        let from_b = api_b.refresh(&alice.refresh_token).await?;
        api_a
            .me(&from_b.access_token)
            .await
            .context("B's token on A")?;
        stomp_accepts(&a, &from_b.access_token).await?;

        // One key, the same everywhere: the table, both JWKS, both tokens.
        let stored = stored_keys(&url, &a).await?;
        ensure!(stored.len() == 1 && stored[0].0 == 1, "{stored:?}");
        let kid = stored[0].1.clone();
        ensure!(jwks_kids(&a).await? == std::slice::from_ref(&kid));
        ensure!(jwks_kids(&b).await? == std::slice::from_ref(&kid));
        ensure!(tokens::kid(&alice.token)? == kid && tokens::kid(&from_b.access_token)? == kid);

        // A client sending random kids gets 401s, and B asks the store at most once per 5 s.
        let before = unknown_kid_loads(&b).await?;
        for _ in 0..50 {
            let forged = tokens::foreign_kid(&alice.token, &random_hex(16))?;
            api_b
                .get("/api/users/me", Some(&forged))
                .await?
                .assert_error(401, "invalid_token");
        }
        let reloads = unknown_kid_loads(&b).await? - before;
        ensure!(
            (1.0..=2.0).contains(&reloads),
            "{reloads} reloads for 50 kids"
        );
        Ok(())
    }
    .await;
    a.check(r);
}

/// Rotation every 6 s, reloads every second (keys published 3 s ahead), tokens of 15 s.
const FAST_ROTATION: &[(&str, &str)] = &[
    ("BANTER_AUTH__KEY_ROTATION_SECS", "6"),
    ("BANTER_AUTH__KEY_REFRESH_SECS", "1"),
    ("BANTER_AUTH__ACCESS_TTL_SECS", "15"),
    ("BANTER_AUTH__REFRESH_TTL_SECS", "15"),
];

#[tokio::test]
async fn rotated_keys_keep_old_tokens_valid_until_they_expire() {
    let Some(url) = mysql_url_or_skip("rotated_keys_keep_old_tokens_valid_until_they_expire")
    else {
        return;
    };
    let with_env = |mut builder: NodeBuilder| {
        for (k, v) in FAST_ROTATION {
            builder = builder.env(k, v);
        }
        builder
    };
    let a = with_env(NodeBuilder::new("rotate-a").mysql(&url))
        .start()
        .await
        .expect("node a");
    let b = with_env(NodeBuilder::new("rotate-b").same_database_as(&a))
        .start()
        .await
        .expect("node b");
    let r = async {
        let (api_a, api_b) = (a.api(), b.api());
        let alice = api_a.new_user("rotate").await?;
        let old = alice.token.clone();
        let old_kid = tokens::kid(&old)?;
        let (_, claims) = tokens::decode_unverified(&old)?;
        let exp = claims["exp"].as_i64().context("exp")?;

        // Within a rotation period, new tokens (here from B) carry the next kid.
        let fresh = eventually(
            "a token with a new kid",
            Duration::from_secs(20),
            || async {
                let s = api_b.login(&alice.username, &alice.password).await?;
                Ok((tokens::kid(&s.access_token)? != old_kid).then_some(s))
            },
        )
        .await?;
        let new_kid = tokens::kid(&fresh.access_token)?;
        api_a
            .me(&fresh.access_token)
            .await
            .context("new kid on A")?;
        stomp_accepts(&a, &fresh.access_token).await?;
        // Both nodes publish the same keys, the old and the new among them.
        let published = eventually("both JWKS agree", Duration::from_secs(5), || async {
            let (ka, kb) = (jwks_kids(&a).await?, jwks_kids(&b).await?);
            Ok((ka == kb).then_some(ka))
        })
        .await?;
        ensure!(
            published.contains(&old_kid) && published.contains(&new_kid),
            "{published:?} lacks {old_kid} or {new_kid}"
        );
        let stored = stored_keys(&url, &a).await?;
        ensure!(stored.len() >= 2, "{stored:?}");

        // The old token stays accepted on both nodes, REST and STOMP, however many rotations
        // happen, until it expires.
        stomp_accepts(&b, &old).await?;
        let mut checks = 0;
        while now_secs() < exp - 1 {
            for node in [&a, &b] {
                let status = me_status(node, &old).await?;
                ensure!(
                    status == 200 || now_secs() >= exp,
                    "old token refused by {} with {status} before its expiry (check {checks})",
                    node.base_url()
                );
                ensure!(
                    jwks_kids(node).await?.contains(&old_kid),
                    "old key unpublished early"
                );
            }
            checks += 1;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        ensure!(
            checks >= 3,
            "the old token expired before it could be checked ({checks})"
        );
        tokio::time::sleep(Duration::from_secs(
            u64::try_from(exp + 1 - now_secs()).unwrap_or(0),
        ))
        .await;
        for node in [&a, &b] {
            let r = node.api().get("/api/users/me", Some(&old)).await?;
            ensure!(
                r.status == 401,
                "expired token on {}: {r:?}",
                node.base_url()
            );
        }

        // Its key goes once its last token has expired: from both JWKS and from the table.
        eventually("the old key deleted", Duration::from_secs(30), || async {
            let gone = !jwks_kids(&a).await?.contains(&old_kid)
                && !jwks_kids(&b).await?.contains(&old_kid)
                && !stored_keys(&url, &a)
                    .await?
                    .iter()
                    .any(|(_, k)| *k == old_kid);
            Ok(gone.then_some(()))
        })
        .await?;
        // And the tokens of today's key still work on both.
        let now = api_a.login(&alice.username, &alice.password).await?;
        for node in [&a, &b] {
            ensure!(me_status(node, &now.access_token).await? == 200);
        }
        Ok(())
    }
    .await;
    a.check(r);
}
