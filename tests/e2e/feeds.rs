//! Ingest sources (issue #21) on the embedded node, fed by the replay server over a real websocket:
//! one event created, updated twice and withdrawn becomes one message, two edits and one
//! tombstone, in order, live and in history; the replay drops the connection every few frames and
//! sends the overlap again, and nothing is doubled; a second room follows the same source with its
//! own filters; the GeoJSON endpoint agrees; malformed, oversized and unknown frames are skipped and
//! counted; while the feed is down the node stays idle.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use banter_feeds::replay::{ReplayConfig, serve};
use banter_tests::stomp::{header, header_u64, room_dest};
use banter_tests::{Node, NodeBuilder, StompClient, eventually};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// One EMSC frame.
fn frame(action: &str, id: &str, mag: f64, lon: f64, lat: f64) -> String {
    json!({
        "action": action,
        "data": {
            "type": "Feature",
            "id": id,
            "geometry": {"type": "Point", "coordinates": [lon, lat, -10.0]},
            "properties": {
                "unid": id, "time": "2026-11-30T10:00:31.2Z", "lat": lat, "lon": lon,
                "depth": 10.0, "mag": mag, "magtype": "ml", "flynn_region": "SOMEWHERE",
            },
        },
    })
    .to_string()
}

/// The feed: A is created, updated twice and withdrawn; B is small; C is large and in Chile; bad
/// frames in between.
fn frames() -> Vec<String> {
    vec![
        frame("create", "A1", 3.0, 26.1, 38.2),
        frame("create", "B1", 2.0, 13.4, 42.3),
        "{\"action\":\"create\",\"data\":{".to_owned(),
        frame("update", "A1", 3.5, 26.1, 38.2),
        frame("quake", "X1", 1.0, 0.0, 0.0),
        frame("update", "A1", 3.5, 26.1, 38.2),
        frame("update", "A1", 3.8, 26.1, 38.2),
        format!(
            "{}{}",
            frame("create", "Z1", 1.0, 0.0, 0.0),
            " ".repeat(70_000)
        ),
        frame("delete", "A1", 0.0, 0.0, 0.0),
        frame("create", "C1", 4.6, -72.6, -33.1),
    ]
}

/// What a feed room's member sees of the feed: (event, event id, target seq).
type Item = (String, String, Option<u64>);

#[tokio::test]
async fn a_replayed_feed_becomes_messages_edits_and_tombstones_once() {
    // The feed's port is taken now; it serves once the rooms are set up.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let port = listener.local_addr().expect("an address").port();
    let sources = format!(
        "[{{name=\"quakes\",kind=\"emsc\",url=\"ws://127.0.0.1:{port}/\",room=\"Quakes\",max_backoff_secs=1}}]"
    );
    let node = NodeBuilder::new("feeds")
        .env("BANTER_FEEDS__SOURCES", sources)
        .start()
        .await
        .expect("node");
    node.check(scenario(&node, listener).await);
}

