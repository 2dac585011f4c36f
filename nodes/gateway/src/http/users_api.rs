//! Users: username availability, prefix search, the caller's profile.

use axum::Json;
use axum::extract::State;
use banter_actors::rules;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{ApiJson, ApiQuery, AuthUser, clamped_limit};
use super::views::UserView;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

/// Query of the availability check.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AvailableQuery {
    /// Username to check.
    pub username: String,
}

/// Answer of the availability check.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Availability {
    /// The username as it would be stored (lowercase), or as given when invalid.
    pub username: String,
    /// Whether it is valid and free.
    pub available: bool,
    /// Why not, when not.
    pub reason: Option<String>,
}

/// Tells whether a username is valid and free (for a sign-up form; one indexed lookup).
#[utoipa::path(get, path = "/api/users/available", tag = "users", params(AvailableQuery),
    responses((status = 200, body = Availability)))]
pub async fn available(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<AvailableQuery>,
) -> ApiResult<Json<Availability>> {
    let answer = match rules::validate_username(&q.username) {
        Err(e) => Availability {
            username: q.username,
            available: false,
            reason: Some(e.to_string()),
        },
        Ok(name) => {
            let taken = state.store().user_by_username(&name).await?.is_some();
            Availability {
                username: name,
                available: !taken,
                reason: taken.then(|| "username is already taken".to_string()),
            }
        }
    };
    Ok(Json(answer))
}

/// Query of the user search.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Username prefix (matched literally, case-insensitive), at most 32 characters; longer is a 400
    /// `bad_request`.
    #[param(max_length = 32)]
    pub prefix: String,
    /// At most this many (default 20): a larger number is taken as 50, 0 as 1. Anything but a
    /// non-negative integer is a 400 `invalid_limit`.
    #[param(value_type = Option<i32>, minimum = 0)]
    pub limit: Option<String>,
}

/// Users found.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct UserList {
    /// Users, ordered by username.
    pub users: Vec<UserView>,
}

/// Finds users whose username starts with a prefix.
#[utoipa::path(get, path = "/api/users", tag = "users", params(SearchQuery), security(("bearer" = [])),
    responses((status = 200, body = UserList), (status = 401, body = ErrorBody)))]
pub async fn search(
    State(state): State<AppState>,
    _me: AuthUser,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> ApiResult<Json<UserList>> {
    if q.prefix.chars().count() > rules::USERNAME_MAX_CHARS {
        return Err(ApiError::bad_request("prefix is longer than any username"));
    }
    let prefix = q.prefix.to_lowercase();
    let limit = clamped_limit(q.limit.as_deref(), 20, 50)?;
    let users = state.store().search_users(&prefix, limit).await?;
    Ok(Json(UserList {
        users: users.iter().map(UserView::from).collect(),
    }))
}

/// Returns the caller's profile.
#[utoipa::path(get, path = "/api/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 401, body = ErrorBody)))]
pub async fn me(State(state): State<AppState>, me: AuthUser) -> ApiResult<Json<UserView>> {
    let user = state
        .store()
        .user_by_id(me.id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("user no longer exists"))?;
    Ok(Json(UserView::from(&user)))
}

/// Profile changes.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    /// New display name: 1–64 characters once surrounding spaces are trimmed, no control
    /// characters. Else a 400 `invalid_display_name`.
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028-\u202F\u205F\u2066-\u2069\u3000]([^\x00-\x1F\x7F-\x9F\u2028-\u202E\u2066-\u2069]{0,62}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028-\u202F\u205F\u2066-\u2069\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
    )]
    pub display_name: Option<String>,
}

/// Changes the caller's display name. (The avatar is set through uploads:
/// `PUT /api/users/me/avatar`.)
#[utoipa::path(patch, path = "/api/users/me", tag = "users", request_body = ProfilePatch, security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn update_me(
    State(state): State<AppState>,
    me: AuthUser,
    ApiJson(patch): ApiJson<ProfilePatch>,
) -> ApiResult<Json<UserView>> {
    let current = state
        .store()
        .user_by_id(me.id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("user no longer exists"))?;
    let display_name = match patch.display_name {
        Some(d) => rules::validate_display_name(&d)?,
        None => current.display_name,
    };
    let user = state.store().update_profile(me.id, &display_name).await?;
    Ok(Json(UserView::from(&user)))
}
