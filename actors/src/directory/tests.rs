//! Unit tests of the directory, with the real room entity over in-memory ports.

use std::sync::Arc;
use std::time::Duration;

use ractor::RpcReplyPort;
use tokio::sync::oneshot;

use super::*;
use crate::delivery::{Outbound, SessionHandle, SessionInbox};
use crate::model::{RoomId, Seq, UserId};
use crate::room::{RoomConfig, RoomError, RoomMessage, Rooms};
use crate::testing::{AppendMode, FakeJournal, FakeStore, WAIT, ask, drain, next, ports};

const ROOM: RoomId = RoomId(1);
const ALICE: UserId = UserId(1);
const BOB: UserId = UserId(2);
const CAROL: UserId = UserId(3);

struct Fixture {
    store: Arc<FakeStore>,
    directory: ActorRef<DirectoryMessage<Rooms>>,
}

async fn start(idle_timeout: Duration) -> Fixture {
    let store = FakeStore::new();
    store.add_user(ALICE, "alice");
    store.add_user(BOB, "bob");
    store.add_user(CAROL, "carol");
    store.add_room(ROOM, ALICE);
    store.add_member(ROOM, BOB);
    let journal = FakeJournal::new(AppendMode::Complete);
    let rooms = Rooms {
        ports: ports(&store, &journal),
        config: RoomConfig {
            ring_size: 16,
            idle_timeout,
            typing_interval: Duration::from_secs(1),
            max_sessions_per_user: 32,
        },
    };
    let (directory, _) = Actor::spawn(None, Directory::new(rooms), ())
        .await
        .expect("directory starts");
    Fixture { store, directory }
}

fn route(directory: &ActorRef<DirectoryMessage<Rooms>>, room: RoomId, msg: RoomMessage) {
    directory
        .cast(DirectoryMessage::Route(room, msg))
        .unwrap_or_else(|_| panic!("directory is not running"));
}

fn publish(
    directory: &ActorRef<DirectoryMessage<Rooms>>,
    room: RoomId,
    session: &SessionHandle,
    receipt: &str,
) {
    route(
        directory,
        room,
        RoomMessage::Publish {
            session: session.clone().into(),
            receipt: Some(receipt.to_owned()),
            trace: crate::trace::TraceParent::new_root(),
            nonce: None,
            draft: crate::room::Draft {
                body: format!("body of {receipt}"),
                ..Default::default()
            },
        },
    );
}

async fn receipt_seq(inbox: &mut SessionInbox) -> Seq {
    match next(inbox).await {
        Outbound::Receipt { seq, .. } => seq,
        other => panic!("expected a receipt, got {other:?}"),
    }
}

async fn lookup(
    directory: &ActorRef<DirectoryMessage<Rooms>>,
    room: RoomId,
) -> Result<ActorRef<RoomMessage>, RouteError> {
    ask(directory, |reply| DirectoryMessage::Lookup(room, reply)).await
}

async fn count(directory: &ActorRef<DirectoryMessage<Rooms>>) -> usize {
    ask(directory, DirectoryMessage::GetCount).await
}

