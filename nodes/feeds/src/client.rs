//! The feed client: one websocket connection to a live feed (`ws://` or `wss://`), kept up for as
//! long as it runs, whose text frames it hands over raw (the caller journals a frame before it
//! parses it).
//!
//! - It pings every `ping_every` (15 s) and gives a connection up when nothing (a frame, a pong)
//!   came for `silence` (45 s): a feed that stalls without closing is a dead feed.
//! - It reconnects after a drop or a failed attempt, waiting a backoff that doubles from
//!   `backoff_min` (1 s) to `backoff_max` (60 s), each wait drawn between half and all of it
//!   (jitter, so that nodes do not reconnect in step); a connection that delivered a frame resets
//!   it. It never loops without waiting: a feed that is down costs a connection attempt per
//!   backoff.
//! - Frames are handed over a bounded channel: a slow consumer slows the reading, and the
//!   socket's buffers push back on the feed. A frame may be up to [`MAX_FRAME_BYTES`] (the
//!   parser refuses what is larger than an event, so that one oversized event is skipped, not a
//!   reconnect loop); a larger one drops the connection.
//! - TLS: rustls with the system's roots.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::{debug, info, warn};

/// Largest frame read, in bytes.
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;

/// Counter: connections made to a feed (label `feed`).
pub const CONNECTS: &str = "banter_feed_connects_total";
/// Counter: connections lost or attempts failed (labels `feed`, `reason`: `closed`, `silent`,
/// `error`, `refused`).
pub const DISCONNECTS: &str = "banter_feed_disconnects_total";

/// Describes the client's metrics to the installed recorder.
pub fn describe_metrics() {
    use metrics::{Unit, describe_counter};
    describe_counter!(CONNECTS, Unit::Count, "connections made to a feed, by feed");
    describe_counter!(
        DISCONNECTS,
        Unit::Count,
        "connections to a feed lost or attempts failed, by feed and reason"
    );
}

/// How the client connects and when it gives up a connection.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The feed's name (a metric label).
    pub name: String,
    /// `ws://` or `wss://` URL.
    pub url: String,
    /// Time between two pings.
    pub ping_every: Duration,
    /// A connection with nothing received for this long is given up.
    pub silence: Duration,
    /// First wait before reconnecting.
    pub backoff_min: Duration,
    /// Longest wait before reconnecting.
    pub backoff_max: Duration,
    /// Longest wait for a connection (TCP, TLS and the websocket handshake).
    pub connect_timeout: Duration,
}

impl ClientConfig {
    /// The defaults for a feed at `url`.
    pub fn new(name: &str, url: &str) -> ClientConfig {
        ClientConfig {
            name: name.to_owned(),
            url: url.to_owned(),
            ping_every: Duration::from_secs(15),
            silence: Duration::from_secs(45),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// What the client hands over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeedItem {
    /// A connection is up.
    Connected,
    /// A text frame, as received.
    Frame(String),
    /// The connection is gone (why); the client reconnects after a backoff.
    Disconnected(String),
}

/// Keeps a connection to the feed and hands its frames to `out` until `shutdown` turns true or
/// `out` is closed.
pub async fn run(
    config: ClientConfig,
    out: mpsc::Sender<FeedItem>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff = config.backoff_min;
    let connector = tls_connector();
    loop {
        let (reason, delivered) = tokio::select! {
            outcome = connection(&config, &out, connector.clone()) => outcome,
            _ = shutdown.changed() => return,
        };
        if out.is_closed() {
            return;
        }
        metrics::counter!(DISCONNECTS, "feed" => config.name.clone(), "reason" => reason.label())
            .increment(1);
        if delivered {
            backoff = config.backoff_min;
        }
        let _ = out.send(FeedItem::Disconnected(reason.to_string())).await;
        let wait = jittered(backoff);
        info!(feed = %config.name, %reason, wait_ms = wait.as_millis() as u64, "feed disconnected; reconnecting");
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2)
            .min(config.backoff_max)
            .max(config.backoff_min);
    }
}

/// Why a connection ended.
#[derive(Debug)]
enum Ended {
    Refused(String),
    Closed,
    Silent,
    Error(String),
}

impl Ended {
    fn label(&self) -> &'static str {
        match self {
            Ended::Refused(_) => "refused",
            Ended::Closed => "closed",
            Ended::Silent => "silent",
            Ended::Error(_) => "error",
        }
    }
}

