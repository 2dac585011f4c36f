//! `banter-feed-replay`: serves a recorded feed (EMSC format, one frame per line) over a websocket
//! at a chosen pace, dropping connections on purpose, for tests and demos. Prints
//! `listening on ws://ADDR` once it listens; stops on Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::time::Duration;

use banter_feeds::replay::{self, ReplayConfig};
use clap::Parser;

/// Serves a recorded feed over a websocket.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The fixture: one frame per line, sent verbatim (malformed lines too).
    #[arg(long, default_value = "nodes/feeds/fixtures/emsc.jsonl")]
    fixture: PathBuf,
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8765")]
    listen: String,
    /// Milliseconds between two frames.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Drops each connection (no closing handshake) after this many frames.
    #[arg(long)]
    drop_after: Option<usize>,
    /// Frames a returning client goes back before the furthest one sent.
    #[arg(long, default_value_t = 2)]
    overlap: usize,
    /// Starts over after the last frame.
    #[arg(long)]
    repeat: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let frames = replay::load_fixture(&args.fixture)?;
    let config = ReplayConfig {
        interval: Duration::from_millis(args.interval_ms.max(1)),
        drop_after: args.drop_after.filter(|n| *n > 0),
        overlap: args.overlap,
        repeat: args.repeat,
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        let _ = stop.send(true);
    });
    replay::run(&args.listen, frames, config, stopped).await
}
