//! Uploads end to end, on a real node with each blob store — a real S3 server (s3s-fs) and the
//! embedded folder: a member asks for a grant, posts the file with a plain HTTP client straight to
//! the store, and the object is there, under a key the server made; what the rules refuse is
//! refused with its code and nothing is stored.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use banter_proto::stomp::{Command, Frame};
use banter_tests::StompClient;
use banter_tests::api::Resp;
use banter_tests::s3::{S3Server, post_form, refused};
use banter_tests::stomp::{frame, room_dest};
use banter_tests::{Node, NodeBuilder, unique};
use serde::Deserialize;
use serde_json::json;

mod avatars;

use avatars::an_avatar_is_uploaded_set_seen_by_others_and_replaced;

/// A node with a blob store, and where the store keeps an object's bytes.
struct Stored {
    node: Node,
    /// The folder objects are files under, by key.
    objects: std::path::PathBuf,
    _s3: Option<S3Server>,
}

async fn local(name: &str, extra: &[(&str, &str)]) -> Result<Option<Stored>> {
    let mut builder = NodeBuilder::new(name);
    for (k, v) in extra {
        builder = builder.env(k, v);
    }
    let node = builder.start().await?;
    let objects = node.data_dir().join("blobs");
    Ok(Some(Stored {
        node,
        objects,
        _s3: None,
    }))
}

async fn s3(name: &str, extra: &[(&str, &str)]) -> Result<Option<Stored>> {
    let Some(server) = S3Server::start().await? else {
        return Ok(None);
    };
    let bucket = unique("uploads").to_lowercase().replace('_', "-");
    let mut builder = NodeBuilder::new(name);
    for (k, v) in server.node_env(&bucket) {
        builder = builder.env(k, v);
    }
    for (k, v) in extra {
        builder = builder.env(k, v);
    }
    let node = builder.start().await?;
    Ok(Some(Stored {
        node,
        objects: server.bucket_dir(&bucket),
        _s3: Some(server),
    }))
}

/// An upload grant, as the API answers it.
#[derive(Deserialize, Debug)]
pub(crate) struct Grant {
    pub(crate) upload_id: String,
    method: String,
    pub(crate) url: String,
    pub(crate) fields: Vec<Field>,
    file_field: String,
    max_bytes: u64,
}

/// A field of an upload form.
#[derive(Deserialize, Debug)]
pub(crate) struct Field {
    pub(crate) name: String,
    pub(crate) value: String,
}

impl Stored {
    async fn ask(&self, token: &str, room: i64, body: serde_json::Value) -> Result<Resp> {
        self.node
            .api()
            .post(&format!("/api/rooms/{room}/uploads"), Some(token), &body)
            .await
    }

    /// Posts `grant`'s form with `file`: the status.
    async fn upload(&self, grant: &Grant, file: Vec<u8>) -> Result<u16> {
        let url = if grant.url.starts_with('/') {
            format!("{}{}", self.node.base_url(), grant.url)
        } else {
            grant.url.clone()
        };
        let fields: Vec<(String, String)> = grant
            .fields
            .iter()
            .map(|f| (f.name.clone(), f.value.clone()))
            .collect();
        post_form(&url, &fields, file).await
    }

    fn object(&self, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.objects.join(key)).ok()
    }
}

fn bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 256) as u8).collect()
}

async fn a_member_uploads_straight_to_the_store(s: Stored) -> Result<()> {
    let api = s.node.api();
    let alice = api.new_user("alice").await?;
    let room = api.create_room(&alice.token, &unique("media")).await?;
    let body = json!({"filename": "../../etc/passwd", "content_type": "image/png", "size": 3000});
    let grant: Grant = s.ask(&alice.token, room.id, body).await?.parse(201)?;
    ensure!(
        grant.method == "POST" && grant.file_field == "file",
        "{grant:?}"
    );
    ensure!(grant.max_bytes == 3000, "{grant:?}");
    let key = format!("rooms/{}/{}/{}", room.id, alice.id, grant.upload_id);
    let file = bytes(3000);
    let status = s.upload(&grant, file.clone()).await?;
    ensure!((200..300).contains(&status), "upload: {status}");
    ensure!(
        s.object(&key) == Some(file),
        "the object under {key}, with the bytes"
    );
    // The client's name went nowhere near the key or the folder.
    ensure!(s.object("etc/passwd").is_none() && s.object("passwd").is_none());
    Ok(())
}

