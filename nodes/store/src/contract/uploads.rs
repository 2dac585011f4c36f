//! Contract cases: uploads (grants, their checked facts, use, the quota's sum, housekeeping).

use std::sync::Arc;

use banter_actors::model::{Attachment, RoomId, RoomKind, UserId};
use banter_actors::ports::{Store, StoreError, Upload, UploadFacts, UploadPurpose};
use uuid::Uuid;

use super::user;

pub(super) fn grant(user: UserId, purpose: UploadPurpose, size: u64, at_ms: i64) -> Upload {
    let id = Uuid::now_v7();
    Upload {
        id,
        user_id: user,
        purpose,
        key: format!("rooms/1/{}/{id}", user.0),
        filename: "h\u{e9}llo world.png".into(),
        content_type: "image/png".into(),
        declared_size: size,
        created_at_ms: at_ms,
        facts: None,
        used_at_ms: None,
    }
}

pub(crate) async fn uploads_round_trip_and_count_in_the_usage(store: Arc<dyn Store>) {
    let (alice, bob) = (user(&store, "alice").await, user(&store, "bob").await);
    let photo = grant(alice.id, UploadPurpose::Attachment(RoomId(9)), 1000, 1);
    let avatar = grant(alice.id, UploadPurpose::Avatar, 234, 2);
    store.insert_upload(&photo).await.unwrap();
    store.insert_upload(&avatar).await.unwrap();
    assert_eq!(store.upload(photo.id).await.unwrap(), Some(photo.clone()));
    assert_eq!(store.upload(avatar.id).await.unwrap(), Some(avatar));
    assert_eq!(store.upload(Uuid::now_v7()).await.unwrap(), None);
    assert_eq!(store.upload_usage(alice.id).await.unwrap(), 1234);
    assert_eq!(store.upload_usage(bob.id).await.unwrap(), 0);
    assert!(matches!(
        store.insert_upload(&photo).await,
        Err(StoreError::Conflict(_))
    ));
    let nobody = grant(UserId(i64::MAX), UploadPurpose::Avatar, 1, 3);
    assert!(matches!(
        store.insert_upload(&nobody).await,
        Err(StoreError::NotFound)
    ));
}

pub(crate) async fn upload_facts_are_kept_and_an_upload_is_used_once(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let photo = grant(alice.id, UploadPurpose::Attachment(RoomId(9)), 1000, 1);
    store.insert_upload(&photo).await.unwrap();
    let facts = UploadFacts {
        size: 999,
        content_type: "image/png".into(),
        dimensions: Some((640, 480)),
        thumbnail: Some(vec![0xff, 0xd8, 0, 1, 2]),
    };
    store.set_upload_facts(photo.id, &facts).await.unwrap();
    // Twice is no error (MySQL counts no row changed).
    store.set_upload_facts(photo.id, &facts).await.unwrap();
    let got = store.upload(photo.id).await.unwrap().unwrap();
    assert_eq!(got.facts, Some(facts.clone()));
    let plain = UploadFacts {
        size: 5,
        content_type: "application/pdf".into(),
        dimensions: None,
        thumbnail: None,
    };
    store.set_upload_facts(photo.id, &plain).await.unwrap();
    assert_eq!(
        store.upload(photo.id).await.unwrap().unwrap().facts,
        Some(plain)
    );
    assert!(matches!(
        store.set_upload_facts(Uuid::now_v7(), &facts).await,
        Err(StoreError::NotFound)
    ));
    assert!(store.mark_upload_used(photo.id, 50).await.unwrap());
    assert!(!store.mark_upload_used(photo.id, 60).await.unwrap());
    assert_eq!(
        store.upload(photo.id).await.unwrap().unwrap().used_at_ms,
        Some(50)
    );
    assert!(!store.mark_upload_used(Uuid::now_v7(), 60).await.unwrap());
}

pub(crate) async fn stale_uploads_are_the_old_unused_ones_and_deletes_count(store: Arc<dyn Store>) {
    let alice = user(&store, "alice").await;
    let room = store
        .create_room(RoomKind::Group, "media", alice.id, 1)
        .await
        .unwrap()
        .id;
    let purpose = UploadPurpose::Attachment(room);
    let old: Vec<Upload> = (0..4)
        .map(|i| grant(alice.id, purpose, 10, 100 + i))
        .collect();
    // Claimed (used) at 60 by an attach whose message was never stored: stale like the unused.
    let claimed = grant(alice.id, purpose, 10, 50);
    // Used at 60 and held by a stored message: kept.
    let attached = grant(alice.id, purpose, 10, 40);
    // Used at 70 as an avatar: kept.
    let avatar = grant(alice.id, UploadPurpose::Avatar, 10, 30);
    let fresh = grant(alice.id, purpose, 10, 500);
    for u in old.iter().chain([&claimed, &attached, &avatar, &fresh]) {
        store.insert_upload(u).await.unwrap();
    }
    for (u, at) in [(&claimed, 60), (&attached, 60), (&avatar, 70)] {
        assert!(store.mark_upload_used(u.id, at).await.unwrap());
    }
    let mut message = super::message(room, 1, alice.id, "look");
    message.attachments = vec![Attachment {
        id: attached.id,
        name: "a.png".into(),
        content_type: "image/png".into(),
        size: 10,
        dimensions: None,
        thumbnail: None,
    }];
    store.insert_messages(&[message]).await.unwrap();
    store.set_avatar(alice.id, Some(avatar.id)).await.unwrap();
    let ids = |uploads: Vec<Upload>| uploads.into_iter().map(|u| u.id).collect::<Vec<_>>();
    let stale = ids(store.stale_uploads(400, 10).await.unwrap());
    let mut expected = vec![claimed.id];
    expected.extend(ids(old.clone()));
    assert_eq!(stale, expected, "old, not kept, oldest first");
    assert_eq!(
        ids(store.stale_uploads(400, 2).await.unwrap()),
        expected[..2].to_vec()
    );
    assert_eq!(
        ids(store.stale_uploads(100, 10).await.unwrap()),
        vec![claimed.id],
        "a claim of 60 is stale at 100; grants of 100 and later are not"
    );
    assert!(store.stale_uploads(60, 10).await.unwrap().is_empty());
    assert_eq!(store.upload_usage(alice.id).await.unwrap(), 80);
    assert!(store.delete_stale_upload(old[0].id, 400).await.unwrap());
    assert!(!store.delete_stale_upload(old[0].id, 400).await.unwrap());
    assert!(
        !store.delete_stale_upload(claimed.id, 60).await.unwrap(),
        "used at 60: not stale as of 60 (an attach in flight)"
    );
    assert!(store.delete_stale_upload(claimed.id, 400).await.unwrap());
    for kept in [&attached, &avatar] {
        assert!(
            !store.delete_stale_upload(kept.id, i64::MAX).await.unwrap(),
            "a kept one stays"
        );
        assert!(store.upload(kept.id).await.unwrap().is_some());
    }
    assert!(
        store.delete_upload(attached.id).await.unwrap(),
        "deleted, kept"
    );
    assert!(!store.delete_upload(attached.id).await.unwrap());
    assert_eq!(store.upload_usage(alice.id).await.unwrap(), 50);
    assert_eq!(store.upload(old[0].id).await.unwrap(), None);
}
