//! `banter`: runs one Banter node. With no configuration it is a working single node on
//! 127.0.0.1:8080 with SQLite and the in-process journal under `./data`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use banter_node::app::Node;
use banter_node::config::Config;
use banter_telemetry::LogFormat;
use clap::Parser;

/// A Banter chat node.
///
/// Configuration comes from defaults (an embedded single node), then the TOML file given with
/// --config, then environment variables `BANTER_<SECTION>__<KEY>` (e.g. `BANTER_HTTP__LISTEN`,
/// `BANTER_STORE__URL=mysql://user:pass@host/db`, `BANTER_DATA_DIR`), then these flags.
#[derive(Parser, Debug)]
#[command(name = "banter", version, about, long_about)]
struct Cli {
    /// TOML configuration file.
    #[arg(long, short, env = "BANTER_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (overrides http.listen).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Directory for the SQLite database and the signing key (overrides data_dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Log output format.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Prints the effective configuration as TOML and exits.
    #[arg(long)]
    print_config: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut config = Config::load(cli.config.as_deref()).context("failed to load configuration")?;
    if let Some(listen) = cli.listen {
        config.http.listen = listen;
    }
    if let Some(dir) = cli.data_dir {
        config.data_dir = dir;
    }
    if cli.print_config {
        print!("{}", toml_string(&config)?);
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the runtime")?;
    runtime.block_on(async move {
        // The gRPC exporter binds to the runtime it is built in.
        let instance = instance_id(config.http.listen);
        let (tracing, tracer) = banter_telemetry::otel::tracer(&config.telemetry, &instance)?
            .map_or((None, None), |(t, tracer)| (Some(t), Some(tracer)));
        let logging = banter_telemetry::logs::logger(&config.telemetry, &instance)?;
        banter_telemetry::init_logging(cli.log_format, tracer, logging.as_ref());
        let metering = start_metering(&config.telemetry, &instance)?;
        raise_nofile_limit();
        let result = serve(config).await;
        if let Some(metering) = metering {
            let _ = tokio::task::spawn_blocking(move || metering.shutdown()).await;
        }
        if let Some(tracing) = tracing {
            // Flushing waits on the exporter's thread, which may need this runtime.
            let _ = tokio::task::spawn_blocking(move || tracing.shutdown()).await;
        }
        if let Some(logging) = logging {
            let _ = tokio::task::spawn_blocking(move || logging.shutdown()).await;
        }
        result
    })
}

/// The node's `service.instance.id` in what it exports: its listen address, or with an unspecified
/// IP (every container listens on `0.0.0.0:8080`) the host's name and the port, so that the nodes
/// of one stack stay apart in Grafana.
fn instance_id(listen: std::net::SocketAddr) -> String {
    if !listen.ip().is_unspecified() {
        return listen.to_string();
    }
    match std::fs::read_to_string("/proc/sys/kernel/hostname") {
        Ok(host) if !host.trim().is_empty() => format!("{}:{}", host.trim(), listen.port()),
        _ => listen.to_string(),
    }
}

/// Installs the metrics recorder: Prometheus alone, or with a collector configured Prometheus and
/// OTLP under the same names, the process metrics read before each export.
fn start_metering(
    telemetry: &banter_telemetry::otel::TelemetryConfig,
    instance: &str,
) -> anyhow::Result<Option<banter_telemetry::meters::Metering>> {
    let Some((metering, recorder)) = banter_telemetry::meters::otlp(telemetry, instance)? else {
        banter_telemetry::install();
        return Ok(None);
    };
    banter_telemetry::install_with(Some(recorder));
    let every = std::time::Duration::from_millis(telemetry.metrics_interval_ms.max(100));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        loop {
            ticks.tick().await;
            banter_telemetry::collect_process_metrics();
        }
    });
    Ok(Some(metering))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let node = Node::start(config).await?;
    let failure = tokio::select! {
        () = shutdown_signal() => None,
        reason = node.failed() => Some(reason),
    };
    tracing::info!("shutting down");
    node.stop().await?;
    match failure {
        Some(reason) => Err(anyhow::anyhow!("the node failed: {reason}")),
        None => Ok(()),
    }
}

fn toml_string(config: &Config) -> anyhow::Result<String> {
    toml::to_string_pretty(config).context("failed to render the configuration")
}

/// Raises the soft open-files limit to the hard one: every connection is a file.
fn raise_nofile_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(limit = n, "open-files limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-files limit"),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
