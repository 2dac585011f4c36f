//! [`MySqlStore`]: the [`Store`] port on MySQL or MariaDB, through a connection pool.
//!
//! Differences from SQLite that shape the code:
//! - sqlx connects with `CLIENT_FOUND_ROWS`, so an `INSERT … ON DUPLICATE KEY UPDATE` that changes nothing
//!   still counts one row: it cannot tell "inserted" from "already there". Where the trait asks which
//!   happened (`add_member`, `dm_room`, `insert_messages`), a plain `INSERT` runs and a duplicate key is
//!   read as "already there"; `INSERT IGNORE` is avoided as it also turns foreign key and data errors
//!   into warnings.
//! - A refresh token is rotated in a transaction that reads its row `FOR UPDATE`: racing rotations of
//!   one token run one after the other.
//! - A transaction that loses a race (a deadlock, or a duplicate key inserted meanwhile by another
//!   writer) is run again, a few times at most.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use banter_actors::delivery::NodeId;
use banter_actors::model::{
    ChatMessage, Member, NewUser, Role, Room, RoomId, RoomKind, RoomSummary, Seq, User, UserId,
};
use banter_actors::ports::{
    JournalFence, Lease, LiveNode, Rotation, SigningKey, Store, StoreError, StoreResult,
};
use banter_actors::shard::{Epoch, ShardId};
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::{AssertSqlSafe, Connection};

mod dm;
mod leases;
mod migrate;
mod rotation;
mod write;

use rotation::{ER_LOCK_DEADLOCK, ROTATE_ATTEMPTS};
use write::{ER_DUP_ENTRY, mysql_error_number, retry_races};

use super::{
    MemberRow, MessageRow, RoomRow, SigningKeyRow, SummaryRow, UserRow, conflict_as, convert_all,
    dm_key, like_prefix, map_err, redact_url, seq_from_db, seq_to_db, sql,
};

/// Connections in the pool.
const MAX_CONNECTIONS: u32 = 16;

/// How long a call waits for a free connection before the store counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The [`Store`] on a MySQL or MariaDB database.
#[derive(Clone, Debug)]
pub struct MySqlStore {
    pool: MySqlPool,
}

