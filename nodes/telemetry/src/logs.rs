//! Logs that name their trace: the trace and span ids on each JSON line, and OTLP export of log
//! records.
//!
//! - **On standard output** (`--log-format json`), a line written inside a span that OpenTelemetry
//!   samples starts with that span's `trace_id` and `span_id` (W3C hex), so a log store can link
//!   the line to its trace ([`TraceIds`]); a line outside any such span has neither. An unsampled
//!   span has ids too (the SDK gives every span some), but no collector will ever have its trace:
//!   a line naming it would send a reader after a trace that does not exist, so it names none
//!   (the span's own fields, in `span`, still tie the lines of one session or request together).
//!   The ids are those of the OpenTelemetry context the tracing-opentelemetry layer makes current
//!   while a span is entered — the very context the OTLP log records below carry — read without a
//!   lock or an allocation; lines the filter drops cost nothing.
//! - **Over OTLP**, with `telemetry.otlp_endpoint` set ([`logger`]), every event the `BANTER_LOG`
//!   filter keeps is also a log record, with its trace context (the sampled flag included), the
//!   resource of the spans (`service.name`, `service.version`, `service.instance.id`) and the
//!   event's fields as attributes; over gRPC, or HTTP to `/v1/logs`. Export never blocks the
//!   event's thread: records go to the SDK's batch processor (its own thread, a batch a second);
//!   past [`TelemetryConfig::max_queued_logs`] records waiting, or when the collector is away, records are dropped and counted ([`LOGS`]: `exported`,
//!   `failed`, `dropped`). The events of the crates the export itself runs on (`opentelemetry*`,
//!   `hyper`, `reqwest`, `tonic`, `h2`, `tower`) are never exported: an export that fails would
//!   log its failure, which would be exported, and so on. They still reach standard output.

use std::fmt;
use std::time::Duration;

use opentelemetry::trace::{SpanId, TraceContextExt, TraceId};
use opentelemetry::{Context, InstrumentationScope};
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{
    BatchConfigBuilder, BatchLogProcessor, LogBatch, LogExporter, LogProcessor, SdkLogRecord,
    SdkLoggerProvider,
};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

use crate::otel::{Gate, OtelError, TelemetryConfig};

/// Log records handed to the OTLP exporter, by outcome: `exported` (the collector took them),
/// `failed` (an export failed: the collector is away or refused them), `dropped` (too many were
/// waiting) (counter, label `outcome`).
pub const LOGS: &str = "banter_telemetry_logs_total";

/// Describes this module's metrics to the installed recorder.
pub fn describe_metrics() {
    metrics::describe_counter!(
        LOGS,
        metrics::Unit::Count,
        "log records handed to the OTLP exporter, by outcome: exported, failed, dropped"
    );
}

/// The JSON line format with the ids of the sampled OpenTelemetry span the event happens in, as
/// the object's first fields: `{"trace_id":"…","span_id":"…","timestamp":…}`. `F` writes the
/// line (tracing-subscriber's JSON format); the ids are spliced in after its opening brace as it
/// writes, with no buffer of their own.
#[derive(Debug, Default)]
pub struct TraceIds<F>(pub F);

impl<S, N, F> FormatEvent<S, N> for TraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some((trace, span)) = sampled_ids() else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut spliced = Spliced {
            out: &mut writer,
            trace,
            span,
            state: State::Before,
        };
        self.0.format_event(ctx, Writer::new(&mut spliced), event)
    }
}

/// The `--log-format json` layer writing to `make_writer`: tracing-subscriber's JSON lines, with
/// [`TraceIds`].
pub(crate) fn json_lines<S, W>(make_writer: W) -> JsonLines<S, W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        .event_format(TraceIds(tracing_subscriber::fmt::format().json()))
        .with_writer(make_writer)
}

/// What [`json_lines`] makes.
pub(crate) type JsonLines<S, W> = tracing_subscriber::fmt::Layer<
    S,
    tracing_subscriber::fmt::format::JsonFields,
    TraceIds<tracing_subscriber::fmt::format::Format<tracing_subscriber::fmt::format::Json>>,
    W,
>;

/// The trace and span ids of the current OpenTelemetry context when its span is sampled.
/// tracing-opentelemetry makes an entered span's context current (its context activation, on by
/// default), and the SDK's logger takes a log record's trace context from the same place.
fn sampled_ids() -> Option<(TraceId, SpanId)> {
    Context::map_current(|cx| {
        let span = cx.span();
        let sc = span.span_context();
        (sc.is_valid() && sc.is_sampled()).then(|| (sc.trace_id(), sc.span_id()))
    })
}

