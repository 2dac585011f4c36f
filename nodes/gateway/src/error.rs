//! The one mapping from errors to what clients see: an HTTP status with the JSON body
//! `{"error": {"code", "message"}}` (and `trace_id` while traces are exported) for REST, and the
//! `message` of a STOMP ERROR frame for WebSocket.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use banter_actors::directory::RouteError;
use banter_actors::ports::StoreError;
use banter_actors::room::RoomError;
use banter_actors::rules::RuleError;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AuthError;

/// An error answered to a REST client.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Text for people.
    pub message: String,
    /// Seconds for the `Retry-After` header of a 429 or 503, when the server knows.
    pub retry_after_secs: Option<u64>,
}

/// Result of a REST handler.
pub type ApiResult<T> = Result<T, ApiError>;

/// JSON body of every error response.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Code and message of an error.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `username_taken`.
    pub code: String,
    /// Text for people.
    pub message: String,
    /// The trace of the request, to quote when reporting the error; only while the node exports
    /// traces (`[telemetry]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

impl ApiError {
    /// Creates an error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// Adds a `Retry-After` header of `wait`, rounded up to whole seconds (at least 1).
    pub fn retry_after(mut self, wait: std::time::Duration) -> Self {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        self.retry_after_secs = Some(secs.max(1));
        self
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 429 `rate_limited`.
    pub fn rate_limited(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
    }

    /// 500/503 for a failure of ours; the details go to the log, not to the client.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                trace_id: current_trace_id(),
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

/// The trace id of the request being answered (its `http.request` span), while traces are exported.
fn current_trace_id() -> Option<String> {
    if !banter_telemetry::otel::exporting() {
        return None;
    }
    let traceparent = banter_telemetry::otel::traceparent_of(&tracing::Span::current())?;
    banter_actors::trace::TraceParent::parse(&traceparent).map(|t| t.trace_id().to_owned())
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found("not found"),
            StoreError::Conflict(what) => ApiError::new(StatusCode::CONFLICT, "conflict", what),
            StoreError::Unavailable(why) => {
                tracing::warn!(%why, "store unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "storage is unavailable, try again",
                )
            }
            StoreError::Other(e) => ApiError::internal(e),
        }
    }
}

impl From<RuleError> for ApiError {
    fn from(e: RuleError) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, e.code(), e.to_string())
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Busy => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.code(), e.to_string())
                    .retry_after(std::time::Duration::from_secs(1))
            }
            AuthError::KeyStore(store) => ApiError::from(store),
            AuthError::KeyIo { .. }
            | AuthError::KeyFormat { .. }
            | AuthError::KeyGeneration
            | AuthError::NoUsableKey
            | AuthError::KeySetting(_)
            | AuthError::Hash(_) => ApiError::internal(e),
            _ => ApiError::new(StatusCode::UNAUTHORIZED, e.code(), e.to_string()),
        }
    }
}

impl From<RoomError> for ApiError {
    fn from(e: RoomError) -> Self {
        match e {
            RoomError::NotMember(_) => ApiError::forbidden(e.to_string()),
            RoomError::NotFound(_) => ApiError::not_found(e.to_string()),
            RoomError::Unavailable(..) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            ),
            RoomError::Moved(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "room_moved", e.to_string())
            }
            RoomError::Busy(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.code(), e.to_string())
            }
            RoomError::UnknownMessage(..) => {
                ApiError::new(StatusCode::NOT_FOUND, e.code(), e.to_string())
            }
            RoomError::MessageDeleted(_) => {
                ApiError::new(StatusCode::CONFLICT, e.code(), e.to_string())
            }
            RoomError::NotAuthor(_) | RoomError::NotAllowedToDelete(_) | RoomError::FeedRoom(_) => {
                ApiError::new(StatusCode::FORBIDDEN, e.code(), e.to_string())
            }
        }
    }
}

impl From<RouteError> for ApiError {
    fn from(e: RouteError) -> Self {
        match e {
            RouteError::NotFound => ApiError::not_found("not found"),
            RouteError::Moved => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "room_moved",
                "served by another node now: try again",
            ),
            RouteError::Unavailable(why) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", why)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn busy_password_hashing_is_a_503_with_retry_after() {
        let response = ApiError::from(AuthError::Busy).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers().get(axum::http::header::RETRY_AFTER),
            Some(&"1".parse().expect("header value"))
        );
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(body["error"]["code"], "busy");
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let e = |ms| ApiError::rate_limited("x").retry_after(std::time::Duration::from_millis(ms));
        assert_eq!(e(0).retry_after_secs, Some(1));
        assert_eq!(e(1).retry_after_secs, Some(1));
        assert_eq!(e(1000).retry_after_secs, Some(1));
        assert_eq!(e(1001).retry_after_secs, Some(2));
        assert_eq!(ApiError::rate_limited("x").retry_after_secs, None);
    }
}
