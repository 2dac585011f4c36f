//! The user's actor on fakes: grants within the rules, each refusal, the quota across
//! activations and failed grants, attachments, download URLs, and passivation.

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use bytes::Bytes;

use super::*;
use crate::directory::Directory;
use crate::model::{Attachment, RoomId};
use crate::ports::{BlobError, Uploads as _};
use crate::testing::{FakeStore, FixedClock, NOW_MS, ask};

const ALICE: UserId = UserId(7);
const ROOM: RoomId = RoomId(42);

/// Signs forms that name their key (fails while `failing`); holds the objects tests put.
#[derive(Default)]
struct FakeBlobs {
    failing: AtomicBool,
    objects: std::sync::Mutex<std::collections::HashMap<String, Bytes>>,
}

impl FakeBlobs {
    fn put(&self, key: &str, bytes: Vec<u8>) {
        self.objects
            .lock()
            .expect("objects")
            .insert(key.to_owned(), Bytes::from(bytes));
    }

    fn get(&self, key: &BlobKey) -> Option<Bytes> {
        self.objects
            .lock()
            .expect("objects")
            .get(key.as_str())
            .cloned()
    }
}

#[async_trait]
impl Blobs for FakeBlobs {
    async fn upload_form(&self, policy: &UploadPolicy) -> Result<UploadForm, BlobError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(BlobError::Unavailable("down".into()));
        }
        Ok(UploadForm {
            url: "/fake".into(),
            fields: vec![
                ("key".into(), policy.key.to_string()),
                ("max".into(), policy.max_bytes.to_string()),
            ],
        })
    }
    async fn download_url(&self, key: &BlobKey, _: Duration) -> Result<String, BlobError> {
        Ok(format!("/fake/{key}"))
    }
    async fn size(&self, key: &BlobKey) -> Result<Option<u64>, BlobError> {
        Ok(self.get(key).map(|b| b.len() as u64))
    }
    async fn read(&self, key: &BlobKey, max: u64) -> Result<Bytes, BlobError> {
        match self.get(key) {
            Some(b) if b.len() as u64 > max => Err(BlobError::TooLarge(b.len() as u64)),
            Some(b) => Ok(b),
            None => Err(BlobError::NotFound),
        }
    }
    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        self.objects.lock().expect("objects").remove(key.as_str());
        Ok(())
    }
}

fn config() -> AccountConfig {
    AccountConfig {
        rules: UploadRules {
            max_upload_bytes: 1000,
            allowed_types: ["image/png".to_owned(), "application/pdf".to_owned()].into(),
        },
        upload_ttl: Duration::from_secs(600),
        download_ttl: Duration::from_secs(300),
        uploads_per_minute: NonZeroU32::new(5).expect("non-zero"),
        quota_bytes: 2500,
        max_image_pixels: 1_000_000,
        idle_timeout: Duration::from_secs(60),
    }
}

struct Fixture {
    store: Arc<FakeStore>,
    blobs: Arc<FakeBlobs>,
    directory: ActorRef<DirectoryMessage<Accounts>>,
}

async fn fixture(config: AccountConfig) -> Fixture {
    let store = FakeStore::new();
    store.add_user(ALICE, "alice");
    let blobs = Arc::new(FakeBlobs::default());
    let accounts = Accounts {
        ports: AccountPorts {
            store: store.clone(),
            blobs: blobs.clone(),
            clock: Arc::new(FixedClock(NOW_MS)),
            inspections: Arc::new(tokio::sync::Semaphore::new(1)),
        },
        config,
    };
    let (directory, _) = Actor::spawn(None, Directory::new(accounts), ())
        .await
        .expect("directory");
    Fixture {
        store,
        blobs,
        directory,
    }
}

fn request(filename: &str, content_type: &str, size: u64) -> UploadRequest {
    UploadRequest {
        filename: filename.into(),
        content_type: content_type.into(),
        size,
    }
}

impl Fixture {
    async fn grant(
        &self,
        purpose: UploadPurpose,
        req: UploadRequest,
    ) -> Result<UploadGrant, UploadError> {
        ask(&self.directory, |reply| {
            DirectoryMessage::Route(
                ALICE,
                AccountMessage::GrantUpload {
                    purpose,
                    request: req,
                    reply,
                },
            )
        })
        .await
    }

