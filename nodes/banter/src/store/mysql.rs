//! [`MySqlStore`]: the [`Store`] port on MySQL or MariaDB, through a connection pool.
//!
//! Differences from SQLite that shape the code:
//! - sqlx connects with `CLIENT_FOUND_ROWS`, so an `INSERT … ON DUPLICATE KEY UPDATE` that changes nothing
//!   still counts one row: it cannot tell "inserted" from "already there". Where the trait asks which
//!   happened (`add_member`, `dm_room`, `insert_messages`), a plain `INSERT` runs and a duplicate key is
//!   read as "already there"; `INSERT IGNORE` is avoided as it also turns foreign key and data errors
//!   into warnings.
//! - There is no `DELETE … RETURNING` in MySQL: a refresh token is read, then deleted on the condition
//!   that it is still the same row; only one racing caller deletes it.
//! - A transaction that loses a race (a deadlock, or a duplicate key inserted meanwhile by another
//!   writer) is run again, a few times at most.

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use banter_actors::model::{
    ChatMessage, Member, NewUser, Role, Room, RoomId, RoomKind, RoomSummary, Seq, User, UserId,
};
use banter_actors::ports::{Store, StoreError, StoreResult};
use sqlx::mysql::{MySqlConnectOptions, MySqlDatabaseError, MySqlPool, MySqlPoolOptions};
use sqlx::{AssertSqlSafe, Connection, MySql, QueryBuilder};

use super::{
    MemberRow, MessageRow, RoomRow, SummaryRow, UserRow, conflict_as, convert_all, dm_key,
    insert_chunks, like_prefix, map_err, redact_url, seq_from_db, seq_to_db,
};

/// Connections in the pool.
const MAX_CONNECTIONS: u32 = 16;

/// How long a call waits for a free connection before the store counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a transaction that lost a race runs at most.
const ATTEMPTS: u32 = 4;

/// MySQL's `ER_DUP_ENTRY` and `ER_LOCK_DEADLOCK`.
const ER_DUP_ENTRY: u16 = 1062;
const ER_LOCK_DEADLOCK: u16 = 1213;

/// The [`Store`] on a MySQL or MariaDB database.
#[derive(Clone, Debug)]
pub struct MySqlStore {
    pool: MySqlPool,
}

