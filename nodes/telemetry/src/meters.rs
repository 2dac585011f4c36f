//! Metrics over OTLP, under the names `/metrics` shows.
//!
//! The `metrics` facade has one recorder per process. Without a collector it is the Prometheus one
//! alone; with `telemetry.otlp_endpoint` set it is [`Both`]: every counter, gauge and histogram is
//! one handle that updates the Prometheus recorder and an OpenTelemetry instrument
//! (`metrics-exporter-opentelemetry`), which an OTLP exporter on the SDK's periodic reader sends every
//! `telemetry.metrics_interval_ms`. The OpenTelemetry recorder makes a new instrument at each
//! registration, and the `metrics` macros register at each call; [`Both`] keeps each key's pair of
//! handles in a registry (`metrics-util`), so a hot path pays one lookup, as with Prometheus alone,
//! not an instrument and a label vector per update.

use std::sync::Arc;
use std::time::Duration;

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Level, Metadata,
    Recorder, SharedString, Unit,
};
use metrics_exporter_prometheus::PrometheusRecorder;
use metrics_util::registry::{Registry, Storage};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};

use crate::otel::{OtelError, TelemetryConfig};

/// The exporting side of the OTLP metrics: shut it down at exit to send the last values.
pub struct Metering {
    provider: SdkMeterProvider,
}

impl Metering {
    /// Exports what was recorded since the last export, then stops the periodic reader. Blocks
    /// (call it from a blocking task).
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "OTLP metrics shutdown failed");
        }
    }
}

/// Builds the OTLP side of the metrics from `[telemetry]`, or `None` when no collector is
/// configured; `instance` is this node's `service.instance.id`. Call it inside the runtime (the
/// gRPC exporter binds to it), then hand the recorder to [`crate::install_with`].
pub fn otlp(
    config: &TelemetryConfig,
    instance: &str,
) -> Result<Option<(Metering, metrics_exporter_opentelemetry::Recorder)>, OtelError> {
    let endpoint = config.otlp_endpoint.trim();
    if endpoint.is_empty() {
        return Ok(None);
    }
    let exporter =
        crate::otel::otlp_exporter!(opentelemetry_otlp::MetricExporter, config, "/v1/metrics")?;
    let reader = PeriodicReader::builder(exporter)
        .with_interval(Duration::from_millis(config.metrics_interval_ms.max(100)))
        .build();
    let provider = SdkMeterProvider::builder()
        .with_resource(crate::otel::resource(config, instance))
        .with_reader(reader)
        .build();
    let recorder = metrics_exporter_opentelemetry::Recorder::with_meter(provider.meter("banter"));
    Ok(Some((Metering { provider }, recorder)))
}

/// The recorder that feeds Prometheus and OpenTelemetry at once.
pub struct Both {
    recorders: Arc<Recorders>,
    handles: Registry<Key, Pairs>,
}

impl Both {
    /// Both recorders behind one facade.
    pub fn new(
        prometheus: PrometheusRecorder,
        otel: metrics_exporter_opentelemetry::Recorder,
    ) -> Both {
        let recorders = Arc::new(Recorders { prometheus, otel });
        Both {
            handles: Registry::new(Pairs(recorders.clone())),
            recorders,
        }
    }
}

struct Recorders {
    prometheus: PrometheusRecorder,
    otel: metrics_exporter_opentelemetry::Recorder,
}

/// Where [`Both`] registers a key the first time it sees it.
struct Pairs(Arc<Recorders>);

/// The metadata the recorders are given: neither reads it.
const METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, None);

impl Storage<Key> for Pairs {
    type Counter = Arc<Pair<Counter>>;
    type Gauge = Arc<Pair<Gauge>>;
    type Histogram = Arc<Pair<Histogram>>;

    fn counter(&self, key: &Key) -> Self::Counter {
        Arc::new(Pair(
            self.0.prometheus.register_counter(key, &METADATA),
            self.0.otel.register_counter(key, &METADATA),
        ))
    }

