//! [`SqliteStore`]: the [`Store`] port on one SQLite file, the embedded single-node default.
//!
//! The file runs in WAL mode with `synchronous = FULL` by default (a commit survives a power cut, not
//! only a crash of the process; `store.sqlite_synchronous = "normal"` trades the power cut for no
//! `fsync` per commit), foreign keys on and a busy timeout. Readers run in parallel on the pool; writes take
//! the write lock up front (`BEGIN IMMEDIATE`), so two write transactions queue on the busy timeout
//! instead of failing with `SQLITE_BUSY` when the second tries to upgrade a read lock.

use std::path::Path;
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
use sqlx::Sqlite;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::refresh::{Step, TokenState};
use super::{
    MemberRow, MessageRow, RoomRow, SigningKeyRow, SummaryRow, UserRow, conflict_as, convert_all,
    dm_key, like_prefix, map_err, refresh, seq_from_db, seq_to_db, sql,
};
use crate::config::SqliteSynchronous as Synchronous;

mod leases;
mod members;
mod write;

use members::insert_member;

/// How long a statement waits for another connection's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections in the pool: one writer at a time anyway, the rest read in parallel (WAL).
const MAX_CONNECTIONS: u32 = 8;

/// The [`Store`] on an SQLite file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it and its folder when missing) the database at a path or an `sqlite:` URL, and
    /// brings its schema up to date. `sqlite::memory:` gives a private in-memory database.
    pub async fn open(path_or_url: &str) -> StoreResult<Self> {
        Self::open_with(path_or_url, Synchronous::Full).await
    }

    /// [`SqliteStore::open`] with the commit durability of `store.sqlite_synchronous`.
    pub async fn open_with(path_or_url: &str, sync: Synchronous) -> StoreResult<Self> {
        let in_memory = path_or_url.contains(":memory:") || path_or_url.contains("mode=memory");
        let options = if path_or_url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(path_or_url).map_err(map_err)?
        } else {
            SqliteConnectOptions::new().filename(path_or_url)
        };
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match sync {
                Synchronous::Full => SqliteSynchronous::Full,
                Synchronous::Normal => SqliteSynchronous::Normal,
            })
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        if !in_memory {
            create_parent_dir(options.get_filename())?;
        }
        let pool_options = if in_memory {
            // The database lives as long as one connection does: keep exactly one, forever.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(MAX_CONNECTIONS)
        };
        let pool = pool_options.connect_with(options).await.map_err(map_err)?;
        sqlx::migrate!("migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| map_err(e.into()))?;
        Ok(SqliteStore { pool })
    }

    /// Returns the connection pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Starts a write transaction holding the write lock from its first statement on.
    async fn begin_write(&self) -> StoreResult<sqlx::Transaction<'static, Sqlite>> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)
    }
}

fn create_parent_dir(file: &Path) -> StoreResult<()> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Unavailable(format!("cannot create folder {}: {e}", dir.display()))
        }),
        _ => Ok(()),
    }
}

crate::uploads::impl_uploads!(SqliteStore, "");
crate::feeds::impl_feeds!(SqliteStore, sqlx::Sqlite, sqlite);

