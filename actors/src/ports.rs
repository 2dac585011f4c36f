//! Ports: the traits through which actors reach the outside world.
//!
//! Adapters live node-side (`banter-node`): SQLite and MySQL stores (sqlx), the in-process journal and,
//! in a later stage, the Kafka journal. Actors only ever see these traits, so every actor runs against a
//! fake in unit tests and the embedded default and the full stack share one actor code.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;

mod blobs;
mod feeds;
mod uploads;

pub use blobs::{BlobError, BlobKey, Blobs, UploadForm, UploadPolicy};
pub use feeds::{BBox, EventQuery, FeedEvent, Feeds, Follow, Source, SourceId};
pub use uploads::{Upload, UploadFacts, UploadPurpose, Uploads};

use crate::delivery::NodeId;
use crate::model::{
    ChatMessage, Member, NewUser, Role, Room, RoomId, RoomKind, RoomSummary, Seq, User, UserId,
};
use crate::shard::{Epoch, ShardId, Term};
use crate::trace::TraceParent;

/// Error of a store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row asked for does not exist.
    #[error("not found")]
    NotFound,
    /// A uniqueness rule refused the write (e.g. the username is taken); the text names it.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database cannot be reached or refused the connection; worth retrying later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Any other database error.
    #[error("store error: {0}")]
    Other(String),
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// The system of record: users, rooms, members, messages, refresh tokens, the token signing keys,
/// the cluster's nodes and shard leases, (through [`Uploads`]) the uploads users were granted, and
/// (through [`Feeds`]) the ingest sources with the rooms that follow them, their events and posts.
///
/// One contract test suite (`store::contract_suite!` in `banter-node`) runs against every implementation.
/// Writes naming a missing room or user fail with [`StoreError::NotFound`]; DM rooms come only from
/// [`Store::dm_room`]; `insert_messages` fails with [`StoreError::Conflict`] when a message id is already
/// stored under another seq.
#[async_trait]
pub trait Store: Uploads + Feeds + Send + Sync + 'static {
    /// Creates a user; [`StoreError::Conflict`] when the username is taken.
    async fn create_user(&self, user: NewUser) -> StoreResult<User>;
    /// Returns the user with this id.
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>>;
    /// Returns the user with this (lowercase) username.
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    /// Returns up to `limit` users whose username starts with `prefix`, ordered by username.
    /// The prefix is matched literally (`%` and `_` have no special meaning).
    async fn search_users(&self, prefix: &str, limit: u32) -> StoreResult<Vec<User>>;
    /// Sets the display name; returns the updated user. (The avatar is the user's actor's:
    /// [`Uploads::set_avatar`].)
    async fn update_profile(&self, id: UserId, display_name: &str) -> StoreResult<User>;

    /// Creates a room with `creator` as its owner.
    async fn create_room(
        &self,
        kind: RoomKind,
        name: &str,
        creator: UserId,
        now_ms: i64,
    ) -> StoreResult<Room>;
    /// Returns the room with this id.
    async fn room(&self, id: RoomId) -> StoreResult<Option<Room>>;
    /// Returns the DM room of the pair, creating it (with both as members) on first use; the same room
    /// however often and in whichever order the pair is asked. The bool tells whether it was created now.
    async fn dm_room(&self, a: UserId, b: UserId, now_ms: i64) -> StoreResult<(Room, bool)>;
    /// Adds a member; adding an existing member changes nothing. Returns whether it was added now.
    async fn add_member(
        &self,
        room: RoomId,
        user: UserId,
        role: Role,
        now_ms: i64,
    ) -> StoreResult<bool>;
    /// Removes a member; returns whether it was a member.
    async fn remove_member(&self, room: RoomId, user: UserId) -> StoreResult<bool>;
    /// Returns the user's role in the room, or `None` when they are not a member (one indexed lookup).
    async fn member_role(&self, room: RoomId, user: UserId) -> StoreResult<Option<Role>>;
    /// Returns the members of a room, ordered by user id.
    async fn members(&self, room: RoomId) -> StoreResult<Vec<Member>>;
    /// Returns up to `limit` members of a room with a user id above `after` (from the first when
    /// `None`), ordered by user id: one range of the primary key.
    async fn members_after(
        &self,
        room: RoomId,
        after: Option<UserId>,
        limit: u32,
    ) -> StoreResult<Vec<Member>>;
    /// Returns up to `limit` rooms of a user with a room id above `after` (from the first when `None`),
    /// ordered by room id, with their counters: the unread counts are computed for these rooms only.
    async fn rooms_of(
        &self,
        user: UserId,
        after: Option<RoomId>,
        limit: u32,
    ) -> StoreResult<Vec<RoomSummary>>;
    /// Returns the summary of one room for one member (as [`Store::rooms_of`] lists it), or `None` when
    /// the user is not a member; it reads that room only.
    async fn room_summary(&self, room: RoomId, user: UserId) -> StoreResult<Option<RoomSummary>>;
    /// Returns how many rooms the user is a member of (DMs included).
    async fn membership_count(&self, user: UserId) -> StoreResult<u64>;
    /// Returns the DM room of the pair when it exists; never creates it (see [`Store::dm_room`]).
    async fn find_dm(&self, a: UserId, b: UserId) -> StoreResult<Option<Room>>;
    /// Returns the users who share a room with `user` (`user` excluded), by id, at most `limit`,
    /// counting only rooms of at most `max_room_members` members: whose presence `user` watches.
    async fn contacts(
        &self,
        user: UserId,
        max_room_members: u32,
        limit: u32,
    ) -> StoreResult<Vec<UserId>>;
    /// Records that `users` were last seen at `at_ms` (their last session on a node ended then); a
    /// later time already stored stays.
    async fn record_last_seen(&self, users: &[UserId], at_ms: i64) -> StoreResult<()>;
    /// Raises the member's read marker to `seq` (never lowers it); returns the marker now stored.
    async fn mark_read(&self, room: RoomId, user: UserId, seq: Seq) -> StoreResult<Seq>;

    /// Stores messages; a message whose `(room_id, seq)` is already stored is skipped, so a replay of the
    /// same batch changes nothing. Returns how many rows were inserted.
    async fn insert_messages(&self, messages: &[ChatMessage]) -> StoreResult<u64>;
    /// Returns the highest seq of a room that is stored or reserved (0 when it has none).
    async fn last_seq(&self, room: RoomId) -> StoreResult<Seq>;
    /// Reserves `seq` of `room` without a message: a seq given to a message the store will never hold
    /// (a journaled row the persister dead-lettered), so that [`Store::last_seq`] counts it and no
    /// later activation of the room gives it out again. Reserving is idempotent and never lowers a
    /// room's reservation.
    async fn reserve_seq(&self, room: RoomId, seq: Seq) -> StoreResult<()>;
    /// Returns up to `limit` messages with a seq below `before` (all when `None`), newest first.
    async fn messages_before(
        &self,
        room: RoomId,
        before: Option<Seq>,
        limit: u32,
    ) -> StoreResult<Vec<ChatMessage>>;
    /// Returns up to `limit` messages with a seq above `after`, oldest first.
    async fn messages_after(
        &self,
        room: RoomId,
        after: Seq,
        limit: u32,
    ) -> StoreResult<Vec<ChatMessage>>;

    /// Records a refresh token id as valid for `user` until `expires_at_ms`, as the first of a new
    /// chain `family` (a login or a registration); [`StoreError::Conflict`] when the id is recorded.
    async fn put_refresh_token(
        &self,
        jti: &str,
        user: UserId,
        family: &str,
        expires_at_ms: i64,
    ) -> StoreResult<()>;
    /// Deletes the refresh tokens expired at `now_ms` (used and revoked ones included); returns how
    /// many were deleted.
    async fn purge_refresh_tokens(&self, now_ms: i64) -> StoreResult<u64>;
    /// Trades refresh token `jti` for `new_jti` (valid until `new_expires_at_ms`, same user and chain)
    /// in one transaction: either the old token is marked used and the new one recorded, or nothing
    /// changes. A token already used (a replay: stolen, or a retry) revokes its whole chain and
    /// answers [`Rotation::Reused`]; an unknown, revoked or expired one (at `now_ms`) answers
    /// [`Rotation::Refused`]. Of racing callers with one token, at most one gets [`Rotation::Rotated`].
    async fn rotate_refresh_token(
        &self,
        jti: &str,
        new_jti: &str,
        new_expires_at_ms: i64,
        now_ms: i64,
    ) -> StoreResult<Rotation>;
    /// Revokes every refresh token of chain `family` (logout) as of `now_ms`; returns how many rows it
    /// revoked (0 when the chain is unknown or was revoked already).
    async fn revoke_refresh_family(&self, family: &str, now_ms: i64) -> StoreResult<u64>;

    /// Returns every token signing key, ordered by generation (the set every node of a cluster
    /// shares; the gateway decides which key signs and which verify).
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>>;
    /// Records a new signing key; [`StoreError::Conflict`] when its generation (or its kid) is
    /// recorded already: of nodes racing to add the next generation one wins, the others reload.
    async fn insert_signing_key(&self, key: &SigningKey) -> StoreResult<()>;
    /// Deletes the signing keys with a generation below `generation` (keys past their verify
    /// window); returns how many were deleted.
    async fn delete_signing_keys_before(&self, generation: i64) -> StoreResult<u64>;

    // Cluster placement (ARCHITECTURE.md section 5).
    //
    // Every time below is the database's clock, read by the statement itself (MySQL: the server's UTC
    // time; SQLite: its own clock on the one machine); callers pass durations, never instants. A
    // lease's expiry is then judged by one clock, whatever the nodes' clocks say: nodes whose clocks
    // disagree by seconds still agree on who holds a shard. A node cannot read that clock without a
    // round trip, so it keeps its own deadline on its monotonic clock (when it *sent* the renewal, plus
    // the ttl, minus a margin), which ends before the database's expiry however long the statement
    // took, and stops serving the shard then. A step of the database's clock (NTP) shifts every expiry
    // at once; what guards correctness then is the epoch: a taker's epoch is higher, and readers
    // ignore records of a lower one.

    /// Records a new incarnation of a node that others reach at `advertise`, and returns its id: a
    /// restarted process gets a new one, and ids are never given out twice (also after
    /// [`Store::delete_dead_nodes`]). [`StoreError::Other`] when `advertise` is empty or longer than
    /// [`MAX_ADVERTISE_LEN`] bytes.
    async fn register_node(&self, advertise: &str) -> StoreResult<NodeId>;
    /// Records that `node` is alive now; [`StoreError::NotFound`] when its row was deleted (it was
    /// presumed dead: it must stop serving and register again).
    async fn node_heartbeat(&self, node: NodeId) -> StoreResult<()>;
    /// Returns the nodes that heartbeated (or registered) at most `within` ago, by id.
    async fn live_nodes(&self, within: Duration) -> StoreResult<Vec<LiveNode>>;
    /// Deletes the nodes whose last heartbeat is more than `dead_for` ago; returns how many. Their
    /// leases stay (expired, or expiring): a lease names an owner by id only.
    async fn delete_dead_nodes(&self, dead_for: Duration) -> StoreResult<u64>;

    /// Makes sure the lease rows of shards `0..count` exist, free (no owner, epoch 0) when created.
    /// Idempotent, and safe when nodes call it at once. Rows are only ever added to an empty table:
    /// [`StoreError::Conflict`] when it holds another number of shards, since nodes configured with
    /// different shard counts would place one entity on two nodes. [`StoreError::Other`] when `count`
    /// is 0 or above [`MAX_SHARDS`](crate::shard::MAX_SHARDS).
    async fn ensure_shards(&self, count: u32) -> StoreResult<()>;
    /// Returns every shard's lease, by shard: the placement view.
    async fn leases(&self) -> StoreResult<Vec<Lease>>;
    /// Takes `shard` for `node` for `ttl` by compare-and-set, and returns its new epoch (the old one
    /// plus 1), or `None` when the shard is held: it succeeds only when the shard has no owner (never
    /// taken, or released) or its lease has been expired for at least `expired_for` (the journal's
    /// delivery timeout: a zombie owner's appends in flight have failed by then, before the taker
    /// reads the tail). Of racing takers at most one succeeds. [`StoreError::NotFound`] when the shard
    /// has no row (see [`Store::ensure_shards`]).
    async fn take_lease(
        &self,
        shard: ShardId,
        node: NodeId,
        ttl: Duration,
        expired_for: Duration,
    ) -> StoreResult<Option<Epoch>>;
    /// Extends the leases `node` holds, to now + `ttl`; returns the shards renewed, in shard order.
    /// A lease renews only while it is still `node`'s at that epoch and not expired: one that
    /// expired is lost even when nobody took it, and must be taken again (with a new epoch), since the
    /// node's own deadline ended before it.
    async fn renew_leases(
        &self,
        node: NodeId,
        leases: &[(ShardId, Epoch)],
        ttl: Duration,
    ) -> StoreResult<Vec<ShardId>>;
    /// Hands leases back (after the node drained them): each that is still `node`'s at that epoch
    /// loses its owner and expires now, so a taker need not wait; the epoch stays, and the next taker
    /// raises it. Returns how many were released.
    async fn release_leases(&self, node: NodeId, leases: &[(ShardId, Epoch)]) -> StoreResult<u64>;

    // Journal fences (ARCHITECTURE.md section 5): what the persister learned from the journal's fence
    // records, so that a reader starting at the committed offset knows the fences before it.

    /// Returns the fences of journal partition `partition`: per shard, the highest epoch raised there.
    async fn journal_fences(&self, partition: i32) -> StoreResult<Vec<(ShardId, Epoch)>>;
    /// Raises fences: each (partition, shard) keeps the highest epoch it was ever given (a lower one
    /// changes nothing). Idempotent.
    async fn raise_journal_fences(&self, fences: &[JournalFence]) -> StoreResult<()>;
}

