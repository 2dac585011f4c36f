//! History pages over a store that is behind the journal: an in-memory SQLite store holding the first
//! messages of a room, a journal holding all of them (as a lagging persister leaves them), and a real
//! room directory. Every page is checked against the ideal keyset page over all acknowledged messages.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use banter_actors::delivery::{Outbound, SessionHandle};
use banter_actors::directory::{Directory, DirectoryMessage};
use banter_actors::model::UserId;
use banter_actors::ports::{AppendSink, Journal, JournalError, Store, SystemClock};
use banter_actors::room::{RoomConfig, RoomMessage, Rooms};
use banter_actors::route::LocalRoutes;
use banter_actors::trace::TraceParent;
use futures::FutureExt;
use futures::future::BoxFuture;
use ractor::Actor;
use ractor::ActorRef;
use uuid::Uuid;

use super::*;
use banter_store::SqliteStore;

/// A journal that a persister copies into the store later: it has every message of the room, the
/// store only those copied so far.
struct LaggingJournal {
    store: Arc<dyn Store>,
    messages: Mutex<BTreeMap<Seq, ChatMessage>>,
    writes_through: bool,
    /// `last_seq` fails (a broker outage): the room cannot activate.
    down: AtomicBool,
    /// `read_after` fails (the broker answers the room's start but not the read).
    reads_fail: AtomicBool,
    reads: AtomicUsize,
}

impl LaggingJournal {
    fn messages(&self) -> std::sync::MutexGuard<'_, BTreeMap<Seq, ChatMessage>> {
        self.messages.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Journal for LaggingJournal {
    fn append(
        &self,
        message: &ChatMessage,
        _term: banter_actors::shard::Term,
        _trace: &TraceParent,
        sink: &Arc<dyn AppendSink>,
    ) {
        self.messages().insert(message.seq, message.clone());
        sink.settled(message.seq, message.seq, Ok(()));
    }

    fn last_seq(&self, room: RoomId) -> BoxFuture<'static, Result<Seq, JournalError>> {
        if self.down.load(Ordering::SeqCst) {
            return futures::future::ready(Err(JournalError::Unavailable("down".into()))).boxed();
        }
        let journaled = self.messages().keys().next_back().copied().unwrap_or(0);
        let store = self.store.clone();
        async move {
            let stored = store
                .last_seq(room)
                .await
                .map_err(|e| JournalError::Unavailable(e.to_string()))?;
            Ok(stored.max(journaled))
        }
        .boxed()
    }

    fn read_after(
        &self,
        _room: RoomId,
        after: Seq,
        limit: u32,
    ) -> BoxFuture<'static, Result<Vec<ChatMessage>, JournalError>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        if self.reads_fail.load(Ordering::SeqCst) {
            return futures::future::ready(Err(JournalError::Unavailable("read failed".into())))
                .boxed();
        }
        let out = self
            .messages()
            .range(after + 1..)
            .take(limit as usize)
            .map(|(_, m)| m.clone())
            .collect();
        futures::future::ready(Ok(out)).boxed()
    }

    fn writes_through(&self) -> bool {
        self.writes_through
    }
}

struct Fixture {
    ports: Ports,
    rooms: ActorRef<DirectoryMessage<Rooms>>,
    room: RoomId,
    user: UserId,
    journal: Arc<LaggingJournal>,
}

impl Fixture {
    /// A room with messages `1..=journaled`, of which the store holds `1..=stored`; rooms keep
    /// `ring_size` messages in memory.
    async fn new(journaled: Seq, stored: Seq, ring_size: usize, writes_through: bool) -> Fixture {
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open("sqlite::memory:")
                .await
                .expect("in-memory store"),
        );
        let (user, rooms) = banter_store::fixture::seed(store.as_ref(), 1).await;
        let room = rooms[0];
        let all: Vec<ChatMessage> = (1..=journaled)
            .map(|seq| ChatMessage {
                room_id: room,
                seq,
                message_id: Uuid::now_v7(),
                sender_id: user,
                body: format!("m{seq}"),
                created_at_ms: seq as i64,
                nonce: None,
                attachments: Vec::new(),
                ..Default::default()
            })
            .collect();
        store
            .insert_messages(&all[..stored as usize])
            .await
            .expect("stored part");
        let journal = Arc::new(LaggingJournal {
            store: store.clone(),
            messages: Mutex::new(all.into_iter().map(|m| (m.seq, m)).collect()),
            writes_through,
            down: AtomicBool::new(false),
            reads_fail: AtomicBool::new(false),
            reads: AtomicUsize::new(0),
        });
        let ports = Ports {
            ownership: Arc::new(banter_actors::ports::SingleNode),
            spans: Arc::new(banter_actors::trace::NoSpans),
            store,
            journal: journal.clone(),
            clock: Arc::new(SystemClock),
        };
        let rooms = Rooms {
            ports: ports.clone(),
            config: RoomConfig {
                ring_size,
                idle_timeout: Duration::from_secs(3600),
                typing_interval: Duration::from_secs(1),
                max_sessions_per_user: 32,
            },
        };
        let (rooms, _) = Actor::spawn(None, Directory::new(rooms), ())
            .await
            .expect("room directory");
        Fixture {
            ports,
            rooms,
            room,
            user,
            journal,
        }
    }

    async fn page(&self, before: Option<Seq>, limit: u32) -> Page {
        read_page(
            &self.ports,
            &LocalRoutes::new(self.rooms.clone()),
            self.room,
            before,
            limit,
        )
        .await
        .expect("history page")
    }

    async fn live_rooms(&self) -> usize {
        ractor::call!(self.rooms, DirectoryMessage::GetCount).expect("directory answers")
    }
}

