//! Metrics: the `metrics` facade with a Prometheus recorder, rendered in the Prometheus text format on
//! `GET /metrics`.
//!
//! The recorder is process-wide (the facade has one global recorder): [`install`] sets it up once and
//! every later call returns the same handle, so several nodes in one test process share it. Metric
//! names live here, each with its help text, so that the code that updates a metric and the one that
//! documents it cannot drift apart.

use std::sync::OnceLock;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Consumer lag of the persister group per partition: high watermark minus committed offset (gauge,
/// labels `topic` and `partition`).
pub const PERSISTER_LAG: &str = "banter_persister_lag";
/// Rows the persister inserted into the store (counter).
pub const PERSISTER_ROWS: &str = "banter_persister_rows_total";
/// Batches the persister wrote: rows stored, dead letters sent (counter).
pub const PERSISTER_BATCHES: &str = "banter_persister_batches_total";
/// Records the persister sent to the dead-letter topic (counter, label `reason`).
pub const PERSISTER_DEAD_LETTERS: &str = "banter_persister_dead_letters_total";
/// Restarts of the persister's consumer loop after a panic (counter).
pub const PERSISTER_RESTARTS: &str = "banter_persister_restarts_total";
/// Appends the Kafka journal had acknowledged by the broker (counter).
pub const JOURNAL_APPENDS: &str = "banter_journal_appends_total";
/// Appends the Kafka journal could not make durable (counter).
pub const JOURNAL_APPEND_ERRORS: &str = "banter_journal_append_errors_total";
/// Seconds one commit of the in-process journal took, `fsync` included (histogram).
pub const JOURNAL_COMMIT_SECONDS: &str = "banter_journal_commit_seconds";
/// Messages in one commit of the in-process journal (histogram).
pub const JOURNAL_COMMIT_MESSAGES: &str = "banter_journal_commit_messages";

/// Requests and connections refused to protect the node (counter, label `reason`: `backfill_busy`,
/// `node_connections`, `ip_connections`, `user_sessions`).
pub const REFUSED: &str = "banter_refused_total";
/// Sessions ended because the client did not keep up (counter, label `reason`: `too_slow` for a full
/// outbox, `write_deadline` for a write that did not finish in time).
pub const SESSIONS_DROPPED: &str = "banter_sessions_dropped_total";

/// Actors live on this node (gauge, label `kind`: `room`, `user`), refreshed every second.
pub const ACTORS_ACTIVE: &str = "banter_actors_active";

/// Client connections open on the node, WebSockets included (gauge).
pub const CONNECTIONS_OPEN: &str = "banter_connections_open";

/// Counts a refusal (see [`REFUSED`]).
pub fn refused(reason: &'static str) {
    metrics::counter!(REFUSED, "reason" => reason).increment(1);
}

/// Counts a session ended for not keeping up (see [`SESSIONS_DROPPED`]).
pub fn session_dropped(reason: &'static str) {
    metrics::counter!(SESSIONS_DROPPED, "reason" => reason).increment(1);
}

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder as the global one (once per process) and describes Banter's
/// metrics; returns its handle, or `None` when another recorder was installed first.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(handle) => {
                describe();
                Some(handle)
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed");
                None
            }
        })
        .as_ref()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        PERSISTER_LAG,
        Unit::Count,
        "records of the partition not yet committed by the persister group"
    );
    describe_gauge!(
        ACTORS_ACTIVE,
        Unit::Count,
        "room and user actors live on this node"
    );
    describe_gauge!(
        CONNECTIONS_OPEN,
        Unit::Count,
        "client connections open, WebSockets included"
    );
    describe_counter!(
        REFUSED,
        Unit::Count,
        "requests and connections refused to protect the node, by reason"
    );
    describe_counter!(
        SESSIONS_DROPPED,
        Unit::Count,
        "sessions ended because the client did not keep up, by reason"
    );
    describe_counter!(PERSISTER_ROWS, Unit::Count, "rows the persister inserted");
    describe_counter!(
        PERSISTER_BATCHES,
        Unit::Count,
        "batches the persister wrote (rows stored, dead letters sent)"
    );
    describe_counter!(
        PERSISTER_DEAD_LETTERS,
        Unit::Count,
        "records sent to the dead-letter topic, by reason"
    );
    describe_counter!(
        PERSISTER_RESTARTS,
        Unit::Count,
        "restarts of the persister's consumer loop after a panic"
    );
    describe_counter!(
        JOURNAL_APPENDS,
        Unit::Count,
        "appends acknowledged by the Kafka broker"
    );
    describe_histogram!(
        JOURNAL_COMMIT_SECONDS,
        Unit::Seconds,
        "time one commit of the in-process journal took (its messages wait for it)"
    );
    describe_histogram!(
        JOURNAL_COMMIT_MESSAGES,
        Unit::Count,
        "messages in one commit of the in-process journal"
    );
    describe_counter!(
        JOURNAL_APPEND_ERRORS,
        Unit::Count,
        "appends the Kafka journal could not make durable"
    );
}

