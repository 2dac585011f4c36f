//! DM rooms and memberships on [`MySqlStore`]: the helpers of `dm_room`, `create_room` and `add_member`.

use banter_actors::model::{Role, Room, RoomId, RoomKind, UserId};
use banter_actors::ports::StoreResult;

use super::MySqlStore;
use super::write::{ER_DUP_ENTRY, mysql_error_number};
use crate::{RoomRow, map_err, sql};

impl MySqlStore {
    pub(super) async fn insert_member(
        conn: &mut sqlx::MySqlConnection,
        room: i64,
        user: UserId,
        role: Role,
        now_ms: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO room_members (room_id, user_id, role, joined_at_ms) VALUES (?, ?, ?, ?)",
        )
        .bind(room)
        .bind(user.0)
        .bind(role.as_str())
        .bind(now_ms)
        .execute(conn)
        .await
        .map(|_| ())
    }

    pub(super) async fn dm_room_by_key(&self, key: &str) -> StoreResult<Option<Room>> {
        let row: Option<RoomRow> = sqlx::query_as(sql::ROOM_BY_DM_KEY)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(Room::try_from).transpose()
    }

    /// One attempt of [`Store::dm_room`](banter_actors::ports::Store::dm_room): `Ok(None)` when another caller created the room meanwhile.
    pub(super) async fn create_dm_room(
        &self,
        key: &str,
        a: UserId,
        b: UserId,
        now_ms: i64,
    ) -> Result<Option<Room>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // A racing insert of the same key waits for our commit, then fails with a duplicate key.
        let done = match sqlx::query(
            "INSERT INTO rooms (kind, name, created_by, dm_key, created_at_ms) \
             VALUES ('dm', '', ?, ?, ?)",
        )
        .bind(a.0)
        .bind(key)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        {
            Ok(done) => done,
            Err(e) if mysql_error_number(&e) == Some(ER_DUP_ENTRY) => return Ok(None),
            Err(e) => return Err(e),
        };
        let id = i64::try_from(done.last_insert_id())
            .map_err(|_| sqlx::Error::Protocol("room id out of range".into()))?;
        Self::insert_member(&mut tx, id, a, Role::Member, now_ms).await?;
        if a != b {
            Self::insert_member(&mut tx, id, b, Role::Member, now_ms).await?;
        }
        tx.commit().await?;
        Ok(Some(Room {
            id: RoomId(id),
            kind: RoomKind::Dm,
            name: String::new(),
            created_by: a,
            created_at_ms: now_ms,
        }))
    }
}
