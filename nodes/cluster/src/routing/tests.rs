//! The routing of one node against its own pieces: requests and their answers, waiting for an
//! owner, fan-outs filtered by epoch, and the subscriptions lost with a link.

use std::time::Duration;

use banter_actors::delivery::{Outbound, SessionInbox};
use banter_actors::directory::Directory;
use banter_actors::model::UserId;
use banter_actors::ports::{Ports, SystemClock};
use banter_actors::presence::Presence;
use banter_actors::room::{RoomConfig, Rooms};
use banter_actors::trace::TraceParent;
use banter_actors::user::{Attached, UserConfig};
use banter_store::{LocalJournal, SqliteStore};
use bytes::Bytes;
use ractor::Actor;

use super::*;
use crate::links::{Inbound, LinkLimits};

const ROOM: RoomId = RoomId(42);
const PEER: NodeId = NodeId(2);

struct Fixture {
    routes: Arc<ClusterRoutes>,
    users: Arc<Users>,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("banter.db");
    let store = Arc::new(
        SqliteStore::open(path.to_str().expect("utf-8"))
            .await
            .expect("store"),
    );
    let placement = Placement::new(NodeId(1), 16);
    let ports = Ports {
        journal: Arc::new(LocalJournal::start(store.clone(), 16, 64)),
        store,
        clock: Arc::new(SystemClock),
        ownership: placement.clone(),
        spans: Arc::new(banter_actors::trace::NoSpans),
    };
    let rooms = Rooms {
        ports,
        config: RoomConfig {
            ring_size: 8,
            idle_timeout: Duration::from_secs(60),
            typing_interval: Duration::from_secs(1),
            max_sessions_per_user: 32,
        },
    };
    let (directory, _) = Actor::spawn(None, Directory::new(rooms), ())
        .await
        .expect("directory");
    let limits = LinkLimits {
        down_after: Duration::from_secs(3),
        max_unconfirmed: 100,
        max_frame_bytes: 1 << 19,
    };
    let links = Arc::new(Links::new(NodeId(1), limits));
    let presence = Presence::new(Arc::new(SystemClock));
    let users = Users::new(
        UserConfig {
            send_per_second: std::num::NonZeroU32::new(100).expect("non-zero"),
            send_burst: std::num::NonZeroU32::new(100).expect("non-zero"),
            max_sessions: 8,
        },
        presence.clone(),
    );
    let routes = ClusterRoutes::new(
        LocalRoutes::new(directory),
        users.clone(),
        placement,
        links,
        presence,
        None,
    );
    Fixture {
        routes,
        users,
        _dir: dir,
    }
}

fn session(routes: &ClusterRoutes, local: u64) -> (SessionHandle, SessionInbox) {
    let (h, inbox) = SessionHandle::new(SessionId::new(NodeId(1), local), UserId(7), 16);
    routes.session_started(&h);
    (h, inbox)
}

fn fan_out(epoch: u64, seq: u64) -> Envelope {
    Envelope {
        from_node: PEER.0,
        body: Some(envelope::Body::FanOut(v1::FanOut {
            room_id: ROOM.0,
            seq: Some(seq),
            tail: Bytes::from_static(b"tail"),
            skip_user: None,
            epoch,
            sent_at_ms: 1_700_000_000_000,
            traceparent: String::new(),
            accepted_at_ms: 0,
        })),
    }
}

#[test]
fn an_answer_counts_only_from_the_node_asked_and_once() {
    let requests = Requests::default();
    let (id, mut rx) = requests.open(PEER);
    let moved = || room_reply::Result::Moved(v1::Moved { shard: 1, epoch: 2 });
    assert!(
        !requests.answer(NodeId(3), id, moved()),
        "another node cannot answer"
    );
    assert!(requests.answer(PEER, id, moved()));
    assert!(rx.try_recv().is_ok());
    assert!(!requests.answer(PEER, id, moved()), "answered once");
    let (id, mut rx) = requests.open(PEER);
    requests.node_down(PEER);
    assert!(
        rx.try_recv().is_err(),
        "its node went down: the request fails"
    );
    assert!(!requests.answer(PEER, id, moved()));
}