#[tokio::test]
async fn route_to_an_unknown_room_fails_the_sender() {
    let f = start(Duration::from_secs(3600)).await;
    let (alice, mut alice_in) = SessionHandle::new(1, ALICE, 16);
    publish(&f.directory, RoomId(99), &alice, "r1");
    match next(&mut alice_in).await {
        Outbound::Failed {
            receipt_id,
            message,
        } => {
            assert_eq!(receipt_id.as_deref(), Some("r1"));
            assert!(message.contains("does not exist"), "{message}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }

    let (tx, rx) = oneshot::channel();
    route(
        &f.directory,
        RoomId(99),
        RoomMessage::Subscribe {
            session: alice.clone().into(),
            since: None,
            reply: RpcReplyPort::from(tx),
        },
    );
    match tokio::time::timeout(WAIT, rx).await {
        Ok(Ok(Err(RoomError::NotFound(RoomId(99))))) => {}
        Ok(Ok(other)) => panic!("expected NotFound, got {other:?}"),
        _ => panic!("the subscribe was not answered"),
    }
    assert!(matches!(
        lookup(&f.directory, RoomId(99)).await,
        Err(RouteError::NotFound)
    ));
    assert_eq!(count(&f.directory).await, 0);
}

#[tokio::test]
async fn concurrent_lookups_during_a_spawn_get_the_same_actor() {
    let f = start(Duration::from_secs(3600)).await;
    f.store.hold_rooms();
    let (tx1, rx1) = oneshot::channel();
    let (tx2, rx2) = oneshot::channel();
    for tx in [tx1, tx2] {
        f.directory
            .cast(DirectoryMessage::Lookup(ROOM, RpcReplyPort::from(tx)))
            .unwrap_or_else(|_| panic!("directory is not running"));
    }
    // Both lookups are handled while the room is still activating.
    assert_eq!(count(&f.directory).await, 1);
    f.store.open_rooms();
    let a = tokio::time::timeout(WAIT, rx1).await.unwrap().unwrap();
    let b = tokio::time::timeout(WAIT, rx2).await.unwrap().unwrap();
    let (a, b) = (a.expect("room 1 exists"), b.expect("room 1 exists"));
    assert_eq!(a.get_id(), b.get_id());
    assert_eq!(f.store.room_loads(), 1, "one activation");
    assert_eq!(
        lookup(&f.directory, ROOM).await.unwrap().get_id(),
        a.get_id()
    );
}

#[tokio::test]
async fn messages_routed_during_a_spawn_keep_their_order() {
    let f = start(Duration::from_secs(3600)).await;
    f.store.hold_rooms();
    let (alice, mut alice_in) = SessionHandle::new(1, ALICE, 16);
    for r in ["r1", "r2", "r3"] {
        publish(&f.directory, ROOM, &alice, r);
    }
    assert_eq!(count(&f.directory).await, 1);
    f.store.open_rooms();
    for (expected_receipt, expected_seq) in [("r1", 1), ("r2", 2), ("r3", 3)] {
        match next(&mut alice_in).await {
            Outbound::Receipt {
                receipt_id, seq, ..
            } => assert_eq!((receipt_id.as_str(), seq), (expected_receipt, expected_seq)),
            other => panic!("expected a receipt, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn killed_room_is_respawned_by_the_next_route_and_seq_continues() {
    let f = start(Duration::from_secs(3600)).await;
    let (alice, mut alice_in) = SessionHandle::new(1, ALICE, 16);
    let (bob, mut bob_in) = SessionHandle::new(2, BOB, 16);
    publish(&f.directory, ROOM, &alice, "r1");
    publish(&f.directory, ROOM, &alice, "r2");
    assert_eq!(receipt_seq(&mut alice_in).await, 1);
    assert_eq!(receipt_seq(&mut alice_in).await, 2);
    let first = lookup(&f.directory, ROOM).await.unwrap();
    let ok = ask(&first, |reply| RoomMessage::Subscribe {
        session: bob.clone().into(),
        since: Some(2),
        reply,
    })
    .await
    .unwrap();
    assert_eq!(ok.last_seq, 2);

    first.kill_and_wait(Some(WAIT)).await.expect("room dies");
    match next(&mut bob_in).await {
        Outbound::SubscriptionLost { room_id } => assert_eq!(room_id, ROOM),
        other => panic!("expected SubscriptionLost, got {other:?}"),
    }

    publish(&f.directory, ROOM, &alice, "r3");
    assert_eq!(receipt_seq(&mut alice_in).await, 3);
    let second = lookup(&f.directory, ROOM).await.unwrap();
    assert_ne!(second.get_id(), first.get_id());
    assert_eq!(count(&f.directory).await, 1);
    assert_eq!(f.store.room_loads(), 2);
}

#[tokio::test]
async fn idle_room_passivates_and_the_next_route_respawns_it() {
    // Driven by the room's idle timer in real time (tokio's test-util is not enabled for this crate,
    // so the clock cannot be paused); the idle timeout is short and every wait is bounded.
    let f = start(Duration::from_millis(100)).await;
    let (alice, mut alice_in) = SessionHandle::new(1, ALICE, 16);
    publish(&f.directory, ROOM, &alice, "r1");
    assert_eq!(receipt_seq(&mut alice_in).await, 1);

    let room = lookup(&f.directory, ROOM).await.unwrap();
    room.wait(Some(WAIT)).await.expect("the idle room stops");
    // The directory forgets a passivating room before telling it to stop.
    assert_eq!(count(&f.directory).await, 0);

    publish(&f.directory, ROOM, &alice, "r2");
    assert_eq!(receipt_seq(&mut alice_in).await, 2);
    let again = lookup(&f.directory, ROOM).await.unwrap();
    assert_ne!(again.get_id(), room.get_id());
    assert!(drain(&mut alice_in).is_empty());
}

#[tokio::test]
async fn tell_reaches_only_an_active_room() {
    let f = start(Duration::from_secs(3600)).await;
    let tell = |user: UserId, name: &str| {
        f.directory
            .cast(DirectoryMessage::Tell(
                ROOM,
                RoomMessage::MemberJoined {
                    user,
                    username: name.into(),
                },
            ))
            .unwrap_or_else(|_| panic!("directory is not running"));
    };
    tell(CAROL, "carol");
    assert_eq!(count(&f.directory).await, 0);
    assert_eq!(f.store.room_loads(), 0, "nothing spawned");

    // Once the room is active, a Tell is delivered.
    let room = lookup(&f.directory, ROOM).await.unwrap();
    tell(CAROL, "carol");
    assert_eq!(count(&f.directory).await, 1);
    let (carol, mut carol_in) = SessionHandle::new(3, CAROL, 16);
    publish(&f.directory, ROOM, &carol, "c1");
    assert_eq!(receipt_seq(&mut carol_in).await, 1);
    assert_eq!(
        lookup(&f.directory, ROOM).await.unwrap().get_id(),
        room.get_id()
    );
}

#[tokio::test]
async fn tell_where_reaches_the_live_entities_the_selector_picks() {
    let f = start(Duration::from_secs(3600)).await;
    let other = RoomId(2);
    f.store.add_room(other, ALICE);
    let room = lookup(&f.directory, ROOM).await.unwrap();
    lookup(&f.directory, other).await.unwrap();
    // Only ROOM is picked: it learns a member the other room never hears of.
    let select: Selector<Rooms> = Box::new(|key| {
        (key == ROOM).then(|| RoomMessage::MemberJoined {
            user: CAROL,
            username: "carol".into(),
        })
    });
    f.directory
        .cast(DirectoryMessage::TellWhere(select))
        .unwrap_or_else(|_| panic!("directory is not running"));
    let (carol, mut carol_in) = SessionHandle::new(3, CAROL, 16);
    publish(&f.directory, ROOM, &carol, "c1");
    assert_eq!(
        receipt_seq(&mut carol_in).await,
        1,
        "carol is a member of ROOM now"
    );
    publish(&f.directory, other, &carol, "c2");
    match next(&mut carol_in).await {
        Outbound::Failed { message, .. } => {
            assert_eq!(message, RoomError::NotMember(other).to_string())
        }
        item => panic!("expected a refusal, got {item:?}"),
    }
    assert_eq!(
        lookup(&f.directory, ROOM).await.unwrap().get_id(),
        room.get_id()
    );
}
