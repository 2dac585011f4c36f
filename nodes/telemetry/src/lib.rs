//! Telemetry of a Banter process: what is global to it rather than to one adapter.
//!
//! - The metrics recorder: the `metrics` facade has one global recorder per process; [`install`] sets
//!   up the Prometheus one once (every later call returns the same handle, so several nodes in one test
//!   process share it) and [`render`] prints every metric in the Prometheus text format. Metric names
//!   are not here: each crate owns the names it updates and describes them (`describe_metrics` in
//!   `banter-store`, `banter-kafka`, `banter-gateway`), so the code that updates a metric and the one
//!   that documents it cannot drift apart.
//! - Logs: [`init_logging`] sets up `tracing` output as text or JSON, filtered by `BANTER_LOG`, and
//!   with a tracer from [`otel::tracer`] also OpenTelemetry spans exported over OTLP ([`otel`]: the
//!   `[telemetry]` section, sampling, bounded export, a message's trace context).

pub mod otel;

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder as the global one (once per process); returns its handle, or
/// `None` when another recorder was installed first.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(handle) => Some(handle),
            Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed");
                None
            }
        })
        .as_ref()
}

/// Returns every metric in the Prometheus text format (empty without a recorder).
pub fn render() -> String {
    match install() {
        Some(handle) => {
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
/// above, whatever `BANTER_LOG` keeps for the log (a node that logs only warnings still traces).
pub fn init_logging(format: LogFormat, tracer: Option<opentelemetry_sdk::trace::Tracer>) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = EnvFilter::try_from_env("BANTER_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer().with_filter(filter).boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_filter(filter)
            .boxed(),
    };
    let spans = tracer.map(|t| {
        // No busy/idle bookkeeping on every enter and exit (a session's span is entered at each
        // poll of its task), no thread attributes: the hot path pays for spans it keeps only.
        tracing_opentelemetry::layer()
            .with_tracer(t)
            .with_tracked_inactivity(false)
            .with_threads(false)
            .with_filter(LevelFilter::INFO)
    });
    if let Err(e) = tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .try_init()
    {
        tracing::warn!(error = %e, "log output was already set up");
    }
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
