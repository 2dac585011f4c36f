//! Telemetry of a Banter process: what is global to it rather than to one adapter.
//!
//! - The metrics recorder: the `metrics` facade has one global recorder per process; [`install`] sets
//!   up the Prometheus one once (every later call returns the same handle, so several nodes in one test
//!   process share it) and [`render`] prints every metric in the Prometheus text format. Metric names
//!   are not here: each crate owns the names it updates and describes them (`describe_metrics` in
//!   `banter-store`, `banter-kafka`, `banter-gateway`), so the code that updates a metric and the one
//!   that documents it cannot drift apart. With a collector, [`install_with`] installs
//!   [`meters::Both`], which feeds the same metrics to OTLP under the same names ([`meters`]);
//!   histograms have buckets and are drained every 5 s; [`collect_process_metrics`] reads the
//!   process's own (`process_cpu_seconds_total`, …).
//! - [`hops`]: the actors' spans (`banter_actors::trace::Spans`: a room's `room.publish`) over
//!   OpenTelemetry.
//! - Logs: [`init_logging`] sets up `tracing` output as text or JSON, filtered by `BANTER_LOG`, and
//!   with a tracer from [`otel::tracer`] also OpenTelemetry spans exported over OTLP ([`otel`]: the
//!   `[telemetry]` section, sampling, bounded export, a message's trace context); [`logs`]: the
//!   trace and span ids on each JSON line, and with [`logs::logger`] log records over OTLP.

pub mod hops;
pub mod logs;
pub mod meters;
pub mod otel;

use std::sync::{LazyLock, OnceLock};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Bucket bounds of the histograms in seconds (names ending `_seconds`): 0.5 ms to 10 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Bucket bounds of the other histograms (counts: rows in a batch, frames waiting).
const COUNT_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0,
];

/// Installs the Prometheus recorder as the global one (once per process); returns its handle, or
/// `None` when another recorder was installed first.
pub fn install() -> Option<&'static PrometheusHandle> {
    install_with(None)
}

/// Like [`install`], and with `otlp` (from [`meters::otlp`]) every metric is also an
/// OpenTelemetry one under the same name ([`meters::Both`]). Only the first call of the process
/// installs: call it before anything records a metric.
pub fn install_with(
    otlp: Option<metrics_exporter_opentelemetry::Recorder>,
) -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let built = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
                .and_then(|b| b.set_buckets(COUNT_BUCKETS));
            let prometheus = match built {
                Ok(builder) => builder.build_recorder(),
                Err(e) => {
                    tracing::warn!(error = %e, "histogram buckets not set");
                    PrometheusBuilder::new().build_recorder()
                }
            };
            let handle = prometheus.handle();
            let installed = match otlp {
                None => metrics::set_global_recorder(prometheus).map_err(|e| e.to_string()),
                Some(otel) => metrics::set_global_recorder(meters::Both::new(prometheus, otel))
                    .map_err(|e| e.to_string()),
            };
            match installed {
                Ok(()) => {
                    PROCESS.describe();
                    drain_histograms(handle.clone());
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// Moves the samples histograms took into their buckets every few seconds, on a thread of its own:
/// the recorder keeps each sample until then, so without it a node nobody scrapes would hold every
/// sample it ever took.
fn drain_histograms(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(5));
                handle.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "histogram upkeep not started");
    }
}

/// The process's own metrics (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
/// `process_open_fds`, …), read from `/proc` when they are rendered or exported.
static PROCESS: LazyLock<metrics_process::Collector> =
    LazyLock::new(metrics_process::Collector::default);

/// Reads the process metrics now (from `/proc`); [`render`] does, and a node exporting over OTLP
/// calls it before each export.
pub fn collect_process_metrics() {
    PROCESS.collect();
}

/// Returns every metric in the Prometheus text format (empty without a recorder).
pub fn render() -> String {
    match install() {
        Some(handle) => {
            collect_process_metrics();
            handle.run_upkeep();
            handle.render()
        }
        None => String::new(),
    }
}

/// How log lines are written to standard output.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Sets up the process's log output; the level filter comes from `BANTER_LOG` (default `info`).
/// With `tracer`, spans are also OpenTelemetry spans that it exports: every span at `info` or
/// above, whatever `BANTER_LOG` keeps for the log (a node that logs only warnings still traces);
/// JSON lines written inside a sampled span then name its trace ([`logs::TraceIds`]). With
/// `logger`, what the log keeps is also exported as OTLP log records ([`logs`]).
pub fn init_logging(
    format: LogFormat,
    tracer: Option<opentelemetry_sdk::trace::Tracer>,
    logger: Option<&logs::Logging>,
) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter =
        || EnvFilter::try_from_env("BANTER_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // One filter for the lines and the OTLP log records: they are the same events.
    let records = logger.map(logs::Logging::layer);
    let lines = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .and_then(records)
            .with_filter(filter())
            .boxed(),
        LogFormat::Json => logs::json_lines(std::io::stdout)
            .and_then(records)
            .with_filter(filter())
            .boxed(),
    };
    let spans = tracer.map(|t| {
        // No busy/idle bookkeeping on every enter and exit (a session's span is entered at each
        // poll of its task), no thread attributes: the hot path pays for spans it keeps only.
        // Context activation stays on: the ids of log lines and records are read from it.
        tracing_opentelemetry::layer()
            .with_tracer(t)
            .with_tracked_inactivity(false)
            .with_threads(false)
            .with_filter(LevelFilter::INFO)
    });
    if let Err(e) = tracing_subscriber::registry()
        .with(without_actor_spans())
        .with(lines)
        .with(spans)
        .try_init()
    {
        tracing::warn!(error = %e, "log output was already set up");
    }
}

/// A global filter that drops ractor's own spans (`Actor`, one per actor for its whole life, made
/// at `info` by ractor's `#[instrument]`): they are no hop of a message, and as long-lived roots
/// they would fill the trace store. Events pass, for the layers' own filters to judge.
///
/// Global, not on the span layer: a per-layer filter there other than a plain level made
/// tracing-subscriber lose the close of `stomp.send` on cluster nodes (ARCHITECTURE.md §6).
fn without_actor_spans() -> tracing_subscriber::filter::FilterFn {
    tracing_subscriber::filter::filter_fn(|meta| {
        !(meta.is_span() && meta.target().starts_with("ractor"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_labelled_gauges() {
        assert!(install().is_some());
        metrics::describe_counter!("banter_test_things_total", "things counted by the test");
        metrics::counter!("banter_test_things_total").increment(3);
        metrics::gauge!("banter_test_depth", "topic" => "t", "partition" => "4").set(17.0);
        let text = render();
        assert!(
            text.contains("# TYPE banter_test_things_total counter"),
            "{text}"
        );
        assert!(
            text.contains("banter_test_depth{topic=\"t\",partition=\"4\"} 17"),
            "{text}"
        );
    }
}
