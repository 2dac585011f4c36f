//! Subscribers on other nodes: one frame per node however many of its sessions subscribed, RECEIPTs
//! through the sender's node, and each node told when its sessions' subscriptions end.

use std::sync::Mutex;

use super::*;
use crate::delivery::{NodeId, PeerOutbox, RemoteSession, Stamp};

/// What a link to another node was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Offer(SessionId, String),
    FanOut(Option<Seq>, Option<UserId>),
    DropUser(UserId),
    RoomLost,
}

/// A link that records its calls; `up` false makes it refuse (a gone or full link).
#[derive(Debug)]
struct FakePeer {
    node: NodeId,
    calls: Mutex<Vec<Call>>,
    up: std::sync::atomic::AtomicBool,
}

impl FakePeer {
    fn new(node: u32) -> Arc<FakePeer> {
        Arc::new(FakePeer {
            node: NodeId(node),
            calls: Mutex::new(Vec::new()),
            up: true.into(),
        })
    }

    fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().expect("calls"))
    }

    fn record(&self, call: Call) -> bool {
        self.calls.lock().expect("calls").push(call);
        self.up.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl PeerOutbox for FakePeer {
    fn node(&self) -> NodeId {
        self.node
    }

    fn offer(&self, session: SessionId, item: Outbound) -> bool {
        let what = match item {
            Outbound::Receipt { receipt_id, .. } => format!("receipt {receipt_id}"),
            Outbound::Failed { message, .. } => format!("failed {message}"),
            other => format!("{other:?}"),
        };
        self.record(Call::Offer(session, what))
    }

    fn fan_out(
        &self,
        room: RoomId,
        seq: Option<Seq>,
        _tail: Bytes,
        skip: Option<UserId>,
        _stamp: Option<Stamp<'_>>,
    ) -> bool {
        assert_eq!(room, ROOM);
        self.record(Call::FanOut(seq, skip))
    }

    fn drop_user(&self, room: RoomId, user: UserId) {
        assert_eq!(room, ROOM);
        self.record(Call::DropUser(user));
    }

    fn room_lost(&self, room: RoomId) {
        assert_eq!(room, ROOM);
        self.record(Call::RoomLost);
    }
}

fn remote(peer: &Arc<FakePeer>, local: u64, user: UserId) -> SessionRef {
    SessionRef::Remote(RemoteSession {
        id: SessionId::new(peer.node, local),
        user,
        peer: peer.clone(),
    })
}

async fn subscribe_ref(room: &ActorRef<RoomMessage>, session: SessionRef) {
    ask(room, |reply| RoomMessage::Subscribe {
        session,
        since: None,
        reply,
    })
    .await
    .expect("member subscribes");
}

#[tokio::test]
async fn a_message_crosses_to_each_node_once() {
    let f = start(AppendMode::Complete, config()).await;
    let (two, three) = (FakePeer::new(2), FakePeer::new(3));
    for (i, user) in [BOB, CAROL, BOB].into_iter().enumerate() {
        subscribe_ref(&f.room, remote(&two, i as u64 + 1, user)).await;
    }
    subscribe_ref(&f.room, remote(&three, 1, CAROL)).await;
    let (local, mut local_in) = session(1, BOB);
    subscribe(&f.room, &local, None)
        .await
        .expect("local subscribes");
    assert_eq!(info(&f.room).await.1, 5, "five subscribers in all");

    // Alice sends from node 3: her RECEIPT goes back through node 3's link.
    let alice = remote(&three, 9, ALICE);
    f.room
        .cast(RoomMessage::Publish {
            session: alice,
            receipt: Some("r1".into()),
            trace: crate::trace::TraceParent::new_root(),
            nonce: None,
            draft: crate::room::Draft {
                body: "hello".into(),
                ..Default::default()
            },
        })
        .expect("room runs");
    info(&f.room).await;
    assert_eq!(event(&mut local_in).await.0, Some(1));
    assert_eq!(two.take(), [Call::FanOut(Some(1), None)]);
    assert_eq!(
        three.take(),
        [
            Call::Offer(SessionId::new(NodeId(3), 9), "receipt r1".into()),
            Call::FanOut(Some(1), None)
        ]
    );

    // Carol types: node 3 has only her session, so nothing crosses to it.
    f.room
        .cast(RoomMessage::Typing {
            session: remote(&three, 1, CAROL),
        })
        .expect("room runs");
    info(&f.room).await;
    assert_eq!(two.take(), [Call::FanOut(None, Some(CAROL))]);
    assert!(three.take().is_empty());
}

#[tokio::test]
async fn nodes_learn_when_subscriptions_end() {
    let f = start(AppendMode::Complete, config()).await;
    let (two, three, four) = (FakePeer::new(2), FakePeer::new(3), FakePeer::new(4));
    subscribe_ref(&f.room, remote(&two, 1, BOB)).await;
    subscribe_ref(&f.room, remote(&two, 2, CAROL)).await;
    subscribe_ref(&f.room, remote(&three, 1, CAROL)).await;
    subscribe_ref(&f.room, remote(&four, 1, BOB)).await;

    // Bob leaves: the nodes with his sessions are told; node 4 then has none and is forgotten.
    f.room
        .cast(RoomMessage::MemberLeft { user: BOB })
        .expect("room runs");
    assert_eq!(info(&f.room).await.1, 2);
    assert_eq!(two.take(), [Call::DropUser(BOB)]);
    assert!(three.take().is_empty());
    assert_eq!(four.take(), [Call::DropUser(BOB)]);

    // An orderly unsubscribe of node 3's last session: nothing to tell.
    f.room
        .cast(RoomMessage::Unsubscribe {
            session_id: SessionId::new(NodeId(3), 1),
        })
        .expect("room runs");
    assert_eq!(info(&f.room).await.1, 1);

    // A link that refuses a fan-out loses its node's subscriptions (the link is dropped).
    three.up.store(false, std::sync::atomic::Ordering::Relaxed);
    subscribe_ref(&f.room, remote(&three, 2, CAROL)).await;
    let (alice, mut alice_in) = session(7, ALICE);
    publish(&f.room, &alice, "r1", "hi");
    receipt(&mut alice_in).await;
    assert_eq!(info(&f.room).await.1, 1, "node 3's subscriber is dropped");
    assert_eq!(three.take(), [Call::FanOut(Some(1), None)]);

    // The room crashes: node 2, which still has a subscriber, is told; nobody else.
    f.room.kill();
    tokio::time::timeout(WAIT, f.room.wait(None))
        .await
        .expect("room stops")
        .expect("wait");
    assert_eq!(two.take(), [Call::FanOut(Some(1), None), Call::RoomLost]);
    assert!(three.take().is_empty() && four.take().is_empty());
}

/// A link that delivers straight into another node's hub: the room actor and the receiving side
/// together, without a transport.
#[derive(Debug)]
struct Loopback {
    node: NodeId,
    hub: Arc<crate::hub::Hub>,
}

impl PeerOutbox for Loopback {
    fn node(&self) -> NodeId {
        self.node
    }

    fn offer(&self, session: SessionId, item: Outbound) -> bool {
        self.hub.offer(session, item)
    }

    fn fan_out(
        &self,
        room: RoomId,
        seq: Option<Seq>,
        tail: Bytes,
        skip: Option<UserId>,
        stamp: Option<Stamp<'_>>,
    ) -> bool {
        let accepted_at_ms = stamp.map_or(0, |s| s.accepted_at_ms);
        self.hub.fan_out(room, seq, &tail, skip, accepted_at_ms);
        true
    }

    fn drop_user(&self, room: RoomId, user: UserId) {
        self.hub.drop_user(room, user);
    }

    fn room_lost(&self, room: RoomId) {
        self.hub.room_lost(room);
    }
}

#[tokio::test]
async fn sessions_of_another_node_chat_through_its_hub() {
    let f = start(AppendMode::Complete, config()).await;
    let hub = Arc::new(crate::hub::Hub::new());
    let link: Arc<dyn PeerOutbox> = Arc::new(Loopback {
        node: NodeId(2),
        hub: hub.clone(),
    });
    // Bob and carol on node 2: registered and subscribed there, known to the room as node 2's.
    let mut inboxes = Vec::new();
    for (local, user) in [(1, BOB), (2, CAROL)] {
        let (h, inbox) = SessionHandle::new(SessionId::new(NodeId(2), local), user, 64);
        hub.register(h.clone());
        hub.subscribe(ROOM, NodeId(1), h);
        subscribe_ref(
            &f.room,
            SessionRef::Remote(RemoteSession {
                id: SessionId::new(NodeId(2), local),
                user,
                peer: link.clone(),
            }),
        )
        .await;
        inboxes.push(inbox);
    }
    // Bob sends from node 2; alice, local to the room, sees it too.
    let (alice, mut alice_in) = session(1, ALICE);
    subscribe(&f.room, &alice, None).await.expect("subscribes");
    let bob = SessionRef::Remote(RemoteSession {
        id: SessionId::new(NodeId(2), 1),
        user: BOB,
        peer: link.clone(),
    });
    f.room
        .cast(RoomMessage::Publish {
            session: bob,
            receipt: Some("b1".into()),
            trace: crate::trace::TraceParent::new_root(),
            nonce: None,
            draft: crate::room::Draft {
                body: "from node 2".into(),
                ..Default::default()
            },
        })
        .expect("room runs");
    assert_eq!(receipt(&mut inboxes[0]).await.1, 1);
    assert_eq!(event(&mut inboxes[0]).await.0, Some(1));
    assert_eq!(event(&mut inboxes[1]).await.0, Some(1));
    assert_eq!(event(&mut alice_in).await.0, Some(1));

    // The room crashes: both sessions of node 2 learn it from their hub.
    f.room.kill();
    tokio::time::timeout(WAIT, f.room.wait(None))
        .await
        .expect("room stops")
        .expect("wait");
    for inbox in &mut inboxes {
        match next(inbox).await {
            Outbound::SubscriptionLost { room_id } => assert_eq!(room_id, ROOM),
            other => panic!("expected the lost room, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn another_node_subscribes_no_more_sessions_of_a_user_than_a_node_allows() {
    let f = start(AppendMode::Complete, config()).await;
    let two = FakePeer::new(2);
    let max = config().max_sessions_per_user as u64;
    for i in 0..max {
        subscribe_ref(&f.room, remote(&two, i + 1, BOB)).await;
    }
    // One more of bob's (a peer making sessions up) is refused; carol still has her allowance.
    let refused = ask(&f.room, |reply| RoomMessage::Subscribe {
        session: remote(&two, max + 1, BOB),
        since: None,
        reply,
    })
    .await;
    assert!(
        matches!(refused, Err(RoomError::Unavailable(..))),
        "{refused:?}"
    );
    subscribe_ref(&f.room, remote(&two, max + 2, CAROL)).await;
    // Subscribing a session again is no new session; one unsubscribed frees a place.
    subscribe_ref(&f.room, remote(&two, 1, BOB)).await;
    assert_eq!(info(&f.room).await.1 as u64, max + 1);
    f.room
        .cast(RoomMessage::Unsubscribe {
            session_id: SessionId::new(two.node, 1),
        })
        .expect("cast");
    subscribe_ref(&f.room, remote(&two, max + 1, BOB)).await;
    assert_eq!(info(&f.room).await.1 as u64, max + 1);
}
