//! Edits and deletes: who may, what members see live, and what a resume and history then show.

use super::*;
use crate::model::MessageKind;

fn send(
    room: &ActorRef<RoomMessage>,
    session: &SessionHandle,
    receipt: &str,
    kind: MessageKind,
    body: &str,
) {
    room.cast(RoomMessage::Publish {
        session: session.clone().into(),
        receipt: Some(receipt.to_owned()),
        trace: crate::trace::TraceParent::new_root(),
        nonce: None,
        draft: Draft {
            body: body.to_owned(),
            kind,
            ..Draft::default()
        },
    })
    .unwrap_or_else(|_| panic!("room is not running"));
}

/// The `event`, `target-seq` and body of a frame.
fn summary(frame: &banter_proto::stomp::Frame) -> (String, String, String) {
    let target = frame
        .headers
        .iter()
        .find(|(n, _)| n == "target-seq")
        .map_or(String::new(), |(_, v)| v.clone());
    (
        header(frame, "event").to_owned(),
        target,
        String::from_utf8_lossy(&frame.body).into_owned(),
    )
}

#[tokio::test]
async fn an_author_edits_and_deletes_and_members_see_it_live_and_on_resume() {
    let f = start(AppendMode::Complete, config()).await;
    let (bob, mut bob_in) = session(2, BOB);
    let (carol, mut carol_in) = session(3, CAROL);
    subscribe(&f.room, &carol, None).await.unwrap();
    publish(&f.room, &bob, "r1", "helo");
    assert_eq!(receipt(&mut bob_in).await.1, 1);
    send(&f.room, &bob, "r2", MessageKind::Edit(1), "hello");
    assert_eq!(
        receipt(&mut bob_in).await.1,
        2,
        "an edit takes a seq of its own"
    );
    send(&f.room, &bob, "r3", MessageKind::Delete(1), "");
    assert_eq!(receipt(&mut bob_in).await.1, 3);

    let live: Vec<_> = [
        event(&mut carol_in).await,
        event(&mut carol_in).await,
        event(&mut carol_in).await,
    ]
    .into_iter()
    .map(|(seq, frame)| (seq, summary(&frame)))
    .collect();
    let item = |e: &str, t: &str, b: &str| (e.to_owned(), t.to_owned(), b.to_owned());
    assert_eq!(
        live,
        [
            (Some(1), item("message", "", "helo")),
            (Some(2), item("edit", "1", "hello")),
            (Some(3), item("delete", "1", "")),
        ]
    );

    // A member resuming from before the message gets its tombstone, then the events; the text
    // is in none of the frames.
    let (dave_like, _in) = session(4, CAROL);
    let ok = subscribe(&f.room, &dave_like, Some(0)).await.unwrap();
    let replay: Vec<_> = ok.replay.iter().map(|(_, t)| frame(t)).collect();
    assert_eq!(
        replay.iter().map(summary).collect::<Vec<_>>(),
        [
            item("message", "", ""),
            item("edit", "1", ""),
            item("delete", "1", "")
        ]
    );
    assert_eq!(header(&replay[0], "deleted-at"), NOW_MS.to_string());
    // History from memory shows the tombstone.
    let recent = ask(&f.room, |reply| RoomMessage::GetRecent {
        after: 0,
        before: None,
        limit: 10,
        reply,
    })
    .await;
    let window = recent.window.expect("the ring holds it all");
    let first = window.messages.last().expect("message 1");
    assert_eq!((first.seq, first.body.as_str()), (1, ""));
    assert_eq!(first.marks.deleted_at_ms, Some(NOW_MS));
}

