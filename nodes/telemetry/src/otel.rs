//! OTLP export of traces: the `[telemetry]` section, the tracer behind `tracing`, and the W3C
//! trace context of a message.
//!
//! Off by default (the embedded node exports nothing); `telemetry.otlp_endpoint` turns it on. Spans
//! made with `tracing` then also become OpenTelemetry spans (tracing-opentelemetry), sampled
//! parent-based: a client that sent a sampled `traceparent` is followed, any other trace is kept
//! with `sample_ratio`. Export never blocks a handler: an ended span goes to the SDK's batch
//! processor (its own thread, one OTLP request per batch); past [`TelemetryConfig::max_queued_spans`]
//! spans waiting, or when the collector is away, spans are dropped and counted
//! ([`SPANS`]: `exported`, `failed`, `dropped`).
//!
//! [`message_context`] turns a message's `traceparent` into the parent of a span, and
//! [`traceparent_of`] a span back into the `traceparent` its children carry (to the journal, across
//! nodes), so one trace follows one message.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use opentelemetry::Context;
pub use opentelemetry::KeyValue;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider, SpanData, SpanExporter,
    SpanProcessor,
};
use serde::{Deserialize, Serialize};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Spans handed to the exporter, by outcome: `exported` (the collector took them), `failed` (an
/// export failed: the collector is away or refused them), `dropped` (too many were waiting)
/// (counter, label `outcome`).
pub const SPANS: &str = "banter_telemetry_spans_total";

/// Describes this module's metrics, and those of the log export ([`crate::logs`]), to the
/// installed recorder.
pub fn describe_metrics() {
    metrics::describe_counter!(
        SPANS,
        metrics::Unit::Count,
        "spans handed to the OTLP exporter, by outcome: exported, failed, dropped"
    );
    crate::logs::describe_metrics();
}

/// How spans reach the collector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtlpProtocol {
    /// OTLP over gRPC (port 4317 by convention).
    #[default]
    Grpc,
    /// OTLP over HTTP with protobuf bodies (port 4318; `/v1/traces` is appended).
    Http,
}

/// The `[telemetry]` section.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// The OTLP collector, e.g. `http://127.0.0.1:4317`; empty: no export. Default: empty.
    pub otlp_endpoint: String,
    /// `grpc` or `http`. Default: `grpc`.
    pub otlp_protocol: OtlpProtocol,
    /// Share of traces kept when no sampled parent decided (0.0 to 1.0). Default: 0.01.
    pub sample_ratio: f64,
    /// `service.name` of the spans. Default: `banter`.
    pub service_name: String,
    /// Ended spans waiting for export, at most; more are dropped and counted. Default: 4096.
    pub max_queued_spans: usize,
    /// Log records waiting for export, at most; more are dropped and counted. Default: 4096.
    pub max_queued_logs: usize,
    /// Milliseconds an export may take before it fails. Default: 5000.
    pub export_timeout_ms: u64,
    /// Milliseconds between two exports of the metrics over OTLP (the same metrics `/metrics`
    /// shows, under the same names). Default: 15000.
    pub metrics_interval_ms: u64,
    /// A SEND that waits at least this many milliseconds for its RECEIPT is slow: when its trace
    /// was not sampled, its `stomp.send` span is kept anyway, as are those of SENDs that failed
    /// ([`record_kept`]). Default: 1000.
    pub slow_send_ms: u64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            otlp_endpoint: String::new(),
            otlp_protocol: OtlpProtocol::Grpc,
            sample_ratio: 0.01,
            service_name: "banter".into(),
            max_queued_spans: 4096,
            max_queued_logs: 4096,
            export_timeout_ms: 5000,
            metrics_interval_ms: 15_000,
            slow_send_ms: 1000,
        }
    }
}

