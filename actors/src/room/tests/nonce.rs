//! Idempotent SENDs (`nonce`) and appends whose outcome is unknown.

use super::*;

fn publish_nonce(
    room: &ActorRef<RoomMessage>,
    session: &SessionHandle,
    receipt: &str,
    body: &str,
    nonce: &str,
) {
    room.cast(RoomMessage::Publish {
        session: session.clone().into(),
        receipt: Some(receipt.to_owned()),
        trace: crate::trace::TraceParent::new_root(),
        nonce: Some(nonce.to_owned()),
        draft: crate::room::Draft {
            body: body.to_owned(),
            ..Default::default()
        },
    })
    .unwrap_or_else(|_| panic!("room is not running"));
}

#[tokio::test]
async fn a_resend_with_the_same_nonce_gets_the_first_receipt_and_makes_no_message() {
    let f = start(AppendMode::Hold, config()).await;
    let (alice, mut alice_in) = session(1, ALICE);
    let (alice2, mut alice2_in) = session(4, ALICE);
    let (carol, mut carol_in) = session(3, CAROL);
    let (bob, mut bob_in) = session(2, BOB);
    subscribe(&f.room, &bob, None).await.unwrap();

    publish_nonce(&f.room, &alice, "r1", "hello", "n1");
    // Resent from another connection while the first is pending: it waits for the first.
    publish_nonce(&f.room, &alice2, "r1-again", "hello", "n1");
    info(&f.room).await;
    assert_eq!(f.journal.held(ROOM), [1]);
    assert!(
        drain(&mut alice2_in).is_empty(),
        "nothing before it is durable"
    );

    f.journal.complete(ROOM, 1, Ok(())).await;
    let (id, seq, message_id) = receipt(&mut alice_in).await;
    assert_eq!((id.as_str(), seq), ("r1", 1));
    assert_eq!(
        receipt(&mut alice2_in).await,
        ("r1-again".into(), 1, message_id)
    );

    // Resent after it was acknowledged: answered at once, from memory.
    publish_nonce(&f.room, &alice2, "r1-late", "hello", "n1");
    assert_eq!(
        receipt(&mut alice2_in).await,
        ("r1-late".into(), 1, message_id)
    );
    info(&f.room).await;
    assert!(f.journal.held(ROOM).is_empty());
    assert_eq!(f.journal.appended().len(), 1);
    assert_eq!(delivered_seqs(&mut bob_in), [1]);

    // A nonce is the sender's own: another member's same nonce is another message.
    publish_nonce(&f.room, &carol, "c1", "hi", "n1");
    info(&f.room).await;
    assert_eq!(f.journal.held(ROOM), [2]);
    f.journal.complete(ROOM, 2, Ok(())).await;
    assert_eq!(receipt(&mut carol_in).await.1, 2);
}

#[tokio::test]
async fn a_resend_of_a_message_not_stored_is_a_new_message() {
    let f = start(AppendMode::Hold, config()).await;
    let (alice, mut alice_in) = session(1, ALICE);
    let (alice2, mut alice2_in) = session(4, ALICE);
    publish_nonce(&f.room, &alice, "r1", "hello", "n1");
    publish_nonce(&f.room, &alice2, "r2", "hello", "n1");
    info(&f.room).await;
    f.journal
        .complete(ROOM, 1, Err(JournalError::Unavailable("disk full".into())))
        .await;
    let (_, message) = failed(&mut alice_in).await;
    assert!(message.starts_with("message not stored"), "{message}");
    // The waiting resend became the message, with the next seq.
    info(&f.room).await;
    assert_eq!(f.journal.held(ROOM), [2]);
    f.journal.complete(ROOM, 2, Ok(())).await;
    assert_eq!(receipt(&mut alice2_in).await.1, 2);
}

