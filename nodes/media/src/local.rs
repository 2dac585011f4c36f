//! The embedded node's blob store: a folder, with forms and URLs the node signs itself (an
//! HMAC-SHA256 over what they allow, with an expiry) and serves on its own routes ([`routes`]):
//! `POST /api/blobs` takes an upload form, `GET /api/blobs/{key}` a download URL.
//!
//! The form has the same shape as an S3 POST policy's (fields, then the file last), so a client
//! uploads the same way to either store. The node enforces what S3 would: the signature, the
//! expiry, the key and type it names, and the size range, counted while the file streams to a
//! temporary file (a larger one is cut off and nothing is kept). An object's content type is kept
//! beside it under `.types/`; downloads are served with `nosniff`, and as attachments unless they
//! are images, since they come from the app's own origin.
//!
//! The signing key is `.signing-key` in the folder (32 random bytes made at first start), so URLs
//! outlive a restart. A folder serves one node: a cluster needs S3.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_lc_rs::hmac;
use banter_actors::ports::{BlobError, BlobKey, Blobs, UploadForm, UploadPolicy};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;

mod routes;

pub use routes::routes;

/// The path of the upload route; download URLs are under it.
pub const ROUTE: &str = "/api/blobs";

/// The form fields a local upload form has, in order (the file follows them).
const FIELDS: [&str; 5] = [
    "key",
    "Content-Type",
    "x-banter-max-bytes",
    "x-banter-expires",
    "x-banter-signature",
];

/// A folder as the blob store.
#[derive(Clone)]
pub struct LocalBlobs {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    key: hmac::Key,
}

impl std::fmt::Debug for LocalBlobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBlobs")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

/// What a valid upload form allows, once its signature and expiry are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Allowed {
    pub(crate) key: BlobKey,
    pub(crate) content_type: String,
    pub(crate) max_bytes: u64,
    pub(crate) expires: u64,
}

