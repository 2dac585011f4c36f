use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorStatus};

use super::*;
use crate::router::Router;

/// Records what a peer's router receives.
#[derive(Default)]
struct Recorded(Mutex<Vec<Envelope>>);

impl Handler for Recorded {
    fn deliver(&self, envelope: Envelope) {
        self.0.lock().expect("lock").push(envelope);
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