#[tokio::test]
async fn an_unknown_outcome_that_landed_is_delivered_late_and_answers_resends() {
    let f = start(AppendMode::Hold, config()).await;
    let (alice, mut alice_in) = session(1, ALICE);
    let (bob, mut bob_in) = session(2, BOB);
    subscribe(&f.room, &bob, None).await.unwrap();
    publish_nonce(&f.room, &alice, "r1", "one", "n1");
    publish_nonce(&f.room, &alice, "r2", "two", "n2");
    info(&f.room).await;
    f.journal.complete_unknown(ROOM, 1, true);
    f.journal.complete(ROOM, 2, Ok(())).await;

    let (id, message) = failed(&mut alice_in).await;
    assert_eq!(id.as_deref(), Some("r1"));
    assert!(message.starts_with("outcome unknown:"), "{message}");
    assert!(message.contains("same nonce"), "{message}");
    // Later seqs are not held back by the unknown one.
    assert_eq!(receipt(&mut alice_in).await.1, 2);
    assert_eq!(event(&mut bob_in).await.0, Some(2));
    // Found in the journal: delivered after seq 2, without an outbox seq, with its own seq header.
    let (seq, frame) = event(&mut bob_in).await;
    assert_eq!(seq, None);
    assert_eq!(header(&frame, "seq"), "1");
    assert_eq!(&frame.body[..], b"one");

    let (alice2, mut alice2_in) = session(4, ALICE);
    publish_nonce(&f.room, &alice2, "r1-again", "one", "n1");
    let (_, seq, message_id) = receipt(&mut alice2_in).await;
    assert_eq!(seq, 1);
    assert_eq!(message_id, f.journal.appended()[0].message_id);
    info(&f.room).await;
    assert_eq!(f.journal.appended().len(), 2, "no second message");

    // The ring has it in seq order; the next message takes seq 3.
    let (late, _late_in) = session(5, CAROL);
    let ok = subscribe(&f.room, &late, Some(0)).await.unwrap();
    let replayed: Vec<Seq> = ok.replay.iter().map(|(s, _)| *s).collect();
    assert_eq!(replayed, [1, 2]);
    publish_nonce(&f.room, &alice2, "r3", "three", "n3");
    info(&f.room).await;
    assert_eq!(f.journal.held(ROOM), [3]);
}

