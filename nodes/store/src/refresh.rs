//! What both stores share of refresh token rotation: the row they read and the decision it leads to,
//! so that the SQLite and the MySQL transaction cannot disagree on what a replay is.

use banter_actors::model::UserId;

/// The state of one `refresh_tokens` row.
#[derive(sqlx::FromRow)]
pub(super) struct TokenState {
    user_id: i64,
    family: String,
    expires_at_ms: i64,
    used_at_ms: Option<i64>,
    revoked_at_ms: Option<i64>,
}

/// What a rotation does with the token it was given.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Unknown, revoked or expired: change nothing.
    Refuse,
    /// Used before: revoke the chain.
    RevokeChain { user: UserId, family: String },
    /// Valid: mark it used and record the new token in its chain.
    Rotate { user: UserId, family: String },
}

/// Decides what to do with the token in `row` (`None`: unknown) at `now_ms`.
pub(super) fn step(row: Option<TokenState>, now_ms: i64) -> Step {
    match row {
        None => Step::Refuse,
        Some(t) if t.revoked_at_ms.is_some() || t.expires_at_ms <= now_ms => Step::Refuse,
        Some(t) if t.used_at_ms.is_some() => Step::RevokeChain {
            user: UserId(t.user_id),
            family: t.family,
        },
        Some(t) => Step::Rotate {
            user: UserId(t.user_id),
            family: t.family,
        },
    }
}
