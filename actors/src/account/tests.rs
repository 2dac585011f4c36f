//! The user's actor on fakes: grants within the rules, each refusal, the quota across
//! activations and failed grants, and passivation.

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use bytes::Bytes;

use super::*;
use crate::directory::Directory;
use crate::model::RoomId;
use crate::ports::{BlobError, Uploads as _};
use crate::testing::{FakeStore, FixedClock, NOW_MS, ask};

const ALICE: UserId = UserId(7);
const ROOM: RoomId = RoomId(42);

/// Signs forms that name their key; fails while `failing`.
#[derive(Default)]
struct FakeBlobs {
    failing: AtomicBool,
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
    async fn size(&self, _: &BlobKey) -> Result<Option<u64>, BlobError> {
        Ok(None)
    }
    async fn read(&self, _: &BlobKey, _: u64) -> Result<Bytes, BlobError> {
        Err(BlobError::NotFound)
    }
    async fn delete(&self, _: &BlobKey) -> Result<(), BlobError> {
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
        uploads_per_minute: NonZeroU32::new(5).expect("non-zero"),
        quota_bytes: 2500,
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