/// Where [`Spliced`] is in the object it passes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Nothing written yet.
    Before,
    /// The opening brace is written: the ids go before what comes next.
    Opened,
    /// The ids are written (or the output is not a JSON object): the rest passes through.
    Done,
}

/// Passes a JSON object on, with `"trace_id":"…","span_id":"…"` as its first members.
struct Spliced<'a, 'w> {
    out: &'a mut Writer<'w>,
    trace: TraceId,
    span: SpanId,
    state: State,
}

impl fmt::Write for Spliced<'_, '_> {
    fn write_str(&mut self, mut s: &str) -> fmt::Result {
        if self.state == State::Before && !s.is_empty() {
            match s.strip_prefix('{') {
                Some(rest) => {
                    self.out.write_char('{')?;
                    self.state = State::Opened;
                    s = rest;
                }
                None => self.state = State::Done,
            }
        }
        if self.state == State::Opened && !s.is_empty() {
            self.state = State::Done;
            write!(
                self.out,
                "\"trace_id\":\"{}\",\"span_id\":\"{}\"",
                self.trace, self.span
            )?;
            if !s.starts_with('}') {
                self.out.write_char(',')?;
            }
        }
        self.out.write_str(s)
    }
}

/// The running OTLP log export: shut it down to flush what waits.
#[derive(Debug)]
pub struct Logging {
    provider: SdkLoggerProvider,
}

impl Logging {
    /// Exports what waits (up to the export timeout) and stops.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            // Standard output still has it; the exporter is gone.
            tracing::warn!(error = %e, "telemetry: log records not flushed at shutdown");
        }
    }

    /// The layer that turns the events it sees into log records for this export, less the events
    /// of the export's own crates ([`from_exporter`]). It has no filter of its own: it shares the
    /// log lines' (see [`crate::init_logging`]).
    pub(crate) fn layer(&self) -> Records {
        otlp_layer(&self.provider)
    }
}

fn otlp_layer(provider: &SdkLoggerProvider) -> Records {
    Records(OpenTelemetryTracingBridge::new(provider))
}

/// The OTLP log records' layer: the bridge of `opentelemetry-appender-tracing`, skipping the events
/// of the export's own crates. Not a per-layer filter: the lines' filter applies to both. (A third
/// per-layer filter beside the lines' and the spans' made tracing-subscriber lose spans: on the
/// nodes of a cluster the `stomp.send` spans were never closed for the span layer, so never
/// exported.)
pub(crate) struct Records(
    OpenTelemetryTracingBridge<
        opentelemetry_sdk::logs::SdkLoggerProvider,
        opentelemetry_sdk::logs::SdkLogger,
    >,
);

impl<S> Layer<S> for Records
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        if !from_exporter(event.metadata().target()) {
            self.0.on_event(event, ctx);
        }
    }
}

/// Crates the OTLP export runs on (besides `opentelemetry*`).
const EXPORTER_CRATES: [&str; 6] = ["hyper", "hyper_util", "reqwest", "tonic", "h2", "tower"];

/// Whether an event of `target` comes from the crates the OTLP export runs on.
fn from_exporter(target: &str) -> bool {
    let krate = target.split("::").next().unwrap_or(target);
    krate.starts_with("opentelemetry") || EXPORTER_CRATES.contains(&krate)
}

/// Builds the OTLP log export `config` asks for (`None` when export is off), with the resource
/// of the tracer ([`crate::otel::tracer`]). Call it inside the Tokio runtime: the gRPC exporter
/// binds to it. Hand it to [`crate::init_logging`].
pub fn logger(config: &TelemetryConfig, instance: &str) -> Result<Option<Logging>, OtelError> {
    let endpoint = config.otlp_endpoint.trim();
    if endpoint.is_empty() {
        return Ok(None);
    }
    if config.max_queued_logs == 0 {
        return Err(OtelError::Invalid(
            "max_queued_logs must be at least 1".into(),
        ));
    }
    let exporter =
        crate::otel::otlp_exporter!(opentelemetry_otlp::LogExporter, config, "/v1/logs")?;
    let provider = bounded_provider(
        exporter,
        config.max_queued_logs,
        crate::otel::resource(config, instance),
    );
    Ok(Some(Logging { provider }))
}

