//! In-memory fakes of the ports and small helpers for the actors' unit tests.
//!
//! [`FakeJournal`] (in `journal`) reports to the room's sink synchronously: when
//! [`FakeJournal::complete`] returns, the room's `Journaled` message is in its mailbox, so a later call
//! to the room observes the outcome.

use std::collections::{BTreeMap, HashMap};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use banter_proto::stomp::{Frame, Limits, Parsed, parse_frame};
use bytes::Bytes;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, Message, RpcReplyPort};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::delivery::NodeId;
use crate::delivery::{Outbound, SessionInbox};
use crate::directory::{DirectoryMessage, Entity};
use crate::model::{
    ChatMessage, Member, NewUser, Role, Room, RoomId, RoomKind, RoomSummary, Seq, User, UserId,
};
use crate::ports::{
    Clock, JournalFence, Lease, LiveNode, Ports, Rotation, SigningKey, Store, StoreError,
    StoreResult, Upload, UploadFacts, Uploads,
};
use crate::shard::{Epoch, ShardId};

mod feeds;
mod journal;

pub(crate) use journal::{AppendMode, FakeJournal};

/// Upper bound of every wait in the actor tests; reached only when a test fails.
pub(crate) const WAIT: Duration = Duration::from_secs(5);

/// Milliseconds the [`FixedClock`] of [`ports`] always reads.
pub(crate) const NOW_MS: i64 = 1_700_000_000_000;

