//! Refresh token rotation on [`MySqlStore`]: one transaction that reads the token's row `FOR UPDATE`,
//! run again by the caller when it deadlocked.

use banter_actors::ports::Rotation;

use super::MySqlStore;
use crate::refresh::{self, Step, TokenState};
use crate::sql;

/// How often a refresh rotation that deadlocked runs at most.
pub(super) const ROTATE_ATTEMPTS: u32 = 4;

/// MySQL's `ER_LOCK_DEADLOCK`.
pub(super) const ER_LOCK_DEADLOCK: u16 = 1213;

impl MySqlStore {
    /// One attempt of [`Store::rotate_refresh_token`], in one transaction. The token's row is read
    /// `FOR UPDATE`, so a racing rotation of the same token waits for this one's commit and then sees
    /// it used. An error before the commit rolls everything back (the transaction is dropped), leaving
    /// the old token valid.
    pub(super) async fn rotate_once(
        &self,
        jti: &str,
        new_jti: &str,
        new_expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<Rotation, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let row: Option<TokenState> = sqlx::query_as(
            "SELECT user_id, family, expires_at_ms, used_at_ms, revoked_at_ms FROM refresh_tokens \
             WHERE jti = ? FOR UPDATE",
        )
        .bind(jti)
        .fetch_optional(&mut *tx)
        .await?;
        let rotation = match refresh::step(row, now_ms) {
            Step::Refuse => return Ok(Rotation::Refused),
            Step::RevokeChain { user, family } => {
                sqlx::query(sql::REVOKE_REFRESH_FAMILY)
                    .bind(now_ms)
                    .bind(&family)
                    .execute(&mut *tx)
                    .await?;
                Rotation::Reused(user)
            }
            Step::Rotate { user, family } => {
                sqlx::query(sql::USE_REFRESH_TOKEN)
                    .bind(now_ms)
                    .bind(jti)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(sql::PUT_REFRESH_TOKEN)
                    .bind(new_jti)
                    .bind(user.0)
                    .bind(&family)
                    .bind(new_expires_at_ms)
                    .execute(&mut *tx)
                    .await?;
                Rotation::Rotated(user)
            }
        };
        tx.commit().await?;
        Ok(rotation)
    }
}
