//! The system of record: sqlx adapters of the [`Store`] port.
//!
//! - [`sqlite`]: [`SqliteStore`], one file, the embedded single-node default.
//! - [`mysql`]: [`MySqlStore`], a connection pool to MySQL or MariaDB, the full stack's store.
//! - `contract` (tests only): the contract suite every implementation passes (`contract_suite!`);
//!   `fixture` (tests, and other crates' tests with the `testkit` feature): seeded users and rooms.
//! - [`journal`]: [`LocalJournal`], the embedded node's journal: a group-commit writer into the store.
//! - [`config`]: the `[store]` section; [`metrics`]: the names this crate updates.
//!
//! Each store runs its own migrations when opened (`migrations/sqlite`, `migrations/mysql`: one set per
//! database, the same schema). Queries are built at run time with binds; nothing is checked against a
//! database at build time. This crate's root holds what both stores share: picking a store by URL, mapping sqlx errors
//! to [`StoreError`], and turning rows into domain types without trusting the data (a malformed row is a
//! [`StoreError::Other`], never a panic).

use std::sync::Arc;

use banter_actors::model::{
    Attachment, ChatMessage, Marks, Member, MessageKind, Role, Room, RoomId, RoomKind, RoomSummary,
    Seq, User, UserId,
};
use banter_actors::ports::{SigningKey, Store, StoreError, StoreResult};
use uuid::Uuid;

pub mod config;
mod events;
mod feeds;
mod insert;
pub mod journal;
mod leases;
pub mod metrics;
pub mod mysql;
mod refresh;
mod sql;
pub mod sqlite;
mod uploads;

#[cfg(test)]
mod contract;
#[cfg(any(test, feature = "testkit"))]
pub mod fixture;
#[cfg(test)]
pub(crate) use contract::contract_suite;

pub use journal::LocalJournal;
pub use metrics::describe_metrics;
pub use mysql::MySqlStore;
pub use sqlite::SqliteStore;

use crate::config::SqliteSynchronous;

/// Most rows one multi-row `INSERT` carries; 11 binds each stays far below SQLite's 32,766 and
/// MySQL's 65,535 bind parameters.
const INSERT_CHUNK_ROWS: usize = 500;

/// Most ids one `IN (…)` list of a statement names.
pub(crate) const ID_CHUNK: usize = 500;

/// What one attachment adds to a row, at most (its name, type and a thumbnail as a data URL).
const ATTACHMENT_BYTES: usize = 8 << 10;

/// Most body bytes one multi-row `INSERT` carries, to stay well within MySQL's `max_allowed_packet`.
const INSERT_CHUNK_BYTES: usize = 4 << 20;

/// Opens the store a URL names: `sqlite:…` (a file, created when missing, committing as `sync`
/// says) or `mysql://…` (a server).
pub async fn open_store(url: &str, sync: SqliteSynchronous) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open_with(url, sync).await?))
    } else if url.starts_with("mysql:") {
        Ok(Arc::new(MySqlStore::connect(url).await?))
    } else {
        Err(StoreError::Other(format!(
            "unsupported store url {}: expected sqlite: or mysql:",
            redact_url(url)
        )))
    }
}

/// Returns the URL with any password replaced, for messages and logs.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Maps an sqlx error: a uniqueness violation is a [`StoreError::Conflict`], a missing referenced row (a
/// foreign key violation: no such room or user) is [`StoreError::NotFound`], a lost or refused connection
/// (or a lock the database gave up waiting for) is [`StoreError::Unavailable`], anything else is
/// [`StoreError::Other`].
fn map_err(err: sqlx::Error) -> StoreError {
    use sqlx::error::ErrorKind;
    match err {
        sqlx::Error::Database(db) => {
            if db.kind() == ErrorKind::UniqueViolation {
                StoreError::Conflict(db.message().to_owned())
            } else if db.kind() == ErrorKind::ForeignKeyViolation {
                StoreError::NotFound
            } else if is_transient(db.as_ref()) {
                StoreError::Unavailable(db.to_string())
            } else {
                StoreError::Other(db.to_string())
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => StoreError::Unavailable(err.to_string()),
        sqlx::Error::Migrate(migrate) => match *migrate {
            sqlx::migrate::MigrateError::Execute(inner)
            | sqlx::migrate::MigrateError::ExecuteMigration(inner, _) => map_err(inner),
            other => StoreError::Other(format!("migration failed: {other}")),
        },
        other => StoreError::Other(other.to_string()),
    }
}

/// Tells whether a database error says "not now" rather than "never": the server is going away, refuses
/// more connections, or a lock could not be had (SQLite busy/locked/cannot open, MySQL deadlock and lock
/// wait timeout).
fn is_transient(db: &dyn sqlx::error::DatabaseError) -> bool {
    if let Some(e) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        // ER_CON_COUNT_ERROR, ER_SERVER_SHUTDOWN, ER_LOCK_WAIT_TIMEOUT, ER_LOCK_DEADLOCK,
        // ER_TOO_MANY_USER_CONNECTIONS, ER_QUERY_INTERRUPTED.
        return matches!(e.number(), 1040 | 1053 | 1205 | 1213 | 1203 | 1317);
    }
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        let primary = db
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .map(|c| c & 0xff);
        // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN.
        return matches!(primary, Some(5 | 6 | 10 | 13 | 14));
    }
    false
}