/// Returns the seqs and `next_before` of the ideal page over messages `1..=n`.
fn ideal(n: Seq, before: Option<Seq>, limit: u32) -> (Vec<Seq>, Option<Seq>) {
    let top = before.map_or(n, |b| b.saturating_sub(1).min(n));
    let seqs: Vec<Seq> = (1..=top).rev().take(limit as usize).collect();
    let next = match seqs.last() {
        Some(&last) if seqs.len() == limit as usize && last > 1 => Some(last),
        _ => None,
    };
    (seqs, next)
}

fn seqs(page: &Page) -> Vec<Seq> {
    page.messages.iter().map(|m| m.seq).collect()
}

/// Checks every page (each `before`, several limits) and a full walk back along `next_before`.
async fn check_all_pages(f: &Fixture, n: Seq, case: &str) {
    for limit in [1, 3, 7, 50] {
        let befores = std::iter::once(None).chain((1..=n + 2).map(Some));
        for before in befores {
            let page = f.page(before, limit).await;
            assert_eq!(
                (seqs(&page), page.next_before),
                ideal(n, before, limit),
                "{case}: before {before:?}, limit {limit}"
            );
            for m in &page.messages {
                assert_eq!(m.body, format!("m{}", m.seq), "{case}");
                assert_eq!((m.room_id, m.sender_id), (f.room, f.user), "{case}");
            }
        }
        let mut walked = Vec::new();
        let mut before = None;
        loop {
            let page = f.page(before, limit).await;
            walked.extend(seqs(&page));
            match page.next_before {
                Some(b) => before = Some(b),
                None => break,
            }
        }
        assert_eq!(
            walked,
            (1..=n).rev().collect::<Vec<_>>(),
            "{case}: walk with limit {limit}"
        );
    }
}

#[tokio::test]
async fn every_acknowledged_message_is_paged_however_far_the_store_lags() {
    // (journaled, stored, ring size)
    let cases = [
        (0, 0, 8),
        (12, 12, 8),
        (12, 9, 8),
        (20, 0, 64),
        (30, 5, 8),
        (30, 0, 4),
    ];
    for (journaled, stored, ring) in cases {
        let f = Fixture::new(journaled, stored, ring, false).await;
        let case = format!("{journaled} journaled, {stored} stored, ring {ring}");
        check_all_pages(&f, journaled, &case).await;
        if stored == journaled {
            // Up to date: the room answered from memory; nobody read the journal.
            assert_eq!(f.journal.reads.load(Ordering::SeqCst), 0, "{case}");
        }
        if journaled - stored > ring as Seq {
            assert!(
                f.journal.reads.load(Ordering::SeqCst) > 1,
                "{case}: pages below the ring come from the journal"
            );
        }
        f.rooms.stop(None);
    }
}

#[tokio::test]
async fn messages_published_since_are_in_the_page_before_they_are_stored() {
    let f = Fixture::new(5, 5, 8, false).await;
    let (session, mut inbox) = SessionHandle::new(1, f.user, 16);
    for i in 6..=8 {
        let publish = RoomMessage::Publish {
            session: session.clone().into(),
            receipt: Some(format!("r{i}")),
            trace: TraceParent::new_root(),
            nonce: None,
            draft: banter_actors::room::Draft {
                body: format!("m{i}"),
                ..Default::default()
            },
        };
        f.rooms
            .cast(DirectoryMessage::Route(f.room, publish))
            .expect("directory");
    }
    for _ in 6..=8 {
        let item = tokio::time::timeout(Duration::from_secs(5), inbox.recv()).await;
        assert!(
            matches!(item, Ok(Some(Outbound::Receipt { .. }))),
            "{item:?}"
        );
    }
    assert_eq!(f.ports.store.last_seq(f.room).await.expect("store"), 5);
    check_all_pages(&f, 8, "3 published, not stored").await;
}

#[tokio::test]
async fn a_write_through_journal_leaves_history_to_the_store() {
    let f = Fixture::new(10, 10, 8, true).await;
    check_all_pages(&f, 10, "write-through").await;
    assert_eq!(f.live_rooms().await, 0, "no room was activated");
    assert_eq!(f.journal.reads.load(Ordering::SeqCst), 0);
}