#[async_trait]
impl Store for SqliteStore {
    #[tracing::instrument(level = "debug", skip_all, fields(username = %user.username))]
    async fn create_user(&self, user: NewUser) -> StoreResult<User> {
        let username = user.username.to_lowercase();
        let row: UserRow = sqlx::query_as(
            "INSERT INTO users (username, display_name, password_hash, created_at_ms) \
             VALUES (?, ?, ?, ?) \
             RETURNING id, username, display_name, password_hash, avatar_ref, created_at_ms",
        )
        .bind(&username)
        .bind(&user.display_name)
        .bind(&user.password_hash)
        .bind(user.created_at_ms)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| conflict_as(map_err(e), || format!("username {username} is taken")))?;
        Ok(row.into())
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
        let row: Option<UserRow> = sqlx::query_as(
            "UPDATE users SET display_name = ? WHERE id = ? \
             RETURNING id, username, display_name, password_hash, avatar_ref, created_at_ms",
        )
        .bind(display_name)
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.map(User::from).ok_or(StoreError::NotFound)
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
        let mut tx = self.begin_write().await?;
        let row: RoomRow = sqlx::query_as(
            "INSERT INTO rooms (kind, name, created_by, created_at_ms) VALUES (?, ?, ?, ?) \
             RETURNING id, kind, name, created_by, created_at_ms",
        )
        .bind(kind.as_str())
        .bind(name)
        .bind(creator.0)
        .bind(now_ms)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        insert_member(&mut tx, row.id, creator, Role::Owner, now_ms).await?;
        tx.commit().await.map_err(map_err)?;
        row.try_into()
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
        // The write lock serializes racing callers; the unique dm_key would catch them regardless.
        let mut tx = self.begin_write().await?;
        let created = sqlx::query(
            "INSERT INTO rooms (kind, name, created_by, dm_key, created_at_ms) \
             VALUES ('dm', '', ?, ?, ?) ON CONFLICT (dm_key) DO NOTHING",
        )
        .bind(a.0)
        .bind(&key)
        .bind(now_ms)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected()
            == 1;
        let row: RoomRow = sqlx::query_as(sql::ROOM_BY_DM_KEY)
            .bind(&key)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        if created {
            insert_member(&mut tx, row.id, a, Role::Member, now_ms).await?;
            insert_member(&mut tx, row.id, b, Role::Member, now_ms).await?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok((row.try_into()?, created))
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
        insert_member(&mut conn, room.0, user, role, now_ms).await
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
        let row: Option<RoomRow> = sqlx::query_as(sql::ROOM_BY_DM_KEY)
            .bind(dm_key(a, b))
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(Room::try_from).transpose()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(room_id = %room, user_id = %user, seq = seq))]
    async fn mark_read(&self, room: RoomId, user: UserId, seq: Seq) -> StoreResult<Seq> {
        let stored: Option<i64> = sqlx::query_scalar(
            "UPDATE room_members SET last_read_seq = MAX(last_read_seq, ?) \
             WHERE room_id = ? AND user_id = ? RETURNING last_read_seq",
        )
        .bind(seq_to_db(seq)?)
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
        self.insert_message_rows(messages).await.map_err(|e| {
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
        sqlx::query("INSERT INTO room_seq_reservations (room_id, seq) VALUES (?, ?) ON CONFLICT (room_id) DO UPDATE SET seq = MAX(seq, excluded.seq)")
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
        // The write lock is held from the first read, so racing callers run one after the other; an
        // error before the commit rolls everything back (the transaction is dropped), leaving the old
        // token valid.
        let mut tx = self.begin_write().await?;
        let row: Option<TokenState> = sqlx::query_as(sql::REFRESH_TOKEN_STATE)
            .bind(jti)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        let rotation = match refresh::step(row, now_ms) {
            Step::Refuse => return Ok(Rotation::Refused),
            Step::RevokeChain { user, family } => {
                sqlx::query(sql::REVOKE_REFRESH_FAMILY)
                    .bind(now_ms)
                    .bind(&family)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                Rotation::Reused(user)
            }
            Step::Rotate { user, family } => {
                sqlx::query(sql::USE_REFRESH_TOKEN)
                    .bind(now_ms)
                    .bind(jti)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                sqlx::query(sql::PUT_REFRESH_TOKEN)
                    .bind(new_jti)
                    .bind(user.0)
                    .bind(&family)
                    .bind(new_expires_at_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| {
                        conflict_as(map_err(e), || "refresh token id already recorded".into())
                    })?;
                Rotation::Rotated(user)
            }
        };
        tx.commit().await.map_err(map_err)?;
        Ok(rotation)
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
        self.contacts_impl(user, max, limit).await
    }

    async fn record_last_seen(&self, users: &[UserId], at_ms: i64) -> StoreResult<()> {
        self.record_last_seen_impl(users, at_ms).await
    }
}
