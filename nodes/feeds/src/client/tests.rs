//! The client against the replay server and against feeds that fail: it resumes after a drop,
//! waits between attempts while a feed is down, and gives up a connection that falls silent.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use super::*;
use crate::replay::{ReplayConfig, serve};

fn config(url: &str) -> ClientConfig {
    ClientConfig {
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        connect_timeout: Duration::from_secs(5),
        ..ClientConfig::new("test", url)
    }
}

fn start(config: ClientConfig) -> (mpsc::Receiver<FeedItem>, watch::Sender<bool>) {
    let (tx, rx) = mpsc::channel(16);
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(run(config, tx, stopped));
    (rx, stop)
}

#[tokio::test]
async fn frames_arrive_in_order_and_a_dropped_connection_is_resumed() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}", listener.local_addr().expect("addr"));
    let frames: Vec<String> = (0..6).map(|i| format!("frame {i}")).collect();
    let replay = ReplayConfig {
        interval: Duration::from_millis(5),
        drop_after: Some(3),
        overlap: 1,
        repeat: false,
    };
    let (_server_stop, server_stopped) = watch::channel(false);
    tokio::spawn(serve(listener, frames, replay, server_stopped));
    let (mut items, _stop) = start(config(&url));
    let mut seen = Vec::new();
    while seen.last() != Some(&FeedItem::Frame("frame 5".into())) {
        let item = tokio::time::timeout(Duration::from_secs(10), items.recv())
            .await
            .expect("an item within 10 s")
            .expect("the client runs");
        seen.push(item);
    }
    let shown: Vec<String> = seen
        .iter()
        .map(|i| match i {
            FeedItem::Connected => "+".to_owned(),
            FeedItem::Frame(f) => f.trim_start_matches("frame ").to_owned(),
            FeedItem::Disconnected(_) => "-".to_owned(),
        })
        .collect();
    assert_eq!(
        shown.join(" "),
        "+ 0 1 2 - + 2 3 4 - + 4 5",
        "resumed after each drop, with the server's overlap"
    );
}

#[tokio::test]
async fn a_feed_that_is_down_is_retried_after_growing_waits_not_in_a_loop() {
    let free = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}", free.local_addr().expect("addr"));
    drop(free);
    let (mut items, stop) = start(config(&url));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _ = stop.send(true);
    let mut attempts = 0;
    while let Ok(item) = items.try_recv() {
        assert!(
            matches!(item, FeedItem::Disconnected(ref why) if why.starts_with("could not connect")),
            "{item:?}"
        );
        attempts += 1;
    }
    // Waits of at least 25, 50, then 100 ms each (half of 50, 100, 200): at most 16 attempts in
    // 1.5 s, where a loop without waits would make thousands.
    assert!((3..=16).contains(&attempts), "{attempts} attempts in 1.5 s");
}

#[tokio::test]
async fn a_connection_that_falls_silent_is_given_up() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}", listener.local_addr().expect("addr"));
    // A feed that completes the handshake, then neither sends nor answers pings.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            if let Ok(ws) = tokio_tungstenite::accept_async(stream).await {
                held.push(ws);
            }
        }
    });
    let (mut items, _stop) = start(ClientConfig {
        ping_every: Duration::from_millis(50),
        silence: Duration::from_millis(300),
        ..config(&url)
    });
    let first = items.recv().await.expect("connected");
    assert_eq!(first, FeedItem::Connected);
    let started = std::time::Instant::now();
    let next = tokio::time::timeout(Duration::from_secs(5), items.recv())
        .await
        .expect("given up within 5 s")
        .expect("an item");
    assert_eq!(
        next,
        FeedItem::Disconnected("nothing received for too long".into())
    );
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
}