/// Returns `err` with the conflict text replaced by `what` (the rule that refused the write).
fn conflict_as(err: StoreError, what: impl FnOnce() -> String) -> StoreError {
    match err {
        StoreError::Conflict(_) => StoreError::Conflict(what()),
        other => other,
    }
}

/// Converts a seq to the database's signed 64-bit integer.
fn seq_to_db(seq: Seq) -> StoreResult<i64> {
    i64::try_from(seq).map_err(|_| StoreError::Other(format!("seq {seq} out of range")))
}

/// Converts a stored seq back; a negative one is corrupt data.
fn seq_from_db(seq: i64) -> StoreResult<Seq> {
    Seq::try_from(seq).map_err(|_| StoreError::Other(format!("stored seq {seq} is negative")))
}

/// Returns the unique key of the DM room of a pair, the same in either order.
fn dm_key(a: UserId, b: UserId) -> String {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    format!("{lo}:{hi}")
}

/// Returns the other user of a DM key, or `None` for a DM with oneself.
fn dm_peer(key: &str, me: UserId) -> StoreResult<Option<UserId>> {
    let parse = |s: &str| {
        s.parse::<i64>()
            .map(UserId)
            .map_err(|_| StoreError::Other(format!("malformed dm key {key:?}")))
    };
    let (lo, hi) = key
        .split_once(':')
        .ok_or_else(|| StoreError::Other(format!("malformed dm key {key:?}")))?;
    let (lo, hi) = (parse(lo)?, parse(hi)?);
    Ok(if lo == me && hi == me {
        None
    } else if lo == me {
        Some(hi)
    } else {
        Some(lo)
    })
}

/// The escape character of `LIKE` patterns. Not backslash: MySQL's literal for it depends on the
/// `NO_BACKSLASH_ESCAPES` mode, while `!` reads the same everywhere.
const LIKE_ESCAPE: char = '!';

/// Returns a `LIKE` pattern matching strings that start with `prefix` taken literally.
fn like_prefix(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 4);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\' | LIKE_ESCAPE) {
            pattern.push(LIKE_ESCAPE);
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Splits messages into chunks that each fit one multi-row `INSERT`.
fn insert_chunks(messages: &[ChatMessage]) -> impl Iterator<Item = &[ChatMessage]> {
    let mut rest = messages;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = 0;
        let mut n = 0;
        while n < rest.len() && n < INSERT_CHUNK_ROWS {
            bytes += rest[n].body.len() + rest[n].attachments.len() * ATTACHMENT_BYTES;
            if n > 0 && bytes > INSERT_CHUNK_BYTES {
                break;
            }
            n += 1;
        }
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        Some(chunk)
    })
}

/// A `users` row.
#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    username: String,
    display_name: String,
    password_hash: String,
    avatar_ref: Option<String>,
    created_at_ms: i64,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: UserId(r.id),
            username: r.username,
            display_name: r.display_name,
            password_hash: r.password_hash,
            avatar_ref: r.avatar_ref,
            created_at_ms: r.created_at_ms,
        }
    }
}

/// A `rooms` row.
#[derive(sqlx::FromRow)]
struct RoomRow {
    id: i64,
    kind: String,
    name: String,
    created_by: i64,
    created_at_ms: i64,
}

impl TryFrom<RoomRow> for Room {
    type Error = StoreError;

    fn try_from(r: RoomRow) -> StoreResult<Self> {
        Ok(Room {
            id: RoomId(r.id),
            kind: parse_kind(&r.kind)?,
            name: r.name,
            created_by: UserId(r.created_by),
            created_at_ms: r.created_at_ms,
        })
    }
}

