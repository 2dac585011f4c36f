//! Memberships on [`SqliteStore`]: adding one, and the contacts a user's rooms make.

use banter_actors::model::{Role, UserId};
use banter_actors::ports::StoreResult;

use super::SqliteStore;
use crate::{map_err, sql};

/// Inserts a membership unless it exists; returns whether it was inserted.
pub(super) async fn insert_member(
    conn: &mut sqlx::SqliteConnection,
    room: i64,
    user: UserId,
    role: Role,
    now_ms: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "INSERT INTO room_members (room_id, user_id, role, joined_at_ms) VALUES (?, ?, ?, ?) \
         ON CONFLICT (room_id, user_id) DO NOTHING",
    )
    .bind(room)
    .bind(user.0)
    .bind(role.as_str())
    .bind(now_ms)
    .execute(conn)
    .await
    .map_err(map_err)?;
    Ok(done.rows_affected() == 1)
}

impl SqliteStore {
    pub(super) async fn record_last_seen_impl(
        &self,
        users: &[UserId],
        at_ms: i64,
    ) -> StoreResult<()> {
        for chunk in users.chunks(crate::ID_CHUNK) {
            let mut query =
                sqlx::QueryBuilder::<sqlx::Sqlite>::new("UPDATE users SET last_seen_at_ms = ");
            query.push_bind(at_ms);
            query.push(" WHERE (last_seen_at_ms IS NULL OR last_seen_at_ms < ");
            query.push_bind(at_ms).push(") AND id IN (");
            let mut ids = query.separated(", ");
            for u in chunk {
                ids.push_bind(u.0);
            }
            query.push(")");
            query.build().execute(&self.pool).await.map_err(map_err)?;
        }
        Ok(())
    }

    pub(super) async fn contacts_impl(
        &self,
        user: UserId,
        max_room_members: u32,
        limit: u32,
    ) -> StoreResult<Vec<UserId>> {
        let ids: Vec<i64> = sqlx::query_scalar(sql::CONTACTS)
            .bind(user.0)
            .bind(max_room_members)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(ids.into_iter().map(UserId).collect())
    }
}