#[tokio::test]
async fn only_the_author_edits_and_only_the_author_or_an_owner_deletes() {
    let f = start(AppendMode::Complete, config()).await;
    let (alice, mut alice_in) = session(1, ALICE);
    let (bob, mut bob_in) = session(2, BOB);
    let (carol, mut carol_in) = session(3, CAROL);
    publish(&f.room, &bob, "r1", "bob's");
    assert_eq!(receipt(&mut bob_in).await.1, 1);

    send(&f.room, &carol, "c1", MessageKind::Edit(1), "mine now");
    assert!(failed(&mut carol_in).await.1.starts_with("not_author: "));
    send(&f.room, &carol, "c2", MessageKind::Delete(1), "");
    assert!(failed(&mut carol_in).await.1.starts_with("not_allowed: "));
    send(&f.room, &alice, "a1", MessageKind::Edit(1), "owner's words");
    assert!(
        failed(&mut alice_in).await.1.starts_with("not_author: "),
        "an owner deletes, but does not edit, another's message"
    );
    send(&f.room, &alice, "a2", MessageKind::Delete(1), "");
    assert_eq!(receipt(&mut alice_in).await.1, 2, "an owner deletes it");

    send(&f.room, &bob, "r2", MessageKind::Edit(1), "too late");
    assert!(failed(&mut bob_in).await.1.starts_with("message_deleted: "));
    for target in [2, 3, 99] {
        // An event is no message to change, and seq 3 and 99 do not exist yet.
        send(&f.room, &bob, "r3", MessageKind::Delete(target), "");
        let (_, why) = failed(&mut bob_in).await;
        assert!(why.starts_with("unknown_message: "), "{target}: {why}");
    }
    assert_eq!(info(&f.room).await.0, 2, "nothing refused took a seq");
    assert_eq!(f.journal.appended().len(), 2);
}

#[tokio::test]
async fn a_message_older_than_the_ring_is_checked_against_the_store() {
    let store = store();
    store.seed_messages(ROOM, BOB, 8);
    let journal = FakeJournal::new(AppendMode::Complete);
    journal.set_last_seq(ROOM, 8);
    let config = RoomConfig {
        ring_size: 4,
        ..config()
    };
    let f = start_with(store, journal, config).await;
    let (bob, mut bob_in) = session(2, BOB);
    let (carol, mut carol_in) = session(3, CAROL);
    send(&f.room, &bob, "r1", MessageKind::Edit(2), "m2, better");
    assert_eq!(receipt(&mut bob_in).await.1, 9);
    send(&f.room, &carol, "c1", MessageKind::Delete(3), "");
    assert!(failed(&mut carol_in).await.1.starts_with("not_allowed: "));
    let appended = f.journal.appended();
    let edit = appended.last().expect("the edit");
    assert_eq!(
        (edit.kind, edit.body.as_str()),
        (MessageKind::Edit(2), "m2, better")
    );
}

#[tokio::test]
async fn reads_of_old_messages_are_bounded_per_room() {
    let store = store();
    store.seed_messages(ROOM, BOB, 50);
    let journal = FakeJournal::new(AppendMode::Complete);
    journal.set_last_seq(ROOM, 50);
    let config = RoomConfig {
        ring_size: 4,
        ..config()
    };
    let f = start_with(store, journal, config).await;
    f.store.hold_rooms();
    let (bob, mut bob_in) = session(2, BOB);
    let max = super::super::publish::MAX_LOOKUPS;
    for i in 0..max + 3 {
        send(
            &f.room,
            &bob,
            &format!("r{i}"),
            MessageKind::Edit(1 + i as u64),
            "new",
        );
    }
    // Past the bound, edits of old messages are refused at once, not queued.
    for _ in 0..3 {
        assert!(failed(&mut bob_in).await.1.starts_with("busy: "));
    }
    f.store.open_rooms();
    for _ in 0..max {
        receipt(&mut bob_in).await;
    }
    assert_eq!(info(&f.room).await.0, 50 + max as Seq);
}

#[tokio::test]
async fn a_second_delete_while_the_first_is_in_flight_is_refused() {
    let f = start(AppendMode::Hold, config()).await;
    let (bob, mut bob_in) = session(2, BOB);
    publish(&f.room, &bob, "r1", "once");
    info(&f.room).await;
    f.journal.complete(ROOM, 1, Ok(())).await;
    assert_eq!(receipt(&mut bob_in).await.1, 1);
    send(&f.room, &bob, "r2", MessageKind::Delete(1), "");
    send(&f.room, &bob, "r3", MessageKind::Delete(1), "");
    assert!(failed(&mut bob_in).await.1.starts_with("message_deleted: "));
    info(&f.room).await;
    f.journal.complete(ROOM, 2, Ok(())).await;
    assert_eq!(
        receipt(&mut bob_in).await,
        ("r2".to_owned(), 2, receipt_id_of(&f, 2))
    );
}

/// The message id the journal holds for `seq`.
fn receipt_id_of(f: &Fixture, seq: Seq) -> Uuid {
    f.journal
        .appended()
        .iter()
        .find(|m| m.seq == seq)
        .map(|m| m.message_id)
        .expect("appended")
}
