//! A replay feed server: serves the frames of a recorded fixture (one per line, sent verbatim,
//! malformed ones included) over a websocket, one every `interval`, the way a live feed would.
//!
//! To play an unreliable source it can drop a connection without a closing handshake after
//! `drop_after` frames, and a client that comes back resumes `overlap` frames before the furthest
//! frame any connection reached (a live feed replays a little after a reconnect), so a client
//! sees events again and must not double them. With `repeat`, it starts over at the end; without,
//! it stays connected and silent (answering pings). Connections are bounded
//! ([`MAX_CONNECTIONS`]); each is served on its own task.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, info};

/// Connections served at once; more wait to be accepted.
pub const MAX_CONNECTIONS: usize = 64;

/// How a replay is paced and broken.
#[derive(Clone, Debug)]
pub struct ReplayConfig {
    /// Time between two frames on a connection.
    pub interval: Duration,
    /// Frames after which each connection is dropped (no closing handshake); `None`: never.
    pub drop_after: Option<usize>,
    /// Frames a new connection goes back before the furthest one reached.
    pub overlap: usize,
    /// Starts over after the last frame.
    pub repeat: bool,
}

/// Reads a fixture: its non-empty lines, each a frame.
pub fn load_fixture(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read the fixture {}", path.display()))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect())
}

/// Serves `frames` on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    frames: Vec<String>,
    config: ReplayConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let frames: Arc<[String]> = frames.into();
    let reached = Arc::new(AtomicUsize::new(0));
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
            _ = shutdown.changed() => return,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let Ok((stream, peer)) = accepted else {
            continue;
        };
        let (frames, config, reached) = (frames.clone(), config.clone(), reached.clone());
        let stop = shutdown.clone();
        tokio::spawn(async move {
            match connection(stream, &frames, &config, &reached, stop).await {
                Ended::Failed(error) => debug!(%peer, %error, "replay connection failed"),
                ended => debug!(%peer, ?ended, "replay connection over"),
            }
            drop(permit);
        });
    }
}

/// How a connection ended.
#[derive(Debug)]
enum Ended {
    Dropped,
    ClientLeft,
    Shutdown,
    Failed(String),
}

async fn connection(
    stream: TcpStream,
    frames: &[String],
    config: &ReplayConfig,
    reached: &AtomicUsize,
    mut shutdown: watch::Receiver<bool>,
) -> Ended {
    let ws = match tokio_tungstenite::accept_async(stream).await {
        Ok(ws) => ws,
        Err(e) => return Ended::Failed(e.to_string()),
    };
    let (mut sink, mut incoming) = ws.split();
    let mut next = reached
        .load(Ordering::Acquire)
        .saturating_sub(config.overlap);
    let mut sent = 0usize;
    let mut tick = tokio::time::interval(config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let more = next < frames.len() || (config.repeat && !frames.is_empty());
        tokio::select! {
            _ = tick.tick(), if more => {
                if next >= frames.len() {
                    next = 0;
                }
                if let Err(e) = sink.send(Message::text(frames[next].clone())).await {
                    return Ended::Failed(e.to_string());
                }
                next += 1;
                sent += 1;
                reached.fetch_max(next, Ordering::AcqRel);
                if config.drop_after == Some(sent) {
                    // Both halves dropped: the TCP connection ends without a close frame.
                    return Ended::Dropped;
                }
            }
            message = incoming.next() => match message {
                Some(Ok(Message::Ping(payload))) => {
                    if sink.send(Message::Pong(payload)).await.is_err() {
                        return Ended::ClientLeft;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ended::ClientLeft,
                Some(Ok(_)) => {}
            },
            _ = shutdown.changed() => return Ended::Shutdown,
        }
    }
}

/// Binds `listen`, logs the address, and serves `frames` until `shutdown` turns true.
pub async fn run(
    listen: &str,
    frames: Vec<String>,
    config: ReplayConfig,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("failed to listen on {listen}"))?;
    let addr = listener.local_addr()?;
    info!(%addr, frames = frames.len(), ?config, "replay feed serving");
    // Scripts read the address from the first line of stdout.
    println!("listening on ws://{addr}");
    serve(listener, frames, config, shutdown).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::connect_async;

    fn frames(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("frame {i}")).collect()
    }

    async fn start(config: ReplayConfig, n: usize) -> (String, watch::Sender<bool>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("ws://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(serve(listener, frames(n), config, stopped));
        (url, stop)
    }

    /// Reads frames until the connection ends or `quiet` passes without one; the texts and
    /// whether it ended.
    async fn read(url: &str, quiet: Duration) -> (Vec<String>, bool) {
        let (mut ws, _) = connect_async(url).await.expect("connect");
        let mut got = Vec::new();
        loop {
            match tokio::time::timeout(quiet, ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => got.push(t.to_string()),
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_)) | None) => return (got, true),
                Err(_) => return (got, false),
            }
        }
    }

    #[tokio::test]
    async fn dropped_connections_resume_with_an_overlap_and_the_end_stays_quiet() {
        let config = ReplayConfig {
            interval: Duration::from_millis(5),
            drop_after: Some(3),
            overlap: 1,
            repeat: false,
        };
        let (url, _stop) = start(config, 6).await;
        let quiet = Duration::from_millis(500);
        let texts = |v: &[usize]| v.iter().map(|i| format!("frame {i}")).collect::<Vec<_>>();
        assert_eq!(read(&url, quiet).await, (texts(&[0, 1, 2]), true));
        assert_eq!(read(&url, quiet).await, (texts(&[2, 3, 4]), true));
        // Past the end: the rest, then silence on an open connection.
        assert_eq!(read(&url, quiet).await, (texts(&[4, 5]), false));
    }

    #[tokio::test]
    async fn pings_are_answered_and_repeat_starts_over() {
        let config = ReplayConfig {
            interval: Duration::from_millis(5),
            drop_after: None,
            overlap: 0,
            repeat: true,
        };
        let (url, stop) = start(config, 2).await;
        let (mut ws, _) = connect_async(&url).await.expect("connect");
        ws.send(Message::Ping(b"hi".to_vec().into()))
            .await
            .expect("ping");
        let (mut texts, mut pong) = (Vec::new(), false);
        while texts.len() < 5 || !pong {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => texts.push(t.to_string()),
                Some(Ok(Message::Pong(p))) => pong = p.as_ref() == b"hi",
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            texts[..5],
            ["frame 0", "frame 1", "frame 0", "frame 1", "frame 0"]
        );
        let _ = stop.send(true);
        let ended = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(Ok(_)) = ws.next().await {}
        })
        .await;
        assert!(ended.is_ok(), "the connection ends on shutdown");
    }
}