#[tokio::test]
async fn an_unknown_outcome_that_did_not_land_is_a_gap_and_a_resend_is_new() {
    let f = start(AppendMode::Hold, config()).await;
    let (alice, mut alice_in) = session(1, ALICE);
    let (bob, mut bob_in) = session(2, BOB);
    subscribe(&f.room, &bob, None).await.unwrap();
    publish_nonce(&f.room, &alice, "r1", "one", "n1");
    info(&f.room).await;
    f.journal.complete_unknown(ROOM, 1, false);
    let (_, message) = failed(&mut alice_in).await;
    assert!(message.starts_with("outcome unknown:"), "{message}");
    // A resend waits while the room reads the journal twice (a second read confirms the miss).
    let (alice2, mut alice2_in) = session(4, ALICE);
    publish_nonce(&f.room, &alice2, "r1-again", "one", "n1");
    info(&f.room).await;
    assert!(f.journal.held(ROOM).is_empty());
    for _ in 0..400 {
        if !f.journal.held(ROOM).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(f.journal.reads() >= 2, "the miss was confirmed");
    assert_eq!(f.journal.held(ROOM), [2], "seq 1 is never given again");
    f.journal.complete(ROOM, 2, Ok(())).await;
    assert_eq!(receipt(&mut alice2_in).await.1, 2);
    assert_eq!(delivered_seqs(&mut bob_in), [2]);
}

#[tokio::test]
async fn a_resend_waits_for_the_resolution_and_failed_reads_are_retried() {
    let f = start(AppendMode::Hold, config()).await;
    let (alice, mut alice_in) = session(1, ALICE);
    f.journal.fail_reads(true);
    publish_nonce(&f.room, &alice, "r1", "one", "n1");
    info(&f.room).await;
    f.journal.complete_unknown(ROOM, 1, true);
    assert!(
        failed(&mut alice_in)
            .await
            .1
            .starts_with("outcome unknown:")
    );
    let (alice2, mut alice2_in) = session(4, ALICE);
    publish_nonce(&f.room, &alice2, "r1-again", "one", "n1");
    info(&f.room).await;
    assert!(
        f.journal.held(ROOM).is_empty(),
        "the resend waits, appends nothing"
    );
    for _ in 0..200 {
        if f.journal.reads() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(f.journal.reads() >= 2, "a failed read is retried");
    assert!(drain(&mut alice2_in).is_empty());
    f.journal.fail_reads(false);
    let (id, seq, _) = receipt(&mut alice2_in).await;
    assert_eq!((id.as_str(), seq), ("r1-again", 1));
    assert_eq!(f.journal.appended().len(), 1);
}

#[tokio::test]
async fn a_restarted_room_answers_a_resend_of_its_recent_messages_with_the_first_receipt() {
    let f = start(AppendMode::Complete, config()).await;
    let (alice, mut alice_in) = session(1, ALICE);
    publish_nonce(&f.room, &alice, "r1", "stored", "n1");
    let first = receipt(&mut alice_in).await;
    publish_nonce(&f.room, &alice, "r2", "journaled", "n2");
    let second = receipt(&mut alice_in).await;
    publish(&f.room, &alice, "r3", "no nonce");
    receipt(&mut alice_in).await;
    // The persister stored the first; the second and third are in the journal's tail only.
    let appended = f.journal.appended();
    assert_eq!(appended[0].nonce.as_deref(), Some("n1"));
    assert_eq!(appended[2].nonce, None);
    crate::ports::Store::insert_messages(&*f.store, &appended[..1])
        .await
        .unwrap();
    f.room.stop(None);
    f.room.wait(Some(WAIT)).await.expect("room stops");

    let g = start_with(f.store.clone(), f.journal.clone(), config()).await;
    let (alice, mut alice_in) = session(5, ALICE);
    publish_nonce(&g.room, &alice, "r1-again", "stored", "n1");
    assert_eq!(
        receipt(&mut alice_in).await,
        ("r1-again".into(), first.1, first.2)
    );
    publish_nonce(&g.room, &alice, "r2-again", "journaled", "n2");
    assert_eq!(
        receipt(&mut alice_in).await,
        ("r2-again".into(), second.1, second.2)
    );
    assert_eq!(info(&g.room).await.0, 3);
    assert_eq!(g.journal.appended().len(), 3, "nothing appended");
    // Another sender's same nonce is still another message.
    let (bob, mut bob_in) = session(6, BOB);
    publish_nonce(&g.room, &bob, "b1", "mine", "n1");
    assert_eq!(receipt(&mut bob_in).await.1, 4);
}

#[tokio::test]
async fn a_restarted_room_remembers_the_nonces_of_its_ring_only() {
    let config = RoomConfig {
        ring_size: 2,
        ..config()
    };
    let f = start(AppendMode::Complete, config.clone()).await;
    let (alice, mut alice_in) = session(1, ALICE);
    for i in 1..=3 {
        publish_nonce(&f.room, &alice, &format!("r{i}"), "m", &format!("n{i}"));
        receipt(&mut alice_in).await;
    }
    f.room.stop(None);
    f.room.wait(Some(WAIT)).await.expect("room stops");

    let g = start_with(f.store.clone(), f.journal.clone(), config).await;
    let (alice, mut alice_in) = session(5, ALICE);
    publish_nonce(&g.room, &alice, "again3", "m", "n3");
    assert_eq!(receipt(&mut alice_in).await.1, 3);
    publish_nonce(&g.room, &alice, "again2", "m", "n2");
    assert_eq!(receipt(&mut alice_in).await.1, 2);
    // Older than the ring: forgotten, so a new message.
    publish_nonce(&g.room, &alice, "again1", "m", "n1");
    assert_eq!(receipt(&mut alice_in).await.1, 4);
}
