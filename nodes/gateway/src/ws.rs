//! The WebSocket endpoint `/ws`: the Origin check, the upgrade (offering the `v12.stomp` subprotocol,
//! accepting clients that offer none) and one light session task per connection ([`session`]).

mod frames;
mod session;

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::front_door::ConnectionSlot;
use crate::state::AppState;

/// Upgrades `/ws` to a STOMP session after checking the Origin. The connection's slot under the front
/// door's caps moves into the session, so it counts until the session ends.
pub async fn upgrade(
    State(state): State<AppState>,
    slot: Option<Extension<Arc<ConnectionSlot>>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if *state.shutdown.borrow() {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "this node is shutting down: reconnect to another",
        )
        .into_response();
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let origin = origin.to_str().unwrap_or("");
        if !origin_allowed(origin, host, &state.config.http.allowed_origins) {
            return ApiError::forbidden(format!("origin '{origin}' is not allowed"))
                .into_response();
        }
    }
    let max_frame = state
        .config
        .limits
        .max_frame_bytes
        .max(state.config.limits.max_body_bytes + 1024);
    ws.protocols(["v12.stomp"])
        .read_buffer_size(state.config.ws.read_buffer_bytes.max(64))
        // Slightly above the STOMP frame limit, so an oversize frame gets a STOMP ERROR from the codec
        // rather than a bare close from the WebSocket layer.
        .max_message_size(max_frame * 2)
        .max_frame_size(max_frame * 2)
        .on_upgrade(move |socket| {
            let running = state.sessions.token();
            async move {
                session::run(state, socket).await;
                drop(slot);
                drop(running);
            }
        })
}

/// Returns whether a browser at `origin` may connect: it is listed, or (with no list) its host is the
/// request's Host.
fn origin_allowed(origin: &str, host: Option<&str>, allowed: &[String]) -> bool {
    if !allowed.is_empty() {
        return allowed.iter().any(|a| a.eq_ignore_ascii_case(origin));
    }
    let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or("");
    host.is_some_and(|h| !h.is_empty() && h.eq_ignore_ascii_case(origin_host))
}

#[cfg(test)]
mod tests {
    use super::origin_allowed;

    #[test]
    fn same_host_is_allowed_by_default() {
        assert!(origin_allowed(
            "http://127.0.0.1:8080",
            Some("127.0.0.1:8080"),
            &[]
        ));
        assert!(!origin_allowed(
            "http://evil.example",
            Some("127.0.0.1:8080"),
            &[]
        ));
        assert!(!origin_allowed("null", Some("127.0.0.1:8080"), &[]));
    }

    #[test]
    fn listed_origins_only_when_configured() {
        let allowed = vec!["https://chat.example.com".to_string()];
        assert!(origin_allowed(
            "https://chat.example.com",
            Some("x"),
            &allowed
        ));
        assert!(!origin_allowed("http://x", Some("x"), &allowed));
    }
}
