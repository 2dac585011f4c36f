//! A batch writer that panics: the persister restarts its loop from the committed offsets and stores
//! every record exactly once.

use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;

use async_trait::async_trait;
use banter_actors::delivery::NodeId;
use banter_actors::model::{Member, Role, Room, RoomSummary, User};
use banter_actors::ports::{
    BBox, EventQuery, FeedEvent, Feeds, Follow, JournalFence, Lease, LiveNode, Rotation,
    SigningKey, Source, SourceId, StoreResult, Upload, UploadFacts, Uploads,
};
use banter_actors::shard::{Epoch, ShardId};

use super::*;

/// A store whose `insert_messages` panics once, on its `panic_on`-th call, before touching the inner
/// store; it records what every call offered and inserted.
struct PanicOnce {
    inner: Arc<dyn Store>,
    panic_on: usize,
    calls: AtomicUsize,
    log: Mutex<InsertLog>,
}

/// What the persister asked a [`PanicOnce`] store to insert.
#[derive(Default)]
struct InsertLog {
    /// Rows inserted (new to the table) before the panic.
    inserted_before_panic: u64,
    /// Rows offered by the panicking call.
    panicked: Vec<(RoomId, Seq)>,
    /// Rows offered after the panic (the restarted loop).
    offered_after_panic: u64,
    /// Rows inserted (new to the table) in all.
    inserted: u64,
}

impl PanicOnce {
    fn new(inner: Arc<dyn Store>, panic_on: usize) -> Arc<PanicOnce> {
        Arc::new(PanicOnce {
            inner,
            panic_on,
            calls: AtomicUsize::new(0),
            log: Mutex::default(),
        })
    }

    fn log(&self) -> std::sync::MutexGuard<'_, InsertLog> {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The sources' part of the store, untouched.
#[async_trait]
impl Feeds for PanicOnce {
    async fn ensure_source(
        &self,
        name: &str,
        username: &str,
        display_name: &str,
        now_ms: i64,
    ) -> StoreResult<Source> {
        self.inner
            .ensure_source(name, username, display_name, now_ms)
            .await
    }
    async fn source(&self, id: SourceId) -> StoreResult<Option<Source>> {
        self.inner.source(id).await
    }
    async fn source_by_name(&self, name: &str) -> StoreResult<Option<Source>> {
        self.inner.source_by_name(name).await
    }
    async fn sources(&self) -> StoreResult<Vec<(Source, Option<RoomId>)>> {
        self.inner.sources().await
    }
    async fn create_feed_room(
        &self,
        source: SourceId,
        name: &str,
        owner: Option<UserId>,
        min_magnitude: Option<f64>,
        bbox: Option<BBox>,
        now_ms: i64,
    ) -> StoreResult<Room> {
        self.inner
            .create_feed_room(source, name, owner, min_magnitude, bbox, now_ms)
            .await
    }
    async fn source_room(&self, source: SourceId, name: &str) -> StoreResult<Option<RoomId>> {
        self.inner.source_room(source, name).await
    }
    async fn follows(&self, source: SourceId) -> StoreResult<Vec<Follow>> {
        self.inner.follows(source).await
    }
    async fn follow(&self, room: RoomId) -> StoreResult<Option<Follow>> {
        self.inner.follow(room).await
    }
    async fn set_filters(
        &self,
        room: RoomId,
        min_magnitude: Option<f64>,
        bbox: Option<BBox>,
    ) -> StoreResult<()> {
        self.inner.set_filters(room, min_magnitude, bbox).await
    }
    async fn feed_event(&self, source: SourceId, id: &str) -> StoreResult<Option<FeedEvent>> {
        self.inner.feed_event(source, id).await
    }
    async fn put_feed_event(&self, event: &FeedEvent) -> StoreResult<()> {
        self.inner.put_feed_event(event).await
    }
    async fn feed_events(
        &self,
        source: SourceId,
        query: &EventQuery,
    ) -> StoreResult<Vec<FeedEvent>> {
        self.inner.feed_events(source, query).await
    }
    async fn feed_post(&self, room: RoomId, event: &str) -> StoreResult<Option<Seq>> {
        self.inner.feed_post(room, event).await
    }
    async fn put_feed_post(&self, room: RoomId, event: &str, seq: Seq) -> StoreResult<()> {
        self.inner.put_feed_post(room, event, seq).await
    }
    async fn append_raw(
        &self,
        source: SourceId,
        frame: &str,
        now_ms: i64,
        keep: u32,
    ) -> StoreResult<()> {
        self.inner.append_raw(source, frame, now_ms, keep).await
    }
    async fn raw_frames(&self, source: SourceId, limit: u32) -> StoreResult<Vec<String>> {
        self.inner.raw_frames(source, limit).await
    }
}

#[async_trait]
impl Uploads for PanicOnce {
    async fn insert_upload(&self, upload: &Upload) -> StoreResult<()> {
        self.inner.insert_upload(upload).await
    }
    async fn upload(&self, id: uuid::Uuid) -> StoreResult<Option<Upload>> {
        self.inner.upload(id).await
    }
    async fn upload_usage(&self, user: UserId) -> StoreResult<u64> {
        self.inner.upload_usage(user).await
    }
    async fn set_upload_facts(&self, id: uuid::Uuid, facts: &UploadFacts) -> StoreResult<()> {
        self.inner.set_upload_facts(id, facts).await
    }
    async fn mark_upload_used(&self, id: uuid::Uuid, at_ms: i64) -> StoreResult<bool> {
        self.inner.mark_upload_used(id, at_ms).await
    }
    async fn stale_uploads(&self, before_ms: i64, limit: u32) -> StoreResult<Vec<Upload>> {
        self.inner.stale_uploads(before_ms, limit).await
    }
    async fn set_avatar(
        &self,
        user: UserId,
        avatar: Option<uuid::Uuid>,
    ) -> StoreResult<Option<uuid::Uuid>> {
        self.inner.set_avatar(user, avatar).await
    }
    async fn delete_upload(&self, id: uuid::Uuid) -> StoreResult<bool> {
        self.inner.delete_upload(id).await
    }
    async fn delete_stale_upload(&self, id: uuid::Uuid, before_ms: i64) -> StoreResult<bool> {
        self.inner.delete_stale_upload(id, before_ms).await
    }
}

#[async_trait]
impl Store for PanicOnce {
    async fn insert_messages(&self, messages: &[ChatMessage]) -> StoreResult<u64> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let panicked = call > self.panic_on;
        if call == self.panic_on {
            self.log().panicked = messages.iter().map(|m| (m.room_id, m.seq)).collect();
            panic!(
                "injected panic in the batch writer ({} rows)",
                messages.len()
            );
        }
        let n = self.inner.insert_messages(messages).await?;
        let mut log = self.log();
        log.inserted += n;
        if panicked {
            log.offered_after_panic += messages.len() as u64;
        } else {
            log.inserted_before_panic += n;
        }
        Ok(n)
    }