/// Asserts that a page is refused as unavailable, and answered as a 503 `history_unavailable`.
async fn assert_unavailable(f: &Fixture, before: Option<Seq>, limit: u32) {
    match read_page(
        &f.ports,
        &LocalRoutes::new(f.rooms.clone()),
        f.room,
        before,
        limit,
    )
    .await
    {
        Err(e @ HistoryError::Unavailable(_)) => {
            let answer = ApiError::from(e);
            assert_eq!(
                (answer.status, answer.code, answer.retry_after_secs),
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "history_unavailable",
                    Some(1)
                )
            );
        }
        other => panic!("expected the page to be unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn without_the_room_there_is_no_page_rather_than_a_shorter_one() {
    let f = Fixture::new(10, 6, 8, false).await;
    f.journal.down.store(true, Ordering::SeqCst);
    // The store alone would answer 6, 5, 4, 3 and hide 10 to 7.
    assert_unavailable(&f, None, 4).await;
    // Also below the store's top, where the store's page happens to be whole: the node cannot know.
    assert_unavailable(&f, Some(4), 2).await;
    // Once the room can start, the tail is back.
    f.journal.down.store(false, Ordering::SeqCst);
    check_all_pages(&f, 10, "journal back").await;
}

#[tokio::test]
async fn a_failed_journal_read_is_no_page_rather_than_a_shorter_one() {
    // The ring (2) does not reach back to the store's top (4): the page needs the journal.
    let f = Fixture::new(12, 4, 2, false).await;
    // The room is up (its ring answers a page of one), so only the journal's read fails below.
    assert_eq!(seqs(&f.page(None, 1).await), vec![12]);
    f.journal.reads.store(0, Ordering::SeqCst);
    f.journal.reads_fail.store(true, Ordering::SeqCst);
    assert_unavailable(&f, None, 5).await;
    assert_eq!(f.live_rooms().await, 1, "the room stayed up");
    assert!(
        f.journal.reads.load(Ordering::SeqCst) > 0,
        "the journal was asked"
    );
    f.journal.reads_fail.store(false, Ordering::SeqCst);
    check_all_pages(&f, 12, "journal reads back").await;
}

#[test]
fn a_window_that_does_not_reach_the_store_page_is_the_whole_page() {
    let msg = |seq: Seq| ChatMessage {
        room_id: RoomId(1),
        seq,
        message_id: Uuid::now_v7(),
        sender_id: UserId(1),
        body: String::new(),
        created_at_ms: 0,
        nonce: None,
        attachments: Vec::new(),
        ..Default::default()
    };
    let stored = vec![msg(4), msg(3), msg(2)];
    // Seq 8 was never acknowledged (a failed append): the window holds fewer than the limit.
    let window = Window {
        from: 6,
        messages: vec![msg(9), msg(7)],
    };
    let page = merge(stored.clone(), 4, window, 3);
    assert_eq!((seqs(&page), page.next_before), (vec![9, 7], Some(7)));
    // A window reaching the store's page is merged with it and cut at the limit.
    let window = Window {
        from: 4,
        messages: vec![msg(6), msg(5)],
    };
    let page = merge(stored.clone(), 4, window, 3);
    assert_eq!((seqs(&page), page.next_before), (vec![6, 5, 4], Some(4)));
    let window = Window {
        from: 4,
        messages: vec![],
    };
    let page = merge(stored, 4, window, 5);
    assert_eq!((seqs(&page), page.next_before), (vec![4, 3, 2], None));
}

#[test]
fn a_page_shows_messages_only_as_its_own_events_leave_them() {
    let item = |seq: Seq, kind: MessageKind, body: &str| ChatMessage {
        room_id: RoomId(1),
        seq,
        message_id: Uuid::now_v7(),
        sender_id: UserId(1),
        body: body.into(),
        created_at_ms: seq as i64,
        kind,
        ..Default::default()
    };
    // Newest first, as pages are: 6 edits message 1, below the page (the store applied it).
    let page = Page {
        messages: vec![
            item(6, MessageKind::Edit(1), "not on the page"),
            item(5, MessageKind::Delete(3), ""),
            item(4, MessageKind::Edit(2), "second"),
            item(3, MessageKind::Post, "three"),
            item(2, MessageKind::Post, "two"),
        ],
        next_before: Some(2),
    };
    let page = messages_only(page);
    let shown: Vec<_> = page
        .messages
        .iter()
        .map(|m| {
            (
                m.seq,
                m.body.as_str(),
                m.marks.edited_at_ms,
                m.marks.deleted_at_ms,
            )
        })
        .collect();
    assert_eq!(
        shown,
        [(3, "", None, Some(5)), (2, "second", Some(4), None)]
    );
    assert_eq!(page.next_before, Some(2), "paging by seq is unchanged");
}
