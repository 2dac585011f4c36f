//! Users' actors in the cluster: a user's actor lives on the owner of the user's shard, so the
//! grants asked on every node for one user are counted by one actor (one rate), an attachment sent
//! through one node is checked by that actor wherever it lives, and members on other nodes get it
//! live, in history and as a download, on the Kafka journal and MySQL.

use anyhow::{Context, Result, ensure};
use banter_proto::stomp::Command;
use banter_tests::s3::{S3Server, post_form};
use banter_tests::stomp::room_dest;
use banter_tests::{Node, StompClient, eventually, unique};
use serde_json::json;

use super::three_with;
use crate::e2e::durable::support::{STORE_WAIT, prerequisites};
use crate::e2e::uploads::{Grant, png, send_attached};

/// Grants per minute per user in this test.
const RATE: usize = 4;

#[tokio::test]
async fn a_users_actor_serves_grants_and_attachments_asked_on_every_node() {
    let Some((mysql, broker)) = prerequisites("cluster uploads").await else {
        return;
    };
    let Some(s3) = S3Server::start().await.expect("s3") else {
        return;
    };
    let bucket = unique("cluster").to_lowercase().replace('_', "-");
    let env = s3.node_env(&bucket);
    let (a, b, c) = three_with(&broker, &mysql, |_, mut builder| {
        for (k, v) in &env {
            builder = builder.env(k, v);
        }
        builder.env("BANTER_MEDIA__UPLOADS_PER_MINUTE", RATE)
    })
    .await;
    a.check(scenario([&a, &b, &c], &mysql).await);
}

async fn grant(
    node: &Node,
    token: &str,
    room: i64,
    file: &[u8],
) -> Result<banter_tests::api::Resp> {
    let body = json!({"filename": "photo.png", "content_type": "image/png", "size": file.len()});
    node.api()
        .post(&format!("/api/rooms/{room}/uploads"), Some(token), &body)
        .await
}

async fn scenario(nodes: [&Node; 3], mysql: &str) -> Result<()> {
    let api = nodes[0].api();
    let (alice, bob) = (api.new_user("alice").await?, api.new_user("bob").await?);
    let room = api.create_room(&alice.token, &unique("media")).await?;
    api.join(&bob.token, room.id).await?;
    let image = png(120, 90);
    // One actor counts alice's grants, whichever node they are asked on: RATE pass, then none.
    let mut grants = Vec::new();
    for i in 0..RATE {
        let node = nodes[i % 3];
        let answer = grant(node, &alice.token, room.id, &image).await?;
        grants.push(
            answer
                .parse::<Grant>(201)
                .with_context(|| format!("grant {i}"))?,
        );
    }
    for node in nodes {
        let refused = grant(node, &alice.token, room.id, &image).await?;
        ensure!(
            refused.status == 429 && refused.body["error"]["code"] == "rate_limited",
            "one rate for alice in the cluster: {refused:?}"
        );
    }
    let mut remote = 0.0;
    for node in nodes {
        remote += node
            .metric_matching("banter_cluster_routed_in_total", "kind=\"to_account\"")
            .await?
            .unwrap_or(0.0);
    }
    ensure!(
        remote >= 2.0,
        "grants crossed to the actor's node: {remote}"
    );
    // The file goes straight to S3; alice sends it through the second node, bob reads it on the
    // third.
    let grant = &grants[0];
    let fields: Vec<(String, String)> = grant
        .fields
        .iter()
        .map(|f| (f.name.clone(), f.value.clone()))
        .collect();
    let status = post_form(&grant.url, &fields, image.clone()).await?;
    ensure!((200..300).contains(&status), "upload: {status}");
    let dest = room_dest(room.id);
    let mut reader = StompClient::connect(&nodes[2].ws_url(), &bob.token).await?;
    reader.subscribe(&dest, "s", None).await?;
    let answer = send_attached(nodes[1], &alice.token, &dest, &grant.upload_id).await?;
    ensure!(answer.command == Command::Receipt, "sent: {answer:?}");
    let message = reader.recv_message("s").await?;
    let header =
        banter_tests::frames::header(&message, "attachments").context("attachments header")?;
    let attached: Vec<serde_json::Value> = serde_json::from_str(header)?;
    ensure!(
        attached.len() == 1 && attached[0]["width"] == 120 && attached[0]["height"] == 90,
        "{attached:?}"
    );
    let history = nodes[2]
        .api()
        .history(&bob.token, room.id, None, None)
        .await?;
    let stored = history.messages.first().context("in history")?;
    ensure!(stored.attachments == attached, "{:?}", stored.attachments);
    // The journal carries them to the persister: MySQL's row has them too.
    let db = nodes[0].mysql_database().context("a database")?;
    let sql = format!(
        "SELECT COUNT(*) FROM messages WHERE room_id = {} AND attachments LIKE '%{}%'",
        room.id, grant.upload_id
    );
    eventually("MySQL holds the attachment", STORE_WAIT, || async {
        Ok((banter_tests::mysql::query(mysql, db, &sql)?.trim() == "1").then_some(()))
    })
    .await?;
    // Bob downloads it through the first node: the same bytes.
    let path = format!("/api/rooms/{}/attachments/{}", room.id, grant.upload_id);
    let signed = nodes[0]
        .api()
        .get(&path, Some(&bob.token))
        .await?
        .expect(200)?;
    let url = signed["url"].as_str().context("a url")?;
    let got = reqwest::get(url).await?.bytes().await?;
    ensure!(got.as_ref() == image.as_slice(), "downloaded bytes");
    // Attached once, also when asked again through another node.
    let again = send_attached(nodes[2], &alice.token, &dest, &grant.upload_id).await?;
    ensure!(again.command == Command::Error, "attached twice: {again:?}");
    Ok(())
}