    fn gauge(&self, key: &Key) -> Self::Gauge {
        Arc::new(Pair(
            self.0.prometheus.register_gauge(key, &METADATA),
            self.0.otel.register_gauge(key, &METADATA),
        ))
    }

    fn histogram(&self, key: &Key) -> Self::Histogram {
        Arc::new(Pair(
            self.0.prometheus.register_histogram(key, &METADATA),
            self.0.otel.register_histogram(key, &METADATA),
        ))
    }
}

/// One metric's handle in each recorder.
pub struct Pair<T>(T, T);

impl CounterFn for Pair<Counter> {
    fn increment(&self, value: u64) {
        self.0.increment(value);
        self.1.increment(value);
    }

    fn absolute(&self, value: u64) {
        self.0.absolute(value);
        self.1.absolute(value);
    }
}

impl GaugeFn for Pair<Gauge> {
    fn increment(&self, value: f64) {
        self.0.increment(value);
        self.1.increment(value);
    }

    fn decrement(&self, value: f64) {
        self.0.decrement(value);
        self.1.decrement(value);
    }

    fn set(&self, value: f64) {
        self.0.set(value);
        self.1.set(value);
    }
}

impl HistogramFn for Pair<Histogram> {
    fn record(&self, value: f64) {
        self.0.record(value);
        self.1.record(value);
    }
}

impl Recorder for Both {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        let r = &self.recorders;
        r.prometheus
            .describe_counter(key.clone(), unit, description.clone());
        r.otel.describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        let r = &self.recorders;
        r.prometheus
            .describe_gauge(key.clone(), unit, description.clone());
        r.otel.describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        let r = &self.recorders;
        r.prometheus
            .describe_histogram(key.clone(), unit, description.clone());
        r.otel.describe_histogram(key, unit, description);
    }

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.handles.get_or_create_counter(key, Arc::clone))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.handles.get_or_create_gauge(key, Arc::clone))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.handles.get_or_create_histogram(key, Arc::clone))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_exporter_prometheus::PrometheusBuilder;
    use opentelemetry_sdk::metrics::InMemoryMetricExporter;
    use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};

    /// One update reaches both sides under one name, and registering the same key again hands
    /// back the same handle (the OpenTelemetry side is not re-created).
    #[test]
    fn updates_reach_prometheus_and_opentelemetry_under_one_name() {
        let exporter = InMemoryMetricExporter::default();
        let provider = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter.clone()).build())
            .build();
        let prometheus = PrometheusBuilder::new().build_recorder();
        let handle = prometheus.handle();
        let both = Both::new(
            prometheus,
            metrics_exporter_opentelemetry::Recorder::with_meter(provider.meter("test")),
        );
        let key = Key::from_parts(
            "banter_test_sent_total",
            vec![metrics::Label::new("k", "v")],
        );
        both.register_counter(&key, &METADATA).increment(2);
        both.register_counter(&key, &METADATA).increment(3);
        both.register_gauge(&Key::from_name("banter_test_open"), &METADATA)
            .increment(4.0);
        provider.force_flush().expect("flush");

        assert!(
            handle
                .render()
                .contains("banter_test_sent_total{k=\"v\"} 5"),
            "{}",
            handle.render()
        );
        let exported = exporter.get_finished_metrics().expect("metrics");
        let metrics: Vec<_> = exported
            .iter()
            .flat_map(|r| r.scope_metrics())
            .flat_map(|s| s.metrics())
            .collect();
        let sent = metrics
            .iter()
            .find(|m| m.name() == "banter_test_sent_total")
            .expect("the counter is exported");
        let AggregatedMetrics::U64(MetricData::Sum(sum)) = sent.data() else {
            panic!("not a u64 sum: {:?}", sent.data());
        };
        let points: Vec<_> = sum.data_points().map(|p| p.value()).collect();
        assert_eq!(points, vec![5], "one series, counted once per update");
        assert!(metrics.iter().any(|m| m.name() == "banter_test_open"));
    }
}
