//! `banter-loadgen`: drives load against a Banter node or the baseline server, and measures the
//! ceilings of the stack. Every command prints a table and, with `--json FILE`, appends its report to
//! FILE as one JSON line. See BENCHMARKS.md for how `scripts/bench.sh` uses it.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use banter_loadgen::ceiling::{self, ProduceSpec};
use banter_loadgen::report;
use banter_loadgen::scenario::Target;
use banter_loadgen::scenario::idle::{self, IdleSpec};
use banter_loadgen::scenario::rooms::{self, RoomsSpec, Step};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;

#[derive(Parser)]
#[command(
    name = "banter-loadgen",
    version,
    about = "Load generator and benchmark tools for Banter"
)]
struct Cli {
    /// Append the report to this file as one JSON line.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs the baseline broadcast server.
    Baseline {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9100")]
        listen: SocketAddr,
    },
    /// One room, N subscribers, one sender at increasing rates.
    Fanout {
        #[command(flatten)]
        target: TargetArgs,
        /// Subscribers of the room.
        #[arg(long, default_value_t = 1000)]
        subscribers: usize,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// R rooms of M members, everyone talking.
    Chat {
        #[command(flatten)]
        target: TargetArgs,
        /// Rooms.
        #[arg(long, default_value_t = 1000)]
        rooms: usize,
        /// Members per room, all of them sending and subscribed.
        #[arg(long, default_value_t = 10)]
        members: usize,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// N idle authenticated connections; the server's RSS per connection.
    Idle {
        #[command(flatten)]
        target: TargetArgs,
        /// Connections.
        #[arg(long, default_value_t = 1000)]
        connections: usize,
        /// Server process id, for its RSS.
        #[arg(long)]
        pid: Option<u32>,
        /// Seconds to hold the connections open.
        #[arg(long, default_value_t = 3.0)]
        hold_secs: f64,
        /// Username prefix.
        #[arg(long, default_value = "idle")]
        user_prefix: String,
    },
    /// rdkafka producing journal records straight to the broker (the broker's ceiling).
    Produce {
        /// Bootstrap brokers.
        #[arg(long, default_value = "127.0.0.1:19092")]
        brokers: String,
        /// Topic (created when missing).
        #[arg(long, default_value = "loadgen.ceiling")]
        topic: String,
        /// Partitions of the topic.
        #[arg(long, default_value_t = 6)]
        partitions: i32,
        /// Records.
        #[arg(long, default_value_t = 50_000)]
        messages: u64,
        /// Message body bytes.
        #[arg(long, default_value_t = 150)]
        body_bytes: usize,
        /// Rooms (record keys).
        #[arg(long, default_value_t = 100)]
        rooms: u64,
        /// linger.ms.
        #[arg(long, default_value_t = 5)]
        linger_ms: u64,
        /// Open loop at this many records/s for --secs (latency) instead of all at once (ceiling).
        #[arg(long)]
        rate: Option<f64>,
        /// Seconds of the open loop.
        #[arg(long, default_value_t = 10.0)]
        secs: f64,
    },
    /// rdkafka reading a topic from the beginning alone (the broker's read ceiling).
    Consume {
        /// Bootstrap brokers.
        #[arg(long, default_value = "127.0.0.1:19092")]
        brokers: String,
        /// Topic.
        #[arg(long, default_value = "chat.messages")]
        topic: String,
    },
    /// Plain multi-row INSERTs of the stored messages into a copy table (the database's ceiling).
    Insert {
        /// mysql://USER:PASS@HOST:PORT/DB
        #[arg(long)]
        mysql_url: String,
        /// Rows per INSERT (the persister's batch_rows).
        #[arg(long, default_value_t = 500)]
        batch: usize,
    },
    /// Waits for the persister to store `expect` messages; reports its rows/s.
    Drain {
        /// mysql://USER:PASS@HOST:PORT/DB
        #[arg(long)]
        mysql_url: String,
        /// Rows `messages` must reach.
        #[arg(long)]
        expect: u64,
        /// Longest wait in seconds.
        #[arg(long, default_value_t = 600)]
        timeout_secs: u64,
    },
}

#[derive(Args)]
struct TargetArgs {
    /// Server address (a Banter node, or the baseline with --baseline); several, comma-separated:
    /// the nodes of one cluster, each room's members spread over them (REST goes to the first).
    #[arg(long, default_value = "127.0.0.1:8080", value_delimiter = ',')]
    server: Vec<SocketAddr>,
    /// The server is the baseline (no REST, no auth).
    #[arg(long)]
    baseline: bool,
}

impl TargetArgs {
    fn target(&self) -> Result<Target> {
        let Some(&first) = self.server.first() else {
            bail!("give --server");
        };
        Ok(if self.baseline {
            Target::Baseline(first)
        } else {
            Target::Banter(first)
        })
    }
}

#[derive(Args)]
struct LoadArgs {
    /// Offered total rates (messages/s), one step each; empty with --window for a closed loop.
    #[arg(long, value_delimiter = ',')]
    rates: Vec<f64>,
    /// Closed loop: SENDs each sender keeps waiting for their RECEIPT (one step).
    #[arg(long)]
    window: Option<u32>,
    /// Seconds per step.
    #[arg(long, default_value_t = 5.0)]
    secs: f64,
    /// Seconds between steps.
    #[arg(long, default_value_t = 1.0)]
    pause_secs: f64,
    /// Longest wait for stragglers after the last step.
    #[arg(long, default_value_t = 30.0)]
    drain_secs: f64,
    /// Message body bytes.
    #[arg(long, default_value_t = 150)]
    body_bytes: usize,
    /// Username prefix (a rerun with the same prefix reuses its users).
    #[arg(long)]
    user_prefix: Option<String>,
    /// Scenario name in the report.
    #[arg(long)]
    name: Option<String>,
    /// Process ids of the server (on this machine; several: the nodes of a cluster): reports their
    /// CPU per message, summed, for each step.
    #[arg(long, value_delimiter = ',')]
    pid: Vec<u32>,
}

impl LoadArgs {
    /// The run of `rooms` rooms of `members`, the first `senders` of each sending, connected to
    /// `servers`; `default` names the scenario and the users unless given.
    #[allow(clippy::too_many_arguments)]
    fn spec(
        &self,
        servers: &[SocketAddr],
        default: &str,
        rooms: usize,
        members: usize,
        senders: usize,
        senders_subscribe: bool,
    ) -> Result<RoomsSpec> {
        Ok(RoomsSpec {
            name: self.name.clone().unwrap_or_else(|| default.into()),
            rooms,
            members,
            senders_per_room: senders,
            senders_subscribe,
            steps: self.steps()?,
            pause_secs: self.pause_secs,
            drain_secs: self.drain_secs,
            body_bytes: self.body_bytes,
            user_prefix: self.user_prefix.clone().unwrap_or_else(|| default.into()),
            heart_beat: (0, 0),
            server_pids: self.pid.clone(),
            servers: servers.to_vec(),
        })
    }

    fn steps(&self) -> Result<Vec<Step>> {
        let mut steps: Vec<Step> = self
            .rates
            .iter()
            .map(|&r| Step {
                rate: Some(r),
                window: 0,
                secs: self.secs,
            })
            .collect();
        if let Some(window) = self.window {
            steps.push(Step {
                rate: None,
                window: window.max(1),
                secs: self.secs,
            });
        }
        if steps.is_empty() {
            bail!("give --rates and/or --window");
        }
        Ok(steps)
    }
}

fn emit<T: Serialize>(json: Option<&PathBuf>, report: &T) -> Result<()> {
    if let Some(path) = json {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("open {}", path.display()))?;
        writeln!(f, "{}", serde_json::to_string(report)?)?;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOADGEN_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let json = cli.json.as_ref();
    match cli.command {
        Cmd::Baseline { listen } => {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("listen on {listen}"))?;
            println!("baseline listening on {}", listener.local_addr()?);
            banter_loadgen::baseline::serve(listener).await?;
        }
        Cmd::Fanout {
            target,
            subscribers,
            load,
        } => {
            let spec = load.spec(&target.server, "fanout", 1, subscribers + 1, 1, false)?;
            let r = rooms::run(target.target()?, spec).await?;
            print!("{}", report::rooms_table(&r));
            emit(json, &r)?;
        }
        Cmd::Chat {
            target,
            rooms: room_count,
            members,
            load,
        } => {
            let spec = load.spec(&target.server, "chat", room_count, members, members, true)?;
            let r = rooms::run(target.target()?, spec).await?;
            print!("{}", report::rooms_table(&r));
            emit(json, &r)?;
        }
        Cmd::Idle {
            target,
            connections,
            pid,
            hold_secs,
            user_prefix,
        } => {
            let spec = IdleSpec {
                connections,
                user_prefix,
                pid,
                hold_secs,
                heart_beat: (0, 0),
            };
            let r = idle::run(target.target()?, spec).await?;
            println!(
                "idle vs {}: {} connections open of {} (users {:.1}s, connect {:.1}s); RSS {} -> {} = {} per connection",
                r.target,
                r.open,
                r.spec.connections,
                r.users_secs,
                r.connect_secs,
                mib(r.rss_before),
                mib(r.rss_after),
                r.rss_per_connection
                    .map_or("-".into(), |b| format!("{:.1} KiB", b / 1024.0)),
            );
            emit(json, &r)?;
        }
        Cmd::Produce {
            brokers,
            topic,
            partitions,
            messages,
            body_bytes,
            rooms,
            linger_ms,
            rate,
            secs,
        } => {
            let spec = ProduceSpec {
                brokers,
                topic,
                partitions,
                messages,
                body_bytes,
                rooms,
                linger_ms,
            };
            if let Some(rate) = rate {
                let r = ceiling::produce_at(&spec, rate, secs).await?;
                println!(
                    "rdkafka alone at {:.0}/s: {} acknowledged; enqueue -> ack p50 {:.2} ms p99 {:.2} ms max {:.1} ms",
                    r.offered, r.records, r.ack.p50_ms, r.ack.p99_ms, r.ack.max_ms
                );
                emit(json, &r)?;
            } else {
                let r = ceiling::produce(&spec).await?;
                print_rate(&r);
                emit(json, &r)?;
            }
        }
        Cmd::Consume { brokers, topic } => {
            let r = ceiling::consume(&brokers, &topic).await?;
            print_rate(&r);
            emit(json, &r)?;
        }
        Cmd::Insert { mysql_url, batch } => {
            let r = ceiling::insert(&mysql_url, batch).await?;
            print_rate(&r);
            emit(json, &r)?;
        }
        Cmd::Drain {
            mysql_url,
            expect,
            timeout_secs,
        } => {
            let r = ceiling::drain(&mysql_url, expect, Duration::from_secs(timeout_secs)).await?;
            print_rate(&r);
            emit(json, &r)?;
        }
    }
    Ok(())
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("-".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0))
}

fn print_rate(r: &ceiling::Rate) {
    println!(
        "{}: {} in {:.2}s = {:.0}/s",
        r.what, r.items, r.secs, r.per_sec
    );
}
