//! Contract cases: uploads (grants, their checked facts, use, the quota's sum, housekeeping).

use std::sync::Arc;

use banter_actors::model::{RoomId, UserId};
use banter_actors::ports::{Store, StoreError, Upload, UploadFacts, UploadPurpose};
use uuid::Uuid;

use super::user;

fn grant(user: UserId, purpose: UploadPurpose, size: u64, at_ms: i64) -> Upload {
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
    let room = UploadPurpose::Attachment(RoomId(9));
    let old: Vec<Upload> = (0..4).map(|i| grant(alice.id, room, 10, 100 + i)).collect();
    let used = grant(alice.id, room, 10, 50);
    let fresh = grant(alice.id, room, 10, 500);
    for u in old.iter().chain([&used, &fresh]) {
        store.insert_upload(u).await.unwrap();
    }
    store.mark_upload_used(used.id, 60).await.unwrap();
    let ids = |uploads: Vec<Upload>| uploads.into_iter().map(|u| u.id).collect::<Vec<_>>();
    let stale = ids(store.stale_uploads(400, 10).await.unwrap());
    assert_eq!(stale, ids(old.clone()), "old and unused, oldest first");
    assert_eq!(
        ids(store.stale_uploads(400, 2).await.unwrap()),
        ids(old[..2].to_vec())
    );
    assert!(store.stale_uploads(100, 10).await.unwrap().is_empty());
    assert_eq!(store.upload_usage(alice.id).await.unwrap(), 60);
    assert!(store.delete_unused_upload(old[0].id).await.unwrap());
    assert!(!store.delete_unused_upload(old[0].id).await.unwrap());
    assert!(
        !store.delete_unused_upload(used.id).await.unwrap(),
        "a used one stays"
    );
    assert!(store.upload(used.id).await.unwrap().is_some());
    assert!(store.delete_upload(used.id).await.unwrap(), "deleted, used");
    assert!(!store.delete_upload(used.id).await.unwrap());
    assert_eq!(store.upload_usage(alice.id).await.unwrap(), 40);
    assert_eq!(store.upload(old[0].id).await.unwrap(), None);
}