async fn what_the_rules_refuse_is_refused_and_nothing_stored(s: Stored) -> Result<()> {
    let api = s.node.api();
    let (alice, mallory) = (api.new_user("alice").await?, api.new_user("mallory").await?);
    let room = api.create_room(&alice.token, &unique("media")).await?;
    let ask = |name: &str, ct: &str, size: u64| json!({"filename": name, "content_type": ct, "size": size});
    s.ask(&mallory.token, room.id, ask("a.png", "image/png", 10))
        .await?
        .assert_error(403, "forbidden");
    s.ask(&alice.token, room.id, ask("a.html", "text/html", 10))
        .await?
        .assert_error(415, "type_not_allowed");
    s.ask(
        &alice.token,
        room.id,
        ask("a.png", "image/png", 26 * 1024 * 1024),
    )
    .await?
    .assert_error(400, "too_large");
    s.ask(&alice.token, room.id, ask("a.png", "image/png", 0))
        .await?
        .assert_error(400, "empty_file");
    s.ask(&alice.token, 999_999_999, ask("a.png", "image/png", 10))
        .await?
        .assert_error(404, "not_found");
    // Granted for 100 bytes: the store itself refuses 101 and keeps nothing.
    let grant: Grant = s
        .ask(&alice.token, room.id, ask("a.png", "image/png", 100))
        .await?
        .parse(201)?;
    let status = s.upload(&grant, bytes(101)).await?;
    ensure!(refused(status), "a file larger than granted: {status}");
    let key = format!("rooms/{}/{}/{}", room.id, alice.id, grant.upload_id);
    ensure!(s.object(&key).is_none(), "nothing stored under {key}");
    // A changed field (another type than granted) is refused by the store too.
    let mut forged = grant;
    let ct = forged
        .fields
        .iter_mut()
        .find(|f| f.name.eq_ignore_ascii_case("content-type"))
        .context("a Content-Type field")?;
    ct.value = "text/html".into();
    let status = s.upload(&forged, bytes(50)).await?;
    ensure!(refused(status), "a changed field: {status}");
    ensure!(s.object(&key).is_none(), "nothing stored under {key}");
    Ok(())
}

async fn grants_are_rate_limited_and_counted_against_the_quota(s: Stored) -> Result<()> {
    let api = s.node.api();
    let alice = api.new_user("alice").await?;
    let room = api.create_room(&alice.token, &unique("media")).await?;
    let ask =
        |size: u64| json!({"filename": "a.pdf", "content_type": "application/pdf", "size": size});
    // The quota is 1,000 bytes: 600 passes, 500 more does not, 400 does.
    s.ask(&alice.token, room.id, ask(600)).await?.expect(201)?;
    s.ask(&alice.token, room.id, ask(500))
        .await?
        .assert_error(403, "quota_exceeded");
    s.ask(&alice.token, room.id, ask(400)).await?.expect(201)?;
    // Three a minute (bob, with a quota of his own): the fourth grant within the minute is
    // refused.
    let bob = api.new_user("bob").await?;
    api.join(&bob.token, room.id).await?;
    for _ in 0..3 {
        s.ask(&bob.token, room.id, ask(1)).await?.expect(201)?;
    }
    s.ask(&bob.token, room.id, ask(1))
        .await?
        .assert_error(429, "rate_limited");
    Ok(())
}

/// Settings of the rate and quota test.
const TIGHT: &[(&str, &str)] = &[
    ("BANTER_MEDIA__QUOTA_BYTES", "1000"),
    ("BANTER_MEDIA__UPLOADS_PER_MINUTE", "3"),
];

/// A grey PNG of `width` x `height`.
pub(crate) fn png(width: u32, height: u32) -> Vec<u8> {
    use image::ImageEncoder;
    let pixels = vec![90u8; (width * height * 3) as usize];
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(&pixels, width, height, image::ExtendedColorType::Rgb8)
        .expect("png");
    out
}

