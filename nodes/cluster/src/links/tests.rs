use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorStatus};

use super::*;
use crate::router::Router;

/// Records what a peer's router receives: the envelopes, and the frames that carried them.
#[derive(Default)]
struct Recorded(Mutex<Vec<Envelope>>, std::sync::atomic::AtomicUsize);

impl Handler for Recorded {
    fn deliver(&self, envelope: Envelope) {
        self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.0
            .lock()
            .expect("lock")
            .extend(crate::links::unbatch(envelope));
    }
    fn ask(&self, envelope: Envelope) -> Envelope {
        envelope
    }
}

/// Stands for a ractor_cluster session: an actor that only waits to be stopped.
struct Session;

impl Actor for Session {
    type Msg = ();
    type State = ();
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

const PEER: NodeId = NodeId(2);

struct Fixture {
    links: Arc<Links>,
    peer_got: Arc<Recorded>,
    session: ActorRef<()>,
}

async fn fixture(max_unconfirmed: u64) -> Fixture {
    let links = Arc::new(Links::new(
        NodeId(1),
        LinkLimits {
            down_after: Duration::from_secs(3),
            max_unconfirmed,
            max_frame_bytes: 1 << 19,
        },
    ));
    let peer_got = Arc::new(Recorded::default());
    let name = format!("links-test-{}", rand::random::<u64>());
    let router = Router::spawn(&name, peer_got.clone())
        .await
        .expect("router");
    let (session, _) = Actor::spawn(None, Session, ()).await.expect("session");
    links.up(PEER, session.get_cell(), router.actor.clone());
    Fixture {
        links,
        peer_got,
        session,
    }
}

/// An envelope for the peer's router to hand to its handler (probes it answers itself).
fn chat() -> Envelope {
    Envelope {
        from_node: 0,
        body: Some(envelope::Body::Hello(banter_proto::v1::Hello {
            node: 1,
            advertise: "a:1".into(),
        })),
    }
}

/// An envelope the peer sends us: a heartbeat confirming `received`.
fn confirms(received: u64) -> Envelope {
    Envelope {
        from_node: PEER.0,
        body: Some(envelope::Body::Heartbeat(Heartbeat {
            sent_ms: 0,
            echo_ms: 1,
            received,
        })),
    }
}

async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
}

#[tokio::test]
async fn a_peer_that_confirms_nothing_has_its_link_dropped_at_the_bound() {
    let f = fixture(5).await;
    for _ in 0..5 {
        f.links.send(PEER, chat()).expect("within the bound");
    }
    // They leave (in one frame); what is still queued when a link drops is lost with it.
    settle().await;
    assert_eq!(f.links.send(PEER, chat()), Err(SendError::Congested(PEER)));
    assert!(!f.links.is_up(PEER));
    assert_eq!(f.links.send(PEER, chat()), Err(SendError::Down(PEER)));
    settle().await;
    assert_eq!(
        f.session.get_status(),
        ActorStatus::Stopped,
        "session closed"
    );
    let got = f.peer_got.0.lock().expect("lock");
    assert_eq!(got.len(), 5);
    assert!(
        got.iter().all(|e| e.from_node == 1),
        "stamped with the sender's id"
    );
}

#[tokio::test]
async fn confirmations_make_room_again() {
    let f = fixture(5).await;
    let handler = LinkHandler(f.links.clone());
    for round in 0..4u64 {
        for _ in 0..5 {
            f.links.send(PEER, chat()).expect("within the bound");
        }
        handler.deliver(confirms((round + 1) * 5));
        assert_eq!(
            f.links.counts(PEER),
            Some(((round + 1) * 5, round + 1, (round + 1) * 5))
        );
    }
    // A stale confirmation (reordered) never lowers what was confirmed.
    handler.deliver(confirms(3));
    assert_eq!(f.links.counts(PEER).map(|c| c.2), Some(20));
}

#[tokio::test]
async fn a_ping_is_answered_with_a_pong_carrying_what_was_received() {
    let f = fixture(100).await;
    let handler = LinkHandler(f.links.clone());
    handler.deliver(chat_from_peer());
    handler.deliver(Envelope {
        from_node: PEER.0,
        body: Some(envelope::Body::Heartbeat(Heartbeat {
            sent_ms: 42,
            echo_ms: 0,
            received: 0,
        })),
    });
    settle().await;
    let got = f.peer_got.0.lock().expect("lock");
    let Some(Envelope {
        body: Some(envelope::Body::Heartbeat(pong)),
        ..
    }) = got.last()
    else {
        panic!("no pong: {got:?}");
    };
    assert_eq!((pong.echo_ms, pong.received), (42, 2));
}

fn chat_from_peer() -> Envelope {
    Envelope {
        from_node: PEER.0,
        body: Some(envelope::Body::Probe(vec![9].into())),
    }
}

#[tokio::test]
async fn envelopes_from_a_node_without_a_link_are_refused() {
    let f = fixture(100).await;
    let handler = LinkHandler(f.links.clone());
    handler.deliver(Envelope {
        from_node: 77,
        ..chat_from_peer()
    });
    assert_eq!(f.links.counts(PEER).map(|c| c.1), Some(0));
    handler.deliver(chat_from_peer());
    assert_eq!(f.links.counts(PEER).map(|c| c.1), Some(1));
}

