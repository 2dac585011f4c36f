//! Unit tests of the room actor over in-memory ports (see [`crate::testing`]).

use std::time::Duration;

use tokio::sync::mpsc;

use super::*;
use crate::delivery::{Outbound, SessionHandle, SessionInbox};
use crate::testing::{
    AppendMode, FakeJournal, FakeStore, NOW_MS, RecordingDirectory, WAIT, ask, drain, frame,
    header, next, ports,
};

const ROOM: RoomId = RoomId(1);
const ALICE: UserId = UserId(1);
const BOB: UserId = UserId(2);
const CAROL: UserId = UserId(3);
const DAVE: UserId = UserId(4);
const MALLORY: UserId = UserId(9);

fn config() -> RoomConfig {
    RoomConfig {
        ring_size: 16,
        idle_timeout: Duration::from_secs(3600),
        typing_interval: Duration::from_secs(3600),
        max_sessions_per_user: 32,
    }
}

/// Returns a store with room 1 (owner alice; members bob and carol) and users dave and mallory, who
/// are not members.
fn store() -> Arc<FakeStore> {
    let store = FakeStore::new();
    for (id, name) in [
        (ALICE, "alice"),
        (BOB, "bob"),
        (CAROL, "carol"),
        (DAVE, "dave"),
        (MALLORY, "mallory"),
    ] {
        store.add_user(id, name);
    }
    store.add_room(ROOM, ALICE);
    store.add_member(ROOM, BOB);
    store.add_member(ROOM, CAROL);
    store
}

struct Fixture {
    store: Arc<FakeStore>,
    journal: Arc<FakeJournal>,
    room: ActorRef<RoomMessage>,
    directory: mpsc::UnboundedReceiver<DirectoryMessage<Rooms>>,
}

async fn start_with(
    store: Arc<FakeStore>,
    journal: Arc<FakeJournal>,
    config: RoomConfig,
) -> Fixture {
    let (directory_ref, directory) = RecordingDirectory::<Rooms>::spawn().await;
    let args = RoomArguments {
        room_id: ROOM,
        ports: ports(&store, &journal),
        config,
        directory: directory_ref,
    };
    let (room, _) = Actor::spawn(None, Room, args)
        .await
        .expect("room activates");
    Fixture {
        store,
        journal,
        room,
        directory,
    }
}

async fn start(mode: AppendMode, config: RoomConfig) -> Fixture {
    start_with(store(), FakeJournal::new(mode), config).await
}

fn session(id: impl Into<SessionId>, user: UserId) -> (SessionHandle, SessionInbox) {
    SessionHandle::new(id, user, 64)
}

fn publish(room: &ActorRef<RoomMessage>, session: &SessionHandle, receipt: &str, body: &str) {
    room.cast(RoomMessage::Publish {
        session: session.clone().into(),
        receipt: Some(receipt.to_owned()),
        trace: crate::trace::TraceParent::new_root(),
        nonce: None,
        draft: crate::room::Draft {
            body: body.to_owned(),
            ..Default::default()
        },
    })
    .unwrap_or_else(|_| panic!("room is not running"));
}

async fn subscribe(
    room: &ActorRef<RoomMessage>,
    session: &SessionHandle,
    since: Option<Seq>,
) -> Result<SubscribeOk, RoomError> {
    let session = session.clone();
    ask(room, |reply| RoomMessage::Subscribe {
        session: session.into(),
        since,
        reply,
    })
    .await
}

/// Returns the acknowledged seq and the subscriber count; also a barrier: every message sent to the
/// room before it has been handled.
async fn info(room: &ActorRef<RoomMessage>) -> (Seq, usize) {
    ask(room, RoomMessage::GetInfo).await
}

async fn receipt(inbox: &mut SessionInbox) -> (String, Seq, Uuid) {
    match next(inbox).await {
        Outbound::Receipt {
            receipt_id,
            seq,
            message_id,
        } => (receipt_id, seq, message_id),
        other => panic!("expected a receipt, got {other:?}"),
    }
}

