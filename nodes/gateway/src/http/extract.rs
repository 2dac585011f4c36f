//! Extractors that answer bad input with the JSON error body instead of axum's plain-text rejections,
//! and the authenticated-user extractor.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use banter_actors::model::UserId;
use serde::de::DeserializeOwned;

use crate::auth::{TokenType, bearer};
use crate::error::ApiError;
use crate::state::AppState;

/// A JSON object body; malformed JSON is a 400 `invalid_json`, JSON that is not an object or does
/// not fit `T` a 400 `bad_request`, a wrong content type a 415, a body over the limit a 413
/// `payload_too_large`.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<serde_json::Value>::from_request(req, state).await {
            Ok(axum::Json(v)) => json_object(v).map(ApiJson),
            Err(rejection) => Err(json_error(rejection)),
        }
    }
}

/// Reads `T` from a JSON object. Serde would also read a struct from an array of its fields in
/// order; every request body of the API is an object, so that is refused like any other mismatch.
pub fn json_object<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    serde_json::from_value(value).map_err(|e| ApiError::bad_request(e.to_string()))
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

/// Parses a query parameter that must be a non-negative decimal integer: digits only (no sign, no
/// spaces, no fraction), within the range of `T`. Returns `None` for anything else.
pub fn parse_digits<T: std::str::FromStr>(raw: &str) -> Option<T> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

/// Parses an optional `limit` query parameter that the schema declares as an `i32` from 0 up:
/// `default` when absent, else clamped to `1..=max`; anything but digits in range is 400
/// `invalid_limit`.
pub fn clamped_limit(raw: Option<&str>, default: u32, max: u32) -> Result<u32, ApiError> {
    let Some(raw) = raw else {
        return Ok(default);
    };
    parse_digits::<i32>(raw)
        .map(|n| n.unsigned_abs().clamp(1, max))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_limit",
                "limit must be an integer from 0 to 2147483647",
            )
        })
}

/// Deserializes a JSON integer into an `i64`, also when written with a zero fraction (`42.0`), which
/// JSON Schema counts as an integer; any other number is an error.
pub fn integral_i64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    use serde::de::{Error, Unexpected, Visitor};
    struct Integral;
    impl Visitor<'_> for Integral {
        type Value = i64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an integer")
        }
        fn visit_i64<E: Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
        }
        fn visit_f64<E: Error>(self, v: f64) -> Result<i64, E> {
            // 2^63 is exact in f64; every integral value below it in magnitude fits an i64.
            const LIMIT: f64 = 9_223_372_036_854_775_808.0;
            if v.fract() == 0.0 && (-LIMIT..LIMIT).contains(&v) {
                #[allow(clippy::cast_possible_truncation)]
                Ok(v as i64)
            } else {
                Err(E::invalid_value(Unexpected::Float(v), &self))
            }
        }
    }
    d.deserialize_any(Integral)
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
        let claims = state.keys.verify(token, TokenType::Access).await?;
        Ok(AuthUser {
            id: claims.user_id()?,
            username: claims.name,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[serde(deserialize_with = "integral_i64")]
        id: i64,
        name: Option<String>,
    }

    #[test]
    fn integer_parameters_are_decimal_digits_only() {
        assert_eq!(parse_digits::<i64>("0"), Some(0));
        assert_eq!(parse_digits::<i64>("9223372036854775807"), Some(i64::MAX));
        for raw in [
            "",
            "+5",
            "-1",
            " 5",
            "5 ",
            "1.5",
            "1e3",
            "0x10",
            "9223372036854775808",
        ] {
            assert_eq!(parse_digits::<i64>(raw), None, "{raw:?}");
        }
        assert_eq!(parse_digits::<i32>("2147483648"), None);
    }

    #[test]
    fn a_json_integer_may_have_a_zero_fraction() {
        let id = |v: serde_json::Value| json_object::<Body>(json!({ "id": v })).map(|b| b.id);
        assert_eq!(id(json!(42)).ok(), Some(42));
        assert_eq!(id(json!(42.0)).ok(), Some(42));
        assert_eq!(id(json!(-7.0)).ok(), Some(-7));
        for bad in [
            json!(42.5),
            json!(1e19),
            json!(u64::MAX),
            json!("42"),
            json!(null),
        ] {
            let e = id(bad.clone()).expect_err("refused");
            assert_eq!(
                (e.status, e.code),
                (StatusCode::BAD_REQUEST, "bad_request"),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_body_is_a_json_object_and_nothing_else() {
        // Serde alone would read the struct from an array of its fields.
        for bad in [json!([1, null]), json!(null), json!(1), json!("x")] {
            let e = json_object::<Body>(bad.clone()).expect_err("refused");
            assert_eq!(
                (e.status, e.code),
                (StatusCode::BAD_REQUEST, "bad_request"),
                "{bad}"
            );
        }
        assert_eq!(
            json_object::<Body>(json!({"id": 1})).ok(),
            Some(Body { id: 1, name: None })
        );
        assert!(json_object::<Body>(json!({"id": 1, "extra": true})).is_err());
    }
}
