//! An ingest source in a three-node cluster: one node runs it; `kill -9` of that node and a
//! survivor takes the feed over once the source's lease expires; the feed room ends with every
//! event once, in order, nothing lost and nothing doubled.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use banter_feeds::replay::{ReplayConfig, serve};
use banter_tests::stomp::{header, header_u64, room_dest};
use banter_tests::{Node, StompClient, eventually};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use super::three_with;
use crate::e2e::durable::support::prerequisites;

/// Events of the feed.
const EVENTS: usize = 16;

fn frames() -> Vec<String> {
    (1..=EVENTS)
        .map(|i| {
            json!({
                "action": "create",
                "data": {
                    "type": "Feature",
                    "id": format!("E{i:02}"),
                    "properties": {
                        "unid": format!("E{i:02}"), "time": "2026-11-30T10:00:31.2Z",
                        "lat": 38.0, "lon": 26.0, "depth": 10.0, "mag": 3.0 + i as f64 / 10.0,
                    },
                },
            })
            .to_string()
        })
        .collect()
}

#[tokio::test]
async fn a_killed_sources_node_hands_the_feed_to_a_survivor_and_nothing_is_lost_or_doubled() {
    let Some((mysql, broker)) = prerequisites("cluster feeds").await else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let port = listener.local_addr().expect("an address").port();
    let sources = format!(
        "[{{name=\"quakes\",kind=\"emsc\",url=\"ws://127.0.0.1:{port}/\",room=\"Quakes\",max_backoff_secs=1}}]"
    );
    let (a, b, c) = three_with(&broker, &mysql, |_, builder| {
        builder.env("BANTER_FEEDS__SOURCES", sources.clone())
    })
    .await;
    let mut nodes = [a, b, c];
    let result = scenario(&mut nodes, listener).await;
    nodes[0].check(result);
}

async fn scenario(nodes: &mut [Node; 3], listener: TcpListener) -> Result<()> {
    let api = nodes[0].api();
    let alice = api.new_user("alice").await?;
    let room = eventually("the feed room exists", Duration::from_secs(30), || async {
        let list = api
            .get("/api/feeds", Some(&alice.token))
            .await?
            .expect(200)?;
        Ok(list[0]["room_id"].as_i64())
    })
    .await?;
    api.join(&alice.token, room).await?;
    // A reader on each node: the one on a survivor reads to the end.
    let mut readers = Vec::new();
    for node in nodes.iter() {
        let mut c = StompClient::connect(&node.ws_url(), &alice.token).await?;
        c.subscribe(&room_dest(room), "q", None).await?;
        readers.push(c);
    }
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let config = ReplayConfig {
        interval: Duration::from_millis(250),
        drop_after: None,
        overlap: 3,
        repeat: false,
    };
    tokio::spawn(serve(listener, frames(), config, stopped));

    // The node that runs the source is the one connected to the feed.
    let runner = eventually(
        "one node runs the source",
        Duration::from_secs(20),
        || async {
            let mut running = Vec::new();
            for (i, node) in nodes.iter().enumerate() {
                let n = node
                    .metric_matching("banter_feed_connects_total", "feed=\"quakes\"")
                    .await?
                    .unwrap_or(0.0);
                if n > 0.0 {
                    running.push(i);
                }
            }
            ensure!(running.len() <= 1, "the source runs on nodes {running:?}");
            Ok(running.first().copied())
        },
    )
    .await?;
    let survivor = (runner + 1) % 3;
    let mut reader = readers.swap_remove(survivor);
    // Killed mid-feed.
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(next_item(&mut reader).await?);
    }
    nodes[runner].kill9();
    while seen.len() < EVENTS {
        seen.push(next_item(&mut reader).await?);
    }
    let ids: Vec<String> = seen.iter().map(|(_, id)| id.clone()).collect();
    let want: Vec<String> = (1..=EVENTS).map(|i| format!("E{i:02}")).collect();
    ensure!(ids == want, "the feed room got {seen:?}");
    let seqs: BTreeSet<u64> = seen.iter().map(|(s, _)| *s).collect();
    ensure!(seqs.len() == EVENTS, "a seq twice: {seen:?}");
    // Nothing more comes (a replayed event would be a second message).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let more = reader.recv_frame(Duration::from_millis(500)).await;
    ensure!(
        more.as_ref()
            .map_or(true, |f| header(f, "event") != Some("message")),
        "an event came twice: {more:?}"
    );
    let took = nodes[survivor]
        .metric_matching("banter_feed_connects_total", "feed=\"quakes\"")
        .await?
        .unwrap_or(0.0)
        + nodes[(runner + 2) % 3]
            .metric_matching("banter_feed_connects_total", "feed=\"quakes\"")
            .await?
            .unwrap_or(0.0);
    ensure!(took > 0.0, "no survivor connected to the feed");
    let history = nodes[survivor]
        .api()
        .history(&alice.token, room, None, Some(100))
        .await?;
    ensure!(
        history.messages.len() == EVENTS,
        "history: {:?}",
        history.messages
    );
    Ok(())
}

/// The next message of the subscription: its seq and its event id.
async fn next_item(c: &mut StompClient) -> Result<(u64, String)> {
    let f = c
        .recv_where(Duration::from_secs(45), "a feed message", |f| {
            header(f, "event") == Some("message")
        })
        .await?;
    let id = serde_json::from_str::<Value>(&String::from_utf8_lossy(&f.body))
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
        .context("an event id")?;
    Ok((header_u64(&f, "seq").context("a seq")?, id))
}
