//! The hub on its own: items find their session, a fan-out reaches each subscriber once, and ended
//! subscriptions stop receiving.

use super::*;
use crate::delivery::SessionInbox;

const ROOM: RoomId = RoomId(5);
const OTHER: RoomId = RoomId(6);
const PEER: NodeId = NodeId(3);

fn session(hub: &Hub, local: u64, user: i64) -> (SessionHandle, SessionInbox) {
    let (h, inbox) = SessionHandle::new(local, UserId(user), 4);
    hub.register(h.clone());
    (h, inbox)
}

fn events(inbox: &mut SessionInbox) -> Vec<(RoomId, Option<Seq>)> {
    let mut out = Vec::new();
    while let Some(item) = inbox.try_recv() {
        match item {
            Outbound::Room { room_id, seq, .. } => out.push((room_id, seq)),
            Outbound::SubscriptionLost { room_id } => out.push((room_id, None)),
            other => panic!("unexpected {other:?}"),
        }
    }
    out
}

#[test]
fn fan_out_reaches_each_subscriber_once_except_the_skipped_user() {
    let hub = Hub::new();
    let (a, mut a_in) = session(&hub, 1, 1);
    let (b, mut b_in) = session(&hub, 2, 2);
    let (c, mut c_in) = session(&hub, 3, 2);
    hub.subscribe(ROOM, PEER, a.clone());
    hub.subscribe(ROOM, PEER, a);
    hub.subscribe(ROOM, PEER, b);
    hub.subscribe(OTHER, PEER, c);
    let tail = Bytes::from_static(b"x");
    assert_eq!(hub.fan_out(ROOM, Some(1), &tail, None, 0), 2);
    assert_eq!(hub.fan_out(ROOM, None, &tail, Some(UserId(1)), 0), 1);
    assert_eq!(events(&mut a_in), [(ROOM, Some(1))]);
    assert_eq!(events(&mut b_in), [(ROOM, Some(1)), (ROOM, None)]);
    assert!(events(&mut c_in).is_empty());
    assert_eq!(hub.fan_out(RoomId(99), Some(1), &tail, None, 0), 0);
}

#[test]
fn ended_subscriptions_stop_and_lost_rooms_are_told() {
    let hub = Hub::new();
    let (a, mut a_in) = session(&hub, 1, 1);
    let (b, mut b_in) = session(&hub, 2, 2);
    hub.subscribe(ROOM, PEER, a.clone());
    hub.subscribe(OTHER, PEER, a);
    hub.subscribe(ROOM, PEER, b.clone());
    hub.subscribe(OTHER, PEER, b);
    let tail = Bytes::from_static(b"x");

    hub.drop_user(ROOM, UserId(2));
    hub.fan_out(ROOM, Some(1), &tail, None, 0);
    assert_eq!(events(&mut b_in), []);
    assert_eq!(events(&mut a_in), [(ROOM, Some(1))]);

    hub.room_lost(OTHER);
    assert_eq!(events(&mut a_in), [(OTHER, None)]);
    assert_eq!(events(&mut b_in), [(OTHER, None)]);
    assert_eq!(hub.rooms_on(PEER), [ROOM]);
    assert!(hub.rooms_on(NodeId(9)).is_empty());
    assert_eq!(hub.node_of(ROOM), Some(PEER));

    hub.unregister(SessionId::from(1), [ROOM]);
    assert!(hub.rooms_on(PEER).is_empty());
    assert!(!hub.offer(SessionId::from(1), Outbound::User { tail: tail.clone() }));
    assert!(hub.offer(SessionId::from(2), Outbound::User { tail }));
    assert_eq!(hub.sessions(), 1);
}

#[test]
fn a_session_that_cannot_keep_up_is_dropped_from_its_rooms() {
    let hub = Hub::new();
    let (slow, mut slow_in) = SessionHandle::new(1, UserId(1), 1);
    hub.subscribe(ROOM, PEER, slow);
    let tail = Bytes::from_static(b"x");
    assert_eq!(hub.fan_out(ROOM, Some(1), &tail, None, 0), 1);
    assert_eq!(hub.fan_out(ROOM, Some(2), &tail, None, 0), 0, "outbox full");
    assert!(slow_in.slow.is_set());
    assert!(hub.rooms_on(PEER).is_empty());
    assert_eq!(events(&mut slow_in), [(ROOM, Some(1))]);
}

#[test]
fn subscribing_on_a_rooms_new_node_loses_the_subscriptions_on_its_old_one() {
    let hub = Hub::new();
    let (a, mut a_in) = session(&hub, 1, 1);
    let (b, mut b_in) = session(&hub, 2, 2);
    let new_node = NodeId(4);
    hub.subscribe(ROOM, PEER, a.clone());
    hub.subscribe(ROOM, PEER, b.clone());
    hub.subscribe(OTHER, PEER, b.clone());
    // The room moved: a session that subscribes again (or anew) does so on its new node.
    hub.subscribe(ROOM, new_node, a.clone());
    assert_eq!(events(&mut b_in), [(ROOM, None)], "b subscribes again");
    assert!(events(&mut a_in).is_empty());
    assert_eq!(hub.node_of(ROOM), Some(new_node));
    assert_eq!(hub.rooms_on(PEER), [OTHER]);
    // Until b is back, a fan-out reaches a only; then both.
    let tail = Bytes::from_static(b"x");
    assert_eq!(hub.fan_out(ROOM, Some(1), &tail, None, 0), 1);
    hub.subscribe(ROOM, new_node, b);
    assert_eq!(hub.fan_out(ROOM, Some(2), &tail, None, 0), 2);
    assert_eq!(events(&mut a_in), [(ROOM, Some(1)), (ROOM, Some(2))]);
    assert_eq!(events(&mut b_in), [(ROOM, Some(2))]);
    // The new node's link going down loses both.
    assert_eq!(hub.rooms_on(new_node), [ROOM]);
}
