//! Contract cases: storing messages (idempotent batches) and reading history by keyset.

use std::sync::Arc;

use banter_actors::model::{ChatMessage, Room, RoomId, RoomKind, User};
use banter_actors::ports::{Store, StoreError};

use super::{message, messages, seqs, user};

async fn room_with_sender(store: &Arc<dyn Store>) -> (Room, User) {
    let sender = user(store, "sender").await;
    let room = store
        .create_room(RoomKind::Group, "history", sender.id, 1)
        .await
        .unwrap();
    (room, sender)
}

pub(crate) async fn insert_messages_is_idempotent(store: Arc<dyn Store>) {
    let (room, s) = room_with_sender(&store).await;
    assert_eq!(store.insert_messages(&[]).await.unwrap(), 0);
    assert_eq!(store.last_seq(room.id).await.unwrap(), 0);
    let batch = messages(room.id, 1, 10, s.id);
    assert_eq!(store.insert_messages(&batch).await.unwrap(), 10);
    assert_eq!(
        store.insert_messages(&batch).await.unwrap(),
        0,
        "a replay changes nothing"
    );
    assert_eq!(store.last_seq(room.id).await.unwrap(), 10);

    // Overlapping replay: seqs 6..=10 are stored (under their first message ids), 11..=15 are new.
    let overlap = messages(room.id, 6, 15, s.id);
    assert_eq!(store.insert_messages(&overlap).await.unwrap(), 5);
    let stored = store.messages_after(room.id, 0, 100).await.unwrap();
    assert_eq!(seqs(&stored), (1..=15).collect::<Vec<_>>());
    assert_eq!(stored[..10], batch[..], "the first write of a seq wins");
    assert_eq!(stored[10..], overlap[5..]);

    // A repeat within one batch counts once.
    let one = message(room.id, 16, s.id, "once");
    assert_eq!(
        store
            .insert_messages(&[one.clone(), one.clone()])
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.last_seq(room.id).await.unwrap(), 16);
}

pub(crate) async fn messages_keep_their_nonce(store: Arc<dyn Store>) {
    let (room, s) = room_with_sender(&store).await;
    let mut batch = messages(room.id, 1, 4, s.id);
    // The longest nonces a SEND may carry (64 bytes), ASCII and 4-byte UTF-8, kept byte for byte.
    batch[0].nonce = Some("n".repeat(64));
    batch[1].nonce = Some("\u{1F600}".repeat(16));
    batch[2].nonce = Some("Nonce-2".to_owned());
    assert_eq!(batch[3].nonce, None);
    assert_eq!(store.insert_messages(&batch).await.unwrap(), 4);
    assert_eq!(store.messages_after(room.id, 0, 10).await.unwrap(), batch);
    let mut newest_first = store.messages_before(room.id, None, 10).await.unwrap();
    newest_first.reverse();
    assert_eq!(newest_first, batch);
    assert_eq!(
        store.messages_before(room.id, Some(4), 1).await.unwrap()[0].nonce,
        batch[2].nonce
    );
}

pub(crate) async fn insert_messages_races_insert_each_row_once(store: Arc<dyn Store>) {
    let (room, s) = room_with_sender(&store).await;
    let batch = Arc::new(messages(room.id, 1, 200, s.id));
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (store, batch) = (store.clone(), batch.clone());
            tokio::spawn(async move { store.insert_messages(&batch).await })
        })
        .collect();
    let mut total = 0;
    for task in tasks {
        total += task
            .await
            .expect("task panicked")
            .expect("insert_messages failed");
    }
    assert_eq!(total, 200, "each row is counted by exactly one writer");
    assert_eq!(
        store.messages_after(room.id, 0, 1000).await.unwrap().len(),
        200
    );
}