fn parse_kind(kind: &str) -> StoreResult<RoomKind> {
    RoomKind::parse(kind).ok_or_else(|| StoreError::Other(format!("unknown room kind {kind:?}")))
}

fn parse_role(role: &str) -> StoreResult<Role> {
    Role::parse(role).ok_or_else(|| StoreError::Other(format!("unknown role {role:?}")))
}

/// A `room_members` row joined with its user.
#[derive(sqlx::FromRow)]
struct MemberRow {
    user_id: i64,
    username: String,
    display_name: String,
    role: String,
    last_read_seq: i64,
    last_seen_at_ms: Option<i64>,
}

impl TryFrom<MemberRow> for Member {
    type Error = StoreError;

    fn try_from(r: MemberRow) -> StoreResult<Self> {
        Ok(Member {
            user_id: UserId(r.user_id),
            username: r.username,
            display_name: r.display_name,
            role: parse_role(&r.role)?,
            last_read_seq: seq_from_db(r.last_read_seq)?,
            last_seen_ms: r.last_seen_at_ms,
        })
    }
}

/// A row of the `rooms_of` and `room_summary` queries.
#[derive(sqlx::FromRow)]
struct SummaryRow {
    id: i64,
    kind: String,
    name: String,
    created_by: i64,
    created_at_ms: i64,
    dm_key: Option<String>,
    role: String,
    last_read_seq: i64,
    last_seq: i64,
    unread: i64,
    last_activity_ms: i64,
}

impl SummaryRow {
    fn into_summary(self, me: UserId) -> StoreResult<RoomSummary> {
        let kind = parse_kind(&self.kind)?;
        let dm_peer = match (kind, &self.dm_key) {
            (RoomKind::Dm, Some(key)) => dm_peer(key, me)?,
            _ => None,
        };
        Ok(RoomSummary {
            room: Room {
                id: RoomId(self.id),
                kind,
                name: self.name,
                created_by: UserId(self.created_by),
                created_at_ms: self.created_at_ms,
            },
            role: parse_role(&self.role)?,
            last_seq: seq_from_db(self.last_seq)?,
            last_read_seq: seq_from_db(self.last_read_seq)?,
            unread: u64::try_from(self.unread)
                .map_err(|_| StoreError::Other(format!("negative unread count {}", self.unread)))?,
            dm_peer,
            last_activity_ms: self.last_activity_ms,
        })
    }
}

/// A `messages` row.
#[derive(sqlx::FromRow)]
struct MessageRow {
    room_id: i64,
    seq: i64,
    message_id: Vec<u8>,
    sender_id: i64,
    body: String,
    created_at_ms: i64,
    nonce: Option<String>,
    attachments: Option<String>,
    kind: i64,
    target_seq: Option<i64>,
    content_type: Option<String>,
    edited_at_ms: Option<i64>,
    deleted_at_ms: Option<i64>,
}

impl TryFrom<MessageRow> for ChatMessage {
    type Error = StoreError;

    fn try_from(r: MessageRow) -> StoreResult<Self> {
        let kind = i32::try_from(r.kind)
            .ok()
            .zip(r.target_seq.map_or(Some(0), |t| Seq::try_from(t).ok()))
            .and_then(|(code, target)| MessageKind::from_code(code, target))
            .ok_or_else(|| {
                StoreError::Other(format!(
                    "malformed kind {} with target seq {:?} at seq {} of room {}",
                    r.kind, r.target_seq, r.seq, r.room_id
                ))
            })?;
        Ok(ChatMessage {
            room_id: RoomId(r.room_id),
            seq: seq_from_db(r.seq)?,
            message_id: Uuid::from_slice(&r.message_id).map_err(|e| {
                StoreError::Other(format!("malformed message id in room {}: {e}", r.room_id))
            })?,
            sender_id: UserId(r.sender_id),
            body: r.body,
            created_at_ms: r.created_at_ms,
            nonce: r.nonce,
            attachments: match r.attachments.as_deref() {
                None | Some("") => Vec::new(),
                Some(json) => Attachment::from_json(json).map_err(|e| {
                    StoreError::Other(format!("malformed attachments in room {}: {e}", r.room_id))
                })?,
            },
            kind,
            content_type: r.content_type,
            marks: Marks {
                edited_at_ms: r.edited_at_ms,
                deleted_at_ms: r.deleted_at_ms,
            },
        })
    }
}

