//! Contract cases: edits and deletes, room events stored as rows of their own that change an earlier
//! message of their room, applied once (a batch delivered again applies nothing).

use std::sync::Arc;

use banter_actors::model::{
    Attachment, ChatMessage, Marks, MessageKind, Role, Room, RoomId, RoomKind, User, UserId,
};
use banter_actors::ports::{Store, Upload, UploadPurpose};

use super::{message, seqs, user};

async fn room_with_sender(store: &Arc<dyn Store>) -> (Room, User) {
    let sender = user(store, "sender").await;
    let room = store
        .create_room(RoomKind::Group, "events", sender.id, 1)
        .await
        .unwrap();
    (room, sender)
}

/// Returns an event of `room` at `seq` (sent at `seq * 1000` ms, like `message`).
fn event(room: RoomId, seq: u64, sender: UserId, kind: MessageKind, body: &str) -> ChatMessage {
    ChatMessage {
        kind,
        ..message(room, seq, sender, body)
    }
}

/// Returns an attachment naming the upload `id`.
fn attachment(id: uuid::Uuid) -> Attachment {
    Attachment {
        id,
        name: "photo.png".into(),
        content_type: "image/png".into(),
        size: 10,
        dimensions: Some((2, 1)),
        thumbnail: None,
    }
}

async fn all(store: &Arc<dyn Store>, room: RoomId) -> Vec<ChatMessage> {
    let oldest_first = store.messages_after(room, 0, 100).await.unwrap();
    let mut newest_first = store.messages_before(room, None, 100).await.unwrap();
    newest_first.reverse();
    assert_eq!(
        oldest_first, newest_first,
        "both directions read the same rows"
    );
    oldest_first
}

pub(crate) async fn edits_give_the_target_the_last_body(store: Arc<dyn Store>) {
    let (room, s) = room_with_sender(&store).await;
    let (r, u) = (room.id, s.id);
    let (post, other) = (message(r, 1, u, "original"), message(r, 2, u, "other"));
    store
        .insert_messages(&[post.clone(), other.clone()])
        .await
        .unwrap();
    let first = event(r, 3, u, MessageKind::Edit(1), "first edit");
    let second = event(r, 4, u, MessageKind::Edit(1), "second edit");
    assert_eq!(
        store
            .insert_messages(std::slice::from_ref(&first))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .insert_messages(std::slice::from_ref(&second))
            .await
            .unwrap(),
        1
    );

    let stored = all(&store, r).await;
    assert_eq!(seqs(&stored), [1, 2, 3, 4], "events are rows of their own");
    let edited = ChatMessage {
        body: "second edit".into(),
        marks: Marks {
            edited_at_ms: Some(4000),
            deleted_at_ms: None,
        },
        ..post
    };
    assert_eq!(
        stored[0], edited,
        "the last edit's body, edited when it was"
    );
    assert_eq!(stored[1], other, "another message is untouched");
    for (got, sent) in stored[2..].iter().zip([first, second]) {
        assert_eq!(got.kind, MessageKind::Edit(1));
        let expected = ChatMessage {
            body: "second edit".into(),
            ..sent
        };
        assert_eq!(
            *got, expected,
            "an edit reads back with its target's current body"
        );
    }

    // Several edits in one batch apply in seq order, whatever the batch's order.
    let batch = [
        message(r, 5, u, "five"),
        event(r, 7, u, MessageKind::Edit(5), "by 7"),
        event(r, 6, u, MessageKind::Edit(5), "by 6"),
    ];
    assert_eq!(store.insert_messages(&batch).await.unwrap(), 3);
    let stored = all(&store, r).await;
    assert_eq!(stored[4].body, "by 7");
    assert_eq!(stored[4].marks.edited_at_ms, Some(7000));
    assert_eq!(stored[5].body, "by 7");

    // An edit of an event, or of a seq that holds nothing, changes nothing.
    let strays = [
        event(r, 8, u, MessageKind::Edit(3), "of an edit"),
        event(r, 9, u, MessageKind::Edit(100), "of nothing"),
    ];
    assert_eq!(store.insert_messages(&strays).await.unwrap(), 2);
    let after = all(&store, r).await;
    assert_eq!(after[..7], stored[..], "rows 1..=7 unchanged");
    assert_eq!(
        after[7].body, "",
        "8 reads its target's body: an edit row keeps none"
    );
    assert_eq!(after[8].body, "", "9 has no target to read from");
}