fn unused<T>() -> StoreResult<T> {
    Err(StoreError::Other("not used by actor tests".into()))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
struct StoreData {
    users: HashMap<UserId, User>,
    rooms: HashMap<RoomId, Room>,
    /// Members of each room with their role and read marker.
    members: HashMap<RoomId, BTreeMap<UserId, (Role, Seq)>>,
    messages: HashMap<RoomId, BTreeMap<Seq, ChatMessage>>,
    /// Reserved seq per room.
    reserved: HashMap<RoomId, Seq>,
    uploads: HashMap<Uuid, Upload>,
    /// Uploads a user has as avatar (what a stored message would keep too).
    kept: std::collections::HashSet<Uuid>,
    /// Sources, follows, events, posts and raw frames (`testing/feeds.rs`).
    feeds: feeds::FeedData,
}

/// A [`Store`] kept in memory, with real behaviour for what the actors use.
pub(crate) struct FakeStore {
    data: Mutex<StoreData>,
    /// `room()` waits while this is `false` (lets a test hold a room's activation).
    room_gate: watch::Sender<bool>,
    room_loads: AtomicUsize,
}

impl FakeStore {
    /// Returns an empty store.
    pub(crate) fn new() -> Arc<FakeStore> {
        Arc::new(FakeStore {
            data: Mutex::default(),
            room_gate: watch::Sender::new(true),
            room_loads: AtomicUsize::new(0),
        })
    }

    /// Adds a user named `username`.
    pub(crate) fn add_user(&self, id: UserId, username: &str) {
        lock(&self.data).users.insert(
            id,
            User {
                id,
                username: username.into(),
                display_name: username.to_uppercase(),
                password_hash: String::new(),
                avatar_ref: None,
                created_at_ms: NOW_MS,
            },
        );
    }

    /// Adds a group room owned by `owner` (who becomes its first member).
    pub(crate) fn add_room(&self, id: RoomId, owner: UserId) {
        let mut d = lock(&self.data);
        d.rooms.insert(
            id,
            Room {
                id,
                kind: RoomKind::Group,
                name: format!("room-{id}"),
                created_by: owner,
                created_at_ms: NOW_MS,
            },
        );
        d.members
            .entry(id)
            .or_default()
            .insert(owner, (Role::Owner, 0));
    }

    /// Makes `user` a member of `room`.
    pub(crate) fn add_member(&self, room: RoomId, user: UserId) {
        lock(&self.data)
            .members
            .entry(room)
            .or_default()
            .entry(user)
            .or_insert((Role::Member, 0));
    }

    /// Stores messages `1..=n` of `room`, all sent by `sender`, with bodies `m1`, `m2`, …
    pub(crate) fn seed_messages(&self, room: RoomId, sender: UserId, n: Seq) {
        let msgs: Vec<ChatMessage> = (1..=n)
            .map(|seq| ChatMessage {
                room_id: room,
                seq,
                message_id: Uuid::now_v7(),
                sender_id: sender,
                body: format!("m{seq}"),
                created_at_ms: NOW_MS,
                nonce: None,
                attachments: Vec::new(),
                ..Default::default()
            })
            .collect();
        self.put_messages(&msgs);
    }

    fn put_messages(&self, messages: &[ChatMessage]) -> u64 {
        let mut d = lock(&self.data);
        let mut inserted = 0;
        for m in messages {
            let room = d.messages.entry(m.room_id).or_default();
            if let std::collections::btree_map::Entry::Vacant(slot) = room.entry(m.seq) {
                slot.insert(m.clone());
                inserted += 1;
            }
        }
        inserted
    }

    /// Stores one message of `room`.
    pub(crate) fn store_message(&self, room: RoomId, seq: Seq, sender: UserId, body: &str) {
        self.put_messages(&[ChatMessage {
            room_id: room,
            seq,
            message_id: Uuid::now_v7(),
            sender_id: sender,
            body: body.into(),
            created_at_ms: NOW_MS,
            nonce: None,
            attachments: Vec::new(),
            ..Default::default()
        }]);
    }

    /// Returns the stored read marker of a member.
    pub(crate) fn read_marker(&self, room: RoomId, user: UserId) -> Option<Seq> {
        lock(&self.data)
            .members
            .get(&room)
            .and_then(|m| m.get(&user))
            .map(|(_, s)| *s)
    }

    /// Makes `room()` and `messages_after()` wait until [`FakeStore::open_rooms`] (holds room
    /// activations, and rooms' reads of old messages, mid-way).
    pub(crate) fn hold_rooms(&self) {
        self.room_gate.send_replace(false);
    }

    /// Lets waiting and later `room()` calls through.
    pub(crate) fn open_rooms(&self) {
        self.room_gate.send_replace(true);
    }

    /// Returns how many times `room()` was called (one per room activation).
    pub(crate) fn room_loads(&self) -> usize {
        self.room_loads.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Uploads for FakeStore {
    async fn insert_upload(&self, upload: &Upload) -> StoreResult<()> {
        let mut data = lock(&self.data);
        if data.uploads.contains_key(&upload.id) {
            return Err(StoreError::Conflict("upload id".into()));
        }
        data.uploads.insert(upload.id, upload.clone());
        Ok(())
    }

    async fn upload(&self, id: Uuid) -> StoreResult<Option<Upload>> {
        Ok(lock(&self.data).uploads.get(&id).cloned())
    }

    async fn upload_usage(&self, user: UserId) -> StoreResult<u64> {
        let data = lock(&self.data);
        Ok(data
            .uploads
            .values()
            .filter(|u| u.user_id == user)
            .map(|u| u.declared_size)
            .sum())
    }

    async fn set_upload_facts(&self, id: Uuid, facts: &UploadFacts) -> StoreResult<()> {
        let mut data = lock(&self.data);
        let upload = data.uploads.get_mut(&id).ok_or(StoreError::NotFound)?;
        upload.facts = Some(facts.clone());
        Ok(())
    }

    async fn mark_upload_used(&self, id: Uuid, at_ms: i64) -> StoreResult<bool> {
        let mut data = lock(&self.data);
        Ok(match data.uploads.get_mut(&id) {
            Some(upload) if upload.used_at_ms.is_none() => {
                upload.used_at_ms = Some(at_ms);
                true
            }
            _ => false,
        })
    }

    async fn stale_uploads(&self, before_ms: i64, limit: u32) -> StoreResult<Vec<Upload>> {
        let data = lock(&self.data);
        let mut stale: Vec<Upload> = data
            .uploads
            .values()
            .filter(|u| stale(&data.kept, u, before_ms))
            .cloned()
            .collect();
        stale.sort_by_key(|u| (u.created_at_ms, u.id));
        stale.truncate(limit as usize);
        Ok(stale)
    }

    async fn set_avatar(&self, user: UserId, avatar: Option<Uuid>) -> StoreResult<Option<Uuid>> {
        let mut data = lock(&self.data);
        let user = data.users.get_mut(&user).ok_or(StoreError::NotFound)?;
        let former = std::mem::replace(&mut user.avatar_ref, avatar.map(|a| a.to_string()));
        data.kept.extend(avatar);
        Ok(former.and_then(|f| Uuid::parse_str(&f).ok()))
    }

    async fn delete_upload(&self, id: Uuid) -> StoreResult<bool> {
        Ok(lock(&self.data).uploads.remove(&id).is_some())
    }

    async fn delete_stale_upload(&self, id: Uuid, before_ms: i64) -> StoreResult<bool> {
        let mut data = lock(&self.data);
        if data.uploads.get(&id).is_some_and(|u| {
            !data.kept.contains(&u.id) && u.used_at_ms.is_none_or(|used| used < before_ms)
        }) {
            return Ok(data.uploads.remove(&id).is_some());
        }
        Ok(false)
    }
}

/// Whether `u` is stale as of `before_ms` (see `Uploads::stale_uploads`).
fn stale(kept: &std::collections::HashSet<Uuid>, u: &Upload, before_ms: i64) -> bool {
    !kept.contains(&u.id)
        && match u.used_at_ms {
            None => u.created_at_ms < before_ms,
            Some(used) => used < before_ms,
        }
}

#[async_trait]
impl Store for FakeStore {
    async fn create_user(&self, _user: NewUser) -> StoreResult<User> {
        unused()
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        Ok(lock(&self.data).users.get(&id).cloned())
    }

    async fn user_by_username(&self, _username: &str) -> StoreResult<Option<User>> {
        unused()
    }

    async fn search_users(&self, _prefix: &str, _limit: u32) -> StoreResult<Vec<User>> {
        unused()
    }

    async fn update_profile(&self, _id: UserId, _display_name: &str) -> StoreResult<User> {
        unused()
    }

    async fn create_room(
        &self,
        _kind: RoomKind,
        _name: &str,
        _creator: UserId,
        _now_ms: i64,
    ) -> StoreResult<Room> {
        unused()
    }

    async fn room(&self, id: RoomId) -> StoreResult<Option<Room>> {
        self.room_loads.fetch_add(1, Ordering::SeqCst);
        let mut gate = self.room_gate.subscribe();
        let _ = gate.wait_for(|open| *open).await;
        Ok(lock(&self.data).rooms.get(&id).cloned())
    }

    async fn dm_room(&self, _a: UserId, _b: UserId, _now_ms: i64) -> StoreResult<(Room, bool)> {
        unused()
    }

    async fn add_member(
        &self,
        _room: RoomId,
        _user: UserId,
        _role: Role,
        _now_ms: i64,
    ) -> StoreResult<bool> {
        unused()
    }

    async fn remove_member(&self, _room: RoomId, _user: UserId) -> StoreResult<bool> {
        unused()
    }

    async fn member_role(&self, room: RoomId, user: UserId) -> StoreResult<Option<Role>> {
        let d = lock(&self.data);
        Ok(d.members
            .get(&room)
            .and_then(|m| m.get(&user))
            .map(|(role, _)| *role))
    }

    async fn members(&self, room: RoomId) -> StoreResult<Vec<Member>> {
        let d = lock(&self.data);
        let members = d.members.get(&room).cloned().unwrap_or_default();
        Ok(members
            .into_iter()
            .map(|(user_id, (role, last_read_seq))| {
                let username = d
                    .users
                    .get(&user_id)
                    .map_or_else(|| format!("user{user_id}"), |u| u.username.clone());
                Member {
                    user_id,
                    display_name: username.to_uppercase(),
                    username,
                    role,
                    last_read_seq,
                    last_seen_ms: None,
                }
            })
            .collect())
    }

    async fn members_after(
        &self,
        _room: RoomId,
        _after: Option<UserId>,
        _limit: u32,
    ) -> StoreResult<Vec<Member>> {
        unused()
    }

    async fn rooms_of(
        &self,
        _user: UserId,
        _after: Option<RoomId>,
        _limit: u32,
    ) -> StoreResult<Vec<RoomSummary>> {
        unused()
    }

    async fn room_summary(&self, _room: RoomId, _user: UserId) -> StoreResult<Option<RoomSummary>> {
        unused()
    }

    async fn membership_count(&self, _user: UserId) -> StoreResult<u64> {
        unused()
    }

    async fn find_dm(&self, _a: UserId, _b: UserId) -> StoreResult<Option<Room>> {
        unused()
    }

    async fn contacts(&self, _user: UserId, _max: u32, _limit: u32) -> StoreResult<Vec<UserId>> {
        unused()
    }

    async fn record_last_seen(&self, _users: &[UserId], _at_ms: i64) -> StoreResult<()> {
        unused()
    }

    async fn mark_read(&self, room: RoomId, user: UserId, seq: Seq) -> StoreResult<Seq> {
        let mut d = lock(&self.data);
        let (_, marker) = d
            .members
            .get_mut(&room)
            .and_then(|m| m.get_mut(&user))
            .ok_or(StoreError::NotFound)?;
        *marker = (*marker).max(seq);
        Ok(*marker)
    }

    async fn insert_messages(&self, messages: &[ChatMessage]) -> StoreResult<u64> {
        Ok(self.put_messages(messages))
    }

    async fn last_seq(&self, room: RoomId) -> StoreResult<Seq> {
        let d = lock(&self.data);
        let stored = d
            .messages
            .get(&room)
            .and_then(|m| m.keys().next_back().copied())
            .unwrap_or(0);
        Ok(stored.max(d.reserved.get(&room).copied().unwrap_or(0)))
    }

    async fn reserve_seq(&self, room: RoomId, seq: Seq) -> StoreResult<()> {
        let mut d = lock(&self.data);
        let r = d.reserved.entry(room).or_default();
        *r = (*r).max(seq);
        Ok(())
    }

    async fn messages_before(
        &self,
        room: RoomId,
        before: Option<Seq>,
        limit: u32,
    ) -> StoreResult<Vec<ChatMessage>> {
        let d = lock(&self.data);
        let Some(msgs) = d.messages.get(&room) else {
            return Ok(Vec::new());
        };
        Ok(msgs
            .range(..before.unwrap_or(Seq::MAX))
            .rev()
            .take(limit as usize)
            .map(|(_, m)| m.clone())
            .collect())
    }

    async fn messages_after(
        &self,
        room: RoomId,
        after: Seq,
        limit: u32,
    ) -> StoreResult<Vec<ChatMessage>> {
        let _ = self.room_gate.subscribe().wait_for(|open| *open).await;
        let d = lock(&self.data);
        let Some(msgs) = d.messages.get(&room) else {
            return Ok(Vec::new());
        };
        Ok(msgs
            .range(after.saturating_add(1)..)
            .take(limit as usize)
            .map(|(_, m)| m.clone())
            .collect())
    }

    async fn put_refresh_token(
        &self,
        _jti: &str,
        _user: UserId,
        _family: &str,
        _expires_at_ms: i64,
    ) -> StoreResult<()> {
        unused()
    }

    async fn purge_refresh_tokens(&self, _now_ms: i64) -> StoreResult<u64> {
        unused()
    }

    async fn rotate_refresh_token(
        &self,
        _jti: &str,
        _new_jti: &str,
        _new_expires_at_ms: i64,
        _now_ms: i64,
    ) -> StoreResult<Rotation> {
        unused()
    }

    async fn revoke_refresh_family(&self, _family: &str, _now_ms: i64) -> StoreResult<u64> {
        unused()
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        unused()
    }

    async fn insert_signing_key(&self, _key: &SigningKey) -> StoreResult<()> {
        unused()
    }

    async fn delete_signing_keys_before(&self, _generation: i64) -> StoreResult<u64> {
        unused()
    }

    async fn register_node(&self, _advertise: &str) -> StoreResult<NodeId> {
        unused()
    }

    async fn node_heartbeat(&self, _node: NodeId) -> StoreResult<()> {
        unused()
    }

    async fn live_nodes(&self, _within: Duration) -> StoreResult<Vec<LiveNode>> {
        unused()
    }

    async fn delete_dead_nodes(&self, _dead_for: Duration) -> StoreResult<u64> {
        unused()
    }

    async fn ensure_shards(&self, _count: u32) -> StoreResult<()> {
        unused()
    }

    async fn leases(&self) -> StoreResult<Vec<Lease>> {
        unused()
    }

    async fn take_lease(
        &self,
        _shard: ShardId,
        _node: NodeId,
        _ttl: Duration,
        _expired_for: Duration,
    ) -> StoreResult<Option<Epoch>> {
        unused()
    }

    async fn renew_leases(
        &self,
        _node: NodeId,
        _leases: &[(ShardId, Epoch)],
        _ttl: Duration,
    ) -> StoreResult<Vec<ShardId>> {
        unused()
    }

    async fn release_leases(
        &self,
        _node: NodeId,
        _leases: &[(ShardId, Epoch)],
    ) -> StoreResult<u64> {
        unused()
    }

    async fn journal_fences(&self, _partition: i32) -> StoreResult<Vec<(ShardId, Epoch)>> {
        unused()
    }

    async fn raise_journal_fences(&self, _fences: &[JournalFence]) -> StoreResult<()> {
        unused()
    }
}

/// A [`Clock`] that always reads the same time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FixedClock(pub(crate) i64);

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0
    }
}

/// Returns ports over the fakes, with a clock fixed at [`NOW_MS`].
pub(crate) fn ports(store: &Arc<FakeStore>, journal: &Arc<FakeJournal>) -> Ports {
    Ports {
        ownership: Arc::new(crate::ports::SingleNode),
        spans: Arc::new(crate::trace::NoSpans),
        store: store.clone(),
        journal: journal.clone(),
        clock: Arc::new(FixedClock(NOW_MS)),
    }
}

/// A stand-in for a directory: an actor that hands every message it gets to the test.
pub(crate) struct RecordingDirectory<E: Entity> {
    tx: mpsc::UnboundedSender<DirectoryMessage<E>>,
    _entity: PhantomData<fn() -> E>,
}

impl<E: Entity> RecordingDirectory<E> {
    /// Spawns the stand-in; returns it and what it receives.
    pub(crate) async fn spawn() -> (
        ActorRef<DirectoryMessage<E>>,
        mpsc::UnboundedReceiver<DirectoryMessage<E>>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        let me = RecordingDirectory {
            tx,
            _entity: PhantomData,
        };
        let (actor, _) = Actor::spawn(None, me, ())
            .await
            .expect("recording directory starts");
        (actor, rx)
    }
}

impl<E: Entity> Actor for RecordingDirectory<E> {
    type Msg = DirectoryMessage<E>;
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        _args: (),
    ) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        let _ = self.tx.send(message);
        Ok(())
    }
}