/// A fence in a journal partition: from where it stands on, records of `shard` written under an epoch
/// below `epoch` are a former owner's late writes, which readers ignore.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct JournalFence {
    /// The journal partition.
    pub partition: i32,
    /// The shard.
    pub shard: ShardId,
    /// The lowest epoch a record of the shard may carry from there on.
    pub epoch: Epoch,
}

/// The longest advertised address a node may register, in bytes.
pub const MAX_ADVERTISE_LEN: usize = 255;

/// A node of the cluster as [`Store::live_nodes`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveNode {
    /// The incarnation.
    pub id: NodeId,
    /// Where its peers reach it.
    pub advertise: String,
    /// When it registered, milliseconds since the Unix epoch on the database's clock.
    pub started_at_ms: i64,
    /// How long ago its last heartbeat was, on the database's clock.
    pub heartbeat_age: Duration,
}

/// A shard's lease as [`Store::leases`] reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The shard.
    pub shard: ShardId,
    /// The node that took it last, `None` when never taken or released. An owner whose lease has
    /// expired no longer holds it.
    pub owner: Option<NodeId>,
    /// The epoch of the last take (0 when never taken).
    pub epoch: Epoch,
    /// When the lease expires (or expired), milliseconds since the Unix epoch on the database's clock.
    pub expires_at_ms: i64,
    /// `expires_at_ms` less the database's time of the read: negative when expired that long ago.
    pub remaining_ms: i64,
}

