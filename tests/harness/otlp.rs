//! A stand-in OpenTelemetry collector: a real OTLP receiver on a socket of the test, for nodes
//! configured with `BANTER_TELEMETRY__OTLP_ENDPOINT` = [`Otlp::url`] and
//! `BANTER_TELEMETRY__OTLP_PROTOCOL=http` ([`Otlp::start`]) or `grpc` ([`Otlp::start_grpc`]: the
//! collector services of `opentelemetry-proto` on a tonic server).
//!
//! It takes `POST /v1/traces`, `/v1/metrics` and `/v1/logs` with protobuf bodies (the
//! `Export{Trace,Metrics,Logs}ServiceRequest` messages of `opentelemetry-proto`), answers each like
//! a collector does (200 and the matching empty response, 400 for a body that does not decode),
//! and keeps every request. [`Otlp::spans`], [`Otlp::metrics`] and [`Otlp::logs`] return what it
//! got so far, one [`Received`] per span, metric or log record, with its resource's attributes.
//! The server stops when the [`Otlp`] is dropped.

use std::ops::Deref;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
pub use opentelemetry_proto::tonic::logs::v1::LogRecord;
pub use opentelemetry_proto::tonic::metrics::v1::Metric;
use opentelemetry_proto::tonic::resource::v1::Resource;
pub use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

/// Every export request the receiver decoded, by signal.
#[derive(Default)]
struct Requests {
    traces: Vec<ExportTraceServiceRequest>,
    metrics: Vec<ExportMetricsServiceRequest>,
    logs: Vec<ExportLogsServiceRequest>,
}

type Shared = Arc<Mutex<Requests>>;

/// A running OTLP/HTTP receiver.
pub struct Otlp {
    url: String,
    got: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Otlp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Otlp").field("url", &self.url).finish()
    }
}

/// A span, metric or log record the receiver got, with the attributes of its resource (values
/// as [`value_string`] renders them). Derefs to the item.
#[derive(Clone, Debug)]
pub struct Received<T> {
    /// The span, metric or log record.
    pub item: T,
    /// The resource's attributes, in the order they came.
    pub resource: Vec<(String, String)>,
}

impl<T> Received<T> {
    /// Returns the value of the resource's attribute `key` (`service.name`, …).
    pub fn resource_attr(&self, key: &str) -> Option<&str> {
        self.resource
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl<T> Deref for Received<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.item
    }
}

impl Otlp {
    /// Starts a receiver on a free port of 127.0.0.1.
    pub async fn start() -> Result<Otlp> {
        let got = Shared::default();
        let app = axum::Router::new()
            .route(
                "/v1/traces",
                axum::routing::post(|State(got): State<Shared>, body: Bytes| async move {
                    take::<_, ExportTraceServiceResponse>(body, |r| lock(&got).traces.push(r))
                }),
            )
            .route(
                "/v1/metrics",
                axum::routing::post(|State(got): State<Shared>, body: Bytes| async move {
                    take::<_, ExportMetricsServiceResponse>(body, |r| lock(&got).metrics.push(r))
                }),
            )
            .route(
                "/v1/logs",
                axum::routing::post(|State(got): State<Shared>, body: Bytes| async move {
                    take::<_, ExportLogsServiceResponse>(body, |r| lock(&got).logs.push(r))
                }),
            )
            .with_state(got.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Otlp { url, got, server })
    }

    /// Starts a receiver of OTLP over gRPC (the trace, metrics and logs collector services) on a
    /// free port of 127.0.0.1.
    pub async fn start_grpc() -> Result<Otlp> {
        use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::LogsServiceServer;
        use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::MetricsServiceServer;
        use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;
        let got = Shared::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let router = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Grpc(got.clone())))
            .add_service(MetricsServiceServer::new(Grpc(got.clone())))
            .add_service(LogsServiceServer::new(Grpc(got.clone())));
        let server = tokio::spawn(async move {
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            let _ = router.serve_with_incoming(incoming).await;
        });
        Ok(Otlp { url, got, server })
    }

    /// Returns the receiver's base URL (`http://127.0.0.1:PORT`), the node's `otlp_endpoint`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Returns every span received so far.
    pub fn spans(&self) -> Vec<Received<Span>> {
        let got = lock(&self.got);
        let mut out = Vec::new();
        for rs in got.traces.iter().flat_map(|r| &r.resource_spans) {
            let resource = attributes(rs.resource.as_ref());
            for span in rs.scope_spans.iter().flat_map(|s| &s.spans) {
                out.push(Received {
                    item: span.clone(),
                    resource: resource.clone(),
                });
            }
        }
        out
    }

    /// Returns every metric received so far (one per metric of each export: a metric exported
    /// every interval comes once per export).
    pub fn metrics(&self) -> Vec<Received<Metric>> {
        let got = lock(&self.got);
        let mut out = Vec::new();
        for rm in got.metrics.iter().flat_map(|r| &r.resource_metrics) {
            let resource = attributes(rm.resource.as_ref());
            for metric in rm.scope_metrics.iter().flat_map(|s| &s.metrics) {
                out.push(Received {
                    item: metric.clone(),
                    resource: resource.clone(),
                });
            }
        }
        out
    }

    /// Returns every log record received so far.
    pub fn logs(&self) -> Vec<Received<LogRecord>> {
        let got = lock(&self.got);
        let mut out = Vec::new();
        for rl in got.logs.iter().flat_map(|r| &r.resource_logs) {
            let resource = attributes(rl.resource.as_ref());
            for record in rl.scope_logs.iter().flat_map(|s| &s.log_records) {
                out.push(Received {
                    item: record.clone(),
                    resource: resource.clone(),
                });
            }
        }
        out
    }
}

impl Drop for Otlp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The gRPC collector services: each keeps what it is sent.
struct Grpc(Shared);

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        lock(&self.0).traces.push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::MetricsService
    for Grpc
{
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        lock(&self.0).metrics.push(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::LogsService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        lock(&self.0).logs.push(request.into_inner());
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

fn lock(got: &Shared) -> std::sync::MutexGuard<'_, Requests> {
    got.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Decodes an export request and keeps it, answering like a collector.
fn take<Req, Resp>(body: Bytes, keep: impl FnOnce(Req)) -> Response
where
    Req: Message + Default,
    Resp: Message + Default,
{
    match Req::decode(body) {
        Ok(request) => {
            keep(request);
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/x-protobuf")],
                Resp::default().encode_to_vec(),
            )
                .into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/plain")],
            format!("not an OTLP export request: {e}"),
        )
            .into_response(),
    }
}

fn attributes(resource: Option<&Resource>) -> Vec<(String, String)> {
    resource
        .map(|r| r.attributes.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|kv: &KeyValue| {
            let value = kv.value.as_ref().map(value_string).unwrap_or_default();
            (kv.key.clone(), value)
        })
        .collect()
}

/// Renders an attribute's or a body's value: a string as it is, a number or a bool as its
/// literal, anything else in its `Debug` form.
pub fn value_string(value: &AnyValue) -> String {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// Returns the value of the attribute `key` among `attributes` (a log record's, a span's).
pub fn attr(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .map(value_string)
}

/// Returns an id (a trace's, a span's) in lowercase hex, as W3C `traceparent` writes it.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