/// Returns every metric in the Prometheus text format.
pub fn render() -> String {
    match install() {
        Some(handle) => {
            handle.run_upkeep();
            handle.render()
        }
        None => String::new(),
    }
}

/// Handler of `GET /metrics`.
/// Returns the `/metrics` route: open to a request bearing `token` (when one is configured) and to
/// direct requests from the loopback address; 403 `forbidden` for everyone else.
pub fn route<S: Clone + Send + Sync + 'static>(token: &str) -> axum::routing::MethodRouter<S> {
    let token: Arc<str> = Arc::from(token);
    axum::routing::get(
        move |ConnectInfo(peer): ConnectInfo<SocketAddr>, headers: HeaderMap| {
            let token = token.clone();
            async move {
                if may_read(&token, peer, &headers) {
                    metrics_endpoint().await.into_response()
                } else {
                    crate::error::ApiError::forbidden(
                        "metrics are served to the loopback address or with the metrics token",
                    )
                    .into_response()
                }
            }
        },
    )
}

/// Tells whether a request may read the metrics (see [`route`]).
fn may_read(token: &str, peer: SocketAddr, headers: &HeaderMap) -> bool {
    if !token.is_empty()
        && let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::auth::bearer)
    {
        return aws_lc_rs::constant_time::verify_slices_are_equal(
            given.as_bytes(),
            token.as_bytes(),
        )
        .is_ok();
    }
    peer.ip().to_canonical().is_loopback()
        && !headers.contains_key("x-forwarded-for")
        && !headers.contains_key(header::FORWARDED)
}

/// Renders the metrics (unguarded: see [`route`]).
pub async fn metrics_endpoint() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_for_loopback_or_the_token_holder() {
        let local: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let remote: SocketAddr = "10.1.2.3:5000".parse().expect("addr");
        let none = HeaderMap::new();
        let mut proxied = HeaderMap::new();
        proxied.insert("x-forwarded-for", "10.9.9.9".parse().expect("value"));
        let mut bearer = HeaderMap::new();
        bearer.insert(
            header::AUTHORIZATION,
            "Bearer s3cret".parse().expect("value"),
        );
        let mut wrong = HeaderMap::new();
        wrong.insert(header::AUTHORIZATION, "Bearer nope".parse().expect("value"));
        assert!(may_read("", local, &none));
        assert!(!may_read("", local, &proxied), "through a local proxy");
        assert!(!may_read("", remote, &none));
        assert!(!may_read("", remote, &bearer), "no token configured");
        assert!(may_read("s3cret", remote, &bearer));
        assert!(!may_read("s3cret", remote, &wrong));
    }

    #[test]
    fn renders_counters_and_labelled_gauges() {
        assert!(install().is_some());
        metrics::counter!(JOURNAL_APPENDS).increment(3);
        metrics::gauge!(PERSISTER_LAG, "topic" => "t", "partition" => "4").set(17.0);
        let text = render();
        assert!(
            text.contains("# TYPE banter_journal_appends_total counter"),
            "{text}"
        );
        assert!(
            text.contains("banter_persister_lag{topic=\"t\",partition=\"4\"} 17"),
            "{text}"
        );
    }
}