impl Lease {
    /// The node holding the shard at the time of the read: its owner, while the lease runs.
    pub fn holder(&self) -> Option<NodeId> {
        self.owner.filter(|_| self.remaining_ms > 0)
    }

    /// How long after the read [`Store::take_lease`] with `expired_for` can succeed: zero for a shard
    /// without owner or one expired long enough.
    pub fn takeable_in(&self, expired_for: Duration) -> Duration {
        if self.owner.is_none() {
            return Duration::ZERO;
        }
        let wait = i128::from(self.remaining_ms) + expired_for.as_millis() as i128;
        Duration::from_millis(u64::try_from(wait.max(0)).unwrap_or(u64::MAX))
    }
}

/// A token signing key as the store keeps it. Generations are unique and grow with each rotation;
/// a key signs from `signs_from_ms` until the next generation's `signs_from_ms`.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// Rotation number, unique: 1 for the first key, one more for each rotation.
    pub generation: i64,
    /// Key id, carried in the `kid` header of the tokens the key signs.
    pub kid: String,
    /// The private key, PKCS#8 DER.
    pub private_key: Vec<u8>,
    /// The raw public key.
    pub public_key: Vec<u8>,
    /// When the key was recorded, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// When the key starts signing, milliseconds since the Unix epoch (later than `created_at_ms`
    /// by the publication lead, so that every node can verify its tokens before it signs any).
    pub signs_from_ms: i64,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key stays out of logs.
        f.debug_struct("SigningKey")
            .field("generation", &self.generation)
            .field("kid", &self.kid)
            .field("created_at_ms", &self.created_at_ms)
            .field("signs_from_ms", &self.signs_from_ms)
            .finish_non_exhaustive()
    }
}

