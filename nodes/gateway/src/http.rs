//! The HTTP surface: the REST API (documented by the OpenAPI document generated from these handlers,
//! served at `/api/openapi.json`), health checks, Prometheus metrics at `/metrics` and the WebSocket
//! endpoint `/ws`.

pub mod auth_api;
pub mod avatars_api;
pub mod budget;
pub mod extract;
pub mod feeds_api;
mod history;
pub mod rooms_api;
pub mod uploads_api;
pub mod users_api;
pub mod views;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use extract::AuthUser;

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Banter", description = "REST API of a Banter node. Live chat is STOMP 1.2 over WebSocket at /ws (see docs/PROTOCOL.md)."),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .build(),
                ),
            );
        }
    }
}

/// Returns the OpenAPI document of the REST API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut api = api_router().split_for_parts().1;
    add_common_errors(&mut api);
    api
}

/// Adds to every operation the error answers that come from what it shares with others rather than
/// from its handler, unless the handler's annotation documents them already: the extractors' 400
/// (path and query parameters, JSON bodies), 413 and 415 (bodies) and 401 (a required bearer token),
/// and, on `/api/` routes, the store's 503 `unavailable` and 500 `internal`.
fn add_common_errors(api: &mut utoipa::openapi::OpenApi) {
    for (path, item) in api.paths.paths.iter_mut() {
        let uses_store = path.starts_with("/api/");
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            let bearer_required = op.security.as_ref().is_some_and(|reqs| {
                !reqs.is_empty() && reqs.iter().all(|r| !is_empty_requirement(r))
            });
            let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let has_body = op.request_body.is_some();
            let mut errors: Vec<(&str, &str)> = Vec::new();
            if has_params || has_body {
                errors.push((
                    "400",
                    "`bad_request`, `invalid_json` or a field's code: the request breaks the schema",
                ));
            }
            if bearer_required {
                errors.push((
                    "401",
                    "`unauthorized`, `invalid_token` or `token_expired`: no valid access token",
                ));
            }
            if has_body {
                errors.push((
                    "413",
                    "`payload_too_large`: over `limits.max_http_body_bytes`",
                ));
                errors.push((
                    "415",
                    "`unsupported_media_type`: the body is not `application/json`",
                ));
            }
            if uses_store {
                errors.push((
                    "500",
                    "`internal`: a failure of the node (details in its log)",
                ));
                errors.push((
                    "503",
                    "`unavailable`: the store cannot be reached, try again",
                ));
            }
            for (status, description) in errors {
                op.responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error_response(description).into());
            }
        }
    }
}

/// Tells whether a security requirement is the empty one (`{}`: no credentials needed).
fn is_empty_requirement(requirement: &utoipa::openapi::security::SecurityRequirement) -> bool {
    serde_json::to_value(requirement)
        .ok()
        .and_then(|v| v.as_object().map(serde_json::Map::is_empty))
        .unwrap_or(false)
}

/// Returns a response of the JSON error body.
fn error_response(description: &str) -> utoipa::openapi::Response {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth_api::register))
        .routes(routes!(auth_api::login))
        .routes(routes!(auth_api::refresh))
        .routes(routes!(auth_api::logout))
        .routes(routes!(auth_api::jwks))
        .routes(routes!(users_api::available))
        .routes(routes!(users_api::search))
        .routes(routes!(users_api::me, users_api::update_me))
        .routes(routes!(rooms_api::create, rooms_api::list))
        .routes(routes!(rooms_api::get))
        .routes(routes!(rooms_api::join))
        .routes(routes!(rooms_api::leave))
        .routes(routes!(rooms_api::members))
        .routes(routes!(rooms_api::open_dm))
        .routes(routes!(rooms_api::history))
        .routes(routes!(uploads_api::create))
        .routes(routes!(uploads_api::download))
        .routes(routes!(avatars_api::grant))
        .routes(routes!(
            avatars_api::set,
            avatars_api::remove,
            avatars_api::mine
        ))
        .routes(routes!(avatars_api::of_user))
        .routes(routes!(feeds_api::sources))
        .routes(routes!(feeds_api::events))
        .routes(routes!(feeds_api::create_room))
        .routes(routes!(feeds_api::get_feed, feeds_api::set_feed))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// Builds the node's router, with `extra` routes (the local blob store's) beside the API: they