async fn failed(inbox: &mut SessionInbox) -> (Option<String>, String) {
    match next(inbox).await {
        Outbound::Failed {
            receipt_id,
            message,
        } => (receipt_id, message),
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// Returns the next room event of a session: its seq and its parsed frame.
async fn event(inbox: &mut SessionInbox) -> (Option<Seq>, banter_proto::stomp::Frame) {
    match next(inbox).await {
        Outbound::Room {
            room_id, seq, tail, ..
        } => {
            assert_eq!(room_id, ROOM);
            (seq, frame(&tail))
        }
        other => panic!("expected a room event, got {other:?}"),
    }
}

/// Returns the seqs of the chat messages already in a session's outbox, checking each frame's header.
fn delivered_seqs(inbox: &mut SessionInbox) -> Vec<Seq> {
    drain(inbox)
        .into_iter()
        .map(|item| match item {
            Outbound::Room {
                seq: Some(seq),
                tail,
                ..
            } => {
                assert_eq!(header(&frame(&tail), "seq"), seq.to_string());
                seq
            }
            other => panic!("expected a chat message, got {other:?}"),
        })
        .collect()
}

/// Publishes `n` messages from `sender` (journal in `Complete` mode) and waits for their receipts.
async fn publish_acked(
    room: &ActorRef<RoomMessage>,
    sender: &SessionHandle,
    inbox: &mut SessionInbox,
    n: Seq,
) {
    for i in 1..=n {
        publish(room, sender, &format!("r{i}"), &format!("m{i}"));
    }
    for _ in 1..=n {
        receipt(inbox).await;
    }
}

#[tokio::test]
async fn publish_acknowledges_and_fans_out_in_seq_order() {
    let f = start(AppendMode::Complete, config()).await;
    let (alice, mut alice_in) = session(1, ALICE);
    let (bob, mut bob_in) = session(2, BOB);
    subscribe(&f.room, &bob, None)
        .await
        .expect("member subscribes");

    for i in 1..=3 {
        publish(&f.room, &alice, &format!("r{i}"), &format!("hello {i}"));
    }
    for i in 1..=3u64 {
        let (receipt_id, seq, message_id) = receipt(&mut alice_in).await;
        assert_eq!((receipt_id.as_str(), seq), (format!("r{i}").as_str(), i));
        let (event_seq, frame) = event(&mut bob_in).await;
        assert_eq!(event_seq, Some(i));
        assert_eq!(header(&frame, "event"), "message");
        assert_eq!(header(&frame, "destination"), "/rooms/1");
        assert_eq!(header(&frame, "seq"), i.to_string());
        assert_eq!(header(&frame, "sender"), "alice");
        assert_eq!(header(&frame, "sender-id"), "1");
        assert_eq!(header(&frame, "message-id"), message_id.to_string());
        assert_eq!(header(&frame, "timestamp"), NOW_MS.to_string());
        assert_eq!(&frame.body[..], format!("hello {i}").as_bytes());
    }
    assert_eq!(info(&f.room).await, (3, 1));
    let journaled: Vec<Seq> = f.journal.appended().iter().map(|m| m.seq).collect();
    assert_eq!(journaled, [1, 2, 3]);
    assert!(
        drain(&mut alice_in).is_empty(),
        "the sender is not subscribed"
    );
}

#[tokio::test]
async fn out_of_order_journal_completions_release_in_seq_order() {
    let f = start(AppendMode::Hold, config()).await;
    let (alice, mut alice_in) = session(1, ALICE);
    let (bob, mut bob_in) = session(2, BOB);
    subscribe(&f.room, &bob, None).await.unwrap();
    for i in 1..=3 {
        publish(&f.room, &alice, &format!("r{i}"), "x");
    }
    assert_eq!(info(&f.room).await, (0, 1));
    assert_eq!(f.journal.held(ROOM), [1, 2, 3]);

    f.journal.complete(ROOM, 3, Ok(())).await;
    assert_eq!(info(&f.room).await.0, 0, "seq 3 waits for 1 and 2");
    assert!(drain(&mut alice_in).is_empty());
    assert!(drain(&mut bob_in).is_empty());

    f.journal.complete(ROOM, 1, Ok(())).await;
    assert_eq!(info(&f.room).await.0, 1);
    assert_eq!(receipt(&mut alice_in).await.1, 1);
    assert!(drain(&mut alice_in).is_empty());
    assert_eq!(delivered_seqs(&mut bob_in), [1]);

    f.journal.complete(ROOM, 2, Ok(())).await;
    assert_eq!(info(&f.room).await.0, 3);
    let receipts: Vec<Seq> = drain(&mut alice_in)
        .into_iter()
        .map(|o| match o {
            Outbound::Receipt { seq, .. } => seq,
            other => panic!("expected a receipt, got {other:?}"),
        })
        .collect();
    assert_eq!(receipts, [2, 3]);
    assert_eq!(delivered_seqs(&mut bob_in), [2, 3]);
}

#[tokio::test]
async fn one_report_of_a_group_commit_settles_each_of_its_seqs() {
    let f = start(AppendMode::Hold, config()).await;
    let (alice, mut alice_in) = session(1, ALICE);
    let (bob, mut bob_in) = session(2, BOB);
    subscribe(&f.room, &bob, None).await.unwrap();
    for i in 1..=5 {
        publish(&f.room, &alice, &format!("r{i}"), "x");
    }
    info(&f.room).await;
    assert_eq!(f.journal.held(ROOM), [1, 2, 3, 4, 5]);

    // 2..=4 in one commit: nothing is released before 1.
    f.journal.complete_run(ROOM, 2, 4, Ok(()));
    assert_eq!(info(&f.room).await.0, 0);
    assert!(drain(&mut bob_in).is_empty());
    f.journal.complete(ROOM, 1, Ok(())).await;
    assert_eq!(info(&f.room).await.0, 4);
    assert_eq!(delivered_seqs(&mut bob_in), [1, 2, 3, 4]);
    // A failed commit fails every message of it, and only those.
    publish(&f.room, &alice, "r6", "x");
    info(&f.room).await;
    f.journal.complete_run(
        ROOM,
        5,
        6,
        Err(JournalError::Unavailable("disk full".into())),
    );
    assert_eq!(info(&f.room).await.0, 4);
    let outcomes: Vec<String> = drain(&mut alice_in)
        .into_iter()
        .map(|o| match o {
            Outbound::Receipt { seq, .. } => format!("receipt {seq}"),
            Outbound::Failed { receipt_id, .. } => {
                format!("failed {}", receipt_id.unwrap_or_default())
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            "receipt 1",
            "receipt 2",
            "receipt 3",
            "receipt 4",
            "failed r5",
            "failed r6"
        ]
    );
    assert!(drain(&mut bob_in).is_empty());
}

#[tokio::test]
async fn failed_append_fails_its_sender_only_and_no_seq_is_reused() {
    let f = start(AppendMode::Hold, config()).await;
    let (alice, mut alice_in) = session(1, ALICE);
    let (carol, mut carol_in) = session(3, CAROL);
    let (bob, mut bob_in) = session(2, BOB);
    subscribe(&f.room, &bob, None).await.unwrap();
    publish(&f.room, &alice, "a1", "one");
    publish(&f.room, &carol, "c2", "two");
    publish(&f.room, &alice, "a3", "three");
    info(&f.room).await;
    assert_eq!(f.journal.held(ROOM), [1, 2, 3]);

    f.journal
        .complete(ROOM, 2, Err(JournalError::Unavailable("disk full".into())))
        .await;
    f.journal.complete(ROOM, 3, Ok(())).await;
    f.journal.complete(ROOM, 1, Ok(())).await;
    assert_eq!(info(&f.room).await, (3, 1));

    let (receipt_id, message) = failed(&mut carol_in).await;
    assert_eq!(receipt_id.as_deref(), Some("c2"));
    assert!(message.contains("not stored"), "{message}");
    assert!(drain(&mut carol_in).is_empty());
    assert_eq!(receipt(&mut alice_in).await.1, 1);
    assert_eq!(receipt(&mut alice_in).await.1, 3);
    assert_eq!(delivered_seqs(&mut bob_in), [1, 3]);

    // The failed seq stays burnt: the next message gets 4.
    publish(&f.room, &carol, "c4", "four");
    info(&f.room).await;
    assert_eq!(f.journal.held(ROOM), [4]);
    f.journal.complete(ROOM, 4, Ok(())).await;
    assert_eq!(receipt(&mut carol_in).await.1, 4);
    assert_eq!(delivered_seqs(&mut bob_in), [4]);

    let (late, _late_in) = session(5, CAROL);
    let ok = subscribe(&f.room, &late, Some(0)).await.unwrap();
    assert_eq!(ok.backfill, None);
    let replayed: Vec<Seq> = ok.replay.iter().map(|(s, _)| *s).collect();
    assert_eq!(replayed, [1, 3, 4]);
    assert_eq!(ok.last_seq, 4);
}

#[tokio::test]
async fn non_members_are_refused() {
    let f = start(AppendMode::Complete, config()).await;
    let (bob, mut bob_in) = session(2, BOB);
    subscribe(&f.room, &bob, None).await.unwrap();
    let (mallory, mut mallory_in) = session(9, MALLORY);

    publish(&f.room, &mallory, "m1", "let me in");
    let (receipt_id, message) = failed(&mut mallory_in).await;
    assert_eq!(receipt_id.as_deref(), Some("m1"));
    assert!(message.contains("not a member"), "{message}");

    match subscribe(&f.room, &mallory, Some(0)).await {
        Err(e @ RoomError::NotMember(ROOM)) => assert!(e.to_string().contains("not a member")),
        other => panic!("expected NotMember, got {other:?}"),
    }

    f.room
        .cast(RoomMessage::Typing {
            session: mallory.clone().into(),
        })
        .unwrap_or_else(|_| panic!("room is not running"));
    assert!(failed(&mut mallory_in).await.1.contains("not a member"));

    f.room
        .cast(RoomMessage::MarkRead {
            session: mallory.clone().into(),
            seq: 1,
        })
        .unwrap_or_else(|_| panic!("room is not running"));
    assert!(failed(&mut mallory_in).await.1.contains("not a member"));

    assert_eq!(info(&f.room).await, (0, 1));
    assert!(f.journal.appended().is_empty());
    assert!(drain(&mut bob_in).is_empty());
    assert!(drain(&mut mallory_in).is_empty());
}

#[tokio::test]
async fn unsubscribe_ends_delivery_quietly() {
    let f = start(AppendMode::Complete, config()).await;
    let (alice, mut alice_in) = session(1, ALICE);
    let (bob, mut bob_in) = session(2, BOB);
    subscribe(&f.room, &bob, None).await.unwrap();
    f.room
        .cast(RoomMessage::Unsubscribe { session_id: bob.id })
        .unwrap_or_else(|_| panic!("room is not running"));
    publish_acked(&f.room, &alice, &mut alice_in, 1).await;
    assert_eq!(info(&f.room).await, (1, 0));
    assert!(
        drain(&mut bob_in).is_empty(),
        "no message, no SubscriptionLost"
    );
}

#[tokio::test]
async fn slow_subscriber_is_dropped_and_signalled_while_others_keep_up() {
    let f = start(AppendMode::Complete, config()).await;
    let (alice, mut alice_in) = session(1, ALICE);
    let (slow, mut slow_in) = SessionHandle::new(2, BOB, 1);
    let (carol, mut carol_in) = session(3, CAROL);
    subscribe(&f.room, &slow, None).await.unwrap();
    subscribe(&f.room, &carol, None).await.unwrap();

    publish_acked(&f.room, &alice, &mut alice_in, 3).await;
    assert!(slow_in.slow.is_set(), "the slow session is told to close");
    assert!(slow.is_closed());
    assert_eq!(info(&f.room).await, (3, 1));
    assert_eq!(delivered_seqs(&mut carol_in), [1, 2, 3]);
    // It keeps what fitted and resumes from there by seq.
    assert_eq!(delivered_seqs(&mut slow_in), [1]);

    publish_acked(&f.room, &alice, &mut alice_in, 1).await;
    assert_eq!(delivered_seqs(&mut carol_in), [4]);
    assert!(drain(&mut slow_in).is_empty());
}

async fn assert_lost(inbox: &mut SessionInbox) {
    match next(inbox).await {
        Outbound::SubscriptionLost { room_id } => assert_eq!(room_id, ROOM),
        other => panic!("expected SubscriptionLost, got {other:?}"),
    }
}

#[tokio::test]
async fn killed_room_reports_subscription_lost() {
    let f = start(AppendMode::Complete, config()).await;
    let (bob, mut bob_in) = session(2, BOB);
    let (carol, mut carol_in) = session(3, CAROL);
    subscribe(&f.room, &bob, None).await.unwrap();
    subscribe(&f.room, &carol, None).await.unwrap();
    f.room.kill_and_wait(Some(WAIT)).await.expect("room dies");
    assert_lost(&mut bob_in).await;
    assert_lost(&mut carol_in).await;
    assert!(drain(&mut bob_in).is_empty());
}

#[tokio::test]
async fn panicking_room_reports_subscription_lost() {
    let f = start(AppendMode::Complete, config()).await;
    let (alice, mut alice_in) = session(1, ALICE);
    let (bob, mut bob_in) = session(2, BOB);
    subscribe(&f.room, &bob, None).await.unwrap();
    publish_acked(&f.room, &alice, &mut alice_in, 1).await;
    assert_eq!(event(&mut bob_in).await.0, Some(1));
    f.journal.set_mode(AppendMode::Panic);
    publish(&f.room, &alice, "r2", "boom");
    f.room.wait(Some(WAIT)).await.expect("room crashes");
    assert_lost(&mut bob_in).await;
}

#[tokio::test]
async fn idle_room_asks_to_passivate_and_serves_work_until_stopped() {
    let f = start(
        AppendMode::Complete,
        RoomConfig {
            idle_timeout: Duration::from_millis(100),
            ..config()
        },
    )
    .await;
    let mut directory = f.directory;
    // Driven by the room's own idle timer (real time: test-util is not enabled for this crate).
    match tokio::time::timeout(WAIT, directory.recv()).await {
        Ok(Some(DirectoryMessage::Passivate(key, actor))) => {
            assert_eq!(key, ROOM);
            assert_eq!(actor.get_id(), f.room.get_id());
        }
        Ok(Some(_)) => panic!("expected Passivate"),
        other => panic!("no passivation request: {}", other.is_ok()),
    }

    // Work that arrives before the directory's Stop is still served by this activation.
    let (alice, mut alice_in) = session(1, ALICE);
    publish(&f.room, &alice, "early", "served here");
    f.room
        .cast(RoomMessage::Stop)
        .unwrap_or_else(|_| panic!("room is not running"));
    f.room.wait(Some(WAIT)).await.expect("room stops");
    assert_eq!(
        f.journal.appended().len(),
        1,
        "the early message was journaled"
    );
    assert!(
        drain(&mut alice_in).iter().any(
            |o| matches!(o, Outbound::Receipt { receipt_id, seq: 1, .. } if receipt_id == "early")
        ),
        "the early message was acknowledged"
    );
}

mod events;
mod members;
mod nonce;
mod ownership;
mod recent;
mod remote;
mod replay;