    async fn attach(
        &self,
        room: RoomId,
        uploads: Vec<Uuid>,
    ) -> Result<Vec<Attachment>, AttachError> {
        ask(&self.directory, |reply| {
            DirectoryMessage::Route(
                ALICE,
                AccountMessage::Attach {
                    room,
                    uploads,
                    reply,
                },
            )
        })
        .await
    }

    /// Grants `content_type` of `bytes`' size in `ROOM` and puts `bytes` under its key (if any).
    async fn uploaded(&self, content_type: &str, size: u64, bytes: Option<Vec<u8>>) -> Uuid {
        let grant = self
            .grant(
                UploadPurpose::Attachment(ROOM),
                request("f", content_type, size),
            )
            .await
            .expect("granted");
        if let Some(bytes) = bytes {
            self.blobs.put(&grant.form.fields[0].1, bytes);
        }
        grant.upload_id
    }

    async fn download(&self, room: RoomId, upload: Uuid) -> Result<Download, DownloadError> {
        ask(&self.directory, |reply| {
            DirectoryMessage::Route(
                ALICE,
                AccountMessage::Download {
                    room,
                    upload,
                    reply,
                },
            )
        })
        .await
    }

    async fn set_avatar(&self, upload: Option<Uuid>) -> Result<Option<Attachment>, AttachError> {
        ask(&self.directory, |reply| {
            DirectoryMessage::Route(ALICE, AccountMessage::SetAvatar { upload, reply })
        })
        .await
    }

    async fn avatar_url(&self, of: UserId) -> Result<Download, DownloadError> {
        ask(&self.directory, |reply| {
            DirectoryMessage::Route(ALICE, AccountMessage::AvatarUrl { of, reply })
        })
        .await
    }

    /// Grants an avatar of `bytes` and puts them under its key.
    async fn avatar_uploaded(&self, bytes: Vec<u8>) -> (Uuid, String) {
        let grant = self
            .grant(
                UploadPurpose::Avatar,
                request("me.png", "image/png", bytes.len() as u64),
            )
            .await
            .expect("granted");
        let key = grant.form.fields[0].1.clone();
        self.blobs.put(&key, bytes);
        (grant.upload_id, key)
    }

    async fn live(&self) -> usize {
        ask(&self.directory, DirectoryMessage::GetCount).await
    }
}

#[tokio::test]
async fn a_grant_is_stored_under_a_key_of_the_servers_making() {
    let f = fixture(config()).await;
    let grant = f
        .grant(
            UploadPurpose::Attachment(ROOM),
            request("../../etc/passwd", "image/png", 600),
        )
        .await
        .expect("granted");
    let stored = f
        .store
        .upload(grant.upload_id)
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(stored.key, format!("rooms/42/7/{}", grant.upload_id));
    assert_eq!(stored.filename, "passwd", "kept as metadata, cleaned");
    assert_eq!(stored.content_type, "image/png");
    assert_eq!(stored.declared_size, 600);
    assert_eq!(stored.created_at_ms, NOW_MS);
    assert_eq!(grant.max_bytes, 600, "the form allows what was declared");
    assert_eq!(grant.expires_at_ms, NOW_MS + 600_000);
    assert_eq!(grant.form.fields[0].1, stored.key);
    let avatar = f
        .grant(UploadPurpose::Avatar, request("me.png", "image/png", 10))
        .await
        .expect("granted");
    let stored = f
        .store
        .upload(avatar.upload_id)
        .await
        .unwrap()
        .expect("stored");
    assert_eq!(stored.key, format!("avatars/7/{}", avatar.upload_id));
}