/// Outcome of [`Store::rotate_refresh_token`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The token was valid: it is used now, and the new one is recorded in its chain.
    Rotated(UserId),
    /// The token had been used before: its chain, the newest token included, is revoked now.
    Reused(UserId),
    /// The token is unknown, revoked or expired; nothing changed.
    Refused,
}

/// Error of a journal operation.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JournalError {
    /// The journal could not make the record durable; the sender must be told it was not stored.
    #[error("journal unavailable: {0}")]
    Unavailable(String),
    /// The journal gave up on the record without knowing whether it was made durable (a delivery
    /// timeout, a purged request): the record may still be in the journal. The room finds out by
    /// reading the journal, and never gives the seq to another message.
    #[error("outcome unknown: {0}")]
    Unknown(String),
}

impl JournalError {
    /// Tells whether the record may be durable despite the error.
    pub fn is_unknown(&self) -> bool {
        matches!(self, JournalError::Unknown(_))
    }
}

/// Where a journal reports the outcome of appends: the room that made them.
///
/// A journal reports every append exactly once — possibly before [`Journal::append`] returns, from
/// whatever thread settles it — and may report a run of consecutive seqs of one room at once (a group
/// commit). Reports are cheap and never block: a room's sink puts one message in its mailbox.
pub trait AppendSink: Send + Sync + 'static {
    /// The appends of messages `first..=last` (seqs of this sink's room) are settled with `result`.
    fn settled(&self, first: Seq, last: Seq, result: Result<(), JournalError>);
}