async fn scenario(node: &Node, listener: TcpListener) -> Result<()> {
    let api = node.api();
    let alice = api.new_user("alice").await?;
    let bob = api.new_user("bob").await?;
    let sources = eventually("the source is known", Duration::from_secs(15), || async {
        let list = api
            .get("/api/feeds", Some(&alice.token))
            .await?
            .expect(200)?;
        Ok(list.as_array().filter(|a| !a.is_empty()).cloned())
    })
    .await?;
    ensure!(sources[0]["name"] == "quakes", "{sources:?}");
    let quakes = sources[0]["room_id"].as_i64().context("its room")?;
    api.join(&alice.token, quakes).await?;
    // Bob's room shows the large events of South America only.
    let chile = api
        .post(
            "/api/feeds/quakes/rooms",
            Some(&bob.token),
            &json!({"name": "Big ones", "min_magnitude": 4.5,
                "bbox": {"west": -90.0, "south": -60.0, "east": -30.0, "north": 15.0}}),
        )
        .await?
        .expect(201)?["id"]
        .as_i64()
        .context("a room id")?;
    let feed = api
        .get(&format!("/api/rooms/{chile}/feed"), Some(&bob.token))
        .await?
        .expect(200)?;
    ensure!(
        feed["source"] == "quakes" && feed["min_magnitude"] == 4.5,
        "{feed}"
    );

    let ws = node.ws_url();
    let mut a = StompClient::connect(&ws, &alice.token).await?;
    a.subscribe(&room_dest(quakes), "q", None).await?;
    let mut b = StompClient::connect(&ws, &bob.token).await?;
    b.subscribe(&room_dest(chile), "c", None).await?;
    // People read a feed room; they do not post in it.
    let mut c2 = StompClient::connect(&ws, &alice.token).await?;
    c2.send(&room_dest(quakes), "hello?", Some("x")).await?;
    let error = c2.expect_error().await?;
    ensure!(error.starts_with("feed_room: "), "{error}");

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let config = ReplayConfig {
        interval: Duration::from_millis(30),
        drop_after: Some(4),
        overlap: 2,
        repeat: false,
    };
    let server = tokio::spawn(serve(listener, frames(), config, stopped));

    let want: Vec<Item> = vec![
        ("message".into(), "A1".into(), None),
        ("message".into(), "B1".into(), None),
        ("edit".into(), "A1".into(), Some(1)),
        ("edit".into(), "A1".into(), Some(1)),
        ("delete".into(), String::new(), Some(1)),
        ("message".into(), "C1".into(), None),
    ];
    let live = items(&mut a, want.len()).await?;
    ensure!(live == want, "live in Quakes: {live:?}");
    let live = items(&mut b, 1).await?;
    ensure!(
        live == [("message".to_owned(), "C1".to_owned(), None)],
        "live in Big ones: {live:?}"
    );
    // The feed replays after each drop: give it time to send the overlap again, then nothing more
    // may arrive.
    eventually(
        "the whole feed was sent",
        Duration::from_secs(30),
        || async {
            Ok(node
                .metric_matching("banter_feed_events_skipped_total", "reason=\"oversized\"")
                .await?
                .filter(|n| *n >= 1.0))
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let more = a.recv_frame(Duration::from_millis(500)).await;
    ensure!(more.is_err(), "a replay was delivered again: {more:?}");

    // History: messages only, as the events left them.
    let page = api.history(&alice.token, quakes, None, None).await?;
    let shown: Vec<(u64, bool, String)> = page
        .messages
        .iter()
        .map(|m| (m.seq, m.deleted_at_ms.is_some(), feature_id(&m.body)))
        .collect();
    ensure!(
        shown
            == [
                (6, false, "C1".into()),
                (2, false, "B1".into()),
                (1, true, String::new())
            ],
        "history of Quakes: {shown:?}"
    );
    ensure!(page.messages[0].content_type == "application/geo+json");

    // GeoJSON: the events not withdrawn, newest first (by event time, then id), with filters.
    let all = geojson(node, &alice.token, "").await?;
    ensure!(
        all == ["C1", "B1"] || all == ["B1", "C1"],
        "events: {all:?}"
    );
    ensure!(geojson(node, &alice.token, "?min_mag=4").await? == ["C1"]);
    ensure!(geojson(node, &alice.token, "?bbox=0,30,30,50").await? == ["B1"]);
    ensure!(
        geojson(node, &alice.token, "?since=1900000000000")
            .await?
            .is_empty()
    );
    let bad = api
        .get("/api/feeds/quakes/events?bbox=1,2,3", Some(&alice.token))
        .await?;
    ensure!(bad.status == 400, "{bad:?}");

    for reason in ["malformed", "oversized", "unknown_action"] {
        let n = node
            .metric_matching(
                "banter_feed_events_skipped_total",
                &format!("reason=\"{reason}\""),
            )
            .await?;
        ensure!(n.is_some_and(|n| n >= 1.0), "{reason}: {n:?}");
    }

    // Filters are the owner's to set; a room that follows nothing says so.
    let put = |token: &str, body: Value| {
        let (api, token) = (node.api(), token.to_owned());
        async move {
            let url = api.url(&format!("/api/rooms/{chile}/feed"));
            let r = api
                .http()
                .put(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await?;
            Ok::<_, anyhow::Error>((r.status().as_u16(), r.json::<Value>().await?))
        }
    };
    let (status, _) = put(&alice.token, json!({"min_magnitude": 1.0})).await?;
    ensure!(status == 403, "a non-member set the filters: {status}");
    let (status, body) = put(&bob.token, json!({"min_magnitude": 3.0})).await?;
    ensure!(
        status == 200 && body["min_magnitude"] == 3.0 && body["bbox"].is_null(),
        "{status} {body}"
    );
    let group = api.create_room(&alice.token, "plain").await?.id;
    let none = api
        .get(&format!("/api/rooms/{group}/feed"), Some(&alice.token))
        .await?
        .expect(200)?;
    ensure!(none["source"].is_null(), "{none}");

    // The feed goes down: the node waits between attempts, it does not spin.
    let _ = stop.send(true);
    let _ = server.await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = cpu_ticks(node)?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let used = cpu_ticks(node)? - before;
    // 100 ticks a second: a loop would burn about 500 in 5 s.
    ensure!(
        used < 100,
        "the node used {used} CPU ticks in 5 s while the feed was down"
    );
    Ok(())
}

/// Reads `n` room items of the subscription.
async fn items(c: &mut StompClient, n: usize) -> Result<Vec<Item>> {
    let mut out = Vec::new();
    for _ in 0..n {
        let f = c
            .recv_where(Duration::from_secs(20), "a feed item", |f| {
                header(f, "event").is_some_and(|e| e != "typing" && e != "read")
            })
            .await?;
        out.push((
            header(&f, "event").unwrap_or("").to_owned(),
            feature_id(&String::from_utf8_lossy(&f.body)),
            header_u64(&f, "target-seq"),
        ));
    }
    Ok(out)
}

fn feature_id(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["id"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

async fn geojson(node: &Node, token: &str, query: &str) -> Result<Vec<String>> {
    let body = node
        .api()
        .get(&format!("/api/feeds/quakes/events{query}"), Some(token))
        .await?
        .expect(200)?;
    ensure!(body["type"] == "FeatureCollection", "{body}");
    Ok(body["features"]
        .as_array()
        .context("features")?
        .iter()
        .filter_map(|f| f["id"].as_str().map(str::to_owned))
        .collect())
}

/// The node's CPU time so far, in clock ticks (user + system, from /proc).
fn cpu_ticks(node: &Node) -> Result<u64> {
    let pid = node.pid().context("a running node")?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit(')').next().context("stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11).context("utime")?.parse()?;
    let stime: u64 = fields.get(12).context("stime")?.parse()?;
    Ok(utime + stime)
}
