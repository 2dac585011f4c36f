//! Accounts: register, login, refresh, and the public signing keys.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use banter_actors::model::{NewUser, User};
use banter_actors::ports::StoreError;
use banter_actors::rules;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::ApiJson;
use super::views::UserView;
use crate::app::AppState;
use crate::auth::{AuthError, TokenType};
use crate::error::{ApiError, ApiResult, ErrorBody};

/// Registration request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// 3–32 characters `a-z 0-9 _ .`, starting with a letter.
    pub username: String,
    /// 8–128 characters.
    pub password: String,
    /// Shown to others; defaults to the username.
    pub display_name: Option<String>,
}

/// Login request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Username (any case).
    pub username: String,
    /// Password.
    pub password: String,
}

/// Refresh request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// A refresh token from an earlier session; it is single-use.
    pub refresh_token: String,
}

/// A signed-in session.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct SessionView {
    /// The user.
    pub user: UserView,
    /// Access token (JWT, EdDSA) for `Authorization: Bearer` and STOMP CONNECT.
    pub access_token: String,
    /// Single-use refresh token for `/api/auth/refresh`.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Lifetime of the access token in seconds.
    pub expires_in: u64,
}

fn check_ip(state: &AppState, addr: SocketAddr) -> ApiResult<()> {
    state.auth_limiter.check_key(&addr.ip()).map_err(|_| {
        ApiError::rate_limited("too many login or register attempts; try again in a minute")
    })
}

async fn open_session(state: &AppState, user: &User) -> ApiResult<SessionView> {
    let cfg = &state.config.auth;
    let t = state.keys.issue(
        user.id.0,
        &user.username,
        state.now_ms(),
        cfg.access_ttl_secs,
        cfg.refresh_ttl_secs,
    );
    state
        .store()
        .put_refresh_token(&t.refresh_jti, user.id, t.refresh_expires_at_ms)
        .await?;
    Ok(SessionView {
        user: UserView::from(user),
        access_token: t.access_token,
        refresh_token: t.refresh_token,
        token_type: "Bearer".into(),
        expires_in: t.expires_in,
    })
}

/// Registers a user and signs them in.
#[utoipa::path(post, path = "/api/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = SessionView), (status = 400, body = ErrorBody),
              (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn register(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<SessionView>)> {
    check_ip(&state, addr)?;
    let username = rules::validate_username(&req.username)?;
    rules::validate_password(&req.password)?;
    let display_name =
        rules::validate_display_name(req.display_name.as_deref().unwrap_or(&username))?;
    let password_hash = state
        .passwords
        .hash(req.password)
        .await
        .map_err(ApiError::internal)?;
    let user = state
        .store()
        .create_user(NewUser {
            username: username.clone(),
            display_name,
            password_hash,
            created_at_ms: state.now_ms(),
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::new(
                StatusCode::CONFLICT,
                "username_taken",
                format!("username '{username}' is already taken"),
            ),
            e => e.into(),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(open_session(&state, &user).await?),
    ))
}

/// Signs a user in.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = SessionView), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Json<SessionView>> {
    check_ip(&state, addr)?;
    let invalid = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "wrong username or password",
        )
    };
    let user = match rules::validate_username(&req.username) {
        Ok(name) => state.store().user_by_username(&name).await?,
        Err(_) => None,
    };
    let Some(user) = user else {
        state.passwords.verify_dummy(req.password).await;
        return Err(invalid());
    };
    if !state
        .passwords
        .verify(user.password_hash.clone(), req.password)
        .await
    {
        return Err(invalid());
    }
    Ok(Json(open_session(&state, &user).await?))
}

/// Trades a refresh token for a new session; the old refresh token stops working.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = SessionView), (status = 401, body = ErrorBody)))]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> ApiResult<Json<SessionView>> {
    let claims = state.keys.verify(&req.refresh_token, TokenType::Refresh)?;
    let user_id = state
        .store()
        .take_refresh_token(&claims.jti, state.now_ms())
        .await?
        .ok_or_else(|| {
            ApiError::from(AuthError::Invalid(
                "refresh token was already used or revoked".into(),
            ))
        })?;
    let user = state
        .store()
        .user_by_id(user_id)
        .await?
        .ok_or_else(|| ApiError::from(AuthError::Invalid("user no longer exists".into())))?;
    Ok(Json(open_session(&state, &user).await?))
}

/// Returns the public keys that sign tokens, as a JWKS.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth", responses((status = 200, body = Object)))]
pub async fn jwks(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.keys.jwks())
}