/// Why a form or a URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    /// A field is missing or malformed.
    #[error("{0}")]
    Malformed(String),
    /// The signature does not match what the form or URL says.
    #[error("the signature does not match")]
    Signature,
    /// Past its expiry.
    #[error("expired")]
    Expired,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl LocalBlobs {
    /// Opens (making it when missing) the folder `dir` and its signing key.
    pub fn open(dir: impl Into<PathBuf>) -> std::io::Result<LocalBlobs> {
        let dir = dir.into();
        std::fs::create_dir_all(dir.join(".types"))?;
        std::fs::create_dir_all(dir.join(".incoming"))?;
        let key_path = dir.join(".signing-key");
        let secret = match std::fs::read(&key_path) {
            Ok(secret) if secret.len() == 32 => secret,
            _ => {
                let mut secret = vec![0u8; 32];
                aws_lc_rs::rand::fill(&mut secret)
                    .map_err(|_| std::io::Error::other("no randomness for the signing key"))?;
                write_private(&key_path, &secret)?;
                secret
            }
        };
        Ok(LocalBlobs {
            inner: Arc::new(Inner {
                dir,
                key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            }),
        })
    }

    /// The file of `key`.
    pub(crate) fn path(&self, key: &BlobKey) -> PathBuf {
        self.inner.dir.join(key.as_str())
    }

    /// The file that holds the content type of `key`.
    pub(crate) fn type_path(&self, key: &BlobKey) -> PathBuf {
        self.inner.dir.join(".types").join(key.as_str())
    }

    /// Where uploads stream before they are complete.
    pub(crate) fn incoming(&self) -> PathBuf {
        self.inner.dir.join(".incoming")
    }

    fn sign(&self, what: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.inner.key, what.as_bytes()))
    }

    fn verify(&self, what: &str, signature: &str) -> Result<(), Refused> {
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| Refused::Signature)?;
        hmac::verify(&self.inner.key, what.as_bytes(), &signature).map_err(|_| Refused::Signature)
    }

    fn upload_claim(key: &str, content_type: &str, max_bytes: u64, expires: u64) -> String {
        format!("POST\n{key}\n{content_type}\n{max_bytes}\n{expires}")
    }

    fn download_claim(key: &str, expires: u64) -> String {
        format!("GET\n{key}\n{expires}")
    }

    /// Checks an upload form's fields (name, value).
    pub(crate) fn check_form(&self, fields: &[(String, String)]) -> Result<Allowed, Refused> {
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .ok_or_else(|| Refused::Malformed(format!("the form has no field {name}")))
        };
        let number = |name: &str| -> Result<u64, Refused> {
            field(name)?
                .parse()
                .map_err(|_| Refused::Malformed(format!("field {name} is not a number")))
        };
        let (key, content_type) = (field(FIELDS[0])?, field(FIELDS[1])?);
        let (max_bytes, expires) = (number(FIELDS[2])?, number(FIELDS[3])?);
        self.verify(
            &Self::upload_claim(key, content_type, max_bytes, expires),
            field(FIELDS[4])?,
        )?;
        if now_secs() > expires {
            return Err(Refused::Expired);
        }
        let key = BlobKey::new(key).map_err(|e| Refused::Malformed(e.to_string()))?;
        Ok(Allowed {
            key,
            content_type: content_type.to_owned(),
            max_bytes,
            expires,
        })
    }

    /// Checks a download URL's `expires` and `signature` for `key`.
    pub(crate) fn check_download(
        &self,
        key: &str,
        expires: u64,
        signature: &str,
    ) -> Result<BlobKey, Refused> {
        self.verify(&Self::download_claim(key, expires), signature)?;
        if now_secs() > expires {
            return Err(Refused::Expired);
        }
        BlobKey::new(key).map_err(|e| Refused::Malformed(e.to_string()))
    }

    /// Stores `bytes` under `key` (for tests and tools: browsers upload through forms).
    pub async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<(), BlobError> {
        let temp = self.incoming().join(unique_name());
        tokio::fs::write(&temp, &bytes).await.map_err(io_error)?;
        self.commit(&temp, key, "application/octet-stream").await
    }

    /// Moves a complete upload from `temp` to `key`, with its content type.
    pub(crate) async fn commit(
        &self,
        temp: &Path,
        key: &BlobKey,
        content_type: &str,
    ) -> Result<(), BlobError> {
        let (path, type_path) = (self.path(key), self.type_path(key));
        for p in [&path, &type_path] {
            if let Some(parent) = p.parent() {
                tokio::fs::create_dir_all(parent).await.map_err(io_error)?;
            }
        }
        tokio::fs::write(&type_path, content_type)
            .await
            .map_err(io_error)?;
        tokio::fs::rename(temp, &path).await.map_err(io_error)
    }
}

