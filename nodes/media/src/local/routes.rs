//! The local store's HTTP routes: uploads by signed form, downloads by signed URL. Errors are
//! the REST API's `{"error": {"code", "message"}}` bodies.

use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::{Allowed, LocalBlobs, ROUTE, Refused, unique_name};

/// Form fields before the file, at most.
const MAX_FIELDS: usize = 16;
/// Bytes of one form field, at most.
const MAX_FIELD_BYTES: usize = 2048;
/// Bytes a form may add to its file (the fields and the multipart framing).
const FORM_OVERHEAD: usize = MAX_FIELDS * (MAX_FIELD_BYTES + 256);
/// How long one upload may stream: a client that trickles its file is cut off.
const UPLOAD_DEADLINE: Duration = Duration::from_secs(600);

/// The routes of `blobs`: `POST /api/blobs` (an upload form, the file at most
/// `max_upload_bytes`) and `GET /api/blobs/{key}` (a signed download URL).
pub fn routes(blobs: LocalBlobs, max_upload_bytes: u64) -> Router {
    let body_limit = usize::try_from(max_upload_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(FORM_OVERHEAD);
    Router::new()
        .route(ROUTE, post(upload).layer(DefaultBodyLimit::max(body_limit)))
        .route(&format!("{ROUTE}/{{*key}}"), get(download))
        .with_state(blobs)
}

fn error(status: StatusCode, code: &'static str, message: impl Into<String>) -> Response {
    let message: String = message.into();
    (
        status,
        Json(serde_json::json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

fn refused(why: Refused) -> Response {
    match why {
        Refused::Malformed(m) => error(StatusCode::BAD_REQUEST, "bad_request", m),
        Refused::Signature => error(
            StatusCode::FORBIDDEN,
            "bad_signature",
            "the signature does not match",
        ),
        Refused::Expired => error(
            StatusCode::FORBIDDEN,
            "expired",
            "the form or URL has expired",
        ),
    }
}

async fn upload(State(blobs): State<LocalBlobs>, multipart: Multipart) -> Response {
    match tokio::time::timeout(UPLOAD_DEADLINE, receive(&blobs, multipart)).await {
        Ok(response) => response,
        Err(_) => error(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            "the upload took too long",
        ),
    }
}

/// Reads the form's fields, checks them when the file begins, and streams the file to a
/// temporary file, counting its bytes against the form's limit.
async fn receive(blobs: &LocalBlobs, mut multipart: Multipart) -> Response {
    let mut fields: Vec<(String, String)> = Vec::new();
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "the form has no file",
                );
            }
            Err(e) => return error(e.status(), "bad_request", e.body_text()),
        };
        let name = field.name().unwrap_or_default().to_owned();
        if name != "file" {
            if fields.len() == MAX_FIELDS {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "too many form fields",
                );
            }
            let mut value = Vec::new();
            loop {
                match field.chunk().await {
                    Ok(Some(chunk)) if value.len() + chunk.len() <= MAX_FIELD_BYTES => {
                        value.extend_from_slice(&chunk);
                    }
                    Ok(Some(_)) => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "bad_request",
                            format!("form field {name} is too long"),
                        );
                    }
                    Ok(None) => break,
                    Err(e) => return error(e.status(), "bad_request", e.body_text()),
                }
            }
            let Ok(value) = String::from_utf8(value) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!("form field {name} is not UTF-8"),
                );
            };
            fields.push((name, value));
            continue;
        }
        let allowed = match blobs.check_form(&fields) {
            Ok(allowed) => allowed,
            Err(why) => return refused(why),
        };
        return store(blobs, &allowed, field).await;
    }
}

async fn store(
    blobs: &LocalBlobs,
    allowed: &Allowed,
    mut file: axum::extract::multipart::Field<'_>,
) -> Response {
    let temp = blobs.incoming().join(unique_name());
    let result = async {
        let mut out = tokio::fs::File::create(&temp).await?;
        let mut size: u64 = 0;
        loop {
            let chunk = match file.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => return Ok(Err(error(e.status(), "bad_request", e.body_text()))),
            };
            size += chunk.len() as u64;
            if size > allowed.max_bytes {
                return Ok(Err(error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!(
                        "the file is larger than the {} bytes allowed",
                        allowed.max_bytes
                    ),
                )));
            }
            out.write_all(&chunk).await?;
        }
        if size == 0 {
            return Ok(Err(error(
                StatusCode::BAD_REQUEST,
                "too_small",
                "the file is empty",
            )));
        }
        out.sync_all().await?;
        Ok::<_, std::io::Error>(Ok(size))
    }
    .await;
    let size = match result {
        Ok(Ok(size)) => size,
        Ok(Err(response)) => {
            let _ = tokio::fs::remove_file(&temp).await;
            return response;
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&temp).await;
            tracing::warn!(error = %e, "blob store: upload not written");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the upload could not be stored",
            );
        }
    };
    if let Err(e) = blobs
        .commit(&temp, &allowed.key, &allowed.content_type)
        .await
    {
        let _ = tokio::fs::remove_file(&temp).await;
        tracing::warn!(error = %e, "blob store: upload not kept");
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the upload could not be stored",
        );
    }
    (
        StatusCode::CREATED,
        Json(serde_json::json!({"key": allowed.key.as_str(), "size": size})),
    )
        .into_response()
}

#[derive(Deserialize)]
struct Signed {
    expires: u64,
    signature: String,
}

async fn download(
    State(blobs): State<LocalBlobs>,
    Path(key): Path<String>,
    query: Result<Query<Signed>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(signed)) = query else {
        return error(
            StatusCode::FORBIDDEN,
            "bad_signature",
            "the URL is not signed",
        );
    };
    let key = match blobs.check_download(&key, signed.expires, &signed.signature) {
        Ok(key) => key,
        Err(why) => return refused(why),
    };
    let file = match tokio::fs::File::open(blobs.path(&key)).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return error(StatusCode::NOT_FOUND, "not_found", "no such object");
        }
        Err(e) => {
            tracing::warn!(error = %e, "blob store: object not readable");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the object cannot be read",
            );
        }
    };
    let content_type = tokio::fs::read_to_string(blobs.type_path(&key))
        .await
        .ok()
        .and_then(|t| HeaderValue::from_str(t.trim()).ok())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let inline = content_type.as_bytes().starts_with(b"image/");
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static(if inline { "inline" } else { "attachment" }),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    response
}