pub(crate) async fn deletes_erase_the_target_and_its_edits(store: Arc<dyn Store>) {
    let (room, s) = room_with_sender(&store).await;
    let (r, u) = (room.id, s.id);
    let mut post = message(r, 1, u, "secret");
    post.attachments = vec![attachment(uuid::Uuid::now_v7())];
    let edit = event(r, 2, u, MessageKind::Edit(1), "secret, edited");
    store.insert_messages(&[post.clone(), edit]).await.unwrap();
    let delete = event(r, 3, u, MessageKind::Delete(1), "");
    store
        .insert_messages(std::slice::from_ref(&delete))
        .await
        .unwrap();
    let late_edit = event(r, 4, u, MessageKind::Edit(1), "back from the dead");
    let late_delete = event(r, 5, u, MessageKind::Delete(1), "");
    assert_eq!(
        store
            .insert_messages(&[late_edit, late_delete])
            .await
            .unwrap(),
        2,
        "stored as rows, applied to nothing"
    );

    let stored = all(&store, r).await;
    assert_eq!(seqs(&stored), [1, 2, 3, 4, 5]);
    let deleted = ChatMessage {
        body: String::new(),
        attachments: Vec::new(),
        marks: Marks {
            edited_at_ms: Some(2000),
            deleted_at_ms: Some(3000),
        },
        ..post
    };
    assert_eq!(stored[0], deleted, "erased once, by the first delete");
    assert_eq!(
        [2, 3, 4, 5].map(|i| stored[i - 1].kind),
        [
            MessageKind::Edit(1),
            MessageKind::Delete(1),
            MessageKind::Edit(1),
            MessageKind::Delete(1)
        ]
    );
    assert_eq!(stored[2], delete);
    for m in &stored {
        assert_eq!(m.body, "", "seq {}: the deleted text is nowhere", m.seq);
    }

    // A message and its delete in one batch.
    let mut doomed = message(r, 6, u, "oops");
    doomed.attachments = vec![attachment(uuid::Uuid::now_v7())];
    let batch = [doomed, event(r, 7, u, MessageKind::Delete(6), "")];
    store.insert_messages(&batch).await.unwrap();
    let stored = all(&store, r).await;
    assert_eq!(
        (stored[5].body.as_str(), stored[5].attachments.len()),
        ("", 0)
    );
    assert_eq!(stored[5].marks.deleted_at_ms, Some(7000));
}

pub(crate) async fn redelivered_batches_apply_no_old_event(store: Arc<dyn Store>) {
    let (room, s) = room_with_sender(&store).await;
    let (r, u) = (room.id, s.id);
    let first = [
        message(r, 1, u, "original"),
        event(r, 2, u, MessageKind::Edit(1), "a"),
    ];
    assert_eq!(store.insert_messages(&first).await.unwrap(), 2);
    let later = [event(r, 3, u, MessageKind::Edit(1), "b")];
    assert_eq!(store.insert_messages(&later).await.unwrap(), 1);
    // The first batch again (a persister that crashed before its commit was acknowledged).
    assert_eq!(store.insert_messages(&first).await.unwrap(), 0);
    assert_eq!(store.insert_messages(&first[1..]).await.unwrap(), 0);
    let stored = all(&store, r).await;
    assert_eq!(stored[0].body, "b", "the older edit is not applied again");
    assert_eq!(stored[0].marks.edited_at_ms, Some(3000));

    // A batch that is partly stored applies its fresh events only.
    let overlap = [
        event(r, 3, u, MessageKind::Edit(1), "b"),
        event(r, 4, u, MessageKind::Edit(1), "c"),
    ];
    assert_eq!(store.insert_messages(&overlap).await.unwrap(), 1);
    assert_eq!(all(&store, r).await[0].body, "c");
}

/// Grants and uses an upload of `room`, as an attach does before the message is sent.
async fn used_upload(store: &Arc<dyn Store>, user: UserId, room: RoomId, at_ms: i64) -> Upload {
    let mut upload = super::uploads::grant(user, UploadPurpose::Attachment(room), 10, at_ms);
    upload.key = format!("rooms/{room}/{user}/{}", upload.id);
    store.insert_upload(&upload).await.unwrap();
    assert!(store.mark_upload_used(upload.id, at_ms + 10).await.unwrap());
    upload
}