/// Builds the OTLP exporter `$exporter` (`SpanExporter`, `MetricExporter` or `LogExporter` of
/// `opentelemetry_otlp`) for the `[telemetry]` section `$config`: over gRPC to its endpoint, or
/// over HTTP to the endpoint's `$path` (`/v1/traces`, …), with its export timeout. A macro: the
/// three builders share no trait.
macro_rules! otlp_exporter {
    ($exporter:ty, $config:expr, $path:literal) => {{
        use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
        let config: &$crate::otel::TelemetryConfig = $config;
        let endpoint = config.otlp_endpoint.trim();
        let timeout = std::time::Duration::from_millis(config.export_timeout_ms.max(1));
        match config.otlp_protocol {
            $crate::otel::OtlpProtocol::Grpc => <$exporter>::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .with_timeout(timeout)
                .build(),
            $crate::otel::OtlpProtocol::Http => <$exporter>::builder()
                .with_http()
                .with_endpoint(format!("{}{}", endpoint.trim_end_matches('/'), $path))
                .with_timeout(timeout)
                .with_headers(Default::default())
                .build(),
        }
        .map_err(|error| $crate::otel::OtelError::Exporter {
            endpoint: endpoint.to_owned(),
            error,
        })
    }};
}
pub(crate) use otlp_exporter;

/// Why the tracer could not start.
#[derive(Debug, thiserror::Error)]
pub enum OtelError {
    /// A setting is out of range.
    #[error("[telemetry] {0}")]
    Invalid(String),
    /// The exporter could not be built (a malformed endpoint).
    #[error("[telemetry] cannot export to {endpoint}: {error}")]
    Exporter {
        /// The endpoint.
        endpoint: String,
        /// Why.
        error: opentelemetry_otlp::ExporterBuildError,
    },
}

mod kept;

pub use kept::{is_slow_send, record_kept};

static ON: AtomicBool = AtomicBool::new(false);
/// `sample_ratio`'s bits, for [`keep_new_trace`].
static RATIO: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// `slow_send_ms`, for [`is_slow_send`].
static SLOW_SEND_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(u64::MAX);
/// Roots whose callers decide before making them (with [`keep_new_trace`], or because a sampled
/// trace is linked to them, [`record_linked`]): the sampler keeps them.
pub const PRE_SAMPLED_ROOTS: [&str; 3] = ["stomp.send", "http.request", "persister.batch"];
/// The tracer of hops that begin and end in different tasks (see [`start`], [`record`]).
static TRACER: std::sync::OnceLock<opentelemetry_sdk::trace::Tracer> = std::sync::OnceLock::new();

/// Whether spans are exported: when not, callers skip making spans that only a collector reads.
pub fn exporting() -> bool {
    ON.load(Ordering::Relaxed)
}

/// The running tracer: shut it down to flush what waits.
#[derive(Debug)]
pub struct Tracing {
    provider: SdkTracerProvider,
}

impl Tracing {
    /// Exports what waits (up to the export timeout) and stops.
    pub fn shutdown(self) {
        ON.store(false, Ordering::Relaxed);
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "telemetry: spans not flushed at shutdown");
        }
    }
}

/// Builds the tracer `config` asks for (`None` when export is off). Call it inside the Tokio
/// runtime: the gRPC exporter binds to it. `instance` names this process among the service's
/// (`service.instance.id`).
pub fn tracer(
    config: &TelemetryConfig,
    instance: &str,
) -> Result<Option<(Tracing, opentelemetry_sdk::trace::Tracer)>, OtelError> {
    let endpoint = config.otlp_endpoint.trim();
    if endpoint.is_empty() {
        return Ok(None);
    }
    if !(0.0..=1.0).contains(&config.sample_ratio) {
        return Err(OtelError::Invalid(format!(
            "sample_ratio = {} is not between 0 and 1",
            config.sample_ratio
        )));
    }
    if config.max_queued_spans == 0 {
        return Err(OtelError::Invalid(
            "max_queued_spans must be at least 1".into(),
        ));
    }
    let exporter = otlp_exporter!(opentelemetry_otlp::SpanExporter, config, "/v1/traces")?;
    let gate = Gate::new(config.max_queued_spans, SPANS);
    // The SDK's own queue is larger than ours: it never drops uncounted.
    let batch = BatchSpanProcessor::builder(Counted {
        inner: exporter,
        gate: gate.clone(),
    })
    .with_batch_config(
        BatchConfigBuilder::default()
            .with_max_queue_size(config.max_queued_spans + 1)
            .with_max_export_batch_size(512.min(config.max_queued_spans))
            .with_scheduled_delay(Duration::from_secs(1))
            .build(),
    )
    .build();
    let resource = resource(config, instance);
    let provider = SdkTracerProvider::builder()
        .with_span_processor(Bounded { inner: batch, gate })
        .with_sampler(Sampler::ParentBased(Box::new(Roots(
            Sampler::TraceIdRatioBased(config.sample_ratio),
        ))))
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("banter");
    let _ = TRACER.set(tracer.clone());
    RATIO.store(config.sample_ratio.to_bits(), Ordering::Relaxed);
    SLOW_SEND_MS.store(config.slow_send_ms, Ordering::Relaxed);
    ON.store(true, Ordering::Relaxed);
    Ok(Some((Tracing { provider }, tracer)))
}

