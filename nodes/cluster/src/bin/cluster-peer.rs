//! `banter-cluster-peer`: a cluster node with nothing but a router, in its own process.
//!
//! The transport tests run it as the peer of the node in the test process (ractor's process groups
//! and actor registry are per process, so two nodes need two processes), and it is handy to probe a
//! node by hand. It prints `listening ADDR` once it accepts peers, then one line per session event,
//! and exits when its standard input closes (so it never outlives the test that started it).
//!
//! Its router counts the chat envelopes delivered to it and answers an asked chat envelope with that
//! count in `seq`; probes are answered by the router itself.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use banter_cluster::{ClusterNode, Handler, NodeConfig, Router};
use banter_proto::v1::{Envelope, FanOut, envelope};
use clap::Parser;
use tokio::io::AsyncReadExt;

/// A cluster node with a router, for tests and probing.
#[derive(Debug, Parser)]
struct Args {
    /// This node's name.
    #[arg(long)]
    name: String,
    /// The cluster cookie.
    #[arg(long)]
    cookie: String,
    /// Where to accept peers.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Peers to connect to once listening.
    #[arg(long)]
    connect: Vec<SocketAddr>,
    /// Largest frame a peer may send, in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    max_frame_bytes: u64,
    /// Seconds a session may take to authenticate.
    #[arg(long, default_value_t = 5.0)]
    handshake_timeout: f64,
    /// TLS: this node's certificate chain (PEM); with `--tls-key` and `--tls-ca`.
    #[arg(long, requires_all = ["tls_key", "tls_ca"])]
    tls_cert: Option<std::path::PathBuf>,
    /// TLS: this node's private key (PEM).
    #[arg(long)]
    tls_key: Option<std::path::PathBuf>,
    /// TLS: the cluster's certificate authority (PEM).
    #[arg(long)]
    tls_ca: Option<std::path::PathBuf>,
}

/// Counts fan-out envelopes; answers an asked one with the count so far (as its seq).
#[derive(Default)]
struct Counter {
    chats: AtomicU64,
}

impl Handler for Counter {
    fn deliver(&self, envelope: Envelope) {
        if let Some(envelope::Body::FanOut(_)) = envelope.body {
            self.chats.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn ask(&self, envelope: Envelope) -> Envelope {
        Envelope {
            body: Some(envelope::Body::FanOut(FanOut {
                seq: Some(self.chats.load(Ordering::Relaxed)),
                ..FanOut::default()
            })),
            ..envelope
        }
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // The test reads these lines; a closed stdout means it is gone, and stdin will close too.
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut config = NodeConfig::new(args.name.clone(), args.cookie);
    config.listen = args.listen;
    config.max_frame_bytes = args.max_frame_bytes;
    config.handshake_timeout = Duration::from_secs_f64(args.handshake_timeout);
    if let (Some(cert_file), Some(key_file), Some(ca_file)) =
        (args.tls_cert, args.tls_key, args.tls_ca)
    {
        config.tls = Some(banter_cluster::tls::Tls::load(
            &banter_cluster::tls::TlsSettings {
                cert_file,
                key_file,
                ca_file,
                server_name: None,
            },
        )?);
    }
    let node = ClusterNode::start(config).await?;
    let _router = Router::spawn(&args.name, Arc::new(Counter::default())).await?;
    let mut events = node.subscribe();
    tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            say(&format!(
                "event {:?} {} {}",
                event.kind,
                event.node_id,
                event.peer_name.as_deref().unwrap_or("-")
            ));
        }
    });
    say(&format!("listening {}", node.local_addr()));
    for peer in args.connect {
        node.connect(peer).await?;
    }
    // Runs until stdin closes.
    let mut sink = [0u8; 64];
    let mut stdin = tokio::io::stdin();
    while stdin.read(&mut sink).await.unwrap_or(0) > 0 {}
    node.stop().await;
    Ok(())
}
