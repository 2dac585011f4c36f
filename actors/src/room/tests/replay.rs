//! Replay on subscribe: the ring, the backfill range, and what a room knows after activation.

use super::*;

#[tokio::test]
async fn subscribe_since_inside_the_ring_replays_exactly_the_missed() {
    let f = start(AppendMode::Complete, config()).await;
    let (alice, mut alice_in) = session(1, ALICE);
    publish_acked(&f.room, &alice, &mut alice_in, 5).await;

    let (bob, mut bob_in) = session(2, BOB);
    let ok = subscribe(&f.room, &bob, Some(2)).await.unwrap();
    assert_eq!(ok.backfill, None);
    assert_eq!(ok.last_seq, 5);
    let replayed: Vec<(Seq, String, String)> = ok
        .replay
        .iter()
        .map(|(s, tail)| {
            let frame = frame(tail);
            (
                *s,
                header(&frame, "seq").to_owned(),
                String::from_utf8(frame.body.to_vec()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        replayed,
        [
            (3, "3".to_owned(), "m3".to_owned()),
            (4, "4".to_owned(), "m4".to_owned()),
            (5, "5".to_owned(), "m5".to_owned()),
        ]
    );

    for since in [Some(5), Some(7), None] {
        let (s, _in) = session(10, CAROL);
        let ok = subscribe(&f.room, &s, since).await.unwrap();
        assert_eq!((ok.backfill, ok.replay.len()), (None, 0), "since {since:?}");
    }

    // Live from there on.
    publish(&f.room, &alice, "r6", "m6");
    receipt(&mut alice_in).await;
    assert_eq!(event(&mut bob_in).await.0, Some(6));
}

/// Checks that a subscribe plan covers `since+1..=last` exactly once, in order.
fn assert_covers(ok: &SubscribeOk, since: Seq, last: Seq) {
    let mut seqs: Vec<Seq> = ok
        .backfill
        .map_or_else(Vec::new, |(a, b)| (a..=b).collect());
    seqs.extend(ok.replay.iter().map(|(s, _)| *s));
    let expected: Vec<Seq> = (since + 1..=last).collect();
    assert_eq!(
        seqs,
        expected,
        "since {since}: backfill {:?} + replay must cover {}..={last}",
        ok.backfill,
        since + 1
    );
    assert_eq!(ok.last_seq, last);
}

#[tokio::test]
async fn subscribe_older_than_the_ring_gets_backfill_then_replay_without_gap() {
    let config = RoomConfig {
        ring_size: 4,
        ..config()
    };
    let f = start(AppendMode::Complete, config).await;
    let (alice, mut alice_in) = session(1, ALICE);
    publish_acked(&f.room, &alice, &mut alice_in, 10).await;

    let (bob, _bob_in) = session(2, BOB);
    let ok = subscribe(&f.room, &bob, Some(3)).await.unwrap();
    assert_eq!(ok.backfill, Some((4, 6)));
    let replayed: Vec<Seq> = ok.replay.iter().map(|(s, _)| *s).collect();
    assert_eq!(replayed, [7, 8, 9, 10]);

    for since in 0..=10 {
        let ok = subscribe(&f.room, &bob, Some(since)).await.unwrap();
        assert_covers(&ok, since, 10);
    }
}

#[tokio::test]
async fn activation_continues_after_stored_messages_with_a_prefilled_ring() {
    let store = store();
    for seq in 1..=10 {
        // Message 9 is from dave, who has since left: his name comes from the user record.
        let sender = if seq == 9 { DAVE } else { BOB };
        store.store_message(ROOM, seq, sender, &format!("m{seq}"));
    }
    let journal = FakeJournal::new(AppendMode::Complete);
    journal.set_last_seq(ROOM, 10);
    let config = RoomConfig {
        ring_size: 4,
        ..config()
    };
    let f = start_with(store, journal, config).await;
    assert_eq!(info(&f.room).await, (10, 0));

    let (carol, _carol_in) = session(3, CAROL);
    let ok = subscribe(&f.room, &carol, Some(6)).await.unwrap();
    assert_eq!(ok.backfill, None, "served from the prefilled ring");
    let replayed: Vec<(Seq, String, String)> = ok
        .replay
        .iter()
        .map(|(s, tail)| {
            let frame = frame(tail);
            (
                *s,
                header(&frame, "sender").to_owned(),
                String::from_utf8(frame.body.to_vec()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        replayed,
        [
            (7, "bob".to_owned(), "m7".to_owned()),
            (8, "bob".to_owned(), "m8".to_owned()),
            (9, "dave".to_owned(), "m9".to_owned()),
            (10, "bob".to_owned(), "m10".to_owned()),
        ]
    );
    let ok = subscribe(&f.room, &carol, Some(2)).await.unwrap();
    assert_covers(&ok, 2, 10);
    assert_eq!(ok.backfill, Some((3, 6)));

    let (alice, mut alice_in) = session(1, ALICE);
    publish(&f.room, &alice, "r", "next");
    assert_eq!(receipt(&mut alice_in).await.1, 11);
    assert_eq!(f.store.room_loads(), 1);
}

#[tokio::test]
async fn activation_with_the_journal_ahead_of_the_store_replays_without_gap() {
    let store = store();
    store.seed_messages(ROOM, BOB, 8);
    let journal = FakeJournal::new(AppendMode::Complete);
    // Seqs 9 and 10 are durable in the journal; the store has not caught up yet.
    for seq in 9..=10 {
        crate::ports::append_and_wait(
            journal.as_ref(),
            &crate::model::ChatMessage {
                room_id: ROOM,
                seq,
                message_id: uuid::Uuid::now_v7(),
                sender_id: BOB,
                body: format!("journaled {seq}"),
                created_at_ms: 0,
                nonce: None,
                attachments: Vec::new(),
                ..Default::default()
            },
            &crate::trace::TraceParent::new_root(),
        )
        .await
        .expect("fake append");
    }
    journal.set_last_seq(ROOM, 10);
    let config = RoomConfig {
        ring_size: 4,
        ..config()
    };
    let f = start_with(store, journal, config).await;
    assert_eq!(info(&f.room).await, (10, 0));
    let (carol, _carol_in) = session(3, CAROL);
    for since in 0..=10 {
        let ok = subscribe(&f.room, &carol, Some(since)).await.unwrap();
        assert_covers(&ok, since, 10);
    }
}