    async fn create_user(&self, user: NewUser) -> StoreResult<User> {
        self.inner.create_user(user).await
    }
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        self.inner.user_by_id(id).await
    }
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.inner.user_by_username(username).await
    }
    async fn search_users(&self, prefix: &str, limit: u32) -> StoreResult<Vec<User>> {
        self.inner.search_users(prefix, limit).await
    }
    async fn update_profile(&self, id: UserId, display_name: &str) -> StoreResult<User> {
        self.inner.update_profile(id, display_name).await
    }
    async fn create_room(
        &self,
        kind: RoomKind,
        name: &str,
        creator: UserId,
        now_ms: i64,
    ) -> StoreResult<Room> {
        self.inner.create_room(kind, name, creator, now_ms).await
    }
    async fn room(&self, id: RoomId) -> StoreResult<Option<Room>> {
        self.inner.room(id).await
    }
    async fn dm_room(&self, a: UserId, b: UserId, now_ms: i64) -> StoreResult<(Room, bool)> {
        self.inner.dm_room(a, b, now_ms).await
    }
    async fn add_member(
        &self,
        room: RoomId,
        user: UserId,
        role: Role,
        now_ms: i64,
    ) -> StoreResult<bool> {
        self.inner.add_member(room, user, role, now_ms).await
    }
    async fn remove_member(&self, room: RoomId, user: UserId) -> StoreResult<bool> {
        self.inner.remove_member(room, user).await
    }
    async fn member_role(&self, room: RoomId, user: UserId) -> StoreResult<Option<Role>> {
        self.inner.member_role(room, user).await
    }
    async fn members(&self, room: RoomId) -> StoreResult<Vec<Member>> {
        self.inner.members(room).await
    }
    async fn members_after(
        &self,
        room: RoomId,
        after: Option<UserId>,
        limit: u32,
    ) -> StoreResult<Vec<Member>> {
        self.inner.members_after(room, after, limit).await
    }
    async fn rooms_of(
        &self,
        user: UserId,
        after: Option<RoomId>,
        limit: u32,
    ) -> StoreResult<Vec<RoomSummary>> {
        self.inner.rooms_of(user, after, limit).await
    }
    async fn room_summary(&self, room: RoomId, user: UserId) -> StoreResult<Option<RoomSummary>> {
        self.inner.room_summary(room, user).await
    }
    async fn membership_count(&self, user: UserId) -> StoreResult<u64> {
        self.inner.membership_count(user).await
    }
    async fn find_dm(&self, a: UserId, b: UserId) -> StoreResult<Option<Room>> {
        self.inner.find_dm(a, b).await
    }
    async fn contacts(&self, user: UserId, max: u32, limit: u32) -> StoreResult<Vec<UserId>> {
        self.inner.contacts(user, max, limit).await
    }
    async fn record_last_seen(&self, users: &[UserId], at_ms: i64) -> StoreResult<()> {
        self.inner.record_last_seen(users, at_ms).await
    }
    async fn mark_read(&self, room: RoomId, user: UserId, seq: Seq) -> StoreResult<Seq> {
        self.inner.mark_read(room, user, seq).await
    }
    async fn last_seq(&self, room: RoomId) -> StoreResult<Seq> {
        self.inner.last_seq(room).await
    }
    async fn reserve_seq(&self, room: RoomId, seq: Seq) -> StoreResult<()> {
        self.inner.reserve_seq(room, seq).await
    }
    async fn messages_before(
        &self,
        room: RoomId,
        before: Option<Seq>,
        limit: u32,
    ) -> StoreResult<Vec<ChatMessage>> {
        self.inner.messages_before(room, before, limit).await
    }
    async fn messages_after(
        &self,
        room: RoomId,
        after: Seq,
        limit: u32,
    ) -> StoreResult<Vec<ChatMessage>> {
        self.inner.messages_after(room, after, limit).await
    }
    async fn put_refresh_token(
        &self,
        jti: &str,
        user: UserId,
        family: &str,
        expires_at_ms: i64,
    ) -> StoreResult<()> {
        self.inner
            .put_refresh_token(jti, user, family, expires_at_ms)
            .await
    }
    async fn purge_refresh_tokens(&self, now_ms: i64) -> StoreResult<u64> {
        self.inner.purge_refresh_tokens(now_ms).await
    }
    async fn rotate_refresh_token(
        &self,
        jti: &str,
        new_jti: &str,
        new_expires_at_ms: i64,
        now_ms: i64,
    ) -> StoreResult<Rotation> {
        self.inner
            .rotate_refresh_token(jti, new_jti, new_expires_at_ms, now_ms)
            .await
    }
    async fn revoke_refresh_family(&self, family: &str, now_ms: i64) -> StoreResult<u64> {
        self.inner.revoke_refresh_family(family, now_ms).await
    }
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        self.inner.signing_keys().await
    }
    async fn insert_signing_key(&self, key: &SigningKey) -> StoreResult<()> {
        self.inner.insert_signing_key(key).await
    }
    async fn delete_signing_keys_before(&self, generation: i64) -> StoreResult<u64> {
        self.inner.delete_signing_keys_before(generation).await
    }
    async fn register_node(&self, advertise: &str) -> StoreResult<NodeId> {
        self.inner.register_node(advertise).await
    }
    async fn node_heartbeat(&self, node: NodeId) -> StoreResult<()> {
        self.inner.node_heartbeat(node).await
    }
    async fn live_nodes(&self, within: Duration) -> StoreResult<Vec<LiveNode>> {
        self.inner.live_nodes(within).await
    }
    async fn delete_dead_nodes(&self, dead_for: Duration) -> StoreResult<u64> {
        self.inner.delete_dead_nodes(dead_for).await
    }
    async fn ensure_shards(&self, count: u32) -> StoreResult<()> {
        self.inner.ensure_shards(count).await
    }
    async fn leases(&self) -> StoreResult<Vec<Lease>> {
        self.inner.leases().await
    }
    async fn take_lease(
        &self,
        shard: ShardId,
        node: NodeId,
        ttl: Duration,
        expired_for: Duration,
    ) -> StoreResult<Option<Epoch>> {
        self.inner.take_lease(shard, node, ttl, expired_for).await
    }
    async fn renew_leases(
        &self,
        node: NodeId,
        leases: &[(ShardId, Epoch)],
        ttl: Duration,
    ) -> StoreResult<Vec<ShardId>> {
        self.inner.renew_leases(node, leases, ttl).await
    }
    async fn release_leases(&self, node: NodeId, leases: &[(ShardId, Epoch)]) -> StoreResult<u64> {
        self.inner.release_leases(node, leases).await
    }
    async fn journal_fences(&self, partition: i32) -> StoreResult<Vec<(ShardId, Epoch)>> {
        self.inner.journal_fences(partition).await
    }
    async fn raise_journal_fences(&self, fences: &[JournalFence]) -> StoreResult<()> {
        self.inner.raise_journal_fences(fences).await
    }
}