/// A `signing_keys` row.
#[derive(sqlx::FromRow)]
struct SigningKeyRow {
    generation: i64,
    kid: String,
    private_key: Vec<u8>,
    public_key: Vec<u8>,
    created_at_ms: i64,
    signs_from_ms: i64,
}

impl From<SigningKeyRow> for SigningKey {
    fn from(r: SigningKeyRow) -> Self {
        SigningKey {
            generation: r.generation,
            kid: r.kid,
            private_key: r.private_key,
            public_key: r.public_key,
            created_at_ms: r.created_at_ms,
            signs_from_ms: r.signs_from_ms,
        }
    }
}

/// Converts rows, failing on the first malformed one.
fn convert_all<R, T>(rows: Vec<R>) -> StoreResult<Vec<T>>
where
    T: TryFrom<R, Error = StoreError>,
{
    rows.into_iter().map(T::try_from).collect()
}

#[cfg(test)]
mod tests {
    use super::contract::{mysql_fixture, sqlite_fixture};
    use super::*;

    contract_suite!(sqlite, sqlite_fixture());
    contract_suite!(mysql, mysql_fixture());

    #[tokio::test]
    async fn open_store_picks_by_scheme() {
        let dir = tempfile::tempdir().expect("tempdir");
        for url in [
            format!("sqlite:{}", dir.path().join("a").join("b.db").display()),
            format!("sqlite://{}", dir.path().join("c").join("d.db").display()),
        ] {
            let store = open_store(&url, SqliteSynchronous::Full)
                .await
                .expect("sqlite url opens");
            assert!(store.search_users("", 1).await.expect("query").is_empty());
        }
        assert!(dir.path().join("c").join("d.db").is_file());
        let memory = open_store("sqlite::memory:", SqliteSynchronous::Full)
            .await
            .expect("in-memory opens");
        assert_eq!(memory.last_seq(RoomId(1)).await.expect("query"), 0);
        let refused = open_store("postgres://u:secret@h/db", SqliteSynchronous::Full)
            .await
            .err();
        assert!(
            matches!(&refused, Some(StoreError::Other(m)) if !m.contains("secret")),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn sqlite_runs_durable_wal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("banter.db");
        let store = SqliteStore::open(path.to_str().expect("utf-8 path"))
            .await
            .expect("open");
        let pool = store.pool();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(pool)
            .await
            .expect("pragma");
        assert_eq!(mode, "wal");
        let int = |name: &'static str| async move {
            let value: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("PRAGMA {name}")))
                .fetch_one(pool)
                .await
                .expect("pragma");
            value
        };
        // 2 is FULL: a commit survives a power cut, not only a crash of the process.
        assert_eq!(int("synchronous").await, 2);
        assert_eq!(int("foreign_keys").await, 1);
        assert_eq!(int("busy_timeout").await, 10_000);

        // `store.sqlite_synchronous = "normal"`: 1 is NORMAL, the WAL synced at checkpoints only.
        let url = format!("sqlite:{}", dir.path().join("normal.db").display());
        let normal = SqliteStore::open_with(&url, SqliteSynchronous::Normal)
            .await
            .expect("open");
        let value: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(normal.pool())
            .await
            .expect("pragma");
        assert_eq!(value, 1);
    }

    /// The room list's counters run over its page only: the page is cut from one range of the
    /// `(user_id, room_id)` index before any correlated subquery runs.
    #[tokio::test]
    async fn sqlite_rooms_of_cuts_the_page_before_counting() {
        let store = SqliteStore::open("sqlite::memory:").await.expect("open");
        let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN {}",
            sql::ROOMS_OF
        )))
        .bind(1_i64)
        .bind(0_i64)
        .bind(10_i64)
        .fetch_all(store.pool())
        .await
        .expect("plan");
        let steps: Vec<&str> = plan.iter().map(|(.., d)| d.as_str()).collect();
        // Not flattened into the join: the LIMIT applies to the members' rows.
        assert!(
            steps
                .iter()
                .any(|d| matches!(*d, "CO-ROUTINE m" | "MATERIALIZE m")),
            "{steps:?}"
        );
        assert!(
            steps
                .iter()
                .any(|d| d.contains("room_members_user_id (user_id=? AND room_id>?)")),
            "{steps:?}"
        );
        assert!(
            !steps.iter().any(|d| d.starts_with("SCAN room_members")),
            "{steps:?}"
        );
    }

    #[tokio::test]
    async fn unreachable_mysql_is_unavailable() {
        let err = MySqlStore::connect("mysql://banter:banter@127.0.0.1:1/banter")
            .await
            .err();
        assert!(matches!(err, Some(StoreError::Unavailable(_))), "{err:?}");
    }

    /// Inserts two usernames differing in case behind the store's back: the schema itself refuses.
    macro_rules! assert_schema_folds_case {
        ($pool:expr) => {{
            let insert = "INSERT INTO users (username, display_name, password_hash, created_at_ms) \
                          VALUES (?, 'x', 'x', 0)";
            sqlx::query(insert)
                .bind("Eve")
                .execute($pool)
                .await
                .expect("first insert");
            let err = sqlx::query(insert).bind("eVE").execute($pool).await.err();
            assert!(matches!(err.map(map_err), Some(StoreError::Conflict(_))));
        }};
    }

    #[tokio::test]
    async fn sqlite_schema_folds_username_case() {
        let store = SqliteStore::open("sqlite::memory:").await.expect("open");
        assert_schema_folds_case!(store.pool());
    }

    #[tokio::test]
    async fn mysql_schema_folds_username_case() {
        let Ok(url) = std::env::var("BANTER_TEST_MYSQL_URL") else {
            eprintln!("skipped: BANTER_TEST_MYSQL_URL is unset (see scripts/mariadb.sh)");
            return;
        };
        let (store, name) = MySqlStore::connect_fresh_database(&url)
            .await
            .expect("connect");
        assert_schema_folds_case!(store.pool());
        store.drop_database(&name).await.expect("drop");
    }

    /// A kind or target the model does not know, written behind the store's back, fails the read.
    #[tokio::test]
    async fn sqlite_malformed_kind_is_an_error() {
        let store = SqliteStore::open("sqlite::memory:").await.expect("open");
        let (user, rooms) = fixture::seed(&store, 1).await;
        let room = rooms[0];
        let message = fixture::message(room, 1, user);
        store.insert_messages(&[message]).await.expect("insert");
        for (kind, target) in [(7, None), (1, None), (0, Some(1)), (2, Some(-1))] {
            sqlx::query("UPDATE messages SET kind = ?, target_seq = ?")
                .bind(kind)
                .bind(target)
                .execute(store.pool())
                .await
                .expect("update");
            let read = store.messages_after(room, 0, 10).await;
            assert!(
                matches!(&read, Err(StoreError::Other(m)) if m.contains("malformed kind")),
                "{kind} {target:?}: {read:?}"
            );
        }
    }

    #[test]
    fn like_prefix_escapes_metacharacters() {
        assert_eq!(like_prefix("a%b_c\\d!e"), "a!%b!_c!\\d!!e%");
        assert_eq!(like_prefix(""), "%");
    }

    #[test]
    fn dm_key_is_order_free() {
        assert_eq!(dm_key(UserId(7), UserId(3)), "3:7");
        assert_eq!(dm_key(UserId(3), UserId(7)), "3:7");
        assert_eq!(dm_peer("3:7", UserId(3)).ok(), Some(Some(UserId(7))));
        assert_eq!(dm_peer("3:7", UserId(7)).ok(), Some(Some(UserId(3))));
        assert!(dm_peer("3-7", UserId(3)).is_err());
    }

    #[test]
    fn chunks_respect_rows_and_bytes() {
        let msg = |seq, len| ChatMessage {
            room_id: RoomId(1),
            seq,
            message_id: Uuid::now_v7(),
            sender_id: UserId(1),
            body: "x".repeat(len),
            created_at_ms: 0,
            nonce: None,
            attachments: Vec::new(),
            ..Default::default()
        };
        let many: Vec<_> = (1..=1201).map(|s| msg(s, 1)).collect();
        let sizes: Vec<_> = insert_chunks(&many).map(<[_]>::len).collect();
        assert_eq!(sizes, [500, 500, 201]);
        let big: Vec<_> = (1..=3).map(|s| msg(s, INSERT_CHUNK_BYTES)).collect();
        assert_eq!(insert_chunks(&big).count(), 3);
        assert_eq!(insert_chunks(&[]).count(), 0);
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("mysql://banter:secret@127.0.0.1:3307/db"),
            "mysql://banter:***@127.0.0.1:3307/db"
        );
        assert_eq!(redact_url("sqlite:/tmp/x.db"), "sqlite:/tmp/x.db");
    }
}