impl Stored {
    /// Grants and uploads `file` as `content_type` to `room` for `user`: the upload id.
    async fn uploaded(
        &self,
        token: &str,
        room: i64,
        content_type: &str,
        file: Vec<u8>,
    ) -> Result<String> {
        let body =
            json!({"filename": "photo.png", "content_type": content_type, "size": file.len()});
        let grant: Grant = self.ask(token, room, body).await?.parse(201)?;
        let status = self.upload(&grant, file).await?;
        ensure!((200..300).contains(&status), "upload: {status}");
        Ok(grant.upload_id)
    }
}

/// Sends `body` with `attachments` to `dest` on a new connection: the answer (RECEIPT or ERROR).
pub(crate) async fn send_attached(
    node: &Node,
    token: &str,
    dest: &str,
    attachments: &str,
) -> Result<Frame> {
    let mut client = StompClient::connect(&node.ws_url(), token).await?;
    let receipt = client.next_receipt_id();
    client
        .send_frame(&frame(
            Command::Send,
            &[
                ("destination", dest),
                ("receipt", &receipt),
                ("attachments", attachments),
            ],
            "look".to_owned(),
        ))
        .await?;
    client.recv_frame(Duration::from_secs(10)).await
}

async fn an_attachment_reaches_members_and_history_with_what_it_is(s: Stored) -> Result<()> {
    let api = s.node.api();
    let (alice, bob) = (api.new_user("alice").await?, api.new_user("bob").await?);
    let room = api.create_room(&alice.token, &unique("media")).await?;
    api.join(&bob.token, room.id).await?;
    let dest = room_dest(room.id);
    let mut reader = StompClient::connect(&s.node.ws_url(), &bob.token).await?;
    reader.subscribe(&dest, "s", None).await?;
    let image = png(320, 200);
    let id = s
        .uploaded(&alice.token, room.id, "image/png", image.clone())
        .await?;
    let answer = send_attached(&s.node, &alice.token, &dest, &id).await?;
    ensure!(answer.command == Command::Receipt, "sent: {answer:?}");
    let message = reader.recv_message("s").await?;
    let header =
        banter_tests::frames::header(&message, "attachments").context("attachments header")?;
    let attached: Vec<serde_json::Value> = serde_json::from_str(header)?;
    ensure!(attached.len() == 1, "{attached:?}");
    let a = &attached[0];
    ensure!(
        a["id"] == id.as_str() && a["content_type"] == "image/png",
        "{a}"
    );
    ensure!(
        a["size"] == image.len() && a["width"] == 320 && a["height"] == 200,
        "{a}"
    );
    ensure!(a["name"] == "photo.png", "{a}");
    let thumb = a["thumbnail"].as_str().context("a thumbnail")?;
    ensure!(thumb.starts_with("data:image/jpeg;base64,"), "{thumb}");
    let page = api.history(&bob.token, room.id, None, None).await?;
    let stored = page.messages.first().context("in history")?;
    ensure!(
        stored.attachments == attached,
        "history has the same: {:?}",
        stored.attachments
    );
    // Attached once.
    let again = send_attached(&s.node, &alice.token, &dest, &id).await?;
    ensure!(again.command == Command::Error, "attached twice: {again:?}");
    Ok(())
}