#[tokio::test]
async fn what_the_rules_do_not_allow_is_refused_with_its_code() {
    let f = fixture(config()).await;
    let room = UploadPurpose::Attachment(ROOM);
    let refused = [
        (request("a.html", "text/html", 10), "type_not_allowed"),
        (request("a.png", "Image/PNG", 10), "type_not_allowed"),
        (request("a.png", " image/png", 10), "type_not_allowed"),
        (request("a.png", "image/png", 1001), "too_large"),
        (request("a.png", "image/png", 0), "empty_file"),
        (
            request(
                &"\u{e9}".repeat(MAX_REQUEST_FILENAME_CHARS + 1),
                "image/png",
                10,
            ),
            "filename_too_long",
        ),
    ];
    for (req, code) in refused {
        let e = f.grant(room, req.clone()).await.expect_err("refused");
        assert_eq!(e.code(), code, "{req:?}");
    }
    // Quota 2,500: 1,000 + 1,000 pass, 600 more does not, 500 does.
    for size in [1000, 1000] {
        f.grant(room, request("a.pdf", "application/pdf", size))
            .await
            .expect("within quota");
    }
    let e = f
        .grant(room, request("a.pdf", "application/pdf", 600))
        .await
        .expect_err("over");
    assert_eq!(e, UploadError::QuotaExceeded(2500));
    f.grant(room, request("a.pdf", "application/pdf", 500))
        .await
        .expect("fits exactly");
    assert_eq!(f.store.upload_usage(ALICE).await.unwrap(), 2500);
    // Full: any more is over the quota.
    for _ in 0..2 {
        let e = f.grant(room, request("a.pdf", "application/pdf", 1)).await;
        assert_eq!(e.expect_err("over quota").code(), "quota_exceeded");
    }
}

#[tokio::test]
async fn grants_are_rate_limited_per_user() {
    let f = fixture(AccountConfig {
        uploads_per_minute: NonZeroU32::new(2).expect("non-zero"),
        ..config()
    })
    .await;
    let room = UploadPurpose::Attachment(ROOM);
    for _ in 0..2 {
        f.grant(room, request("a.png", "image/png", 1))
            .await
            .expect("within the rate");
    }
    match f.grant(room, request("a.png", "image/png", 1)).await {
        Err(UploadError::RateLimited(wait)) => {
            assert!(
                wait > Duration::ZERO && wait <= Duration::from_secs(30),
                "{wait:?}"
            );
        }
        other => panic!("not rate limited: {other:?}"),
    }
}

