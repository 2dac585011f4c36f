//! Extractors that answer bad input with the JSON error body instead of axum's plain-text rejections,
//! and the authenticated-user extractor.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use banter_actors::model::UserId;
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::auth::{TokenType, bearer};
use crate::error::ApiError;

/// A JSON body; malformed JSON is a 400 `invalid_json`, a wrong content type a 415, a body over the
/// limit a 413 `payload_too_large`.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_error(rejection)),
        }
    }
}

fn json_error(rejection: JsonRejection) -> ApiError {
    let status = rejection.status();
    let text = rejection.body_text();
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(status, "payload_too_large", "request body is too large")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            status,
            "unsupported_media_type",
            "expected content-type: application/json",
        ),
        _ => match rejection {
            JsonRejection::JsonDataError(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_request", text)
            }
            _ => ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", text),
        },
    }
}

/// Path parameters; a malformed one is a 400 (a room id that is not a number, say).
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|r: PathRejection| ApiError::bad_request(r.body_text()))
    }
}

/// Query parameters; malformed ones are a 400.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|r: QueryRejection| ApiError::bad_request(r.body_text()))
    }
}

/// The user a request is authenticated as (a valid access token in `Authorization: Bearer`).
#[derive(Clone, Debug)]
pub struct AuthUser {
    /// The user's id.
    pub id: UserId,
    /// The username at the time the token was issued.
    pub username: String,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer token"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(bearer)
            .ok_or_else(|| ApiError::unauthorized("expected Authorization: Bearer <token>"))?;
        let claims = state.keys.verify(token, TokenType::Access)?;
        Ok(AuthUser {
            id: claims.user_id()?,
            username: claims.name,
        })
    }
}