#[tokio::test(start_paused = true)]
async fn a_silent_peer_is_down_after_the_limit_and_pinged_until_then() {
    let f = fixture(1000).await;
    let handler = LinkHandler(f.links.clone());
    for _ in 0..2 {
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(f.links.tick().is_empty());
    }
    // Any envelope from the peer counts as a sign of life.
    handler.deliver(chat_from_peer());
    tokio::time::advance(Duration::from_millis(2900)).await;
    assert!(f.links.tick().is_empty(), "heard 2.9 s ago: still up");
    tokio::time::advance(Duration::from_millis(200)).await;
    assert_eq!(f.links.tick(), vec![PEER]);
    assert!(!f.links.is_up(PEER));
    settle().await;
    assert_eq!(f.session.get_status(), ActorStatus::Stopped);
    let pings = f
        .peer_got
        .0
        .lock()
        .expect("lock")
        .iter()
        .filter(|e| matches!(&e.body, Some(envelope::Body::Heartbeat(h)) if h.echo_ms == 0))
        .count();
    assert_eq!(pings, 3, "one ping per tick while up, none once down");
}

#[tokio::test]
async fn a_disconnect_drops_only_the_link_of_that_session() {
    let f = fixture(100).await;
    let (other, _) = Actor::spawn(None, Session, ()).await.expect("session");
    assert_eq!(f.links.disconnected(&other.get_cell()), None);
    assert!(f.links.is_up(PEER));
    assert_eq!(f.links.disconnected(&f.session.get_cell()), Some(PEER));
    assert!(!f.links.is_up(PEER));
}

fn hello(node: u32) -> Envelope {
    Envelope {
        from_node: 0,
        body: Some(envelope::Body::Hello(banter_proto::v1::Hello {
            node,
            advertise: String::new(),
        })),
    }
}

#[tokio::test]
async fn envelopes_queued_together_leave_in_one_frame_in_order() {
    let f = fixture(1000).await;
    for node in 0..10 {
        f.links.send(PEER, hello(node)).expect("up");
    }
    settle().await;
    let nodes: Vec<u32> = f
        .peer_got
        .0
        .lock()
        .expect("lock")
        .iter()
        .map(|e| match &e.body {
            Some(envelope::Body::Hello(h)) => h.node,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(nodes, (0..10).collect::<Vec<_>>());
    assert_eq!(f.peer_got.1.load(std::sync::atomic::Ordering::Relaxed), 1);
    // An idle link sends the next one at once, alone.
    f.links.send(PEER, hello(10)).expect("up");
    settle().await;
    assert_eq!(f.peer_got.1.load(std::sync::atomic::Ordering::Relaxed), 2);
    assert_eq!(f.links.counts(PEER).map(|c| c.0), Some(11));
}

#[test]
fn frames_hold_at_most_max_bytes_and_a_large_envelope_goes_alone() {
    let queued = |sizes: &[usize]| -> Vec<(Envelope, usize)> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, size)| (hello(i as u32), *size))
            .collect()
    };
    let shape = |frames: Vec<Envelope>| -> Vec<usize> {
        frames.into_iter().map(|f| unbatch(f).len()).collect()
    };
    // 94 + 6 bytes each: two fit in 200, a third does not.
    assert_eq!(shape(frames(1, queued(&[94; 5]), 200)), vec![2, 2, 1]);
    assert_eq!(
        shape(frames(1, queued(&[10, 1000, 10]), 200)),
        vec![1, 1, 1]
    );
    assert_eq!(shape(frames(1, queued(&[]), 200)), Vec::<usize>::new());
    let one = frames(7, queued(&[10]), 200);
    assert!(
        matches!(&one[0].body, Some(envelope::Body::Hello(_))),
        "a lone envelope is not wrapped"
    );
    let two = frames(7, queued(&[10, 10]), 200);
    assert_eq!(two[0].from_node, 7, "a batch carries the sender's id");
}

/// Records the envelopes routing would get.
#[derive(Default)]
struct Routed(Mutex<Vec<Envelope>>);

impl Inbound for Routed {
    fn deliver(&self, _from: NodeId, envelope: Envelope) {
        self.0.lock().expect("lock").push(envelope);
    }
    fn peer_down(&self, _node: NodeId) {}
}

fn batch(envelopes: Vec<Envelope>) -> Envelope {
    Envelope {
        from_node: PEER.0,
        body: Some(envelope::Body::Batch(banter_proto::v1::Batch { envelopes })),
    }
}

#[tokio::test]
async fn a_batch_counts_each_envelope_and_refuses_a_nested_batch() {
    let f = fixture(1000).await;
    let routed = Arc::new(Routed::default());
    f.links.attach(routed.clone());
    let handler = LinkHandler(f.links.clone());
    for _ in 0..3 {
        f.links.send(PEER, chat()).expect("up");
    }
    let probe = |n: u8| Envelope {
        from_node: 0,
        body: Some(envelope::Body::Probe(vec![n].into())),
    };
    handler.deliver(batch(vec![
        probe(1),
        confirms(3),
        batch(vec![probe(2)]),
        probe(3),
    ]));
    assert_eq!(
        f.links.counts(PEER),
        Some((3, 4, 3)),
        "(sent, received, confirmed)"
    );
    let routed = routed.0.lock().expect("lock");
    assert_eq!(
        *routed,
        vec![probe(1), probe(3)],
        "the nested batch is refused"
    );
    // From a node without a link, a whole batch is refused.
    drop(routed);
    handler.deliver(Envelope {
        from_node: 77,
        ..batch(vec![probe(4)])
    });
    assert_eq!(f.links.counts(PEER).map(|c| c.1), Some(4));
}