/// What every signal this process exports says of its source: `service.name`, `service.version`
/// and `service.instance.id` (the node's listen address, unique in a cluster).
pub(crate) fn resource(config: &TelemetryConfig, instance: &str) -> Resource {
    Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", config.service_name.clone()),
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("service.instance.id", instance.to_owned()),
        ])
        .build()
}

/// Whether a trace this node starts (a SEND or a request that named none) is kept: drawn with
/// `sample_ratio` before any span is made, so a message whose trace is not kept costs no span at
/// all (`tracing-opentelemetry` builds each span's data whether or not it is sampled).
pub fn keep_new_trace() -> bool {
    exporting() && rand::random::<f64>() < f64::from_bits(RATIO.load(Ordering::Relaxed))
}

/// The root sampler: the roots callers pre-sample ([`PRE_SAMPLED_ROOTS`]) are kept, any other
/// root (a session's span, an actor's) goes by the ratio. Under `ParentBased`, children follow
/// their parent.
#[derive(Clone, Debug)]
struct Roots(Sampler);

impl opentelemetry_sdk::trace::ShouldSample for Roots {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &opentelemetry::trace::SpanKind,
        attributes: &[KeyValue],
        links: &[opentelemetry::trace::Link],
    ) -> opentelemetry_sdk::trace::SamplingResult {
        if PRE_SAMPLED_ROOTS.contains(&name) {
            return opentelemetry_sdk::trace::SamplingResult {
                decision: opentelemetry_sdk::trace::SamplingDecision::RecordAndSample,
                attributes: Vec::new(),
                trace_state: TraceState::default(),
            };
        }
        self.0
            .should_sample(parent_context, trace_id, name, span_kind, attributes, links)
    }
}

/// The bound on what waits for export (spans, log records), shared by the processor that admits
/// items and the exporter that settles them, which counts each item once in `metric` (label
/// `outcome`): `dropped` when it was not admitted, `exported` or `failed` when its export ended.
/// A collector that is away costs a counter, never memory or a blocked thread.
#[derive(Clone, Debug)]
pub(crate) struct Gate {
    waiting: Arc<AtomicUsize>,
    max: usize,
    metric: &'static str,
}

impl Gate {
    /// At most `max` items waiting, counted in `metric`.
    pub(crate) fn new(max: usize, metric: &'static str) -> Gate {
        Gate {
            waiting: Arc::new(AtomicUsize::new(0)),
            max,
            metric,
        }
    }

    /// Takes a place for one item: `false` (and the item counted `dropped`) when `max` wait.
    pub(crate) fn admit(&self) -> bool {
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= self.max {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            metrics::counter!(self.metric, "outcome" => "dropped").increment(1);
            return false;
        }
        true
    }

    /// An export of `n` items ended (`ok`: the collector took them): their places are free.
    pub(crate) fn settled(&self, n: usize, ok: bool) {
        self.waiting.fetch_sub(n, Ordering::Relaxed);
        let outcome = if ok { "exported" } else { "failed" };
        metrics::counter!(self.metric, "outcome" => outcome).increment(n as u64);
    }
}

/// Hands ended spans to the batch processor while its [`Gate`] admits them.
#[derive(Debug)]
struct Bounded {
    inner: BatchSpanProcessor,
    gate: Gate,
}