async fn what_cannot_be_attached_is_refused_with_an_error(s: Stored) -> Result<()> {
    let api = s.node.api();
    let (alice, mallory) = (api.new_user("alice").await?, api.new_user("mallory").await?);
    let room = api.create_room(&alice.token, &unique("media")).await?;
    api.join(&mallory.token, room.id).await?;
    let dest = room_dest(room.id);
    let alices = s
        .uploaded(&alice.token, room.id, "image/png", png(4, 4))
        .await?;
    let grant: Grant = s
        .ask(
            &alice.token,
            room.id,
            json!({"filename": "x.png", "content_type": "image/png", "size": 10}),
        )
        .await?
        .parse(201)?;
    let fake = s
        .uploaded(
            &alice.token,
            room.id,
            "image/png",
            b"<html>not a png</html>".to_vec(),
        )
        .await?;
    let bomb = s
        .uploaded(&alice.token, room.id, "image/png", bomb())
        .await?;
    let cases = [
        (&mallory.token, alices.clone(), "unknown_upload"),
        (&alice.token, grant.upload_id.clone(), "not_uploaded"),
        (&alice.token, fake, "type_mismatch"),
        (&alice.token, bomb, "too_many_pixels"),
        (&alice.token, "not-a-uuid".to_owned(), "upload ids"),
    ];
    for (token, id, expected) in cases {
        let answer = send_attached(&s.node, token, &dest, &id).await?;
        ensure!(answer.command == Command::Error, "{expected}: {answer:?}");
        let message = banter_tests::frames::header(&answer, "message").unwrap_or_default();
        ensure!(message.contains(expected), "{expected}: {message}");
    }
    let page = api.history(&alice.token, room.id, None, None).await?;
    ensure!(
        page.messages.is_empty(),
        "nothing refused was stored: {:?}",
        page.messages
    );
    Ok(())
}

impl Stored {
    /// Asks for a URL of attachment `id` of `room`.
    async fn download(&self, token: &str, room: i64, id: &str) -> Result<Resp> {
        let path = format!("/api/rooms/{room}/attachments/{id}");
        self.node.api().get(&path, Some(token)).await
    }

    /// GETs a download URL: the status, the content type and the bytes.
    async fn fetch(&self, url: &str) -> Result<(u16, String, Vec<u8>)> {
        let url = if url.starts_with('/') {
            format!("{}{url}", self.node.base_url())
        } else {
            url.to_owned()
        };
        let answer = reqwest::get(&url).await?;
        let status = answer.status().as_u16();
        let content_type = answer
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        Ok((status, content_type, answer.bytes().await?.to_vec()))
    }
}

/// Download URLs are good for this long in `download_urls_are_for_members_only_and_expire`.
const SHORT_DOWNLOADS: &[(&str, &str)] = &[("BANTER_MEDIA__DOWNLOAD_TTL_SECS", "3")];

async fn download_urls_are_for_members_only_and_expire(s: Stored) -> Result<()> {
    let api = s.node.api();
    let alice = api.new_user("alice").await?;
    let (bob, mallory) = (api.new_user("bob").await?, api.new_user("mallory").await?);
    let room = api.create_room(&alice.token, &unique("media")).await?;
    let other = api.create_room(&bob.token, &unique("other")).await?;
    api.join(&bob.token, room.id).await?;
    let image = png(64, 48);
    let id = s
        .uploaded(&alice.token, room.id, "image/png", image.clone())
        .await?;
    let answer = send_attached(&s.node, &alice.token, &room_dest(room.id), &id).await?;
    ensure!(answer.command == Command::Receipt, "sent: {answer:?}");
    // Another member reads the same bytes, with their type.
    let signed = s.download(&bob.token, room.id, &id).await?.expect(200)?;
    let url = signed["url"].as_str().context("a url")?.to_owned();
    let expires = signed["expires_at_ms"].as_i64().context("an expiry")?;
    ensure!(expires > chrono_now_ms(), "{signed}");
    let (status, content_type, got) = s.fetch(&url).await?;
    ensure!(status == 200 && got == image, "download: {status}");
    ensure!(content_type == "image/png", "{content_type}");
    // Nobody else gets one; an id of another room, or unattached and someone else's, opens nothing.
    let refused = s.download(&mallory.token, room.id, &id).await?;
    ensure!(
        refused.status == 403 && refused.body["error"]["code"] == "forbidden",
        "{refused:?}"
    );
    let elsewhere = s.download(&bob.token, other.id, &id).await?;
    ensure!(
        elsewhere.status == 404 && elsewhere.body["error"]["code"] == "unknown_attachment",
        "{elsewhere:?}"
    );
    let pending = s
        .uploaded(&alice.token, room.id, "image/png", png(2, 2))
        .await?;
    let early = s.download(&bob.token, room.id, &pending).await?;
    ensure!(
        early.status == 404 && early.body["error"]["code"] == "unknown_attachment",
        "{early:?}"
    );
    s.download(&alice.token, room.id, &pending)
        .await?
        .expect(200)?;
    let malformed = s.download(&bob.token, room.id, "not-a-uuid").await?;
    ensure!(malformed.status == 400, "{malformed:?}");
    // A tampered URL is refused by the store, and so is this one once it expired.
    let tampered = tamper(&url);
    let (status, _, _) = s.fetch(&tampered).await?;
    ensure!(refused_read(status), "tampered {tampered}: {status}");
    tokio::time::sleep(Duration::from_millis(4_000)).await;
    let (status, _, _) = s.fetch(&url).await?;
    ensure!(refused_read(status), "expired: {status}");
    Ok(())
}

