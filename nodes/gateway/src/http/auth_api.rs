//! Accounts: register, login, refresh, logout, and the public signing keys.

use std::net::SocketAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use banter_actors::model::{NewUser, User};
use banter_actors::ports::{Rotation, StoreError};
use banter_actors::rules;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::ApiJson;
use super::views::UserView;
use crate::auth::limits::LimitHit;
use crate::auth::{AuthError, IssuedTokens, TokenType, bearer};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::state::AppState;

/// Registration request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// 3–32 characters `a-z 0-9 _ .` (letters of either case, stored lowercase), starting with a
    /// letter, with no `..` and no trailing `.`; else a 400 `invalid_username`.
    #[schema(
        min_length = 3,
        max_length = 32,
        pattern = r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$"
    )]
    pub username: String,
    /// 8–128 characters, any; else a 400 `invalid_password`.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    /// Shown to others; defaults to the username. 1–64 characters once surrounding spaces are
    /// trimmed, no control characters. Else a 400 `invalid_display_name`.
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028-\u202F\u205F\u2066-\u2069\u3000]([^\x00-\x1F\x7F-\x9F\u2028-\u202E\u2066-\u2069]{0,62}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028-\u202F\u205F\u2066-\u2069\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
    )]
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
    /// A refresh token from an earlier session; it is single-use, and using it twice revokes the
    /// session.
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

/// Logout request; the body may also be empty when the access token is given instead.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
    /// The session's refresh token.
    pub refresh_token: Option<String>,
}

/// Answers a refused attempt: 429 with `Retry-After`.
fn limited(hit: LimitHit) -> ApiError {
    match hit {
        LimitHit::Address(wait) => {
            ApiError::rate_limited("too many login or register attempts; try again in a minute")
                .retry_after(wait)
        }
        LimitHit::Account(wait) => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "account_rate_limited",
            "too many login attempts for this account; try again in a minute",
        )
        .retry_after(wait),
    }
}

/// Counts an attempt against the client's address (the one a trusted proxy forwarded, if any).
fn check_address(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> ApiResult<()> {
    let limits = &state.login_limits;
    limits
        .check_address(limits.client_ip(peer, headers))
        .map_err(limited)
}

/// Opens a session in a new refresh token chain.
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
        .put_refresh_token(&t.refresh_jti, user.id, &t.chain, t.refresh_expires_at_ms)
        .await?;
    Ok(session_view(user, t))
}

fn session_view(user: &User, t: IssuedTokens) -> SessionView {
    SessionView {
        user: UserView::from(user),
        access_token: t.access_token,
        refresh_token: t.refresh_token,
        token_type: "Bearer".into(),
        expires_in: t.expires_in,
    }
}

/// Registers a user and signs them in.
#[utoipa::path(post, path = "/api/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = SessionView), (status = 400, body = ErrorBody),
              (status = 409, body = ErrorBody),
              (status = 429, body = ErrorBody, description = "`rate_limited`, with `Retry-After`"),
              (status = 503, body = ErrorBody, description = "`busy` (with `Retry-After`) or `unavailable`")))]
pub async fn register(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<SessionView>)> {
    check_address(&state, addr, &headers)?;
    let username = rules::validate_username(&req.username)?;
    rules::validate_password(&req.password)?;
    let display_name =
        rules::validate_display_name(req.display_name.as_deref().unwrap_or(&username))?;
    let password_hash = state.passwords.hash(req.password).await?;
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
    responses((status = 200, body = SessionView), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody, description = "`invalid_credentials`"),
              (status = 429, body = ErrorBody,
               description = "`rate_limited` (client address) or `account_rate_limited`, with `Retry-After`"),
              (status = 503, body = ErrorBody, description = "`busy` (with `Retry-After`) or `unavailable`")))]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Json<SessionView>> {
    check_address(&state, addr, &headers)?;
    let invalid = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "wrong username or password",
        )
    };
    // An invalid username has no account (and no budget to keep: it would only fill memory).
    let name = rules::validate_username(&req.username).ok();
    if let Some(name) = &name {
        state.login_limits.check_account(name).map_err(limited)?;
    }
    let user = match name {
        Some(name) => state.store().user_by_username(&name).await?,
        None => None,
    };
    let Some(user) = user else {
        state.passwords.verify_dummy(req.password).await?;
        return Err(invalid());
    };
    if !state
        .passwords
        .verify(user.password_hash.clone(), req.password)
        .await?
    {
        return Err(invalid());
    }
    Ok(Json(open_session(&state, &user).await?))
}