pub(crate) async fn deletes_release_the_uploads_of_the_deleted_message(store: Arc<dyn Store>) {
    let (room, s) = room_with_sender(&store).await;
    let (r, u) = (room.id, s.id);
    let mut uploads = Vec::new();
    for at in [10, 20, 30] {
        uploads.push(used_upload(&store, u, r, at).await);
    }
    let stale = || async {
        let list = store.stale_uploads(400, 10).await.unwrap();
        list.into_iter().map(|up| up.id).collect::<Vec<_>>()
    };
    let mut two = message(r, 1, u, "two files");
    two.attachments = vec![attachment(uploads[0].id), attachment(uploads[1].id)];
    let mut one = message(r, 2, u, "one file");
    one.attachments = vec![attachment(uploads[2].id)];
    let posts = [two, one];
    store.insert_messages(&posts).await.unwrap();
    assert!(stale().await.is_empty(), "held by stored messages: kept");

    store
        .insert_messages(&[event(r, 3, u, MessageKind::Delete(1), "")])
        .await
        .unwrap();
    let released = vec![uploads[0].id, uploads[1].id];
    assert_eq!(stale().await, released, "the deleted message's files only");
    // The posts again: a stored message keeps nothing anew.
    assert_eq!(store.insert_messages(&posts).await.unwrap(), 0);
    assert_eq!(stale().await, released);

    // A message and its delete in one batch keep nothing.
    uploads.push(used_upload(&store, u, r, 40).await);
    let mut doomed = message(r, 4, u, "oops");
    doomed.attachments = vec![attachment(uploads[3].id)];
    let batch = [doomed, event(r, 5, u, MessageKind::Delete(4), "")];
    store.insert_messages(&batch).await.unwrap();
    assert_eq!(stale().await, [released, vec![uploads[3].id]].concat());
    assert!(
        store.delete_stale_upload(uploads[0].id, 400).await.unwrap(),
        "the sweeper may delete it"
    );
    assert!(!store.delete_stale_upload(uploads[2].id, 400).await.unwrap());
}

pub(crate) async fn unread_and_last_activity_count_messages_only(store: Arc<dyn Store>) {
    let (room, s) = room_with_sender(&store).await;
    let (r, u) = (room.id, s.id);
    let bob = user(&store, "bob").await;
    store.add_member(r, bob.id, Role::Member, 2).await.unwrap();
    let batch = [
        message(r, 1, u, "one"),
        message(r, 2, u, "two"),
        message(r, 3, u, "three"),
        event(r, 4, u, MessageKind::Edit(1), "one, edited"),
        event(r, 5, u, MessageKind::Delete(2), ""),
    ];
    store.insert_messages(&batch).await.unwrap();
    let summary = store.room_summary(r, bob.id).await.unwrap().unwrap();
    assert_eq!(
        (summary.last_seq, summary.unread, summary.last_activity_ms),
        (5, 3, 3000),
        "events take seqs but are neither unread nor activity"
    );
    let listed = store.rooms_of(bob.id, None, 10).await.unwrap();
    assert_eq!(listed, [summary]);
    store.mark_read(r, bob.id, 3).await.unwrap();
    let summary = store.room_summary(r, bob.id).await.unwrap().unwrap();
    assert_eq!((summary.unread, summary.last_activity_ms), (0, 3000));
    store.mark_read(r, bob.id, 5).await.unwrap();
    assert_eq!(
        store.room_summary(r, bob.id).await.unwrap().unwrap().unread,
        0
    );

    // A room with events only (their targets elsewhere): its creation is its last activity.
    let quiet = store
        .create_room(RoomKind::Group, "quiet", u, 7)
        .await
        .unwrap();
    store
        .insert_messages(&[event(quiet.id, 2, u, MessageKind::Edit(1), "x")])
        .await
        .unwrap();
    let summary = store.room_summary(quiet.id, u).await.unwrap().unwrap();
    assert_eq!(
        (summary.last_seq, summary.unread, summary.last_activity_ms),
        (2, 0, 7)
    );
}

pub(crate) async fn content_types_round_trip(store: Arc<dyn Store>) {
    let (room, s) = room_with_sender(&store).await;
    let (r, u) = (room.id, s.id);
    let mut json = message(r, 1, u, r#"{"mag": 3.1, "place": "Dodécanèse"}"#);
    json.content_type = Some("application/json".into());
    let plain = message(r, 2, u, "plain text");
    let mut long = message(r, 3, u, "x");
    long.content_type = Some(format!("application/vnd.{}+json", "a".repeat(234)));
    assert_eq!(long.content_type.as_ref().map(String::len), Some(255));
    let batch = [json, plain, long];
    store.insert_messages(&batch).await.unwrap();
    assert_eq!(all(&store, r).await, batch);
}