/// keep their own body limits and deadlines (an upload streams for minutes), and run in a
/// request's span like every other route.
pub fn router(state: AppState, extra: Option<Router>) -> Router {
    let (router, mut api) = api_router().split_for_parts();
    add_common_errors(&mut api);
    if let Some(accounts) = &state.accounts {
        uploads_api::document_rules(&mut api, accounts.rules());
    }
    let max_body = state.config.limits.max_http_body_bytes;
    let deadline = std::time::Duration::from_millis(state.config.http.request_timeout_ms.max(1));
    router
        .route("/api/openapi.json", get(move || async move { Json(api) }))
        .route("/ws", get(crate::ws::upgrade))
        .route(
            "/metrics",
            crate::metrics::route(&state.config.http.metrics_token),
        )
        // Everything else is the web app's (or, under /api/, a JSON 404).
        .fallback_service(crate::web::router(&state.config.http.web_dir))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(move |req, next| {
            crate::front_door::request_deadline(deadline, req, next)
        }))
        .with_state(state)
        .merge(extra.unwrap_or_default())
        // Outermost: every answer, errors of the layers above included, is made in its span.
        .layer(axum::middleware::from_fn(request_span))
}

/// While traces are exported, runs a request in an `http.request` span, under the caller's
/// `traceparent` header when it sent a valid one. (A WebSocket upgrade's span ends with the upgrade;
/// its session's messages have spans of their own.)
async fn request_span(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use banter_telemetry::otel;
    use tracing::Instrument;
    let parent = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .filter(|tp| otel::message_context(tp).is_some())
        .map(str::to_owned);
    // Decided before any span is made (see `otel::keep_new_trace`).
    if !otel::keep_trace(parent.as_deref()) {
        return next.run(req).await;
    }
    let span = tracing::info_span!(
        parent: None,
        "http.request",
        otel.kind = "server",
        http.request.method = %req.method(),
        url.path = %req.uri().path(),
        http.response.status_code = tracing::field::Empty,
    );
    if let Some(parent) = &parent {
        otel::follow(&span, parent);
    }
    let response = next.run(req).instrument(span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    response
}

/// Liveness: 200 while the process serves.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Object)))]
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Readiness: 200 when the store answers, 503 otherwise.
#[utoipa::path(get, path = "/readyz", tag = "health", responses((status = 200, body = Object), (status = 503, body = ErrorBody)))]
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state
        .store()
        .last_seq(banter_actors::model::RoomId(0))
        .await
    {
        Ok(_) => (StatusCode::OK, Json(serde_json::json!({"status": "ready"}))).into_response(),
        Err(e) => not_ready(&e).into_response(),
    }
}

/// Answers a failed readiness check: the store's error text (hosts, users, SQL) goes to the
/// operator's log, not to clients.
fn not_ready(e: &banter_actors::ports::StoreError) -> ApiError {
    tracing::warn!(error = %e, "not ready: the store does not answer");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the store is unavailable",
    )
}

#[cfg(test)]
mod tests {
    use banter_actors::ports::StoreError;

    use super::*;

    #[test]
    fn every_operation_documents_the_errors_it_shares() {
        let doc = serde_json::to_value(openapi()).expect("openapi serialises");
        let mut checked = 0;
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                let responses = &op["responses"];
                let has = |status: &str| {
                    responses[status]["content"]["application/json"]["schema"]["$ref"]
                        == "#/components/schemas/ErrorBody"
                };
                let at = format!("{method} {path}");
                if !op["requestBody"].is_null() {
                    for status in ["400", "413", "415"] {
                        assert!(has(status), "{at} lacks {status}");
                    }
                }
                if op["parameters"].as_array().is_some_and(|p| !p.is_empty()) {
                    assert!(has("400"), "{at} lacks 400");
                }
                let security = op["security"].as_array();
                if security.is_some_and(|s| s.iter().all(|r| r != &serde_json::json!({}))) {
                    assert!(has("401"), "{at} lacks 401");
                }
                if path.starts_with("/api/") {
                    assert!(has("503"), "{at} lacks 503");
                }
                checked += 1;
            }
        }
        assert!(checked >= 19, "only {checked} operations");
    }

    #[test]
    fn readiness_failures_do_not_show_the_store_error() {
        let secret = "error communicating with mysql://banter:hunter2@10.1.2.3:3306";
        for e in [
            StoreError::Unavailable(secret.into()),
            StoreError::Other(secret.into()),
        ] {
            let answer = not_ready(&e);
            assert_eq!(
                (answer.status, answer.code),
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            );
            assert!(!answer.message.contains("hunter2") && !answer.message.contains("10.1.2.3"));
        }
    }
}