/// The write-ahead journal: a message is acknowledged once its append is settled without error.
pub trait Journal: Send + Sync + 'static {
    /// Appends a message and reports its outcome to `sink` once it is durable or failed. The caller may
    /// start further appends before then (appends are pipelined); the journal keeps a room's order.
    /// `trace` is the W3C trace context of the SEND that carried it; `term` the lease it is written
    /// under (the record carries it, for readers to ignore a former owner's late writes).
    fn append(
        &self,
        message: &ChatMessage,
        term: Term,
        trace: &TraceParent,
        sink: &Arc<dyn AppendSink>,
    );
    /// Returns the highest durable seq of a room, counting records journaled but not yet stored.
    fn last_seq(&self, room: RoomId) -> BoxFuture<'static, Result<Seq, JournalError>>;
    /// Returns up to `limit` durable messages of a room with a seq above `after`, oldest first, from
    /// what the journal still holds: a room that activates reads here the tail the store lacks.
    fn read_after(
        &self,
        room: RoomId,
        after: Seq,
        limit: u32,
    ) -> BoxFuture<'static, Result<Vec<ChatMessage>, JournalError>>;
    /// Makes every later reader ignore records of `terms`' shards written under a lower epoch: called
    /// by a node that has just taken those shards, before its rooms read their last seq and append.
    /// Resolves once the fences are durable; on an error the taker must not serve the shards. A
    /// journal that only one node writes (the default) has no former owner to fence.
    fn fence(&self, terms: &[Term]) -> BoxFuture<'static, Result<(), JournalError>> {
        let _ = terms;
        Box::pin(async { Ok(()) })
    }
    /// Tells whether an append resolves only once the store holds the message, so that the store
    /// alone has every acknowledged message and readers of history need not ask anyone else. `false`
    /// (the default) for a journal that a persister copies into the store later.
    fn writes_through(&self) -> bool {
        false
    }
}