pub(crate) async fn insert_messages_chunks_large_batches(store: Arc<dyn Store>) {
    let (room, s) = room_with_sender(&store).await;
    let other = store
        .create_room(RoomKind::Group, "other", s.id, 2)
        .await
        .unwrap();
    // More rows than one INSERT carries, from two rooms interleaved.
    let mut batch: Vec<ChatMessage> = Vec::new();
    for seq in 1..=1201 {
        batch.push(message(room.id, seq, s.id, "x"));
        if seq % 3 == 0 {
            batch.push(message(other.id, seq / 3, s.id, "y"));
        }
    }
    assert_eq!(store.insert_messages(&batch).await.unwrap(), 1601);
    assert_eq!(store.insert_messages(&batch).await.unwrap(), 0);
    assert_eq!(store.last_seq(room.id).await.unwrap(), 1201);
    assert_eq!(store.last_seq(other.id).await.unwrap(), 400);
}

pub(crate) async fn message_id_under_another_seq_is_a_conflict(store: Arc<dyn Store>) {
    let (room, s) = room_with_sender(&store).await;
    let first = message(room.id, 1, s.id, "first");
    store
        .insert_messages(std::slice::from_ref(&first))
        .await
        .unwrap();
    let mut moved = message(room.id, 3, s.id, "same id, other seq");
    moved.message_id = first.message_id;
    let batch = [message(room.id, 2, s.id, "fine"), moved];
    let err = store
        .insert_messages(&batch)
        .await
        .expect_err("duplicate message id");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        store.last_seq(room.id).await.unwrap(),
        1,
        "the whole batch is rolled back"
    );

    let nowhere = store
        .insert_messages(&[message(RoomId(i64::MAX), 1, s.id, "?")])
        .await;
    assert!(matches!(nowhere, Err(StoreError::NotFound)), "{nowhere:?}");
}

pub(crate) async fn reserved_seqs_count_in_last_seq(store: Arc<dyn Store>) {
    let (room, s) = room_with_sender(&store).await;
    store
        .insert_messages(&messages(room.id, 1, 3, s.id))
        .await
        .unwrap();
    store.reserve_seq(room.id, 5).await.unwrap();
    assert_eq!(
        store.last_seq(room.id).await.unwrap(),
        5,
        "a reserved seq above the rows"
    );
    store.reserve_seq(room.id, 4).await.unwrap();
    store.reserve_seq(room.id, 5).await.unwrap();
    assert_eq!(
        store.last_seq(room.id).await.unwrap(),
        5,
        "never lowered, idempotent"
    );
    store
        .insert_messages(&messages(room.id, 6, 7, s.id))
        .await
        .unwrap();
    assert_eq!(store.last_seq(room.id).await.unwrap(), 7);
    assert_eq!(
        seqs(&store.messages_after(room.id, 0, 10).await.unwrap()),
        [1, 2, 3, 6, 7]
    );
}

pub(crate) async fn bodies_round_trip_byte_exact(store: Arc<dyn Store>) {
    let (room, s) = room_with_sender(&store).await;
    let bodies = [
        "plain ascii",
        "👋🏽 héllo 世界 🇫🇷",
        "👨‍👩‍👧‍👦 family (zero-width joiners)",
        "𝕳𝖊𝖑𝖑𝖔 (4-byte letters)",
        "e\u{301} vs \u{e9} (not normalized)",
        "مرحبا بالعالم (right to left)",
        "'; DROP TABLE messages; --",
        "back\\slash \\' \\\" \\n %_ \" '' ` $1 ?",
        "line\nbreak\r\ntab\t",
        "nul \u{0} inside",
        "trailing spaces   ",
        "",
        &"🦀".repeat(10_000),
    ];
    let batch: Vec<_> = bodies
        .iter()
        .zip(1..)
        .map(|(body, seq)| message(room.id, seq, s.id, body))
        .collect();
    assert_eq!(
        store.insert_messages(&batch).await.unwrap(),
        batch.len() as u64
    );
    let stored = store.messages_after(room.id, 0, 100).await.unwrap();
    assert_eq!(stored.len(), bodies.len());
    for (got, sent) in stored.iter().zip(&batch) {
        assert_eq!(
            got.body.as_bytes(),
            sent.body.as_bytes(),
            "seq {}",
            sent.seq
        );
        assert_eq!(got, sent);
    }
}