#[tokio::test]
async fn a_send_to_a_room_nobody_serves_waits_then_fails_to_its_session() {
    let f = fixture().await;
    // The store is open (its pool needs real time); the wait for an owner runs on paused time.
    tokio::time::pause();
    let (h, mut inbox) = session(&f.routes, 1);
    let started = Instant::now();
    let msg = RoomMessage::Publish {
        session: h.into(),
        receipt: Some("r1".into()),
        trace: TraceParent::new_root(),
        nonce: None,
        draft: banter_actors::room::Draft {
            body: "hello".into(),
            ..Default::default()
        },
    };
    f.routes.to_room(ROOM, msg).await;
    assert!(
        started.elapsed() >= ClusterRoutes::WAIT,
        "it waited for an owner"
    );
    match inbox.try_recv() {
        Some(Outbound::Failed {
            receipt_id,
            message,
        }) => {
            assert_eq!(receipt_id.as_deref(), Some("r1"));
            assert!(message.contains("no node serves it"), "{message}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn fan_outs_from_an_older_owner_of_the_shard_are_dropped() {
    let f = fixture().await;
    let (h, mut inbox) = session(&f.routes, 1);
    f.routes.hub().subscribe(ROOM, PEER, h);
    f.routes.deliver(PEER, fan_out(5, 1));
    f.routes.deliver(PEER, fan_out(4, 2));
    f.routes.deliver(PEER, fan_out(5, 3));
    f.routes.deliver(PEER, fan_out(6, 4));
    let mut seqs = Vec::new();
    while let Some(Outbound::Room { seq, .. }) = inbox.try_recv() {
        seqs.extend(seq);
    }
    assert_eq!(seqs, [1, 3, 4], "the epoch-4 event is a zombie's");
}

#[tokio::test]
async fn fan_outs_with_bogus_times_and_trace_contexts_are_delivered_without_harm() {
    let f = fixture().await;
    let (h, mut inbox) = session(&f.routes, 1);
    f.routes.hub().subscribe(ROOM, PEER, h);
    let bogus = [
        (i64::MAX, i64::MIN, "00-zz-zz-01".to_owned()),
        (i64::MIN, i64::MAX, "x".repeat(4096)),
        (
            -1,
            -1,
            format!("00-{}-{}-01", "0".repeat(32), "0".repeat(16)),
        ),
        (
            0,
            0,
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff".to_owned(),
        ),
        (
            1,
            1,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra".to_owned(),
        ),
    ];
    for (seq, (sent_at_ms, accepted_at_ms, traceparent)) in (1..).zip(bogus) {
        let mut envelope = fan_out(5, seq);
        let Some(envelope::Body::FanOut(fan)) = envelope.body.as_mut() else {
            unreachable!("a fan-out")
        };
        fan.sent_at_ms = sent_at_ms;
        fan.accepted_at_ms = accepted_at_ms;
        fan.traceparent = traceparent;
        f.routes.deliver(PEER, envelope);
    }
    let mut seqs = Vec::new();
    while let Some(Outbound::Room { seq, .. }) = inbox.try_recv() {
        seqs.extend(seq);
    }
    assert_eq!(seqs, [1, 2, 3, 4, 5], "each event reached the session");
}

#[tokio::test]
async fn a_peers_publish_with_malformed_attachments_or_kind_fails_to_its_session_and_is_counted() {
    let f = fixture().await;
    let got = link_peer(&f).await;
    let attachment = |id: Vec<u8>| v1::Attachment {
        id: Bytes::from(id),
        name: "x".into(),
        content_type: "image/png".into(),
        size: 1,
        width: 0,
        height: 0,
        thumbnail: Bytes::new(),
    };
    // Bad attachments, then kinds that name no room item: an unknown code, an event without a
    // target, a message with one.
    let bad: [(Vec<v1::Attachment>, i32, u64); 5] = [
        (vec![attachment(vec![1, 2, 3])], 0, 0),
        ((0..11).map(|_| attachment(vec![7; 16])).collect(), 0, 0),
        (Vec::new(), 7, 1),
        (Vec::new(), 1, 0),
        (Vec::new(), 0, 5),
    ];
    for (i, (attachments, kind, target_seq)) in bad.into_iter().enumerate() {
        let envelope = Envelope {
            from_node: PEER.0,
            body: Some(envelope::Body::ToRoom(v1::ToRoom {
                request_id: 0,
                room_id: ROOM.0,
                shard: f.routes.placement.shard_of_room(ROOM).0,
                epoch: 3,
                session: Some(session_addr(SessionId::new(PEER, 5), UserId(7))),
                op: Some(to_room::Op::Publish(v1::Publish {
                    receipt: Some(format!("r{i}")),
                    body: "hi".into(),
                    traceparent: String::new(),
                    nonce: None,
                    attachments,
                    kind,
                    target_seq,
                    content_type: None,
                })),
            })),
        };
        f.routes.deliver(PEER, envelope);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let failed: Vec<String> = got
        .0
        .lock()
        .expect("lock")
        .iter()
        .filter_map(|e| match &e.body {
            Some(envelope::Body::ToSession(s)) => Some(format!("{:?}", s.item)),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 5, "each sender told: {failed:?}");
    assert!(
        failed[..2]
            .iter()
            .all(|f| f.contains("malformed attachments")),
        "{failed:?}"
    );
    assert!(
        failed[2..].iter().all(|f| f.contains("malformed kind")),
        "{failed:?}"
    );
}

#[tokio::test]
async fn a_link_that_goes_down_loses_the_subscriptions_to_its_rooms() {
    let f = fixture().await;
    let (h, mut inbox) = session(&f.routes, 1);
    let other_room = RoomId(43);
    f.routes.hub().subscribe(ROOM, PEER, h.clone());
    f.routes.hub().subscribe(other_room, NodeId(3), h);
    f.routes.peer_down(PEER);
    assert_eq!(
        inbox.try_recv(),
        Some(Outbound::SubscriptionLost { room_id: ROOM })
    );
    assert_eq!(
        inbox.try_recv(),
        None,
        "the room on node 3 is still subscribed"
    );
    assert_eq!(f.routes.hub().node_of(other_room), Some(NodeId(3)));
}

#[tokio::test]
async fn items_for_a_session_find_it_and_bad_ones_are_dropped() {
    let f = fixture().await;
    let (_h, mut inbox) = session(&f.routes, 9);
    let receipt = Outbound::Receipt {
        receipt_id: "r".into(),
        seq: 3,
        message_id: uuid::Uuid::nil(),
    };
    let to_session = |item| Envelope {
        from_node: PEER.0,
        body: Some(envelope::Body::ToSession(v1::ToSession {
            session: 9,
            item,
        })),
    };
    f.routes
        .deliver(PEER, to_session(Some(receipt.clone().into())));
    f.routes.deliver(PEER, to_session(None));
    assert_eq!(inbox.try_recv(), Some(receipt));
    assert_eq!(inbox.try_recv(), None);
}

/// Records what the peer's router receives.
#[derive(Default)]
struct PeerRouter(Mutex<Vec<Envelope>>);

impl crate::router::Handler for PeerRouter {
    fn deliver(&self, envelope: Envelope) {
        self.0
            .lock()
            .expect("lock")
            .extend(crate::links::unbatch(envelope));
    }
    fn ask(&self, envelope: Envelope) -> Envelope {
        envelope
    }
}

struct Idle;

impl Actor for Idle {
    type Msg = ();
    type State = ();
    type Arguments = ();
    async fn pre_start(
        &self,
        _: ractor::ActorRef<()>,
        _: (),
    ) -> Result<(), ractor::ActorProcessingErr> {
        Ok(())
    }
}

/// Links the fixture's node to PEER, which owns ROOM's shard; returns what PEER receives.
async fn link_peer(f: &Fixture) -> Arc<PeerRouter> {
    let got = Arc::new(PeerRouter::default());
    let name = format!("routing-test-{}", rand::random::<u64>());
    let router = crate::router::Router::spawn(&name, got.clone())
        .await
        .expect("router");
    let (session, _) = Actor::spawn(None, Idle, ()).await.expect("session");
    f.routes
        .links
        .up(PEER, session.get_cell(), router.actor.clone());
    let shard = f.routes.placement.shard_of_room(ROOM);
    f.routes.placement.set_owner(shard, PEER, Epoch(3));
    got
}

fn publish(h: &SessionHandle, receipt: &str) -> RoomMessage {
    RoomMessage::Publish {
        session: h.clone().into(),
        receipt: Some(receipt.into()),
        trace: TraceParent::new_root(),
        nonce: None,
        draft: banter_actors::room::Draft {
            body: "hello".into(),
            ..Default::default()
        },
    }
}

#[tokio::test]
async fn sends_unanswered_when_the_rooms_node_goes_down_fail_to_their_session() {
    let f = fixture().await;
    let got = link_peer(&f).await;
    let (answered, mut answered_in) = session(&f.routes, 1);
    let (waiting, mut waiting_in) = session(&f.routes, 2);
    f.routes.to_room(ROOM, publish(&answered, "a1")).await;
    f.routes.to_room(ROOM, publish(&waiting, "w1")).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let sent: Vec<_> = got.0.lock().expect("lock").clone();
    let to_rooms = sent
        .iter()
        .filter(|e| matches!(&e.body, Some(envelope::Body::ToRoom(r)) if r.epoch == 3))
        .count();
    assert_eq!(
        to_rooms, 2,
        "both SENDs went to the owner with its epoch: {sent:?}"
    );
    // The owner answers the first; then its link goes down.
    let receipt = Outbound::Receipt {
        receipt_id: "a1".into(),
        seq: 1,
        message_id: uuid::Uuid::nil(),
    };
    f.routes.deliver(
        PEER,
        Envelope {
            from_node: PEER.0,
            body: Some(envelope::Body::ToSession(v1::ToSession {
                session: 1,
                item: Some(receipt.clone().into()),
            })),
        },
    );
    f.routes.peer_down(PEER);
    assert_eq!(answered_in.try_recv(), Some(receipt));
    assert_eq!(answered_in.try_recv(), None, "nothing unanswered: no error");
    match waiting_in.try_recv() {
        Some(Outbound::Failed { message, .. }) => {
            assert!(
                message.contains("outcome of unanswered messages is unknown"),
                "{message}"
            )
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn notify(event: &str) -> Envelope {
    Envelope {
        from_node: PEER.0,
        body: Some(envelope::Body::ToUser(v1::ToUser {
            shard: 0,
            epoch: 0,
            user_id: 7,
            op: Some(to_user::Op::Notify(v1::Notify {
                event: event.into(),
                body: Bytes::from_static(b"{}"),
            })),
        })),
    }
}

#[tokio::test]
async fn a_user_event_from_another_node_reaches_the_users_sessions_here_and_unknown_ones_do_not() {
    let f = fixture().await;
    let (h, mut inbox) = session(&f.routes, 1);
    let _attached: Attached = f.users.attach(&h).expect("attached");
    f.routes.deliver(PEER, notify("made.up"));
    f.routes.deliver(PEER, notify("room.added"));
    let item = tokio::time::timeout(Duration::from_secs(5), inbox.recv())
        .await
        .expect("in time");
    match item {
        Some(Outbound::User { tail }) => {
            let text = String::from_utf8_lossy(&tail);
            assert!(text.contains("room.added"), "{text}");
        }
        other => panic!("expected the user event, got {other:?}"),
    }
    assert_eq!(inbox.try_recv(), None, "the made-up event was dropped");
}

#[tokio::test]
async fn a_peers_request_to_a_users_actor_this_node_does_not_serve_is_answered_moved() {
    let f = fixture().await;
    let got = link_peer(&f).await;
    let request = |op: &[u8]| Envelope {
        from_node: PEER.0,
        body: Some(envelope::Body::ToAccount(v1::ToAccount {
            shard: 0,
            epoch: 1,
            user_id: 7,
            request_id: 11,
            op: Bytes::copy_from_slice(op),
        })),
    };
    // Well formed or not, it is not this node's to serve: the asker looks again.
    f.routes
        .deliver(PEER, request(br#"{"AvatarUrl":{"of":8}}"#));
    f.routes.deliver(PEER, request(b"\xff not json"));
    tokio::time::sleep(Duration::from_millis(50)).await;
    let replies: Vec<(u64, bool, usize)> = got
        .0
        .lock()
        .expect("lock")
        .iter()
        .filter_map(|e| match &e.body {
            Some(envelope::Body::AccountReply(r)) => Some((r.request_id, r.moved, r.answer.len())),
            _ => None,
        })
        .collect();
    assert_eq!(replies, [(11, true, 0), (11, true, 0)]);
}