impl MySqlStore {
    /// Connects to the database a `mysql://user:password@host:port/database` URL names and brings its
    /// schema up to date.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let options = MySqlConnectOptions::from_str(url).map_err(map_err)?;
        Self::connect_with(options).await
    }

    /// Connects with the given options and brings the schema up to date.
    pub async fn connect_with(options: MySqlConnectOptions) -> StoreResult<Self> {
        let pool = MySqlPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(map_err)?;
        sqlx::migrate!("migrations/mysql")
            .run(&pool)
            .await
            .map_err(|e| map_err(e.into()))?;
        Ok(MySqlStore { pool })
    }

    /// Creates a database `banter_test_<random>` on the server a URL without a database names, and
    /// connects to it; returns the store and the database's name. For tests, which each want their own.
    pub async fn connect_fresh_database(server_url: &str) -> StoreResult<(Self, String)> {
        let options = MySqlConnectOptions::from_str(server_url).map_err(map_err)?;
        let name = format!("banter_test_{}", uuid::Uuid::now_v7().simple());
        let mut conn = sqlx::MySqlConnection::connect_with(&options)
            .await
            .map_err(|e| match map_err(e) {
                StoreError::Unavailable(m) => {
                    StoreError::Unavailable(format!("{}: {m}", redact_url(server_url)))
                }
                other => other,
            })?;
        // The name is ours (letters, digits, underscore): safe to splice.
        sqlx::query(AssertSqlSafe(format!(
            "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        )))
        .execute(&mut conn)
        .await
        .map_err(map_err)?;
        conn.close().await.map_err(map_err)?;
        let store = Self::connect_with(options.database(&name)).await?;
        Ok((store, name))
    }

    /// Drops a database this store's server holds (a test's, made by
    /// [`MySqlStore::connect_fresh_database`]), then closes the pool.
    pub async fn drop_database(self, name: &str) -> StoreResult<()> {
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(StoreError::Other(format!(
                "refusing to drop database {name:?}"
            )));
        }
        sqlx::query(AssertSqlSafe(format!("DROP DATABASE IF EXISTS `{name}`")))
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        self.pool.close().await;
        Ok(())
    }

    /// Returns the connection pool.
    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }

    async fn insert_member(
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

    async fn dm_room_by_key(&self, key: &str) -> StoreResult<Option<Room>> {
        let row: Option<RoomRow> = sqlx::query_as(
            "SELECT id, kind, name, created_by, created_at_ms FROM rooms WHERE dm_key = ?",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.map(Room::try_from).transpose()
    }

    /// One attempt of [`Store::dm_room`]: `Ok(None)` when another caller created the room meanwhile.
    async fn create_dm_room(
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

    /// One attempt of [`Store::insert_messages`], in one transaction: reads which `(room_id, seq)` of each
    /// chunk are stored, then inserts the others with a plain multi-row `INSERT`, whose row count is
    /// exact. A duplicate primary key then means a concurrent writer got there first: the attempt fails
    /// and is run again.
    async fn insert_messages_once(&self, messages: &[ChatMessage]) -> Result<u64, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let mut inserted = 0;
        for chunk in insert_chunks(messages) {
            let mut keys: Vec<(i64, i64)> = Vec::with_capacity(chunk.len());
            for m in chunk {
                let seq =
                    seq_to_db(m.seq).map_err(|e| sqlx::Error::Encode(e.to_string().into()))?;
                keys.push((m.room_id.0, seq));
            }
            let mut stored = stored_keys(&mut tx, &keys).await?;
            let mut fresh = Vec::with_capacity(chunk.len());
            for (m, key) in chunk.iter().zip(&keys) {
                // Inserting marks the key as taken, which also skips a repeat within the batch.
                if stored.insert(*key) {
                    fresh.push((m, key.1));
                }
            }
            if fresh.is_empty() {
                continue;
            }
            let mut query = QueryBuilder::<MySql>::new(
                "INSERT INTO messages (room_id, seq, message_id, sender_id, body, created_at_ms) ",
            );
            query.push_values(fresh, |mut row, (m, seq)| {
                row.push_bind(m.room_id.0)
                    .push_bind(seq)
                    .push_bind(m.message_id.as_bytes().to_vec())
                    .push_bind(m.sender_id.0)
                    .push_bind(m.body.clone())
                    .push_bind(m.created_at_ms);
            });
            inserted += query.build().execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(inserted)
    }
}

/// Returns which of the keys are stored.
async fn stored_keys(
    conn: &mut sqlx::MySqlConnection,
    keys: &[(i64, i64)],
) -> Result<std::collections::HashSet<(i64, i64)>, sqlx::Error> {
    // Group the seqs by room, so the lookup is one primary key seek per key.
    let mut by_room: std::collections::BTreeMap<i64, Vec<i64>> = std::collections::BTreeMap::new();
    for &(room, seq) in keys {
        by_room.entry(room).or_default().push(seq);
    }
    let mut query = QueryBuilder::<MySql>::new("SELECT room_id, seq FROM messages WHERE ");
    for (i, (room, seqs)) in by_room.into_iter().enumerate() {
        if i > 0 {
            query.push(" OR ");
        }
        query
            .push("(room_id = ")
            .push_bind(room)
            .push(" AND seq IN (");
        let mut list = query.separated(", ");
        for seq in seqs {
            list.push_bind(seq);
        }
        query.push("))");
    }
    let rows: Vec<(i64, i64)> = query.build_query_as().fetch_all(conn).await?;
    Ok(rows.into_iter().collect())
}

/// Returns MySQL's error number of a database error.
fn mysql_error_number(err: &sqlx::Error) -> Option<u16> {
    err.as_database_error()
        .and_then(|db| db.try_downcast_ref::<MySqlDatabaseError>())
        .map(MySqlDatabaseError::number)
}

/// Tells whether a transaction failed only because a concurrent one got in its way.
fn lost_race(err: &sqlx::Error) -> bool {
    match mysql_error_number(err) {
        Some(ER_LOCK_DEADLOCK) => true,
        // A duplicate primary key, not a duplicate message id (which is a real conflict).
        Some(ER_DUP_ENTRY) => err
            .as_database_error()
            .is_some_and(|db| db.message().ends_with("PRIMARY'")),
        _ => false,
    }
}

/// Runs `attempt` until it succeeds, fails for a reason other than a lost race, or ran [`ATTEMPTS`] times.
async fn retry_races<T, F, Fut>(mut attempt: F) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(e) if tries < ATTEMPTS && lost_race(&e) => {
                tracing::debug!(tries, error = %e, "transaction lost a race, running it again");
                tries += 1;
            }
            other => return other,
        }
    }
}