/// Calls an actor and returns its reply; fails the test when it does not answer within [`WAIT`].
pub(crate) async fn ask<M: Message, R: Send + 'static>(
    actor: &ActorRef<M>,
    msg: impl FnOnce(RpcReplyPort<R>) -> M,
) -> R {
    match actor.call(msg, Some(WAIT)).await {
        Ok(CallResult::Success(reply)) => reply,
        Ok(CallResult::Timeout) => panic!("actor {} did not answer in time", actor.get_id()),
        Ok(CallResult::SenderError) => panic!("actor {} dropped the reply port", actor.get_id()),
        Err(_) => panic!("actor {} is not running", actor.get_id()),
    }
}

/// Returns the next item of a session's outbox; fails the test after [`WAIT`].
pub(crate) async fn next(inbox: &mut SessionInbox) -> Outbound {
    tokio::time::timeout(WAIT, inbox.recv())
        .await
        .expect("timed out waiting for an outbound item")
        .expect("outbox closed")
}

/// Returns every item already in a session's outbox, without waiting.
pub(crate) fn drain(inbox: &mut SessionInbox) -> Vec<Outbound> {
    std::iter::from_fn(|| inbox.try_recv()).collect()
}

/// Parses a pre-encoded MESSAGE tail as a session writes it (after `subscription:x`).
pub(crate) fn frame(tail: &Bytes) -> Frame {
    let mut buf = b"MESSAGE\nsubscription:x\n".to_vec();
    buf.extend_from_slice(tail);
    match parse_frame(&buf, &Limits::default()) {
        Ok(Parsed::Frame(frame, used)) => {
            assert_eq!(used, buf.len(), "the tail holds exactly one frame");
            frame
        }
        other => panic!("tail does not parse as one frame: {other:?}"),
    }
}

/// Returns a header of a parsed frame, failing the test when it is missing.
pub(crate) fn header<'a>(frame: &'a Frame, name: &str) -> &'a str {
    frame
        .header(name)
        .unwrap_or_else(|| panic!("frame has no {name} header: {frame:?}"))
}