/// Returns the sum of every series of the restart counter.
fn restarts() -> f64 {
    banter_telemetry::render()
        .lines()
        .filter(|l| l.starts_with(crate::metrics::PERSISTER_RESTARTS))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_batch_writer_restarts_from_the_committed_offsets_and_loses_nothing() {
    let Some((broker, db)) = setup(
        "a_panicking_batch_writer_restarts_from_the_committed_offsets_and_loses_nothing",
        3,
    )
    .await
    else {
        return;
    };
    let kafka = kafka_config(&broker.brokers, 2);
    let config = persister_config(&kafka);
    let journal = KafkaJournal::start(&kafka, &config.group_id, db.dyn_store())
        .await
        .expect("journal");
    let (rooms, user) = (db.rooms.clone(), db.user);
    let per_room: Seq = 100;
    let total = per_room * rooms.len() as Seq;
    // Everything is journaled before the persister starts; its third batch panics, the first two
    // stored and their offsets handed to the committer.
    let mut sent = append_all(&journal, &rooms, 1..=per_room, user).await;
    let store = PanicOnce::new(db.dyn_store(), 3);
    let restarts_before = restarts();
    let persister = start_persister(&kafka, &config, store.clone())
        .await
        .expect("persister");

    eventually(Duration::from_secs(60), "every row", || async {
        db.count("messages").await >= total as i64
    })
    .await;
    {
        let log = store.log();
        assert!(!log.panicked.is_empty(), "the third batch panicked");
        assert!(
            log.inserted_before_panic > 0,
            "two batches were stored first"
        );
        // The restarted loop read from the committed offsets: the panicked batch again, and never
        // the rows stored before the panic (their offsets were committed). Not an equality: rows
        // already stored may be offered again when a commit had not reached the broker yet, and
        // `inserted_before_panic` counts only rows that were new to the table.
        let panicked = log.panicked.len() as u64;
        assert!(
            log.offered_after_panic >= panicked,
            "the panicked batch ({panicked} rows) is offered again, got {}",
            log.offered_after_panic
        );
        assert!(
            log.offered_after_panic < total,
            "the restart resumed from the committed offsets, not from the beginning ({} of {total} offered again)",
            log.offered_after_panic
        );
    }
    assert!(restarts() > restarts_before, "the restart is counted");

    // The restarted loop goes on with new records.
    sent.extend(append_all(&journal, &rooms, per_room + 1..=per_room + 20, user).await);
    let total = total + 20 * rooms.len() as Seq;
    eventually(
        Duration::from_secs(30),
        "the rows after the restart",
        || async { db.count("messages").await >= total as i64 },
    )
    .await;
    eventually(Duration::from_secs(30), "lag 0", || async {
        let lag = lag_of(&kafka.topic);
        lag.len() == kafka.partitions as usize && lag.values().all(|v| *v == 0.0)
    })
    .await;

    // Every row exactly once, as sent: no gap, no duplicate, the panicked batch's rows included.
    assert_eq!(db.count("messages").await, total as i64);
    assert_eq!(store.log().inserted, total, "each row inserted once");
    for &room in &rooms {
        let stored = db
            .store
            .messages_after(room, 0, 1000)
            .await
            .expect("messages");
        let expected: Vec<&ChatMessage> = sent.iter().filter(|m| m.room_id == room).collect();
        assert_eq!(stored.len(), expected.len(), "room {room}");
        for (s, m) in stored.iter().zip(expected) {
            assert_eq!(s, m, "room {room}");
        }
    }
    let panicked = store.log().panicked.clone();
    for (room, seq) in panicked {
        assert!(db.seqs(room).await.contains(&seq), "room {room} seq {seq}");
    }
    persister.stop().await;
    db.drop().await;
}