/// A logger provider exporting through `exporter`, batched, with at most `max` records waiting.
fn bounded_provider<E: LogExporter + 'static>(
    exporter: E,
    max: usize,
    resource: Resource,
) -> SdkLoggerProvider {
    let gate = Gate::new(max, LOGS);
    // The SDK's own queue is larger than ours: it never drops uncounted.
    let batch = BatchLogProcessor::builder(Counted {
        inner: exporter,
        gate: gate.clone(),
    })
    .with_batch_config(
        BatchConfigBuilder::default()
            .with_max_queue_size(max + 1)
            .with_max_export_batch_size(512.min(max))
            .with_scheduled_delay(Duration::from_secs(1))
            .build(),
    )
    .build();
    SdkLoggerProvider::builder()
        .with_log_processor(Bounded { inner: batch, gate })
        .with_resource(resource)
        .build()
}

/// Hands log records to the batch processor while its [`Gate`] admits them.
#[derive(Debug)]
struct Bounded {
    inner: BatchLogProcessor,
    gate: Gate,
}

impl LogProcessor for Bounded {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        if self.gate.admit() {
            self.inner.emit(record, scope);
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

impl<E: LogExporter> LogExporter for Counted<E> {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let n = batch.iter().count();
        let result = self.inner.export(batch).await;
        self.gate.settled(n, result.is_ok());
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;
    use std::sync::{Arc, Mutex};

    use opentelemetry::logs::AnyValue;
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::logs::InMemoryLogExporter;
    use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// Lines written by the layer under test.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buffer {
        fn lines(&self) -> Vec<serde_json::Value> {
            let bytes = self.0.lock().expect("lock").clone();
            String::from_utf8(bytes)
                .expect("utf-8")
                .lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
                .collect()
        }
    }

    /// The spans layer of `init_logging`, with a tracer that samples with `sampler` and exports
    /// nothing.
    fn spans<S>(sampler: Sampler) -> impl Layer<S>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let tracer = SdkTracerProvider::builder()
            .with_sampler(sampler)
            .build()
            .tracer("test");
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_tracked_inactivity(false)
            .with_threads(false)
            .with_filter(LevelFilter::INFO)
    }

    /// Logs a line outside any span and one inside a span; returns the lines and the span's
    /// OpenTelemetry ids.
    fn log_in_and_out(sampler: Sampler) -> (Vec<serde_json::Value>, String, String) {
        let out = Buffer::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::registry()
            .with(spans(sampler))
            .with(json_lines(move || writer.clone()).with_filter(LevelFilter::INFO));
        let (trace, span) = tracing::subscriber::with_default(subscriber, || {
            tracing::info!(n = 1, "outside");
            let span = tracing::info_span!("http.request", url.path = "/x");
            let _entered = span.enter();
            tracing::debug!("filtered out");
            tracing::warn!(code = 7, "inside \"quoted\" {{braces}}");
            let cx = span.context();
            let sc = cx.span().span_context().clone();
            (sc.trace_id().to_string(), sc.span_id().to_string())
        });
        (out.lines(), trace, span)
    }

    #[test]
    fn a_json_line_in_a_sampled_span_names_its_trace_and_one_outside_does_not() {
        let (lines, trace, span) = log_in_and_out(Sampler::AlwaysOn);
        assert_eq!(lines.len(), 2, "{lines:?}");
        let (outside, inside) = (&lines[0], &lines[1]);
        assert_eq!(outside["fields"]["message"], "outside", "{outside}");
        assert!(
            outside.get("trace_id").is_none() && outside.get("span_id").is_none(),
            "{outside}"
        );
        assert_eq!(inside["fields"]["message"], "inside \"quoted\" {braces}");
        assert_eq!(inside["fields"]["code"], 7);
        assert_eq!(inside["level"], "WARN");
        assert_eq!(inside["span"]["name"], "http.request");
        assert_eq!(inside["trace_id"], trace.as_str(), "{inside}");
        assert_eq!(inside["span_id"], span.as_str(), "{inside}");
        assert_eq!(trace.len(), 32);
        assert_eq!(span.len(), 16);
    }

    #[test]
    fn a_json_line_in_an_unsampled_span_names_no_trace() {
        let (lines, trace, _) = log_in_and_out(Sampler::AlwaysOff);
        assert_eq!(lines.len(), 2, "{lines:?}");
        // The SDK gave the span ids all the same.
        assert_ne!(trace, TraceId::INVALID.to_string());
        assert!(lines[1].get("trace_id").is_none(), "{}", lines[1]);
    }