impl std::fmt::Display for Ended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ended::Refused(why) => write!(f, "could not connect: {why}"),
            Ended::Closed => f.write_str("the feed closed the connection"),
            Ended::Silent => f.write_str("nothing received for too long"),
            Ended::Error(why) => write!(f, "connection error: {why}"),
        }
    }
}

/// One connection: returns why it ended, and whether it delivered a frame.
async fn connection(
    config: &ClientConfig,
    out: &mpsc::Sender<FeedItem>,
    connector: Option<tokio_tungstenite::Connector>,
) -> (Ended, bool) {
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES));
    let connect = tokio_tungstenite::connect_async_tls_with_config(
        config.url.as_str(),
        Some(ws_config),
        true,
        connector,
    );
    let ws = match tokio::time::timeout(config.connect_timeout, connect).await {
        Ok(Ok((ws, _))) => ws,
        Ok(Err(e)) => return (Ended::Refused(e.to_string()), false),
        Err(_) => return (Ended::Refused("timed out".into()), false),
    };
    metrics::counter!(CONNECTS, "feed" => config.name.clone()).increment(1);
    info!(feed = %config.name, url = %config.url, "feed connected");
    if out.send(FeedItem::Connected).await.is_err() {
        return (Ended::Closed, false);
    }
    let (mut sink, mut stream) = ws.split();
    let mut ping = tokio::time::interval_at(Instant::now() + config.ping_every, config.ping_every);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    let mut delivered = false;
    loop {
        let silent_at = last_heard + config.silence;
        tokio::select! {
            message = stream.next() => {
                last_heard = Instant::now();
                match message {
                    Some(Ok(Message::Text(text))) => {
                        delivered = true;
                        if out.send(FeedItem::Frame(text.to_string())).await.is_err() {
                            return (Ended::Closed, delivered);
                        }
                    }
                    Some(Ok(Message::Ping(payload))) => {
                        if let Err(e) = sink.send(Message::Pong(payload)).await {
                            return (Ended::Error(e.to_string()), delivered);
                        }
                    }
                    Some(Ok(Message::Close(_))) | None => return (Ended::Closed, delivered),
                    Some(Ok(other)) => debug!(feed = %config.name, kind = ?other, "non-text frame ignored"),
                    Some(Err(e)) => return (Ended::Error(e.to_string()), delivered),
                }
            }
            _ = ping.tick() => {
                if let Err(e) = sink.send(Message::Ping(Vec::new().into())).await {
                    return (Ended::Error(e.to_string()), delivered);
                }
            }
            () = tokio::time::sleep_until(silent_at) => {
                warn!(feed = %config.name, silence_s = config.silence.as_secs(), "feed silent; giving the connection up");
                return (Ended::Silent, delivered);
            }
        }
    }
}

/// A wait between half and all of `backoff`.
fn jittered(backoff: Duration) -> Duration {
    let half = backoff / 2;
    let spread = u64::try_from((backoff - half).as_millis()).unwrap_or(u64::MAX);
    half + Duration::from_millis(rand::random_range(0..=spread))
}

/// rustls with the system's root certificates, for `wss://` feeds; `None` (tungstenite's own
/// choice) when the system has none.
fn tls_connector() -> Option<tokio_tungstenite::Connector> {
    use tokio_rustls::rustls::{ClientConfig as TlsConfig, RootCertStore};
    let mut roots = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        warn!("no system root certificates: wss:// feeds cannot be verified");
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = TlsConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Some(tokio_tungstenite::Connector::Rustls(Arc::new(config)))
}

#[cfg(test)]
mod tests;
