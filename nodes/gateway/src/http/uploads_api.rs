//! Uploads: a member asks to upload a file to a room, and gets a form to post it with, straight
//! to the blob store (the bytes never pass through a node's handlers, unless the store is the
//! embedded node's own folder). The user's actor grants it ([`banter_actors::account`]): content
//! type, size, rate and quota are its rules.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use banter_actors::account::{DownloadError, UploadError, UploadGrant, UploadRequest, UploadRules};
use banter_actors::model::RoomId;
use banter_actors::ports::UploadPurpose;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::{ApiJson, ApiPath, AuthUser};
use super::rooms_api::require_member;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

/// A file to upload.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUpload {
    /// The file's name; kept (cleaned: its last path segment, no control characters) as
    /// metadata only.
    #[schema(max_length = 1024)]
    pub filename: String,
    /// Its content type: one of `media.allowed_types`, else a 415 `type_not_allowed`.
    #[schema(max_length = 255)]
    pub content_type: String,
    /// Its size in bytes: 1 to `media.max_upload_bytes` (25 MiB), else a 400 `empty_file` or
    /// `too_large`. The store refuses a larger file than declared.
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "super::extract::integral_i64")]
    pub size: i64,
}

/// One field of an upload form.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct FormField {
    /// The field's name.
    pub name: String,
    /// Its value, to send as is.
    pub value: String,
}

/// How to upload a granted file: a `multipart/form-data` POST to `url` of every field of
/// `fields` in order, then the file as the last part, named `file`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct UploadGrantView {
    /// The upload's id (a UUID), to name it as an attachment.
    pub upload_id: String,
    /// Always `POST`.
    pub method: String,
    /// Where to post: absolute for S3, a path of this node (`/api/blobs`) for the embedded store.
    pub url: String,
    /// The form's fields.
    pub fields: Vec<FormField>,
    /// The name of the file's part: `file`.
    pub file_field: String,
    /// When the form stops working (ms since the Unix epoch).
    pub expires_at_ms: i64,
    /// The largest file the store accepts through this form (the declared size).
    pub max_bytes: u64,
}

impl From<UploadGrant> for UploadGrantView {
    fn from(grant: UploadGrant) -> Self {
        UploadGrantView {
            upload_id: grant.upload_id.to_string(),
            method: "POST".into(),
            url: grant.form.url,
            fields: grant
                .form
                .fields
                .into_iter()
                .map(|(name, value)| FormField { name, value })
                .collect(),
            file_field: "file".into(),
            expires_at_ms: grant.expires_at_ms,
            max_bytes: grant.max_bytes,
        }
    }
}