/// Grants unused for 5 s are swept, every second.
const SWEPT: &[(&str, &str)] = &[
    ("BANTER_MEDIA__UNATTACHED_TTL_SECS", "5"),
    ("BANTER_MEDIA__SWEEP_INTERVAL_SECS", "1"),
];

async fn grants_never_attached_are_swept_with_their_objects(s: Stored) -> Result<()> {
    let api = s.node.api();
    let alice = api.new_user("alice").await?;
    let room = api.create_room(&alice.token, &unique("media")).await?;
    let dest = room_dest(room.id);
    let kept = s
        .uploaded(&alice.token, room.id, "image/png", png(8, 8))
        .await?;
    let answer = send_attached(&s.node, &alice.token, &dest, &kept).await?;
    ensure!(answer.command == Command::Receipt, "sent: {answer:?}");
    let dropped = s
        .uploaded(&alice.token, room.id, "image/png", png(9, 9))
        .await?;
    // Claimed by a message that was refused (its other attachment was attached before): it
    // was never kept by a stored message, so it goes too.
    let claimed = s
        .uploaded(&alice.token, room.id, "image/png", png(7, 7))
        .await?;
    let refused = send_attached(&s.node, &alice.token, &dest, &format!("{claimed},{kept}")).await?;
    ensure!(refused.command == Command::Error, "{refused:?}");
    let key = |id: &str| format!("rooms/{}/{}/{id}", room.id, alice.id);
    ensure!(s.object(&key(&dropped)).is_some(), "uploaded");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while s.object(&key(&dropped)).is_some() || s.object(&key(&claimed)).is_some() {
        ensure!(
            std::time::Instant::now() < deadline,
            "an unattached upload's object is still there after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Its grant went first: it can no longer be attached, or downloaded by its owner.
    let late = send_attached(&s.node, &alice.token, &dest, &dropped).await?;
    ensure!(
        late.command == Command::Error,
        "attached after the sweep: {late:?}"
    );
    let message = banter_tests::frames::header(&late, "message").unwrap_or_default();
    ensure!(message.contains("unknown_upload"), "{message}");
    let gone = s.download(&alice.token, room.id, &dropped).await?;
    ensure!(gone.status == 404, "{gone:?}");
    // The attached one stays, object and all.
    ensure!(
        s.object(&key(&kept)).is_some(),
        "the attached object is kept"
    );
    let signed = s
        .download(&alice.token, room.id, &kept)
        .await?
        .expect(200)?;
    let (status, _, _) = s.fetch(signed["url"].as_str().context("url")?).await?;
    ensure!(status == 200, "the attached one downloads: {status}");
    Ok(())
}

/// A deleted message's files go with it: its uploads are released by the delete, and the sweep
/// deletes their objects as it does unused ones'.
async fn a_deleted_messages_attachments_are_swept_with_their_objects(s: Stored) -> Result<()> {
    let api = s.node.api();
    let alice = api.new_user("alice").await?;
    let room = api.create_room(&alice.token, &unique("media")).await?;
    let dest = room_dest(room.id);
    let id = s
        .uploaded(&alice.token, room.id, "image/png", png(8, 8))
        .await?;
    let answer = send_attached(&s.node, &alice.token, &dest, &id).await?;
    ensure!(answer.command == Command::Receipt, "sent: {answer:?}");
    let seq: u64 = banter_tests::frames::header(&answer, "seq")
        .context("a seq")?
        .parse()?;
    let key = format!("rooms/{}/{}/{id}", room.id, alice.id);
    // Kept past the time an unused upload lives.
    tokio::time::sleep(Duration::from_secs(7)).await;
    ensure!(s.object(&key).is_some(), "a message's file is kept");
    let mut client = StompClient::connect(&s.node.ws_url(), &alice.token).await?;
    client.send_event(&dest, "delete", seq, "").await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while s.object(&key).is_some() {
        ensure!(
            std::time::Instant::now() < deadline,
            "a deleted message's object is still there after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let gone = s.download(&alice.token, room.id, &id).await?;
    ensure!(gone.status == 404, "{gone:?}");
    Ok(())
}

/// The web app's origin, for the bucket's CORS rules.
const CORS: &[(&str, &str)] = &[("BANTER_MEDIA__S3__CORS_ORIGINS", r#"["http://app.test"]"#)];

/// With origins configured the node asks the bucket for CORS rules at start. s3s-fs has no CORS
/// API: the node says so and serves uploads as before (a real S3 takes the rules; MinIO has a
/// setting of its own).
async fn the_bucket_is_asked_for_cors_rules_and_uploads_work_either_way(s: Stored) -> Result<()> {
    let log = s.node.log()?;
    ensure!(
        log.contains("the bucket's CORS rules could not be set"),
        "the node tried and said it could not: {}",
        s.node.log_tail()
    );
    a_member_uploads_straight_to_the_store(s).await
}

/// Whether a store refused a read: 401 or 403.
fn refused_read(status: u16) -> bool {
    matches!(status, 401 | 403)
}

/// Changes the last hex digit of the URL's signature.
fn tamper(url: &str) -> String {
    let at = url
        .rfind(|c: char| c.is_ascii_hexdigit())
        .expect("a signature");
    let flipped = if &url[at..=at] == "0" { "1" } else { "0" };
    format!("{}{flipped}{}", &url[..at], &url[at + 1..])
}

fn chrono_now_ms() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A PNG whose header claims 100,000 x 100,000 pixels (a decompression bomb's shape).
fn bomb() -> Vec<u8> {
    let mut png = png(1, 1);
    png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32fast::hash(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

/// No settings beyond the store's.
const PLAIN: &[(&str, &str)] = &[];

/// One test per case and store, each on a node with its settings.
macro_rules! cases {
    ($store:ident: $($case:ident => $settings:expr),+ $(,)?) => {
        mod $store {
            $(
                #[tokio::test]
                async fn $case() {
                    let node = super::$store(stringify!($case), $settings);
                    let Some(s) = node.await.expect("node") else {
                        return;
                    };
                    super::$case(s).await.expect(stringify!($case));
                }
            )+
        }
    };
}

cases!(local:
    a_member_uploads_straight_to_the_store => super::PLAIN,
    an_avatar_is_uploaded_set_seen_by_others_and_replaced => super::PLAIN,
    download_urls_are_for_members_only_and_expire => super::SHORT_DOWNLOADS,
    grants_never_attached_are_swept_with_their_objects => super::SWEPT,
    a_deleted_messages_attachments_are_swept_with_their_objects => super::SWEPT,
    what_the_rules_refuse_is_refused_and_nothing_stored => super::PLAIN,
    grants_are_rate_limited_and_counted_against_the_quota => super::TIGHT,
    an_attachment_reaches_members_and_history_with_what_it_is => super::PLAIN,
    what_cannot_be_attached_is_refused_with_an_error => super::PLAIN,
);
cases!(s3:
    a_member_uploads_straight_to_the_store => super::PLAIN,
    the_bucket_is_asked_for_cors_rules_and_uploads_work_either_way => super::CORS,
    an_avatar_is_uploaded_set_seen_by_others_and_replaced => super::PLAIN,
    download_urls_are_for_members_only_and_expire => super::SHORT_DOWNLOADS,
    grants_never_attached_are_swept_with_their_objects => super::SWEPT,
    a_deleted_messages_attachments_are_swept_with_their_objects => super::SWEPT,
    what_the_rules_refuse_is_refused_and_nothing_stored => super::PLAIN,
    grants_are_rate_limited_and_counted_against_the_quota => super::TIGHT,
    an_attachment_reaches_members_and_history_with_what_it_is => super::PLAIN,
    what_cannot_be_attached_is_refused_with_an_error => super::PLAIN,
);