/// A name for a temporary file no other upload uses.
pub(crate) fn unique_name() -> String {
    let mut bytes = [0u8; 16];
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn io_error(e: std::io::Error) -> BlobError {
    match e.kind() {
        std::io::ErrorKind::NotFound => BlobError::NotFound,
        _ => BlobError::Unavailable(e.to_string()),
    }
}

/// Writes `bytes` to a new file only the owner may read.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[async_trait]
impl Blobs for LocalBlobs {
    async fn upload_form(&self, policy: &UploadPolicy) -> Result<UploadForm, BlobError> {
        let expires = now_secs() + policy.expires_in.as_secs().max(1);
        let key = policy.key.as_str();
        let signature = self.sign(&Self::upload_claim(
            key,
            &policy.content_type,
            policy.max_bytes,
            expires,
        ));
        let values = [
            key.to_owned(),
            policy.content_type.clone(),
            policy.max_bytes.to_string(),
            expires.to_string(),
            signature,
        ];
        Ok(UploadForm {
            url: ROUTE.to_owned(),
            fields: FIELDS.iter().map(|f| (*f).to_owned()).zip(values).collect(),
        })
    }

    async fn download_url(&self, key: &BlobKey, expires_in: Duration) -> Result<String, BlobError> {
        let expires = now_secs() + expires_in.as_secs().max(1);
        let signature = self.sign(&Self::download_claim(key.as_str(), expires));
        Ok(format!(
            "{ROUTE}/{key}?expires={expires}&signature={signature}"
        ))
    }

    async fn size(&self, key: &BlobKey) -> Result<Option<u64>, BlobError> {
        match tokio::fs::metadata(self.path(key)).await {
            Ok(meta) if meta.is_file() => Ok(Some(meta.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(e)),
        }
    }

    async fn read(&self, key: &BlobKey, max_bytes: u64) -> Result<Bytes, BlobError> {
        let size = self.size(key).await?.ok_or(BlobError::NotFound)?;
        if size > max_bytes {
            return Err(BlobError::TooLarge(size));
        }
        tokio::fs::read(self.path(key))
            .await
            .map(Bytes::from)
            .map_err(io_error)
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        for path in [self.path(key), self.type_path(key)] {
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs() -> (tempfile::TempDir, LocalBlobs) {
        let dir = tempfile::tempdir().expect("tempdir");
        let blobs = LocalBlobs::open(dir.path()).expect("open");
        (dir, blobs)
    }

    fn policy() -> UploadPolicy {
        UploadPolicy {
            key: BlobKey::new("rooms/1/2/a.png").expect("key"),
            content_type: "image/png".into(),
            max_bytes: 100,
            expires_in: Duration::from_secs(60),
        }
    }

    #[tokio::test]
    async fn a_signed_form_is_allowed_and_any_change_to_it_is_refused() {
        let (_dir, blobs) = blobs();
        let form = blobs.upload_form(&policy()).await.expect("form");
        let allowed = blobs.check_form(&form.fields).expect("valid");
        assert_eq!(allowed.key.as_str(), "rooms/1/2/a.png");
        assert_eq!(allowed.max_bytes, 100);
        for (i, forged) in ["rooms/1/3/a.png", "text/html", "1000000", "99999999999"]
            .into_iter()
            .enumerate()
        {
            let mut fields = form.fields.clone();
            fields[i].1 = forged.to_owned();
            assert_eq!(
                blobs.check_form(&fields),
                Err(Refused::Signature),
                "{forged}"
            );
        }
        let mut unsigned = form.fields.clone();
        unsigned.pop();
        assert!(matches!(
            blobs.check_form(&unsigned),
            Err(Refused::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn another_nodes_key_signs_nothing_here_and_the_key_survives_a_restart() {
        let (dir, blobs) = blobs();
        let form = blobs.upload_form(&policy()).await.expect("form");
        let (_other_dir, other) = self::blobs();
        assert_eq!(other.check_form(&form.fields), Err(Refused::Signature));
        let reopened = LocalBlobs::open(dir.path()).expect("reopen");
        assert!(reopened.check_form(&form.fields).is_ok());
    }

    #[tokio::test]
    async fn expired_forms_and_urls_are_refused() {
        let (_dir, blobs) = blobs();
        let expires = now_secs() - 1;
        let key = "rooms/1/2/a.png";
        let signature = blobs.sign(&LocalBlobs::upload_claim(key, "image/png", 100, expires));
        let fields: Vec<(String, String)> = FIELDS
            .iter()
            .map(|f| (*f).to_owned())
            .zip([
                key.to_owned(),
                "image/png".into(),
                "100".into(),
                expires.to_string(),
                signature,
            ])
            .collect();
        assert_eq!(blobs.check_form(&fields), Err(Refused::Expired));
        let signature = blobs.sign(&LocalBlobs::download_claim(key, expires));
        assert_eq!(
            blobs.check_download(key, expires, &signature),
            Err(Refused::Expired)
        );
        assert_eq!(
            blobs.check_download(key, expires + 3600, &signature),
            Err(Refused::Signature)
        );
    }
}
