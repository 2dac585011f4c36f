//! History readers ask the room for what the store may lack ([`RoomMessage::GetRecent`]): the ring
//! answers for the journaled tail, also when the store is behind the journal.

use super::*;
use crate::ports::Store;

/// Journals messages `seqs` of the room from bob (durable at once), as an earlier activation did.
async fn journal_earlier(journal: &FakeJournal, seqs: std::ops::RangeInclusive<Seq>) {
    for seq in seqs {
        let message = ChatMessage {
            room_id: ROOM,
            seq,
            message_id: Uuid::now_v7(),
            sender_id: BOB,
            body: format!("journaled {seq}"),
            created_at_ms: 0,
            nonce: None,
            attachments: Vec::new(),
            ..Default::default()
        };
        crate::ports::append_and_wait(journal, &message, &TraceParent::new_root())
            .await
            .expect("fake append");
    }
}

async fn recent(
    room: &ActorRef<RoomMessage>,
    after: Seq,
    before: Option<Seq>,
    limit: u32,
) -> (Seq, Option<(Seq, Vec<Seq>)>) {
    let r = ask(room, |reply| RoomMessage::GetRecent {
        after,
        before,
        limit,
        reply,
    })
    .await;
    let window = r
        .window
        .map(|w| (w.from, w.messages.iter().map(|m| m.seq).collect()));
    (r.acked_seq, window)
}

#[tokio::test]
async fn the_tail_the_store_lacks_comes_from_the_ring() {
    let store = store();
    store.seed_messages(ROOM, BOB, 8);
    let journal = FakeJournal::new(AppendMode::Complete);
    // 9 and 10 were journaled by an earlier activation; the persister has not stored them yet.
    journal_earlier(&journal, 9..=10).await;
    let f = start_with(store, journal, config()).await;
    // 11 and 12 are published now: acknowledged, never stored (the fake journal does not persist).
    let (alice, mut alice_in) = session(1, ALICE);
    publish_acked(&f.room, &alice, &mut alice_in, 2).await;
    assert_eq!(
        f.store.messages_before(ROOM, None, 50).await.unwrap().len(),
        8
    );

    // The store's page ends at 8: the room has 9..=12.
    assert_eq!(
        recent(&f.room, 8, None, 50).await,
        (12, Some((8, vec![12, 11, 10, 9])))
    );
    let r = ask(&f.room, |reply| RoomMessage::GetRecent {
        after: 8,
        before: None,
        limit: 50,
        reply,
    })
    .await;
    let w = r.window.expect("covered");
    assert_eq!(
        w.messages
            .iter()
            .map(|m| m.body.as_str())
            .collect::<Vec<_>>(),
        ["m2", "m1", "journaled 10", "journaled 9"]
    );
    assert!(w.messages.iter().all(|m| m.room_id == ROOM));
    assert_eq!(w.messages[0].sender_id, ALICE);
    // Paging: `before` bounds it, `limit` cuts it (the window then ends at the oldest returned).
    assert_eq!(
        recent(&f.room, 8, Some(11), 50).await,
        (12, Some((8, vec![10, 9])))
    );
    assert_eq!(
        recent(&f.room, 8, None, 3).await,
        (12, Some((9, vec![12, 11, 10])))
    );
    assert_eq!(
        recent(&f.room, 8, Some(9), 50).await,
        (12, Some((8, vec![])))
    );
    // Nothing newer than the store's page: the common case.
    assert_eq!(
        recent(&f.room, 12, None, 50).await,
        (12, Some((12, vec![])))
    );
    assert_eq!(
        recent(&f.room, 5, Some(6), 50).await,
        (12, Some((5, vec![])))
    );
}

#[tokio::test]
async fn a_journal_further_ahead_than_the_ring_fills_the_ring_with_its_newest() {
    let store = store();
    store.seed_messages(ROOM, BOB, 3);
    let journal = FakeJournal::new(AppendMode::Complete);
    journal_earlier(&journal, 4..=20).await;
    let config = RoomConfig {
        ring_size: 4,
        ..config()
    };
    let f = start_with(store, journal, config).await;
    assert_eq!(info(&f.room).await, (20, 0));

    // The ring is 17..=20, not 4..=7: resume from anywhere covers everything up to 20.
    let (carol, _carol_in) = session(3, CAROL);
    let ok = subscribe(&f.room, &carol, Some(10)).await.unwrap();
    assert_eq!(ok.backfill, Some((11, 16)));
    assert_eq!(
        ok.replay.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [17, 18, 19, 20]
    );
    // History: a full page from the ring; a wider window is left to the journal.
    assert_eq!(
        recent(&f.room, 3, None, 4).await,
        (20, Some((16, vec![20, 19, 18, 17])))
    );
    assert_eq!(recent(&f.room, 3, None, 5).await, (20, None));
    assert_eq!(recent(&f.room, 3, Some(17), 50).await, (20, None));
}
