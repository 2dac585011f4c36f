//! The blob stores' contract, run against each over real sockets: S3 (a real s3s-fs, which
//! checks signatures and POST policies itself) and the embedded node's local folder (its routes
//! served on a port of the test). A browser's upload is a plain `multipart/form-data` POST of the
//! form's fields, then the file.
//!
//! Each store must: keep an upload within its form and give the same bytes back, by `read` and
//! through a download URL; refuse a file larger than the form allows, a changed field, another
//! key, an expired form, and a forged or expired download URL — storing nothing; bound `read`;
//! and delete idempotently.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use banter_actors::ports::{BlobError, BlobKey, Blobs, UploadForm, UploadPolicy};
use banter_media::config::S3Config;
use banter_media::{LocalBlobs, S3Blobs};
use banter_tests::s3::{ACCESS_KEY, S3Server, SECRET_KEY, post_form, refused};
use banter_tests::unique;

/// A store under test, the base URL its relative URLs are under, and what keeps it running.
struct Store {
    blobs: Arc<dyn Blobs>,
    base: String,
    _running: Box<dyn std::any::Any + Send>,
}

async fn local() -> Result<Option<Store>> {
    let dir = tempfile::tempdir()?;
    let blobs = LocalBlobs::open(dir.path())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = banter_media::local::routes(blobs.clone(), 1 << 20);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(Some(Store {
        blobs: Arc::new(blobs),
        base,
        _running: Box::new((dir, AbortOnDrop(server))),
    }))
}

async fn s3() -> Result<Option<Store>> {
    let Some(server) = S3Server::start().await? else {
        return Ok(None);
    };
    let config = S3Config {
        endpoint: server.endpoint(),
        bucket: unique("blobs").to_lowercase().replace('_', "-"),
        access_key_id: ACCESS_KEY.into(),
        secret_access_key: SECRET_KEY.into(),
        ..S3Config::default()
    };
    let blobs = S3Blobs::open(&config).await?;
    Ok(Some(Store {
        blobs: Arc::new(blobs),
        base: String::new(),
        _running: Box::new(server),
    }))
}

/// Aborts a task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn policy(key: &str, max_bytes: u64, expires_in: Duration) -> UploadPolicy {
    UploadPolicy {
        key: BlobKey::new(key).expect("key"),
        content_type: "image/png".into(),
        max_bytes,
        expires_in,
    }
}

impl Store {
    fn url(&self, url: &str) -> String {
        if url.starts_with('/') {
            format!("{}{url}", self.base)
        } else {
            url.to_owned()
        }
    }

    /// Posts `form` with `fields` in place of its own (when given) and `file`.
    async fn post(
        &self,
        form: &UploadForm,
        fields: Option<Vec<(String, String)>>,
        file: Vec<u8>,
    ) -> Result<u16> {
        let fields = fields.unwrap_or_else(|| form.fields.clone());
        post_form(&self.url(&form.url), &fields, file).await
    }

    async fn get(&self, url: &str) -> Result<(u16, Vec<u8>)> {
        let answer = reqwest::get(self.url(url)).await?;
        let status = answer.status().as_u16();
        Ok((status, answer.bytes().await?.to_vec()))
    }
}

/// `url` with the first character of its signature changed (to another of the same alphabet).
fn forge(url: &str) -> Option<String> {
    let at = url.find("ignature=")? + "ignature=".len();
    let was = url[at..].chars().next()?;
    let now = if was == 'a' { 'b' } else { 'a' };
    Some(format!(
        "{}{now}{}",
        &url[..at],
        &url[at + was.len_utf8()..]
    ))
}

fn bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

async fn an_upload_within_its_form_is_kept_and_read_back(store: Store) -> Result<()> {
    let key = BlobKey::new("rooms/1/2/within.png")?;
    let form = store
        .blobs
        .upload_form(&policy(key.as_str(), 1024, Duration::from_secs(60)))
        .await?;
    let data = bytes(1024);
    let status = store.post(&form, None, data.clone()).await?;
    ensure!((200..300).contains(&status), "upload: {status}");
    ensure!(store.blobs.size(&key).await? == Some(1024), "its size");
    ensure!(
        store.blobs.read(&key, 1024).await?.as_ref() == data,
        "read back"
    );
    let url = store
        .blobs
        .download_url(&key, Duration::from_secs(60))
        .await?;
    let (status, got) = store.get(&url).await?;
    ensure!(status == 200 && got == data, "download: {status}");
    Ok(())
}