    #[test]
    fn ids_are_spliced_into_any_object() {
        let (trace, span) = (TraceId::from(1), SpanId::from(2));
        let ids = format!("\"trace_id\":\"{trace}\",\"span_id\":\"{span}\"");
        for (parts, want) in [
            (&["{", "\"a\":1", "}"][..], format!("{{{ids},\"a\":1}}")),
            (&["{", "}"][..], format!("{{{ids}}}")),
            (&["", "{\"a\":{}}"][..], format!("{{{ids},\"a\":{{}}}}")),
            (&["not json {"][..], "not json {".to_owned()),
        ] {
            let mut out = String::new();
            let mut writer = Writer::new(&mut out);
            let mut spliced = Spliced {
                out: &mut writer,
                trace,
                span,
                state: State::Before,
            };
            for part in parts {
                spliced.write_str(part).expect("write");
            }
            assert_eq!(out, want);
        }
    }

    /// A logger provider bounded like [`logger`]'s, exporting to memory.
    fn in_memory(max: usize) -> (SdkLoggerProvider, InMemoryLogExporter) {
        let exporter = InMemoryLogExporter::default();
        let resource = Resource::builder_empty()
            .with_service_name("banter-test")
            .build();
        (bounded_provider(exporter.clone(), max, resource), exporter)
    }

    #[test]
    fn events_become_log_records_with_their_trace_but_not_the_exporters_own() {
        let (provider, exporter) = in_memory(64);
        let subscriber = tracing_subscriber::registry()
            .with(spans(Sampler::AlwaysOn))
            .with(otlp_layer(&provider).with_filter(tracing_subscriber::EnvFilter::new("info")));
        let (trace, span) = tracing::subscriber::with_default(subscriber, || {
            tracing::info!("outside");
            let span = tracing::info_span!("http.request");
            let _entered = span.enter();
            tracing::debug!("filtered out");
            tracing::warn!(target: "hyper::proto::h1", "from the exporter's crates");
            tracing::warn!(target: "opentelemetry-otlp", "from the exporter itself");
            tracing::warn!(user_id = 3, "inside");
            let cx = span.context();
            let sc = cx.span().span_context().clone();
            (sc.trace_id(), sc.span_id())
        });
        provider.force_flush().expect("flush");
        let logs = exporter.get_emitted_logs().expect("logs");
        let bodies: Vec<String> = logs
            .iter()
            .map(|l| match l.record.body() {
                Some(AnyValue::String(s)) => s.as_str().to_owned(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(bodies, ["outside", "inside"]);
        assert!(logs[0].record.trace_context().is_none());
        let inside = &logs[1];
        let tc = inside.record.trace_context().expect("trace context");
        assert_eq!((tc.trace_id, tc.span_id), (trace, span));
        assert!(tc.trace_flags.is_some_and(|f| f.is_sampled()));
        assert_eq!(inside.record.severity_text(), Some("WARN"));
        assert!(
            inside
                .resource
                .iter()
                .any(|(k, v)| k.as_str() == "service.name" && v.as_str() == "banter-test")
        );
        provider.shutdown().expect("shutdown");
    }

    #[test]
    fn log_records_past_the_queue_are_dropped_and_counted() {
        use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _};
        assert!(crate::install().is_some());
        let config = TelemetryConfig {
            // Nothing listens there: the one export in flight fails, the queue stays full.
            otlp_endpoint: "http://127.0.0.1:9".into(),
            otlp_protocol: crate::otel::OtlpProtocol::Http,
            max_queued_logs: 4,
            ..TelemetryConfig::default()
        };
        let logging = logger(&config, "t").expect("builds").expect("on");
        let log = logging.provider.logger("test");
        for _ in 0..100 {
            let mut record = log.create_log_record();
            record.set_body("lost".into());
            log.emit(record);
        }
        let dropped = crate::render()
            .lines()
            .find(|l| l.starts_with(LOGS) && l.contains("dropped"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0);
        assert!(dropped >= 96.0, "dropped {dropped}");
        logging.shutdown();
    }

    #[test]
    fn the_exporters_crates_are_known_by_their_targets() {
        for target in [
            "opentelemetry_sdk",
            "opentelemetry-otlp",
            "hyper::client",
            "h2",
            "tonic::transport",
        ] {
            assert!(from_exporter(target), "{target}");
        }
        for target in [
            "banter_gateway::http",
            "hyperloglog",
            "h2o",
            "tower_http::trace",
        ] {
            assert!(!from_exporter(target), "{target}");
        }
    }
}