pub(crate) async fn attachments_round_trip(store: Arc<dyn Store>) {
    use banter_actors::model::Attachment;
    let (room, s) = room_with_sender(&store).await;
    let photo = Attachment {
        id: uuid::Uuid::now_v7(),
        name: "\u{e9}t\u{e9} \"2026\": plage.jpg".into(),
        content_type: "image/jpeg".into(),
        size: 123_456,
        dimensions: Some((4032, 3024)),
        thumbnail: Some(vec![0xff, 0xd8, 0xff, 0, 1, 2, 0x22].into()),
    };
    let doc = Attachment {
        id: uuid::Uuid::now_v7(),
        name: "notes.pdf".into(),
        content_type: "application/pdf".into(),
        size: 9,
        dimensions: None,
        thumbnail: None,
    };
    let mut with = message(room.id, 1, s.id, "");
    with.attachments = vec![photo, doc];
    let without = message(room.id, 2, s.id, "plain");
    let batch = [with, without];
    store.insert_messages(&batch).await.unwrap();
    let stored = store.messages_after(room.id, 0, 10).await.unwrap();
    assert_eq!(stored, batch, "attachments, in order, byte for byte");
}

pub(crate) async fn keyset_paging_has_no_gap_or_duplicate(store: Arc<dyn Store>) {
    let (room, s) = room_with_sender(&store).await;
    let noise = store
        .create_room(RoomKind::Group, "noise", s.id, 2)
        .await
        .unwrap();
    // Stored in three uneven batches, out of order, with another room's messages in between.
    store
        .insert_messages(&messages(room.id, 301, 500, s.id))
        .await
        .unwrap();
    store
        .insert_messages(&messages(noise.id, 1, 50, s.id))
        .await
        .unwrap();
    store
        .insert_messages(&messages(room.id, 1, 123, s.id))
        .await
        .unwrap();
    store
        .insert_messages(&messages(room.id, 124, 300, s.id))
        .await
        .unwrap();

    let mut newest_first = Vec::new();
    let mut before = None;
    loop {
        let page = store.messages_before(room.id, before, 7).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 7);
        assert!(page.iter().all(|m| m.room_id == room.id));
        before = page.last().map(|m| m.seq);
        newest_first.extend(seqs(&page));
    }
    assert_eq!(newest_first, (1..=500).rev().collect::<Vec<_>>());

    let mut oldest_first = Vec::new();
    let mut after = 0;
    loop {
        let page = store.messages_after(room.id, after, 33).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        oldest_first.extend(seqs(&page));
    }
    assert_eq!(oldest_first, (1..=500).collect::<Vec<_>>());
}

pub(crate) async fn paging_bounds(store: Arc<dyn Store>) {
    let (room, s) = room_with_sender(&store).await;
    store
        .insert_messages(&messages(room.id, 1, 5, s.id))
        .await
        .unwrap();
    let before = |b, limit| {
        let store = store.clone();
        async move { seqs(&store.messages_before(room.id, b, limit).await.unwrap()) }
    };
    let after = |a, limit| {
        let store = store.clone();
        async move { seqs(&store.messages_after(room.id, a, limit).await.unwrap()) }
    };
    assert_eq!(before(None, 2).await, [5, 4]);
    assert_eq!(before(Some(4), 10).await, [3, 2, 1]);
    assert_eq!(before(Some(1), 10).await, Vec::<u64>::new());
    assert_eq!(before(Some(u64::MAX), 1).await, [5]);
    assert_eq!(before(None, 0).await, Vec::<u64>::new());
    assert_eq!(after(0, 2).await, [1, 2]);
    assert_eq!(after(3, 10).await, [4, 5]);
    assert_eq!(after(5, 10).await, Vec::<u64>::new());
    assert_eq!(after(u64::MAX, 10).await, Vec::<u64>::new());
    assert!(
        store
            .messages_before(RoomId(i64::MAX), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.last_seq(RoomId(i64::MAX)).await.unwrap(), 0);
}
