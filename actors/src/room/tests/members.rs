//! Typing events, read markers, joining and leaving.

use super::*;

fn typing_from(inbox: &mut SessionInbox) -> Vec<String> {
    drain(inbox)
        .into_iter()
        .map(|item| match item {
            Outbound::Room {
                seq: None, tail, ..
            } => {
                let frame = frame(&tail);
                assert_eq!(header(&frame, "event"), "typing");
                assert_eq!(header(&frame, "room-id"), "1");
                format!(
                    "{}:{}",
                    header(&frame, "user-id"),
                    header(&frame, "username")
                )
            }
            other => panic!("expected a typing event, got {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn typing_is_coalesced_per_user_and_not_sent_to_the_typer() {
    let f = start(AppendMode::Complete, config()).await;
    let (alice1, mut alice1_in) = session(1, ALICE);
    let (alice2, mut alice2_in) = session(11, ALICE);
    let (bob, mut bob_in) = session(2, BOB);
    let (carol, mut carol_in) = session(3, CAROL);
    for s in [&alice1, &alice2, &bob, &carol] {
        subscribe(&f.room, s, None).await.unwrap();
    }
    let typing = |s: &SessionHandle| {
        f.room
            .cast(RoomMessage::Typing {
                session: s.clone().into(),
            })
            .unwrap_or_else(|_| panic!("room is not running"));
    };
    typing(&alice1);
    typing(&alice2);
    typing(&alice1);
    typing(&carol);
    info(&f.room).await;

    assert_eq!(typing_from(&mut bob_in), ["1:alice", "3:carol"]);
    assert_eq!(typing_from(&mut carol_in), ["1:alice"]);
    assert_eq!(typing_from(&mut alice1_in), ["3:carol"]);
    assert_eq!(typing_from(&mut alice2_in), ["3:carol"]);
}

#[tokio::test]
async fn typing_is_sent_again_once_the_interval_passed() {
    // No paused clock here (tokio's test-util is not enabled for this crate): the interval is tiny
    // and the test lets strictly more than it pass.
    let interval = Duration::from_millis(20);
    let f = start(
        AppendMode::Complete,
        RoomConfig {
            typing_interval: interval,
            ..config()
        },
    )
    .await;
    let (alice, _alice_in) = session(1, ALICE);
    let (bob, mut bob_in) = session(2, BOB);
    subscribe(&f.room, &bob, None).await.unwrap();
    f.room
        .cast(RoomMessage::Typing {
            session: alice.clone().into(),
        })
        .unwrap_or_else(|_| panic!("room is not running"));
    info(&f.room).await;
    tokio::time::sleep(interval + Duration::from_millis(5)).await;
    f.room
        .cast(RoomMessage::Typing {
            session: alice.clone().into(),
        })
        .unwrap_or_else(|_| panic!("room is not running"));
    info(&f.room).await;
    assert_eq!(typing_from(&mut bob_in), ["1:alice", "1:alice"]);
}

async fn read_event(inbox: &mut SessionInbox) -> (String, String) {
    let (seq, frame) = event(inbox).await;
    assert_eq!(seq, None);
    assert_eq!(header(&frame, "event"), "read");
    (
        header(&frame, "user-id").to_owned(),
        header(&frame, "seq").to_owned(),
    )
}

#[tokio::test]
async fn mark_read_fans_out_a_read_event() {
    let f = start(AppendMode::Complete, config()).await;
    let (alice, mut alice_in) = session(1, ALICE);
    publish_acked(&f.room, &alice, &mut alice_in, 3).await;
    let (bob, mut bob_in) = session(2, BOB);
    subscribe(&f.room, &alice, None).await.unwrap();
    subscribe(&f.room, &bob, None).await.unwrap();

    f.room
        .cast(RoomMessage::MarkRead {
            session: bob.clone().into(),
            seq: 2,
        })
        .unwrap_or_else(|_| panic!("room is not running"));
    assert_eq!(read_event(&mut alice_in).await, ("2".into(), "2".into()));
    assert_eq!(read_event(&mut bob_in).await, ("2".into(), "2".into()));
    assert_eq!(f.store.read_marker(ROOM, BOB), Some(2));

    // A marker past the last acknowledged seq is capped to it.
    f.room
        .cast(RoomMessage::MarkRead {
            session: bob.clone().into(),
            seq: 99,
        })
        .unwrap_or_else(|_| panic!("room is not running"));
    assert_eq!(read_event(&mut alice_in).await, ("2".into(), "3".into()));
    assert_eq!(read_event(&mut bob_in).await, ("2".into(), "3".into()));
    assert_eq!(f.store.read_marker(ROOM, BOB), Some(3));
}

fn room_events(items: &[Outbound]) -> usize {
    items
        .iter()
        .filter(|o| matches!(o, Outbound::Room { .. }))
        .count()
}

#[tokio::test]
async fn member_left_stops_delivery_to_their_sessions() {
    let f = start(AppendMode::Complete, config()).await;
    let (alice, mut alice_in) = session(1, ALICE);
    let (bob1, mut bob1_in) = session(2, BOB);
    let (bob2, mut bob2_in) = session(12, BOB);
    let (carol, mut carol_in) = session(3, CAROL);
    for s in [&bob1, &bob2, &carol] {
        subscribe(&f.room, s, None).await.unwrap();
    }
    f.room
        .cast(RoomMessage::MemberLeft { user: BOB })
        .unwrap_or_else(|_| panic!("room is not running"));
    assert_eq!(info(&f.room).await, (0, 1));

    publish(&f.room, &alice, "r1", "after bob left");
    receipt(&mut alice_in).await;
    assert_eq!(event(&mut carol_in).await.0, Some(1));
    f.room
        .cast(RoomMessage::Typing {
            session: carol.clone().into(),
        })
        .unwrap_or_else(|_| panic!("room is not running"));
    info(&f.room).await;
    assert_eq!(room_events(&drain(&mut bob1_in)), 0);
    assert_eq!(room_events(&drain(&mut bob2_in)), 0);

    publish(&f.room, &bob1, "b1", "still here?");
    assert!(failed(&mut bob1_in).await.1.contains("not a member"));
    assert!(subscribe(&f.room, &bob1, None).await.is_err());
}

#[tokio::test]
async fn member_left_does_not_report_the_room_as_lost() {
    let f = start(AppendMode::Complete, config()).await;
    let (bob, mut bob_in) = session(2, BOB);
    subscribe(&f.room, &bob, None).await.unwrap();
    f.room
        .cast(RoomMessage::MemberLeft { user: BOB })
        .unwrap_or_else(|_| panic!("room is not running"));
    info(&f.room).await;
    let items = drain(&mut bob_in);
    assert!(
        !items
            .iter()
            .any(|o| matches!(o, Outbound::SubscriptionLost { .. })),
        "the room did not crash, yet the leaver was told to resubscribe: {items:?}"
    );
}

#[tokio::test]
async fn member_joined_can_subscribe_and_publish_under_their_name() {
    let f = start(AppendMode::Complete, config()).await;
    let (dave, mut dave_in) = session(4, DAVE);
    assert!(subscribe(&f.room, &dave, None).await.is_err());
    f.room
        .cast(RoomMessage::MemberJoined {
            user: DAVE,
            username: "dave".into(),
        })
        .unwrap_or_else(|_| panic!("room is not running"));
    subscribe(&f.room, &dave, None).await.unwrap();
    publish(&f.room, &dave, "d1", "hi all");
    assert_eq!(receipt(&mut dave_in).await.1, 1);
    let (seq, frame) = event(&mut dave_in).await;
    assert_eq!(seq, Some(1));
    assert_eq!(header(&frame, "sender"), "dave");
}