#[async_trait]
impl Store for MySqlStore {
    #[tracing::instrument(level = "debug", skip_all, fields(username = %user.username))]
    async fn create_user(&self, user: NewUser) -> StoreResult<User> {
        let username = user.username.to_lowercase();
        let done = sqlx::query(
            "INSERT INTO users (username, display_name, password_hash, created_at_ms) \
             VALUES (?, ?, ?, ?)",
        )
        .bind(&username)
        .bind(&user.display_name)
        .bind(&user.password_hash)
        .bind(user.created_at_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| conflict_as(map_err(e), || format!("username {username} is taken")))?;
        let id = i64::try_from(done.last_insert_id())
            .map_err(|_| StoreError::Other("user id out of range".into()))?;
        Ok(User {
            id: UserId(id),
            username,
            display_name: user.display_name,
            password_hash: user.password_hash,
            avatar_ref: None,
            created_at_ms: user.created_at_ms,
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %id))]
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT id, username, display_name, password_hash, avatar_ref, created_at_ms \
             FROM users WHERE id = ?",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(row.map(User::from))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT id, username, display_name, password_hash, avatar_ref, created_at_ms \
             FROM users WHERE username = ?",
        )
        .bind(username.to_lowercase())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(row.map(User::from))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(limit))]
    async fn search_users(&self, prefix: &str, limit: u32) -> StoreResult<Vec<User>> {
        let rows: Vec<UserRow> = sqlx::query_as(
            "SELECT id, username, display_name, password_hash, avatar_ref, created_at_ms \
             FROM users WHERE username LIKE ? ESCAPE '!' ORDER BY username LIMIT ?",
        )
        .bind(like_prefix(&prefix.to_lowercase()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %id))]
    async fn update_profile(
        &self,
        id: UserId,
        display_name: &str,
        avatar_ref: Option<&str>,
    ) -> StoreResult<User> {
        sqlx::query("UPDATE users SET display_name = ?, avatar_ref = ? WHERE id = ?")
            .bind(display_name)
            .bind(avatar_ref)
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        self.user_by_id(id).await?.ok_or(StoreError::NotFound)
    }

    /// Refuses [`RoomKind::Dm`]: a DM room is made by [`Store::dm_room`], which keys it by its pair.
    #[tracing::instrument(level = "debug", skip_all, fields(kind = kind.as_str(), creator = %creator))]
    async fn create_room(
        &self,
        kind: RoomKind,
        name: &str,
        creator: UserId,
        now_ms: i64,
    ) -> StoreResult<Room> {
        if kind == RoomKind::Dm {
            return Err(StoreError::Other("a dm room is created by dm_room".into()));
        }
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let done = sqlx::query(
            "INSERT INTO rooms (kind, name, created_by, created_at_ms) VALUES (?, ?, ?, ?)",
        )
        .bind(kind.as_str())
        .bind(name)
        .bind(creator.0)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        let id = i64::try_from(done.last_insert_id())
            .map_err(|_| StoreError::Other("room id out of range".into()))?;
        Self::insert_member(&mut tx, id, creator, Role::Owner, now_ms)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(Room {
            id: RoomId(id),
            kind,
            name: name.to_owned(),
            created_by: creator,
            created_at_ms: now_ms,
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(room_id = %id))]
    async fn room(&self, id: RoomId) -> StoreResult<Option<Room>> {
        let row: Option<RoomRow> = sqlx::query_as(
            "SELECT id, kind, name, created_by, created_at_ms FROM rooms WHERE id = ?",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.map(Room::try_from).transpose()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(a = %a, b = %b))]
    async fn dm_room(&self, a: UserId, b: UserId, now_ms: i64) -> StoreResult<(Room, bool)> {
        let key = dm_key(a, b);
        if let Some(room) = self.dm_room_by_key(&key).await? {
            return Ok((room, false));
        }
        match retry_races(|| self.create_dm_room(&key, a, b, now_ms))
            .await
            .map_err(map_err)?
        {
            Some(room) => Ok((room, true)),
            None => {
                let room = self.dm_room_by_key(&key).await?.ok_or_else(|| {
                    StoreError::Other(format!("dm room {key} vanished after a duplicate key"))
                })?;
                Ok((room, false))
            }
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(room_id = %room, user_id = %user))]
    async fn add_member(
        &self,
        room: RoomId,
        user: UserId,
        role: Role,
        now_ms: i64,
    ) -> StoreResult<bool> {
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
        match Self::insert_member(&mut conn, room.0, user, role, now_ms).await {
            Ok(()) => Ok(true),
            Err(e) if mysql_error_number(&e) == Some(ER_DUP_ENTRY) => Ok(false),
            Err(e) => Err(map_err(e)),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(room_id = %room, user_id = %user))]
    async fn remove_member(&self, room: RoomId, user: UserId) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM room_members WHERE room_id = ? AND user_id = ?")
            .bind(room.0)
            .bind(user.0)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(room_id = %room))]
    async fn members(&self, room: RoomId) -> StoreResult<Vec<Member>> {
        let rows: Vec<MemberRow> = sqlx::query_as(
            "SELECT m.user_id, u.username, u.display_name, m.role, m.last_read_seq \
             FROM room_members m JOIN users u ON u.id = m.user_id \
             WHERE m.room_id = ? ORDER BY m.user_id",
        )
        .bind(room.0)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        convert_all(rows)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user))]
    async fn rooms_of(&self, user: UserId) -> StoreResult<Vec<RoomSummary>> {
        // One query; each correlated subquery is a seek on the messages primary key (the unread count
        // scans the unread range only).
        let rows: Vec<SummaryRow> = sqlx::query_as(
            "SELECT r.id, r.kind, r.name, r.created_by, r.created_at_ms, r.dm_key, \
                    m.role, m.last_read_seq, \
                    COALESCE((SELECT MAX(x.seq) FROM messages x WHERE x.room_id = r.id), 0) AS last_seq, \
                    (SELECT COUNT(*) FROM messages x \
                      WHERE x.room_id = r.id AND x.seq > m.last_read_seq) AS unread, \
                    COALESCE((SELECT x.created_at_ms FROM messages x WHERE x.room_id = r.id \
                               ORDER BY x.seq DESC LIMIT 1), r.created_at_ms) AS last_activity_ms \
             FROM room_members m JOIN rooms r ON r.id = m.room_id \
             WHERE m.user_id = ? \
             ORDER BY last_activity_ms DESC, r.id DESC",
        )
        .bind(user.0)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.into_iter().map(|r| r.into_summary(user)).collect()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(room_id = %room, user_id = %user, seq))]
    async fn mark_read(&self, room: RoomId, user: UserId, seq: Seq) -> StoreResult<Seq> {
        sqlx::query(
            "UPDATE room_members SET last_read_seq = GREATEST(last_read_seq, ?) \
             WHERE room_id = ? AND user_id = ?",
        )
        .bind(seq_to_db(seq)?)
        .bind(room.0)
        .bind(user.0)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        let stored: Option<i64> = sqlx::query_scalar(
            "SELECT last_read_seq FROM room_members WHERE room_id = ? AND user_id = ?",
        )
        .bind(room.0)
        .bind(user.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        seq_from_db(stored.ok_or(StoreError::NotFound)?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(count = messages.len()))]
    async fn insert_messages(&self, messages: &[ChatMessage]) -> StoreResult<u64> {
        if messages.is_empty() {
            return Ok(0);
        }
        retry_races(|| self.insert_messages_once(messages))
            .await
            .map_err(|e| {
                conflict_as(map_err(e), || {
                    "a message id of the batch is stored under another seq".into()
                })
            })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(room_id = %room))]
    async fn last_seq(&self, room: RoomId) -> StoreResult<Seq> {
        let last: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM messages WHERE room_id = ?")
                .bind(room.0)
                .fetch_one(&self.pool)
                .await
                .map_err(map_err)?;
        seq_from_db(last)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(room_id = %room, before, limit))]
    async fn messages_before(
        &self,
        room: RoomId,
        before: Option<Seq>,
        limit: u32,
    ) -> StoreResult<Vec<ChatMessage>> {
        // A bound beyond the stored range means "everything".
        let before = before.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
        let rows: Vec<MessageRow> = sqlx::query_as(
            "SELECT room_id, seq, message_id, sender_id, body, created_at_ms FROM messages \
             WHERE room_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
        )
        .bind(room.0)
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        convert_all(rows)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(room_id = %room, after, limit))]
    async fn messages_after(
        &self,
        room: RoomId,
        after: Seq,
        limit: u32,
    ) -> StoreResult<Vec<ChatMessage>> {
        let Ok(after) = i64::try_from(after) else {
            return Ok(Vec::new());
        };
        let rows: Vec<MessageRow> = sqlx::query_as(
            "SELECT room_id, seq, message_id, sender_id, body, created_at_ms FROM messages \
             WHERE room_id = ? AND seq > ? ORDER BY seq ASC LIMIT ?",
        )
        .bind(room.0)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        convert_all(rows)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user))]
    async fn put_refresh_token(
        &self,
        jti: &str,
        user: UserId,
        expires_at_ms: i64,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO refresh_tokens (jti, user_id, expires_at_ms) VALUES (?, ?, ?)")
            .bind(jti)
            .bind(user.0)
            .bind(expires_at_ms)
            .execute(&self.pool)
            .await
            .map_err(|e| conflict_as(map_err(e), || "refresh token id already recorded".into()))?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn take_refresh_token(&self, jti: &str, now_ms: i64) -> StoreResult<Option<UserId>> {
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT user_id, expires_at_ms FROM refresh_tokens WHERE jti = ?")
                .bind(jti)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
        let Some((user, expires_at_ms)) = row else {
            return Ok(None);
        };
        // Only one of racing callers deletes the row; the others find it gone. An expired token is
        // deleted too, as it can never be used again.
        let done = sqlx::query(
            "DELETE FROM refresh_tokens WHERE jti = ? AND user_id = ? AND expires_at_ms = ?",
        )
        .bind(jti)
        .bind(user)
        .bind(expires_at_ms)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok((done.rows_affected() == 1 && expires_at_ms > now_ms).then_some(UserId(user)))
    }
}