/// Trades a refresh token for a new session in the same chain; the old refresh token stops working.
/// Presenting a refresh token that was already traded revokes the whole chain.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = SessionView), (status = 400, body = ErrorBody),
              (status = 401, body = ErrorBody,
               description = "`refresh_token_reused` (the chain is revoked now), `invalid_token`, `token_expired`, `missing_token`"),
              (status = 503, body = ErrorBody, description = "`unavailable`: the old token stays valid")))]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> ApiResult<Json<SessionView>> {
    let claims = state
        .keys
        .verify(&req.refresh_token, TokenType::Refresh)
        .await?;
    let user = state
        .store()
        .user_by_id(claims.user_id()?)
        .await?
        .ok_or_else(|| ApiError::from(AuthError::Invalid("user no longer exists".into())))?;
    let cfg = &state.config.auth;
    let now_ms = state.now_ms();
    let t = state.keys.issue_in_chain(
        user.id.0,
        &user.username,
        claims.chain(),
        now_ms,
        cfg.access_ttl_secs,
        cfg.refresh_ttl_secs,
    );
    // One transaction: if it fails, the old token is still valid and the client may retry.
    let rotation = state
        .store()
        .rotate_refresh_token(&claims.jti, &t.refresh_jti, t.refresh_expires_at_ms, now_ms)
        .await?;
    match rotation {
        Rotation::Rotated(_) => Ok(Json(session_view(&user, t))),
        Rotation::Reused(owner) => {
            tracing::warn!(user_id = %owner, "refresh token replayed, its chain is revoked");
            Err(AuthError::Reused.into())
        }
        Rotation::Refused => {
            Err(AuthError::Invalid("refresh token was revoked or is unknown".into()).into())
        }
    }
}

/// Ends a session: revokes the refresh token chain of the refresh token in the body and/or of the
/// access token in `Authorization: Bearer`. Idempotent: 204 also when the chain was revoked already
/// or the token has expired. Access tokens already issued stay valid until they expire.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", request_body(content = Option<LogoutRequest>,
        description = "optional when an access token is given"),
    security((), ("bearer" = [])),
    responses((status = 204, description = "the session is over"),
              (status = 400, body = ErrorBody, description = "`invalid_json` or `bad_request`"),
              (status = 401, body = ErrorBody,
               description = "`missing_token` (neither token given), `invalid_token`, `unauthorized`"),
              (status = 503, body = ErrorBody, description = "`unavailable`")))]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let req: LogoutRequest = if body.iter().all(u8::is_ascii_whitespace) {
        LogoutRequest::default()
    } else {
        let value: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.to_string()))?;
        if value.is_null() {
            LogoutRequest::default()
        } else {
            // Every malformed logout body is `invalid_json`, as it always was.
            super::extract::json_object(value)
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", e.message))?
        }
    };
    let access =
        match headers.get(AUTHORIZATION) {
            None => None,
            Some(value) => {
                Some(value.to_str().ok().and_then(bearer).ok_or_else(|| {
                    ApiError::unauthorized("expected Authorization: Bearer <token>")
                })?)
            }
        };
    if req.refresh_token.is_none() && access.is_none() {
        return Err(AuthError::Missing.into());
    }
    let mut chains = Vec::with_capacity(2);
    for (token, typ) in [
        (req.refresh_token.as_deref(), TokenType::Refresh),
        (access, TokenType::Access),
    ] {
        let Some(token) = token else { continue };
        match state.keys.verify(token, typ).await {
            // A refresh token names its chain; an access token issued before chains did not.
            Ok(claims) if typ == TokenType::Refresh => chains.push(claims.chain().to_owned()),
            Ok(claims) => chains.extend(claims.sid),
            // Nothing left to end.
            Err(AuthError::Expired) => {}
            Err(e) => return Err(e.into()),
        }
    }
    chains.dedup();
    let now_ms = state.now_ms();
    for chain in &chains {
        let revoked = state.store().revoke_refresh_family(chain, now_ms).await?;
        tracing::debug!(revoked, "session logged out");
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Returns the public keys that sign tokens, as a JWKS.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth", responses((status = 200, body = Object)))]
pub async fn jwks(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.keys.jwks())
}