async fn what_the_form_does_not_allow_is_refused_and_nothing_kept(store: Store) -> Result<()> {
    let key = BlobKey::new("rooms/1/2/refused.png")?;
    let form = store
        .blobs
        .upload_form(&policy(key.as_str(), 1024, Duration::from_secs(60)))
        .await?;
    let status = store.post(&form, None, bytes(1025)).await?;
    ensure!(refused(status), "one byte too many: {status}");
    let status = store.post(&form, None, bytes(4 << 20)).await?;
    ensure!(refused(status), "4 MiB: {status}");
    let status = store.post(&form, None, Vec::new()).await?;
    ensure!(refused(status), "empty: {status}");
    let changed = |name: &str, value: &str| {
        let mut fields = form.fields.clone();
        let field = fields
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .with_context(|| format!("no field {name} in {:?}", form.fields))?;
        field.1 = value.to_owned();
        anyhow::Ok(fields)
    };
    for (name, value) in [
        ("Content-Type", "text/html"),
        ("key", "rooms/1/3/refused.png"),
        ("key", "rooms/1/2/../../../escape.png"),
    ] {
        let status = store
            .post(&form, Some(changed(name, value)?), bytes(10))
            .await?;
        ensure!(refused(status), "{name} = {value}: {status}");
    }
    ensure!(store.blobs.size(&key).await?.is_none(), "nothing kept");
    let elsewhere = BlobKey::new("rooms/1/3/refused.png")?;
    ensure!(
        store.blobs.size(&elsewhere).await?.is_none(),
        "nor elsewhere"
    );
    Ok(())
}

async fn expired_forms_and_forged_or_expired_urls_are_refused(store: Store) -> Result<()> {
    let key = BlobKey::new("rooms/1/2/stale.png")?;
    let form = store
        .blobs
        .upload_form(&policy(key.as_str(), 1024, Duration::from_secs(1)))
        .await?;
    let fresh = store
        .blobs
        .upload_form(&policy(key.as_str(), 1024, Duration::from_secs(60)))
        .await?;
    ensure!((200..300).contains(&store.post(&fresh, None, bytes(10)).await?));
    let url = store
        .blobs
        .download_url(&key, Duration::from_secs(1))
        .await?;
    ensure!(store.get(&url).await?.0 == 200, "a fresh URL reads");
    let forged = forge(&url).with_context(|| format!("a signature in {url}"))?;
    let (status, _) = store.get(&forged).await?;
    ensure!(status == 403, "forged URL: {status}");
    // Expiries have a resolution of one second.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let status = store.post(&form, None, bytes(20)).await?;
    ensure!(refused(status), "expired form: {status}");
    ensure!(
        store.blobs.size(&key).await? == Some(10),
        "the object is unchanged"
    );
    let (status, _) = store.get(&url).await?;
    ensure!(status == 403, "expired URL: {status}");
    Ok(())
}

async fn reads_are_bounded_and_deletes_idempotent(store: Store) -> Result<()> {
    let key = BlobKey::new("rooms/1/2/bounded.png")?;
    let form = store
        .blobs
        .upload_form(&policy(key.as_str(), 1024, Duration::from_secs(60)))
        .await?;
    ensure!((200..300).contains(&store.post(&form, None, bytes(100)).await?));
    match store.blobs.read(&key, 99).await {
        Err(BlobError::TooLarge(100)) => {}
        other => anyhow::bail!("read past its bound: {other:?}"),
    }
    let missing = BlobKey::new("rooms/1/2/missing.png")?;
    ensure!(matches!(
        store.blobs.read(&missing, 10).await,
        Err(BlobError::NotFound)
    ));
    store.blobs.delete(&key).await?;
    store.blobs.delete(&key).await?;
    ensure!(store.blobs.size(&key).await?.is_none(), "deleted");
    Ok(())
}

/// One test per case and store.
macro_rules! contract {
    ($store:ident: $($case:ident),+ $(,)?) => {
        mod $store {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(store) = super::$store().await.expect("store") else {
                        return;
                    };
                    super::$case(store).await.expect(stringify!($case));
                }
            )+
        }
    };
}

contract!(local:
    an_upload_within_its_form_is_kept_and_read_back,
    what_the_form_does_not_allow_is_refused_and_nothing_kept,
    expired_forms_and_forged_or_expired_urls_are_refused,
    reads_are_bounded_and_deletes_idempotent,
);
contract!(s3:
    an_upload_within_its_form_is_kept_and_read_back,
    what_the_form_does_not_allow_is_refused_and_nothing_kept,
    expired_forms_and_forged_or_expired_urls_are_refused,
    reads_are_bounded_and_deletes_idempotent,
);