impl From<UploadError> for ApiError {
    fn from(e: UploadError) -> Self {
        let status = match &e {
            UploadError::TypeNotAllowed(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            // The request is not too large: the file it declares is (a 413 is for the body).
            UploadError::TooLarge(_) | UploadError::Empty | UploadError::FilenameTooLong => {
                StatusCode::BAD_REQUEST
            }
            UploadError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            UploadError::QuotaExceeded(_) => StatusCode::FORBIDDEN,
            UploadError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        let error = ApiError::new(status, e.code(), e.to_string());
        match e {
            UploadError::RateLimited(wait) => error.retry_after(wait),
            _ => error,
        }
    }
}

/// Asks to upload a file to a room the caller is a member of.
#[utoipa::path(post, path = "/api/rooms/{id}/uploads", tag = "uploads", params(("id" = i64, Path, minimum = 1)), security(("bearer" = [])),
    request_body = NewUpload,
    responses((status = 201, body = UploadGrantView),
        (status = 400, description = "`empty_file`, `too_large`, `filename_too_long`, or a malformed body", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "`forbidden`: not a member; `quota_exceeded`: the caller's uploads hold `media.quota_bytes`", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 415, description = "`type_not_allowed`", body = ErrorBody),
        (status = 429, description = "`rate_limited`: more than `media.uploads_per_minute`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
        (status = 503, description = "`uploads_off`: this node has no blob store; `unavailable`", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    me: AuthUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<NewUpload>,
) -> ApiResult<(StatusCode, Json<UploadGrantView>)> {
    let accounts = state.accounts.as_ref().ok_or_else(uploads_off)?;
    let room = RoomId(id);
    require_member(&state, room, me.id).await?;
    let request = UploadRequest {
        filename: body.filename,
        content_type: body.content_type,
        size: u64::try_from(body.size).unwrap_or(0),
    };
    let grant = accounts
        .grant_upload(me.id, UploadPurpose::Attachment(room), request)
        .await?;
    Ok((StatusCode::CREATED, Json(grant.into())))
}

/// A signed URL to read an attachment.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct DownloadView {
    /// Where to GET the file: absolute for S3, a path of this node (`/api/blobs/…`) for the
    /// embedded store. Anyone holding it can read the file until it expires.
    pub url: String,
    /// When the URL stops working (ms since the Unix epoch); ask again after.
    pub expires_at_ms: i64,
}

impl From<DownloadError> for ApiError {
    fn from(e: DownloadError) -> Self {
        let status = match &e {
            DownloadError::Unknown(_) | DownloadError::NoAvatar(_) => StatusCode::NOT_FOUND,
            DownloadError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

/// Gives a member of a room a short-lived URL (`media.download_ttl_secs`) of one of the room's
/// attachments, as named in a message's `attachments`.
#[utoipa::path(get, path = "/api/rooms/{id}/attachments/{attachment_id}", tag = "uploads", security(("bearer" = [])),
    params(("id" = i64, Path, minimum = 1), ("attachment_id" = String, Path, format = Uuid, description = "The attachment's `id`")),
    responses((status = 200, body = DownloadView),
        (status = 400, description = "a malformed id", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "`forbidden`: not a member", body = ErrorBody),
        (status = 404, description = "`not_found`: no such room; `unknown_attachment`: no attachment of the room has this id", body = ErrorBody),
        (status = 503, description = "`uploads_off`: this node has no blob store; `unavailable`", body = ErrorBody)))]
pub async fn download(
    State(state): State<AppState>,
    me: AuthUser,
    ApiPath((id, attachment)): ApiPath<(i64, Uuid)>,
) -> ApiResult<Json<DownloadView>> {
    let accounts = state.accounts.as_ref().ok_or_else(uploads_off)?;
    let room = RoomId(id);
    require_member(&state, room, me.id).await?;
    let signed = accounts.download(me.id, room, attachment).await?;
    Ok(Json(DownloadView {
        url: signed.url,
        expires_at_ms: signed.expires_at_ms,
    }))
}

pub(crate) fn uploads_off() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "uploads_off",
        "uploads are off on this node: a cluster needs an S3 blob store ([media] kind = \"s3\")",
    )
}

/// Writes this node's upload rules into the document: the content types `NewUpload` (and, of
/// those, the images `NewAvatarUpload`) may name and the largest size either may declare, so that
/// the document says what the handlers accept.
pub(crate) fn document_rules(api: &mut utoipa::openapi::OpenApi, rules: &UploadRules) {
    let images: Vec<&String> = rules
        .allowed_types
        .iter()
        .filter(|t| t.starts_with("image/"))
        .collect();
    document_schema(api, "NewUpload", rules.allowed_types.iter(), rules);
    document_schema(api, "NewAvatarUpload", images.into_iter(), rules);
}

fn document_schema<'a>(
    api: &mut utoipa::openapi::OpenApi,
    name: &str,
    types: impl Iterator<Item = &'a String>,
    rules: &UploadRules,
) {
    use utoipa::openapi::{RefOr, Schema};
    let Some(RefOr::T(Schema::Object(new_upload))) = api
        .components
        .as_mut()
        .and_then(|c| c.schemas.get_mut(name))
    else {
        return;
    };
    if let Some(RefOr::T(Schema::Object(ct))) = new_upload.properties.get_mut("content_type") {
        ct.enum_values = Some(types.map(|t| serde_json::Value::from(t.as_str())).collect());
    }
    if let Some(RefOr::T(Schema::Object(size))) = new_upload.properties.get_mut("size") {
        size.maximum = Some(utoipa::Number::UInt(
            usize::try_from(rules.max_upload_bytes).unwrap_or(usize::MAX),
        ));
    }
}