/// Appends `message` now and returns a future of its outcome, for a caller that awaits single appends
/// (tests, tools); rooms pass their own [`AppendSink`] instead.
pub fn append_and_wait(
    journal: &dyn Journal,
    message: &ChatMessage,
    trace: &TraceParent,
) -> BoxFuture<'static, Result<(), JournalError>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let sink: Arc<dyn AppendSink> = Arc::new(OneShotSink(std::sync::Mutex::new(Some(tx))));
    journal.append(message, Term::SINGLE, trace, &sink);
    Box::pin(async move {
        rx.await
            .unwrap_or_else(|_| Err(JournalError::Unavailable("journal stopped".into())))
    })
}

/// The sink of [`append_and_wait`]: one append, one answer.
struct OneShotSink(
    std::sync::Mutex<Option<tokio::sync::oneshot::Sender<Result<(), JournalError>>>>,
);

impl AppendSink for OneShotSink {
    fn settled(&self, _first: Seq, _last: Seq, result: Result<(), JournalError>) {
        let tx = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(tx) = tx {
            let _ = tx.send(result);
        }
    }
}

/// Source of wall-clock time, so tests can fix it.
pub trait Clock: Send + Sync + 'static {
    /// Returns milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// Whether this node may serve a room now: placement (ARCHITECTURE.md section 5). A room checks it
/// before it activates, before each append and again before each RECEIPT, so a node that lost the
/// room's shard (another node took it while this one was paused or cut off) acknowledges nothing.
pub trait Ownership: Send + Sync + 'static {
    /// The term (shard and lease epoch) under which this node serves `room` now; `None` when it
    /// may not (another node holds the room's shard, or this node's lease ran out).
    fn serving(&self, room: RoomId) -> Option<Term>;

    /// The term under which this node runs the ingest source `source` now (its shard is placed
    /// like a room's); `None` when another node does.
    fn serving_source(&self, source: SourceId) -> Option<Term>;
}

/// A single node serves every room, always under [`Term::SINGLE`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SingleNode;

impl Ownership for SingleNode {
    fn serving(&self, _room: RoomId) -> Option<Term> {
        Some(Term::SINGLE)
    }

    fn serving_source(&self, _source: SourceId) -> Option<Term> {
        Some(Term::SINGLE)
    }
}

/// Shared handles to the ports, as the actors receive them.
#[derive(Clone)]
pub struct Ports {
    /// System of record.
    pub store: Arc<dyn Store>,
    /// Write-ahead journal.
    pub journal: Arc<dyn Journal>,
    /// Wall clock.
    pub clock: Arc<dyn Clock>,
    /// Which rooms this node may serve.
    pub ownership: Arc<dyn Ownership>,
    /// Spans of a message's hops ([`crate::trace::NoSpans`] when no trace is exported).
    pub spans: Arc<dyn crate::trace::Spans>,
}