impl SpanProcessor for Bounded {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if self.gate.admit() {
            self.inner.on_end(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The OTLP exporter, settling each batch with its [`Gate`].
#[derive(Debug)]
struct Counted<E> {
    inner: E,
    gate: Gate,
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len();
        let result = self.inner.export(batch).await;
        self.gate.settled(n, result.is_ok());
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The remote parent a message's `traceparent` names (a validated W3C value, see
/// `banter_actors::trace::TraceParent`); `None` for anything else.
pub fn message_context(traceparent: &str) -> Option<Context> {
    let b = traceparent.as_bytes();
    if b.len() != 55 {
        return None;
    }
    let trace = TraceId::from_hex(traceparent.get(3..35)?).ok()?;
    let span = SpanId::from_hex(traceparent.get(36..52)?).ok()?;
    let flags = u8::from_str_radix(traceparent.get(53..55)?, 16).ok()?;
    let context = SpanContext::new(
        trace,
        span,
        TraceFlags::new(flags),
        true,
        TraceState::default(),
    );
    context
        .is_valid()
        .then(|| Context::new().with_remote_span_context(context))
}

/// The kind of a hop's span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Work inside this process.
    Internal,
    /// A record handed to a broker.
    Producer,
    /// A record taken from a broker.
    Consumer,
    /// A call to another service (the database).
    Client,
    /// A request from a client, served here.
    Server,
}

impl From<Kind> for opentelemetry::trace::SpanKind {
    fn from(kind: Kind) -> Self {
        use opentelemetry::trace::SpanKind;
        match kind {
            Kind::Internal => SpanKind::Internal,
            Kind::Producer => SpanKind::Producer,
            Kind::Consumer => SpanKind::Consumer,
            Kind::Client => SpanKind::Client,
            Kind::Server => SpanKind::Server,
        }
    }
}

/// The exporting tracer and the parent `traceparent` names, when a span under it would be kept:
/// export is on and the parent is sampled (what the ratio did not keep costs nothing more).
fn sampled_parent(
    traceparent: &str,
) -> Option<(&'static opentelemetry_sdk::trace::Tracer, Context)> {
    if !exporting() {
        return None;
    }
    let tracer = TRACER.get()?;
    let parent = message_context(traceparent)?;
    parent
        .span()
        .span_context()
        .is_sampled()
        .then_some((tracer, parent))
}

/// A span begun in one place and ended in another (a record produced now, acknowledged on the
/// producer's thread later).
#[derive(Debug)]
pub struct Pending(opentelemetry_sdk::trace::Span);

impl Pending {
    /// Ends the span now, failed with `error` when there is one.
    pub fn end(mut self, error: Option<&str>) {
        use opentelemetry::trace::{Span as _, Status};
        if let Some(error) = error {
            self.0.set_status(Status::error(error.to_owned()));
        }
        self.0.end();
    }
}

/// Begins span `name` under `parent` (a `traceparent`), when it will be kept; returns it with the
/// `traceparent` naming it, which what it causes carries on.
pub fn start(name: &'static str, kind: Kind, parent: &str) -> Option<(Pending, String)> {
    begin(name, kind, parent).map(|(span, traceparent)| (Pending(span), traceparent))
}

/// [`start`], with the SDK's span itself.
pub(crate) fn begin(
    name: &'static str,
    kind: Kind,
    parent: &str,
) -> Option<(opentelemetry_sdk::trace::Span, String)> {
    use opentelemetry::trace::{Span as _, Tracer as _};
    let (tracer, parent) = sampled_parent(parent)?;
    let span = tracer
        .span_builder(name)
        .with_kind(kind.into())
        .start_with_context(tracer, &parent);
    let sc = span.span_context().clone();
    let traceparent = format!(
        "00-{}-{}-{:02x}",
        sc.trace_id(),
        sc.span_id(),
        sc.trace_flags().to_u8()
    );
    Some((span, traceparent))
}

/// Records a span `name` under `parent` that ran from `started` to now (a hop that is over, such
/// as one row of a batch insert), when it will be kept.
pub fn record(
    name: &'static str,
    kind: Kind,
    parent: &str,
    started: std::time::SystemTime,
    attributes: Vec<KeyValue>,
) {
    use opentelemetry::trace::{Span as _, Tracer as _};
    let Some((tracer, parent)) = sampled_parent(parent) else {
        return;
    };
    tracer
        .span_builder(name)
        .with_kind(kind.into())
        .with_start_time(started)
        .with_attributes(attributes)
        .start_with_context(tracer, &parent)
        .end();
}

/// Records a span `name` that ran from `started` to now as the root of a trace of its own, linked
/// to the spans `links` names (`traceparent`s; those not valid or not sampled are left out), when
/// one of them is sampled: work done for many traces at once, such as a batch of rows.
pub fn record_linked<'a>(
    name: &'static str,
    kind: Kind,
    links: impl IntoIterator<Item = &'a str>,
    started: std::time::SystemTime,
    attributes: Vec<KeyValue>,
) {
    use opentelemetry::trace::{Link, Span as _, Tracer as _};
    if !exporting() {
        return;
    }
    let Some(tracer) = TRACER.get() else {
        return;
    };
    let links: Vec<Link> = links
        .into_iter()
        .filter_map(message_context)
        .map(|cx| cx.span().span_context().clone())
        .filter(SpanContext::is_sampled)
        .map(Link::with_context)
        .collect();
    if links.is_empty() {
        return;
    }
    tracer
        .span_builder(name)
        .with_kind(kind.into())
        .with_start_time(started)
        .with_links(links)
        .with_attributes(attributes)
        .start_with_context(tracer, &Context::new())
        .end();
}

/// Whether a span is made for work under `parent` (a caller's valid `traceparent`, or none): the
/// parent's sampled flag, else the ratio's draw for a new trace ([`keep_new_trace`]).
pub fn keep_trace(parent: Option<&str>) -> bool {
    match parent {
        Some(parent) => exporting() && sampled(parent),
        None => keep_new_trace(),
    }
}

/// Whether `traceparent` is valid and names a sampled trace.
pub fn sampled(traceparent: &str) -> bool {
    message_context(traceparent).is_some_and(|cx| cx.span().span_context().is_sampled())
}

/// Makes `traceparent` the parent of `span` (a span of this process not yet entered).
pub fn follow(span: &tracing::Span, traceparent: &str) {
    if let Some(parent) = message_context(traceparent) {
        let _ = span.set_parent(parent);
    }
}

/// The `traceparent` that names `span` as the parent of what it causes; `None` when it has no
/// OpenTelemetry context (export off).
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            span_context.trace_id(),
            span_context.span_id(),
            span_context.trace_flags().to_u8()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_becomes_a_remote_parent() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let cx = message_context(tp).expect("valid");
        let sc = cx.span().span_context().clone();
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
        assert!(sc.is_sampled() && sc.is_remote());
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
        ] {
            assert!(message_context(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn export_is_off_without_an_endpoint_and_settings_are_checked() {
        assert!(
            tracer(&TelemetryConfig::default(), "t")
                .expect("off")
                .is_none()
        );
        let bad = TelemetryConfig {
            otlp_endpoint: "http://127.0.0.1:4317".into(),
            sample_ratio: 1.5,
            ..TelemetryConfig::default()
        };
        assert!(matches!(tracer(&bad, "t"), Err(OtelError::Invalid(_))));
    }

    #[test]
    fn without_a_tracer_a_span_has_no_traceparent() {
        let span = tracing::info_span!("s");
        assert_eq!(traceparent_of(&span), None);
    }

    #[test]
    fn spans_past_the_queue_are_dropped_and_counted() {
        use opentelemetry::trace::{Span as _, Tracer as _};
        assert!(crate::install().is_some());
        let config = TelemetryConfig {
            // Nothing listens there: the one export in flight fails, the queue stays full.
            otlp_endpoint: "http://127.0.0.1:9".into(),
            otlp_protocol: OtlpProtocol::Http,
            sample_ratio: 1.0,
            max_queued_spans: 4,
            ..TelemetryConfig::default()
        };
        let (tracing, tracer) = tracer(&config, "t").expect("builds").expect("on");
        for _ in 0..100 {
            tracer.start("s").end();
        }
        let dropped = crate::render()
            .lines()
            .find(|l| l.starts_with(SPANS) && l.contains("dropped"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0);
        assert!(dropped >= 96.0, "dropped {dropped}");
        tracing.shutdown();
    }
}
