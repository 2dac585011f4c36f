//! The gateway's metrics (names, help texts, [`describe_metrics`]) and the guarded `GET /metrics`
//! route that renders every metric of the process (`banter_telemetry::render`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

/// Requests and connections refused to protect the node (counter, label `reason`: `backfill_busy`,
/// `node_connections`, `ip_connections`, `user_sessions`).
pub const REFUSED: &str = "banter_refused_total";
/// Sessions ended because the client did not keep up (counter, label `reason`: `too_slow` for a full
/// outbox, `write_deadline` for a write that did not finish in time).
pub const SESSIONS_DROPPED: &str = "banter_sessions_dropped_total";

/// Actors live on this node (gauge, label `kind`: `room`), refreshed every second. Users have no
/// actor: `banter_presence_users{scope="node"}` counts those with a session here.
pub const ACTORS_ACTIVE: &str = "banter_actors_active";

/// Messages waiting in actors' mailboxes on this node (gauge, label `kind`: `room`, the sum over
/// every room actor; `user`, over every user's actor; `directory`, the directories'), refreshed
/// every second. Exact: a message
/// counts itself from entering a mailbox until it is taken out or dropped with it.
pub const MAILBOX_DEPTH: &str = "banter_mailbox_depth";

/// Users online (gauge, label `scope`: `node`, with a session on this node; `cluster`, on any node as
/// this node knows), refreshed every second.
pub const PRESENCE_USERS: &str = "banter_presence_users";

/// Client connections open on the node, WebSockets included (gauge).
pub const CONNECTIONS_OPEN: &str = "banter_connections_open";

/// STOMP frames read from clients (counter, label `command`: the client commands, SEND,
/// SUBSCRIBE, ...).
pub const FRAMES_IN: &str = "banter_stomp_frames_in_total";
/// STOMP frames written to clients, every command together (counter; counted per write).
pub const FRAMES_OUT: &str = "banter_stomp_frames_out_total";
/// The client commands of [`FRAMES_IN`], each exported from the start at zero.
pub const CLIENT_COMMANDS: [&str; 11] = [
    "CONNECT",
    "STOMP",
    "SEND",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "ACK",
    "NACK",
    "BEGIN",
    "COMMIT",
    "ABORT",
    "DISCONNECT",
];

/// STOMP sessions open on the node (gauge).
pub const SESSIONS_OPEN: &str = "banter_sessions_open";
/// Time from reading a SEND that asked for a receipt to writing its RECEIPT, i.e. until the message
/// is durable (histogram, seconds).
pub const SEND_RECEIPT: &str = "banter_send_receipt_seconds";
/// Age of the oldest chat message in each write of a session: from its room accepting it (right
/// after the SEND, before it is durable) to the session writing it to its client, across nodes
/// (two wall clocks then) (histogram, seconds; one sample per write, not per message).
pub const SEND_DELIVER: &str = "banter_send_deliver_seconds";
/// Typing and read frames a session absorbed into one already passed on (counter, label `kind`:
/// `typing`, `read`).
pub const EVENTS_COALESCED: &str = "banter_events_coalesced_total";
/// Bytes read from WebSocket clients (counter).
pub const WS_BYTES_IN: &str = "banter_ws_bytes_in_total";
/// Bytes written to WebSocket clients (counter).
pub const WS_BYTES_OUT: &str = "banter_ws_bytes_out_total";
/// Outbound items (messages, receipts, events) a session found waiting in its outbox each time it
/// woke up to write (histogram).
pub const SESSION_OUTBOX: &str = "banter_session_outbox_items";

/// Loads of the token signing key set from the store (counter, labels `reason`: `refresh` for the
/// periodic one, `unknown_kid` for a token naming a kid the node did not know; `result`: `ok`,
/// `error`).
pub const SIGNING_KEY_LOADS: &str = "banter_signing_key_loads_total";

/// Counts a load of the signing key set (see [`SIGNING_KEY_LOADS`]).
pub fn signing_key_load(reason: &'static str, result: &'static str) {
    metrics::counter!(SIGNING_KEY_LOADS, "reason" => reason, "result" => result).increment(1);
}

/// Counts a refusal (see [`REFUSED`]).
pub fn refused(reason: &'static str) {
    metrics::counter!(REFUSED, "reason" => reason).increment(1);
}

/// Counts a session ended for not keeping up (see [`SESSIONS_DROPPED`]).
pub fn session_dropped(reason: &'static str) {
    metrics::counter!(SESSIONS_DROPPED, "reason" => reason).increment(1);
}

/// Describes this crate's metrics to the installed recorder.
pub fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(ACTORS_ACTIVE, Unit::Count, "room actors live on this node");
    describe_gauge!(
        MAILBOX_DEPTH,
        Unit::Count,
        "messages waiting in actors' mailboxes, by kind of actor"
    );
    describe_gauge!(
        PRESENCE_USERS,
        Unit::Count,
        "users online: with a session on this node, or on any node"
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
        SIGNING_KEY_LOADS,
        Unit::Count,
        "loads of the token signing key set from the store, by reason and result"
    );
    describe_counter!(
        SESSIONS_DROPPED,
        Unit::Count,
        "sessions ended because the client did not keep up, by reason"
    );
    describe_gauge!(SESSIONS_OPEN, Unit::Count, "STOMP sessions open");
    describe_histogram!(
        SEND_RECEIPT,
        Unit::Seconds,
        "time from reading a SEND to writing its RECEIPT (the message is durable)"
    );
    describe_histogram!(
        SEND_DELIVER,
        Unit::Seconds,
        "age of the oldest chat message in each write to a client, from its room accepting it"
    );
    describe_counter!(
        EVENTS_COALESCED,
        Unit::Count,
        "typing and read frames absorbed into one already passed on, by kind"
    );
    describe_counter!(
        WS_BYTES_IN,
        Unit::Bytes,
        "bytes read from WebSocket clients"
    );
    describe_counter!(
        WS_BYTES_OUT,
        Unit::Bytes,
        "bytes written to WebSocket clients"
    );
    describe_counter!(
        FRAMES_IN,
        Unit::Count,
        "STOMP frames read from clients, by command"
    );
    describe_counter!(FRAMES_OUT, Unit::Count, "STOMP frames written to clients");
    describe_histogram!(
        SESSION_OUTBOX,
        Unit::Count,
        "outbound items a session found waiting each time it woke up to write"
    );
    // Every series exported from the start, at zero: a rate or an alert has one before the first
    // event.
    metrics::gauge!(SESSIONS_OPEN).increment(0.0);
    metrics::gauge!(CONNECTIONS_OPEN).increment(0.0);
    metrics::counter!(WS_BYTES_IN).increment(0);
    metrics::counter!(WS_BYTES_OUT).increment(0);
    metrics::counter!(FRAMES_OUT).increment(0);
    for command in CLIENT_COMMANDS {
        metrics::counter!(FRAMES_IN, "command" => command).increment(0);
    }
    for kind in ["typing", "read"] {
        metrics::counter!(EVENTS_COALESCED, "kind" => kind).increment(0);
    }
    for reason in ["too_slow", "write_deadline"] {
        metrics::counter!(SESSIONS_DROPPED, "reason" => reason).increment(0);
    }
    for reason in [
        "backfill_busy",
        "node_connections",
        "ip_connections",
        "user_sessions",
    ] {
        metrics::counter!(REFUSED, "reason" => reason).increment(0);
    }
}

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
        banter_telemetry::render(),
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
}
