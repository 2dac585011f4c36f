//! Placement: a room serves only while its node may (its shard's lease), checked before activation,
//! before each append and before each RECEIPT.

use std::sync::atomic::{AtomicBool, Ordering};

use super::*;
use crate::directory::RouteError;
use crate::ports::Ownership;
use crate::shard::{Epoch, ShardId, Term};

/// The term of the node's lease on the room's shard.
const TERM: Term = Term {
    shard: ShardId(3),
    epoch: Epoch(7),
};

/// A node's placement with one switch: does it still hold the room's shard?
#[derive(Default)]
struct Switch(AtomicBool);

impl Ownership for Switch {
    fn serving(&self, _room: RoomId) -> Option<Term> {
        self.0.load(Ordering::Relaxed).then_some(TERM)
    }

    fn serving_source(&self, _source: crate::ports::SourceId) -> Option<Term> {
        self.0.load(Ordering::Relaxed).then_some(TERM)
    }
}

async fn start_owned(mode: AppendMode, serving: bool) -> (Fixture, Arc<Switch>) {
    let switch = Arc::new(Switch(AtomicBool::new(serving)));
    let (store, journal) = (store(), FakeJournal::new(mode));
    let (directory_ref, directory) = RecordingDirectory::<Rooms>::spawn().await;
    let mut ports = ports(&store, &journal);
    ports.ownership = switch.clone();
    let args = RoomArguments {
        room_id: ROOM,
        ports,
        config: config(),
        directory: directory_ref,
    };
    let room = match Actor::spawn(None, Room, args).await {
        Ok((room, _)) => room,
        Err(e) => panic!("room did not activate: {e}"),
    };
    let fixture = Fixture {
        store,
        journal,
        room,
        directory,
    };
    (fixture, switch)
}

async fn stopped(room: &ActorRef<RoomMessage>) {
    for _ in 0..200 {
        if room.get_status() == ractor::ActorStatus::Stopped {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the room is still running");
}

#[tokio::test]
async fn a_room_does_not_activate_on_a_node_that_does_not_serve_it() {
    let switch = Arc::new(Switch::default());
    let (store, journal) = (store(), FakeJournal::new(AppendMode::Complete));
    let (directory, _rx) = RecordingDirectory::<Rooms>::spawn().await;
    let mut ports = ports(&store, &journal);
    ports.ownership = switch;
    let entity = Rooms {
        ports,
        config: config(),
    };
    let spawned = crate::directory::Entity::spawn(&entity, ROOM, directory.get_cell()).await;
    assert!(matches!(spawned, Err(RouteError::Moved)), "{spawned:?}");
    assert_eq!(
        store.room_loads(),
        0,
        "nothing read for a room served elsewhere"
    );
}

#[tokio::test]
async fn a_room_that_lost_its_shard_refuses_sends_and_stops_and_subscribers_resubscribe() {
    let (f, switch) = start_owned(AppendMode::Complete, true).await;
    let (alice, mut alice_in) = session(1, ALICE);
    let (bob, mut bob_in) = session(2, BOB);
    subscribe(&f.room, &bob, None).await.expect("subscribed");
    publish_acked(&f.room, &alice, &mut alice_in, 2).await;
    assert_eq!(delivered_seqs(&mut bob_in), vec![1, 2]);
    assert_eq!(
        f.journal.terms(),
        [TERM, TERM],
        "records carry their lease's term"
    );

    switch.0.store(false, Ordering::Relaxed);
    publish(&f.room, &alice, "r3", "after the move");
    let (receipt, message) = failed(&mut alice_in).await;
    assert_eq!(receipt.as_deref(), Some("r3"));
    assert_eq!(message, RoomError::Moved(ROOM).to_string());
    stopped(&f.room).await;
    assert_eq!(f.journal.appended().len(), 2, "nothing appended once lost");
    assert_eq!(
        next(&mut bob_in).await,
        Outbound::SubscriptionLost { room_id: ROOM }
    );
}

#[tokio::test]
async fn an_append_settled_after_the_shard_was_lost_is_never_acknowledged_or_delivered() {
    let (f, switch) = start_owned(AppendMode::Hold, true).await;
    let (alice, mut alice_in) = session(1, ALICE);
    let (bob, mut bob_in) = session(2, BOB);
    subscribe(&f.room, &bob, None).await.expect("subscribed");
    publish(&f.room, &alice, "r1", "in flight");
    info(&f.room).await;
    assert_eq!(f.journal.held(ROOM), vec![1]);

    // The node pauses past its lease; the journal then reports the append durable.
    switch.0.store(false, Ordering::Relaxed);
    f.journal.complete(ROOM, 1, Ok(())).await;
    let (receipt, message) = failed(&mut alice_in).await;
    assert_eq!(receipt.as_deref(), Some("r1"));
    assert!(message.contains("outcome unknown"), "{message}");
    stopped(&f.room).await;
    assert_eq!(
        drain(&mut bob_in),
        vec![Outbound::SubscriptionLost { room_id: ROOM }],
        "no MESSAGE for a record the next owner may have fenced off"
    );
}

#[tokio::test]
async fn a_subscribe_after_the_shard_was_lost_is_refused() {
    let (f, switch) = start_owned(AppendMode::Complete, true).await;
    switch.0.store(false, Ordering::Relaxed);
    let (bob, _bob_in) = session(2, BOB);
    let refused = subscribe(&f.room, &bob, None).await;
    assert!(
        matches!(refused, Err(RoomError::Moved(ROOM))),
        "{refused:?}"
    );
    stopped(&f.room).await;
}

#[tokio::test]
async fn a_room_told_to_check_after_its_shard_went_elsewhere_stops_and_its_subscribers_resubscribe()
{
    let (f, switch) = start_owned(AppendMode::Complete, true).await;
    let (bob, mut bob_in) = session(2, BOB);
    subscribe(&f.room, &bob, None).await.expect("subscribed");
    f.room.cast(RoomMessage::CheckOwner).expect("room runs");
    info(&f.room).await;
    assert!(
        drain(&mut bob_in).is_empty(),
        "still served: nothing happens"
    );
    switch.0.store(false, Ordering::Relaxed);
    f.room.cast(RoomMessage::CheckOwner).expect("room runs");
    stopped(&f.room).await;
    assert_eq!(
        next(&mut bob_in).await,
        Outbound::SubscriptionLost { room_id: ROOM }
    );
}
