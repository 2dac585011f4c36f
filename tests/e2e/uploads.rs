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

#[derive(Deserialize, Debug)]
struct Grant {
    upload_id: String,
    method: String,
    url: String,
    fields: Vec<Field>,
    file_field: String,
    max_bytes: u64,
}

#[derive(Deserialize, Debug)]
struct Field {
    name: String,
    value: String,
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
    .assert_error(413, "too_large");
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

fn png(width: u32, height: u32) -> Vec<u8> {
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
async fn send_attached(node: &Node, token: &str, dest: &str, attachments: &str) -> Result<Frame> {
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

/// A PNG whose header claims 100,000 x 100,000 pixels (a decompression bomb's shape).
fn bomb() -> Vec<u8> {
    let mut png = png(1, 1);
    png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let mut crc = 0xffff_ffff_u32;
    for &b in &png[12..29] {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    png[29..33].copy_from_slice(&(!crc).to_be_bytes());
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
    what_the_rules_refuse_is_refused_and_nothing_stored => super::PLAIN,
    grants_are_rate_limited_and_counted_against_the_quota => super::TIGHT,
    an_attachment_reaches_members_and_history_with_what_it_is => super::PLAIN,
    what_cannot_be_attached_is_refused_with_an_error => super::PLAIN,
);
cases!(s3:
    a_member_uploads_straight_to_the_store => super::PLAIN,
    what_the_rules_refuse_is_refused_and_nothing_stored => super::PLAIN,
    grants_are_rate_limited_and_counted_against_the_quota => super::TIGHT,
    an_attachment_reaches_members_and_history_with_what_it_is => super::PLAIN,
    what_cannot_be_attached_is_refused_with_an_error => super::PLAIN,
);