#[tokio::test]
async fn the_quota_counts_what_earlier_activations_granted_and_not_what_failed() {
    let f = fixture(config()).await;
    let room = UploadPurpose::Attachment(ROOM);
    // Granted before this activation: read from the store when the actor starts.
    let mut old = Upload {
        id: Uuid::now_v7(),
        user_id: ALICE,
        purpose: room,
        key: "rooms/42/7/old".into(),
        filename: "old".into(),
        content_type: "image/png".into(),
        declared_size: 2000,
        created_at_ms: 1,
        facts: None,
        used_at_ms: None,
    };
    f.store.insert_upload(&old).await.unwrap();
    let e = f
        .grant(room, request("a.png", "image/png", 600))
        .await
        .expect_err("over");
    assert_eq!(e.code(), "quota_exceeded");
    // A grant whose form cannot be signed is not kept, and frees what it reserved.
    f.blobs.failing.store(true, Ordering::SeqCst);
    let e = f
        .grant(room, request("a.png", "image/png", 500))
        .await
        .expect_err("down");
    assert_eq!(e.code(), "unavailable");
    f.blobs.failing.store(false, Ordering::SeqCst);
    assert_eq!(
        f.store.upload_usage(ALICE).await.unwrap(),
        2000,
        "nothing kept"
    );
    f.grant(room, request("a.png", "image/png", 500))
        .await
        .expect("the reservation is free");
    old.id = Uuid::now_v7();
    old.key = "rooms/42/7/old2".into();
    assert!(f.store.insert_upload(&old).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn an_idle_users_actor_passivates() {
    let f = fixture(config()).await;
    f.grant(UploadPurpose::Avatar, request("me.png", "image/png", 5))
        .await
        .expect("granted");
    assert_eq!(f.live().await, 1);
    tokio::time::sleep(Duration::from_secs(61)).await;
    // The check runs every 15 s: idle for 60 s, it asks to stop, and the directory stops it.
    tokio::time::sleep(Duration::from_secs(16)).await;
    assert_eq!(f.live().await, 0);
    f.grant(UploadPurpose::Avatar, request("me.png", "image/png", 5))
        .await
        .expect("a new activation serves");
}

fn png(width: u32, height: u32) -> Vec<u8> {
    use image::ImageEncoder;
    let pixels = vec![200u8; (width * height * 3) as usize];
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(&pixels, width, height, image::ExtendedColorType::Rgb8)
        .expect("png");
    out
}

#[tokio::test]
async fn checked_uploads_are_attached_once_with_what_they_are() {
    let f = fixture(AccountConfig {
        rules: UploadRules {
            max_upload_bytes: 100_000,
            ..config().rules
        },
        ..config()
    })
    .await;
    let image = png(40, 30);
    let photo = f
        .uploaded("image/png", image.len() as u64, Some(image.clone()))
        .await;
    let pdf = b"%PDF-1.7\n%%EOF\n".to_vec();
    let doc = f
        .uploaded("application/pdf", pdf.len() as u64, Some(pdf))
        .await;
    let attached = f.attach(ROOM, vec![photo, doc]).await.expect("attached");
    assert_eq!(attached.len(), 2, "in the message's order");
    assert_eq!((attached[0].id, attached[1].id), (photo, doc));
    assert_eq!(attached[0].dimensions, Some((40, 30)));
    assert_eq!(attached[0].size, image.len() as u64);
    assert!(attached[0].thumbnail.is_some(), "an image gets a preview");
    assert_eq!(
        (attached[1].dimensions, attached[1].thumbnail.is_none()),
        (None, true)
    );
    let stored = f.store.upload(photo).await.unwrap().expect("kept");
    assert_eq!(stored.used_at_ms, Some(NOW_MS));
    assert_eq!(stored.facts.map(|x| x.dimensions), Some(Some((40, 30))));
    let again = f.attach(ROOM, vec![photo]).await.expect_err("used");
    assert_eq!(again.code(), "already_attached");
}

#[tokio::test]
async fn what_cannot_be_attached_is_refused_with_its_code() {
    let f = fixture(config()).await;
    let not_uploaded = f.uploaded("image/png", 10, None).await;
    let wrong_size = f.uploaded("image/png", 10, Some(vec![1; 9])).await;
    let not_png = f
        .uploaded(
            "image/png",
            20,
            Some(b"<html>not an image</html>".to_vec()[..20].to_vec()),
        )
        .await;
    let avatar = f
        .grant(UploadPurpose::Avatar, request("me.png", "image/png", 5))
        .await
        .expect("granted")
        .upload_id;
    let mut someone_elses = f.store.upload(not_uploaded).await.unwrap().expect("kept");
    someone_elses.id = Uuid::now_v7();
    someone_elses.key = "rooms/42/8/x".into();
    someone_elses.user_id = UserId(8);
    f.store.insert_upload(&someone_elses).await.unwrap();
    let cases = [
        (vec![Uuid::now_v7()], "unknown_upload"),
        (vec![someone_elses.id], "unknown_upload"),
        (vec![avatar], "wrong_room"),
        (vec![not_uploaded], "not_uploaded"),
        (vec![wrong_size], "size_mismatch"),
        (vec![not_png], "type_mismatch"),
        (vec![not_uploaded, not_uploaded], "too_many_attachments"),
        (
            (0..11).map(|_| Uuid::now_v7()).collect(),
            "too_many_attachments",
        ),
    ];
    for (uploads, code) in cases {
        let e = f.attach(ROOM, uploads.clone()).await.expect_err("refused");
        assert_eq!(e.code(), code, "{uploads:?}: {e}");
    }
    let e = f
        .attach(RoomId(43), vec![wrong_size])
        .await
        .expect_err("refused");
    assert_eq!(e.code(), "wrong_room");
    assert_eq!(
        f.store
            .upload(wrong_size)
            .await
            .unwrap()
            .expect("kept")
            .used_at_ms,
        None,
        "nothing refused is marked used"
    );
}

#[tokio::test]
async fn download_urls_are_signed_for_the_rooms_attachments_only() {
    let f = fixture(config()).await;
    let mine = f.uploaded("image/png", 10, None).await;
    let url = f.download(ROOM, mine).await.expect("one's own, unattached");
    assert_eq!(url.expires_at_ms, NOW_MS + 300_000);
    assert!(url.url.starts_with("/fake/rooms/42/"), "{url:?}");
    let mut theirs = f.store.upload(mine).await.unwrap().expect("kept");
    theirs.id = Uuid::now_v7();
    theirs.key = "rooms/42/8/y".into();
    theirs.user_id = UserId(8);
    f.store.insert_upload(&theirs).await.unwrap();
    let avatar = f
        .grant(UploadPurpose::Avatar, request("me.png", "image/png", 5))
        .await
        .expect("granted")
        .upload_id;
    for (room, id) in [
        (ROOM, theirs.id),
        (ROOM, Uuid::now_v7()),
        (ROOM, avatar),
        (RoomId(43), mine),
    ] {
        let e = f.download(room, id).await.expect_err("refused");
        assert_eq!(e.code(), "unknown_attachment", "{room} {id}");
    }
    // Once attached, someone else's is the room's.
    assert!(f.store.mark_upload_used(theirs.id, NOW_MS).await.unwrap());
    let url = f.download(ROOM, theirs.id).await.expect("attached");
    assert_eq!(url.url, "/fake/rooms/42/8/y");
}

#[tokio::test]
async fn an_avatar_is_set_replaced_and_removed_and_others_get_its_url() {
    let f = fixture(AccountConfig {
        rules: UploadRules {
            max_upload_bytes: 100_000,
            ..config().rules
        },
        quota_bytes: 1_000_000,
        ..config()
    })
    .await;
    assert_eq!(
        f.avatar_url(ALICE).await.expect_err("none yet").code(),
        "no_avatar"
    );
    let (first, first_key) = f.avatar_uploaded(png(30, 20)).await;
    let set = f.set_avatar(Some(first)).await.expect("set").expect("some");
    assert_eq!((set.id, set.dimensions), (first, Some((30, 20))));
    let user = f.store.user_by_id(ALICE).await.unwrap().expect("alice");
    assert_eq!(user.avatar_ref, Some(first.to_string()));
    let url = f.avatar_url(ALICE).await.expect("a url");
    assert_eq!(url.url, format!("/fake/{first_key}"));
    // Replaced: the former one's object and row are gone.
    let (second, _) = f.avatar_uploaded(png(8, 8)).await;
    f.set_avatar(Some(second)).await.expect("replaced");
    assert!(f.store.upload(first).await.unwrap().is_none());
    assert!(f.blobs.get(&BlobKey::new(first_key).unwrap()).is_none());
    // Refused: used already, an attachment's upload, not an image by its bytes, a PDF grant.
    assert_eq!(
        f.set_avatar(Some(second)).await.expect_err("used").code(),
        "already_attached"
    );
    let attachment = f.uploaded("image/png", 10, None).await;
    assert_eq!(
        f.set_avatar(Some(attachment)).await.expect_err("").code(),
        "not_an_avatar"
    );
    let (fake, _) = f.avatar_uploaded(b"<html>not a png</html>".to_vec()).await;
    assert_eq!(
        f.set_avatar(Some(fake)).await.expect_err("").code(),
        "type_mismatch"
    );
    let pdf = f
        .grant(
            UploadPurpose::Avatar,
            request("me.pdf", "application/pdf", 10),
        )
        .await
        .expect_err("avatars are images");
    assert_eq!(pdf.code(), "type_not_allowed");
    let user = f.store.user_by_id(ALICE).await.unwrap().expect("alice");
    assert_eq!(user.avatar_ref, Some(second.to_string()), "unchanged");
    // Removed.
    assert_eq!(f.set_avatar(None).await.expect("removed"), None);
    assert!(f.store.upload(second).await.unwrap().is_none());
    assert_eq!(
        f.avatar_url(ALICE).await.expect_err("gone").code(),
        "no_avatar"
    );
    assert_eq!(
        f.avatar_url(UserId(999)).await.expect_err("nobody").code(),
        "no_avatar"
    );
}
