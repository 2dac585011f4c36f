//! Avatars: a user uploads an image through the same grant flow as attachments (granted as an
//! avatar, straight to the blob store), then sets it; everyone signed in can see a user, so anyone
//! signed in gets a short-lived URL of anyone's avatar. The user's actor checks and signs
//! ([`banter_actors::account`]).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use banter_actors::account::{AttachError, UploadRequest};
use banter_actors::model::UserId;
use banter_actors::ports::UploadPurpose;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::{ApiJson, ApiPath, AuthUser};
use super::uploads_api::{DownloadView, UploadGrantView, uploads_off};
use super::views::UserView;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

/// The upload to make the caller's avatar.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AvatarChoice {
    /// An upload granted by `POST /api/users/me/avatar/uploads` and uploaded.
    #[schema(format = Uuid)]
    pub upload_id: Uuid,
}

/// An image to upload as one's avatar.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAvatarUpload {
    /// The file's name; kept (cleaned) as metadata only.
    #[schema(max_length = 1024)]
    pub filename: String,
    /// Its content type: one of `media.allowed_types` that is an image, else a 415
    /// `type_not_allowed`.
    #[schema(max_length = 255)]
    pub content_type: String,
    /// Its size in bytes: 1 to `media.max_upload_bytes`, else a 400 `empty_file` or
    /// `too_large`.
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "super::extract::integral_i64")]
    pub size: i64,
}

impl From<AttachError> for ApiError {
    fn from(e: AttachError) -> Self {
        let status = match &e {
            AttachError::Unknown(_) => StatusCode::NOT_FOUND,
            AttachError::NotUploaded(_) | AttachError::AlreadyUsed(_) => StatusCode::CONFLICT,
            AttachError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AttachError::TooMany
            | AttachError::WrongRoom(_)
            | AttachError::NotAnAvatar(_)
            | AttachError::SizeMismatch(..)
            | AttachError::Content(..) => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, e.code(), e.to_string())
    }
}

/// Asks to upload an image to make one's avatar: as `POST /api/rooms/{id}/uploads`, for images
/// only.
#[utoipa::path(post, path = "/api/users/me/avatar/uploads", tag = "uploads", security(("bearer" = [])),
    request_body = NewAvatarUpload,
    responses((status = 201, body = UploadGrantView),
        (status = 400, description = "`empty_file`, `too_large`, `filename_too_long`, or a malformed body", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "`quota_exceeded`", body = ErrorBody),
        (status = 415, description = "`type_not_allowed`: not an allowed image type", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
        (status = 503, description = "`uploads_off`; `unavailable`", body = ErrorBody)))]
pub async fn grant(
    State(state): State<AppState>,
    me: AuthUser,
    ApiJson(body): ApiJson<NewAvatarUpload>,
) -> ApiResult<(StatusCode, Json<UploadGrantView>)> {
    let accounts = state.accounts.as_ref().ok_or_else(uploads_off)?;
    let request = UploadRequest {
        filename: body.filename,
        content_type: body.content_type,
        size: u64::try_from(body.size).unwrap_or(0),
    };
    let grant = accounts
        .grant_upload(me.id, UploadPurpose::Avatar, request)
        .await?;
    Ok((StatusCode::CREATED, Json(grant.into())))
}

/// Makes an uploaded image the caller's avatar (the former one is deleted).
#[utoipa::path(put, path = "/api/users/me/avatar", tag = "uploads", security(("bearer" = [])),
    request_body = AvatarChoice,
    responses((status = 200, description = "The caller, `avatar_ref` naming the new avatar", body = UserView),
        (status = 400, description = "`not_an_avatar` (granted as an attachment), `size_mismatch`, `type_mismatch`, `too_many_pixels`, `undecodable`, or a malformed body", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "`unknown_upload`: no upload of the caller's has this id", body = ErrorBody),
        (status = 409, description = "`not_uploaded`; `already_attached`: used before", body = ErrorBody),
        (status = 503, description = "`uploads_off`; `unavailable`", body = ErrorBody)))]
pub async fn set(
    State(state): State<AppState>,
    me: AuthUser,
    ApiJson(choice): ApiJson<AvatarChoice>,
) -> ApiResult<Json<UserView>> {
    let accounts = state.accounts.as_ref().ok_or_else(uploads_off)?;
    accounts.set_avatar(me.id, Some(choice.upload_id)).await?;
    me_view(&state, me.id).await
}

/// Removes the caller's avatar (and deletes it).
#[utoipa::path(delete, path = "/api/users/me/avatar", tag = "uploads", security(("bearer" = [])),
    responses((status = 200, description = "The caller, without an avatar", body = UserView),
        (status = 401, body = ErrorBody),
        (status = 503, description = "`uploads_off`; `unavailable`", body = ErrorBody)))]
pub async fn remove(State(state): State<AppState>, me: AuthUser) -> ApiResult<Json<UserView>> {
    let accounts = state.accounts.as_ref().ok_or_else(uploads_off)?;
    accounts.set_avatar(me.id, None).await?;
    me_view(&state, me.id).await
}

/// Gives a short-lived URL (`media.download_ttl_secs`) of the caller's avatar.
#[utoipa::path(get, path = "/api/users/me/avatar", tag = "uploads", security(("bearer" = [])),
    responses((status = 200, body = DownloadView),
        (status = 401, body = ErrorBody),
        (status = 404, description = "`no_avatar`", body = ErrorBody),
        (status = 503, description = "`uploads_off`; `unavailable`", body = ErrorBody)))]
pub async fn mine(State(state): State<AppState>, me: AuthUser) -> ApiResult<Json<DownloadView>> {
    avatar(&state, me.id, me.id).await
}

/// Gives a short-lived URL (`media.download_ttl_secs`) of a user's avatar.
#[utoipa::path(get, path = "/api/users/{id}/avatar", tag = "uploads", security(("bearer" = [])),
    params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = DownloadView),
        (status = 400, description = "a malformed id", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "`no_avatar`: no such user, or none set", body = ErrorBody),
        (status = 503, description = "`uploads_off`; `unavailable`", body = ErrorBody)))]
pub async fn of_user(
    State(state): State<AppState>,
    me: AuthUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<DownloadView>> {
    avatar(&state, me.id, UserId(id)).await
}

async fn avatar(state: &AppState, me: UserId, of: UserId) -> ApiResult<Json<DownloadView>> {
    let accounts = state.accounts.as_ref().ok_or_else(uploads_off)?;
    let signed = accounts.avatar_url(me, of).await?;
    Ok(Json(DownloadView {
        url: signed.url,
        expires_at_ms: signed.expires_at_ms,
    }))
}

async fn me_view(state: &AppState, me: UserId) -> ApiResult<Json<UserView>> {
    let user = state
        .store()
        .user_by_id(me)
        .await?
        .ok_or_else(|| ApiError::unauthorized("user no longer exists"))?;
    Ok(Json(UserView::from(&user)))
}