impl MySqlStore {
    /// A transaction (the same as any: InnoDB locks rows as they are read `FOR UPDATE`).
    async fn begin_write(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::MySql>> {
        self.pool.begin().await.map_err(map_err)
    }

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
        migrate::run(&pool).await?;
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
}

crate::uploads::impl_uploads!(MySqlStore, " FOR UPDATE");
crate::feeds::impl_feeds!(MySqlStore, sqlx::MySql, mysql);

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
        let row: Option<UserRow> = sqlx::query_as(sql::USER_BY_ID)
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(row.map(User::from))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let row: Option<UserRow> = sqlx::query_as(sql::USER_BY_USERNAME)
            .bind(username.to_lowercase())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(row.map(User::from))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(limit = limit))]
    async fn search_users(&self, prefix: &str, limit: u32) -> StoreResult<Vec<User>> {
        let rows: Vec<UserRow> = sqlx::query_as(sql::SEARCH_USERS)
            .bind(like_prefix(&prefix.to_lowercase()))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %id))]
    async fn update_profile(&self, id: UserId, display_name: &str) -> StoreResult<User> {
        sqlx::query("UPDATE users SET display_name = ? WHERE id = ?")
            .bind(display_name)
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
        let row: Option<RoomRow> = sqlx::query_as(sql::ROOM_BY_ID)
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
        let done = sqlx::query(sql::REMOVE_MEMBER)
            .bind(room.0)
            .bind(user.0)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(room_id = %room, user_id = %user))]
    async fn member_role(&self, room: RoomId, user: UserId) -> StoreResult<Option<Role>> {
        let role: Option<(String,)> = sqlx::query_as(sql::MEMBER_ROLE)
            .bind(room.0)
            .bind(user.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        role.map(|(r,)| {
            Role::parse(&r).ok_or_else(|| StoreError::Other(format!("unknown role {r:?}")))
        })
        .transpose()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(room_id = %room))]
    async fn members(&self, room: RoomId) -> StoreResult<Vec<Member>> {
        let rows: Vec<MemberRow> = sqlx::query_as(sql::MEMBERS)
            .bind(room.0)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        convert_all(rows)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(room_id = %room))]
    async fn members_after(
        &self,
        room: RoomId,
        after: Option<UserId>,
        limit: u32,
    ) -> StoreResult<Vec<Member>> {
        let rows: Vec<MemberRow> = sqlx::query_as(sql::MEMBERS_AFTER)
            .bind(room.0)
            .bind(after.map_or(i64::MIN, |u| u.0))
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        convert_all(rows)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user))]
    async fn rooms_of(
        &self,
        user: UserId,
        after: Option<RoomId>,
        limit: u32,
    ) -> StoreResult<Vec<RoomSummary>> {
        let rows: Vec<SummaryRow> = sqlx::query_as(sql::ROOMS_OF)
            .bind(user.0)
            .bind(after.map_or(i64::MIN, |r| r.0))
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.into_iter().map(|r| r.into_summary(user)).collect()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(room_id = %room, user_id = %user))]
    async fn room_summary(&self, room: RoomId, user: UserId) -> StoreResult<Option<RoomSummary>> {
        let row: Option<SummaryRow> = sqlx::query_as(sql::ROOM_SUMMARY)
            .bind(room.0)
            .bind(user.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(|r| r.into_summary(user)).transpose()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user_id = %user))]
    async fn membership_count(&self, user: UserId) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar(sql::MEMBERSHIP_COUNT)
            .bind(user.0)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        u64::try_from(n).map_err(|_| StoreError::Other(format!("negative count {n}")))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(a = %a, b = %b))]
    async fn find_dm(&self, a: UserId, b: UserId) -> StoreResult<Option<Room>> {
        self.dm_room_by_key(&dm_key(a, b)).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(room_id = %room, user_id = %user, seq = seq))]
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
        let last: i64 = sqlx::query_scalar(sql::LAST_SEQ)
            .bind(room.0)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        let reserved: i64 = sqlx::query_scalar(sql::RESERVED_SEQ)
            .bind(room.0)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        seq_from_db(last.max(reserved))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(room_id = %room, seq))]
    async fn reserve_seq(&self, room: RoomId, seq: Seq) -> StoreResult<()> {
        let seq =
            i64::try_from(seq).map_err(|_| StoreError::Other(format!("seq {seq} out of range")))?;
        sqlx::query("INSERT INTO room_seq_reservations (room_id, seq) VALUES (?, ?) ON DUPLICATE KEY UPDATE seq = GREATEST(seq, VALUES(seq))")
            .bind(room.0)
            .bind(seq)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(room_id = %room, before = ?before, limit = limit))]
    async fn messages_before(
        &self,
        room: RoomId,
        before: Option<Seq>,
        limit: u32,
    ) -> StoreResult<Vec<ChatMessage>> {
        // A bound beyond the stored range means "everything".
        let before = before.map_or(i64::MAX, |b| i64::try_from(b).unwrap_or(i64::MAX));
        let rows: Vec<MessageRow> = sqlx::query_as(sql::MESSAGES_BEFORE)
            .bind(room.0)
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        convert_all(rows)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(room_id = %room, after = after, limit = limit))]
    async fn messages_after(
        &self,
        room: RoomId,
        after: Seq,
        limit: u32,
    ) -> StoreResult<Vec<ChatMessage>> {
        let Ok(after) = i64::try_from(after) else {
            return Ok(Vec::new());
        };
        let rows: Vec<MessageRow> = sqlx::query_as(sql::MESSAGES_AFTER)
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
        family: &str,
        expires_at_ms: i64,
    ) -> StoreResult<()> {
        sqlx::query(sql::PUT_REFRESH_TOKEN)
            .bind(jti)
            .bind(user.0)
            .bind(family)
            .bind(expires_at_ms)
            .execute(&self.pool)
            .await
            .map_err(|e| conflict_as(map_err(e), || "refresh token id already recorded".into()))?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn purge_refresh_tokens(&self, now_ms: i64) -> StoreResult<u64> {
        let done = sqlx::query(sql::PURGE_REFRESH_TOKENS)
            .bind(now_ms)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn rotate_refresh_token(
        &self,
        jti: &str,
        new_jti: &str,
        new_expires_at_ms: i64,
        now_ms: i64,
    ) -> StoreResult<Rotation> {
        let mut tries = 1;
        loop {
            match self
                .rotate_once(jti, new_jti, new_expires_at_ms, now_ms)
                .await
            {
                Err(e)
                    if tries < ROTATE_ATTEMPTS
                        && mysql_error_number(&e) == Some(ER_LOCK_DEADLOCK) =>
                {
                    tracing::debug!(tries, error = %e, "refresh rotation deadlocked, running it again");
                    tries += 1;
                }
                other => {
                    return other.map_err(|e| {
                        conflict_as(map_err(e), || "refresh token id already recorded".into())
                    });
                }
            }
        }
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn revoke_refresh_family(&self, family: &str, now_ms: i64) -> StoreResult<u64> {
        let done = sqlx::query(sql::REVOKE_REFRESH_FAMILY)
            .bind(now_ms)
            .bind(family)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        let rows: Vec<SigningKeyRow> = sqlx::query_as(sql::SIGNING_KEYS)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(rows.into_iter().map(SigningKey::from).collect())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(generation = key.generation))]
    async fn insert_signing_key(&self, key: &SigningKey) -> StoreResult<()> {
        sqlx::query(sql::INSERT_SIGNING_KEY)
            .bind(key.generation)
            .bind(&key.kid)
            .bind(&key.private_key)
            .bind(&key.public_key)
            .bind(key.created_at_ms)
            .bind(key.signs_from_ms)
            .execute(&self.pool)
            .await
            .map_err(|e| {
                conflict_as(map_err(e), || {
                    format!("signing key generation {} is recorded", key.generation)
                })
            })?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(generation))]
    async fn delete_signing_keys_before(&self, generation: i64) -> StoreResult<u64> {
        let done = sqlx::query(sql::DELETE_SIGNING_KEYS_BEFORE)
            .bind(generation)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn register_node(&self, advertise: &str) -> StoreResult<NodeId> {
        self.register_node_impl(advertise).await
    }

    async fn node_heartbeat(&self, node: NodeId) -> StoreResult<()> {
        self.node_heartbeat_impl(node).await
    }

    async fn live_nodes(&self, within: Duration) -> StoreResult<Vec<LiveNode>> {
        self.live_nodes_impl(within).await
    }

    async fn delete_dead_nodes(&self, dead_for: Duration) -> StoreResult<u64> {
        self.delete_dead_nodes_impl(dead_for).await
    }

    async fn ensure_shards(&self, count: u32) -> StoreResult<()> {
        self.ensure_shards_impl(count).await
    }

    async fn leases(&self) -> StoreResult<Vec<Lease>> {
        self.leases_impl().await
    }

    async fn take_lease(
        &self,
        shard: ShardId,
        node: NodeId,
        ttl: Duration,
        expired_for: Duration,
    ) -> StoreResult<Option<Epoch>> {
        self.take_lease_impl(shard, node, ttl, expired_for).await
    }

    async fn renew_leases(
        &self,
        node: NodeId,
        leases: &[(ShardId, Epoch)],
        ttl: Duration,
    ) -> StoreResult<Vec<ShardId>> {
        self.renew_leases_impl(node, leases, ttl).await
    }

    async fn release_leases(&self, node: NodeId, leases: &[(ShardId, Epoch)]) -> StoreResult<u64> {
        self.release_leases_impl(node, leases).await
    }

    async fn journal_fences(&self, partition: i32) -> StoreResult<Vec<(ShardId, Epoch)>> {
        self.journal_fences_impl(partition).await
    }

    async fn raise_journal_fences(&self, fences: &[JournalFence]) -> StoreResult<()> {
        self.raise_journal_fences_impl(fences).await
    }

    async fn contacts(&self, user: UserId, max: u32, limit: u32) -> StoreResult<Vec<UserId>> {
        let ids: Vec<i64> = sqlx::query_scalar(sql::CONTACTS)
            .bind(user.0)
            .bind(max)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(ids.into_iter().map(UserId).collect())
    }

    async fn record_last_seen(&self, users: &[UserId], at_ms: i64) -> StoreResult<()> {
        for chunk in users.chunks(crate::ID_CHUNK) {
            let mut query =
                sqlx::QueryBuilder::<sqlx::MySql>::new("UPDATE users SET last_seen_at_ms = ");
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
}
