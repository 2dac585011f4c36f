//! N authenticated connections, each subscribed (to the user's own queue on Banter, to a room on the
//! baseline) and then silent; the server's RSS before and after gives the memory per connection.

use std::time::Duration;

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use tokio::sync::watch;

use super::Target;
use crate::api::Api;
use crate::client;

/// Connections opened at once.
const CONNECT_CONCURRENCY: usize = 64;

/// Shape of an idle run.
#[derive(Clone, Debug, Serialize)]
pub struct IdleSpec {
    /// Connections (one user each on Banter).
    pub connections: usize,
    /// Prefix of the usernames.
    pub user_prefix: String,
    /// Server process whose RSS is measured.
    pub pid: Option<u32>,
    /// Seconds to hold the connections after the last one is up (RSS is read at the end).
    pub hold_secs: f64,
    /// Client heart-beat offer.
    pub heart_beat: (u64, u64),
}

/// Result of an idle run.
#[derive(Clone, Debug, Serialize)]
pub struct IdleReport {
    /// `banter` or `baseline`.
    pub target: &'static str,
    /// The spec.
    pub spec: IdleSpec,
    /// Seconds spent setting up users.
    pub users_secs: f64,
    /// Seconds spent opening connections.
    pub connect_secs: f64,
    /// Connections still open at the end.
    pub open: usize,
    /// Server RSS before the connections, bytes.
    pub rss_before: Option<u64>,
    /// Server RSS with every connection open, bytes.
    pub rss_after: Option<u64>,
    /// (after − before) / connections, bytes.
    pub rss_per_connection: Option<f64>,
    /// Connections the server closed during the hold.
    pub dropped: usize,
}

/// Opens the connections, holds them, measures.
pub async fn run(target: Target, spec: IdleSpec) -> Result<IdleReport> {
    let nofile = crate::net::raise_nofile();
    if (spec.connections as u64) + 64 > nofile {
        anyhow::bail!(
            "{} connections need more open files than this process may have ({nofile})",
            spec.connections
        );
    }
    let server = target.addr();
    let started = std::time::Instant::now();
    let tokens: Vec<Option<String>> = match target {
        Target::Baseline(_) => vec![None; spec.connections],
        Target::Banter(addr) => Api::new(addr)?
            .accounts(&spec.user_prefix, spec.connections)
            .await?
            .into_iter()
            .map(|a| Some(a.token))
            .collect(),
    };
    let users_secs = started.elapsed().as_secs_f64();
    let rss = |pid: Option<u32>| pid.map(crate::net::rss_bytes).transpose();
    let rss_before = rss(spec.pid)?;
    let started = std::time::Instant::now();
    let spread = crate::net::is_loopback(server);
    let hb = spec.heart_beat;
    let destination = match target {
        Target::Banter(_) => "/user/queue/events",
        Target::Baseline(_) => "/rooms/1",
    };
    let conns: Vec<client::Ws> = futures::stream::iter(tokens.into_iter().enumerate())
        .map(|(i, token)| async move {
            let source = spread.then(|| crate::net::source_ip(i));
            let mut ws = client::connect(server, source, token.as_deref(), hb)
                .await
                .with_context(|| format!("connection {i}"))?;
            client::subscribe(&mut ws, destination).await?;
            anyhow::Ok(ws)
        })
        .buffer_unordered(CONNECT_CONCURRENCY)
        .try_collect()
        .await?;
    let connect_secs = started.elapsed().as_secs_f64();

    // Each connection reads (and answers pings) until the end, counting closes by the server.
    let (stop_tx, stop_rx) = watch::channel(false);
    let readers: Vec<_> = conns
        .into_iter()
        .map(|mut ws| {
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.changed() => return true,
                        msg = ws.next() => match msg {
                            Some(Ok(_)) => {}
                            _ => return false,
                        },
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(spec.hold_secs.max(0.5))).await;
    let rss_after = rss(spec.pid)?;
    let _ = stop_tx.send(true);
    let mut open = 0;
    for r in readers {
        if r.await.unwrap_or(false) {
            open += 1;
        }
    }
    let rss_per_connection = match (rss_before, rss_after) {
        (Some(b), Some(a)) if spec.connections > 0 => {
            Some((a as f64 - b as f64) / spec.connections as f64)
        }
        _ => None,
    };
    Ok(IdleReport {
        target: target.name(),
        dropped: spec.connections - open,
        spec,
        users_secs,
        connect_secs,
        open,
        rss_before,
        rss_after,
        rss_per_connection,
    })
}
