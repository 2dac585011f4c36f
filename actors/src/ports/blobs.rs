//! The blob store: where uploaded files live (S3 or MinIO on the full stack, a folder of the
//! embedded node). Browsers upload and download the bytes themselves, through forms and URLs this
//! port signs; a node only reads what it must check (an attachment's size, type and pixels).

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::Serialize;

/// Why the blob store could not do something.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// No object under this key.
    #[error("no such object")]
    NotFound,
    /// The object is larger than the reader allowed (its size).
    #[error("object of {0} bytes is too large")]
    TooLarge(u64),
    /// A key or a setting that cannot be used; the text says why.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The store cannot be reached or failed; worth retrying later.
    #[error("blob store unavailable: {0}")]
    Unavailable(String),
}

/// The key of an object, made by the server, never taken from a client: segments of ASCII
/// letters, digits, `-`, `_` and `.`, joined by `/`, none empty, `.` or `..`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BlobKey(String);

impl BlobKey {
    /// Longest key, in bytes (S3 allows 1,024).
    pub const MAX_BYTES: usize = 512;

    /// Checks `key`.
    pub fn new(key: impl Into<String>) -> Result<BlobKey, BlobError> {
        let key = key.into();
        let segment_ok = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        };
        if key.len() > Self::MAX_BYTES || !key.split('/').all(segment_ok) {
            return Err(BlobError::Invalid(format!("not a blob key: {key:?}")));
        }
        Ok(BlobKey(key))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BlobKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What one upload form allows: one object under `key`, of `content_type`, of 1 to `max_bytes`
/// bytes, posted within `expires_in`.
#[derive(Clone, Debug)]
pub struct UploadPolicy {
    /// Where the object goes.
    pub key: BlobKey,
    /// The only `Content-Type` the form may declare.
    pub content_type: String,
    /// The largest object the store accepts through the form.
    pub max_bytes: u64,
    /// How long the form is good for.
    pub expires_in: Duration,
}

/// How a browser uploads one object: a `multipart/form-data` POST to `url` of `fields`, in this
/// order, then the file as the last part, named `file`. The store itself refuses a file larger
/// than the policy allows, another key or type, a changed field and a form past its expiry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct UploadForm {
    /// Where to POST: absolute for S3, a path of the node (`/api/blobs`) for the embedded store.
    pub url: String,
    /// The form's fields, to send as they are, before the file.
    pub fields: Vec<(String, String)>,
}

/// An object store for uploads. Implementations: `banter-media` (S3 through object_store and
/// rust-s3's POST policies; a local folder whose forms and URLs the node signs and serves).
#[async_trait]
pub trait Blobs: Send + Sync + 'static {
    /// Signs a form that lets a browser upload what `policy` allows.
    async fn upload_form(&self, policy: &UploadPolicy) -> Result<UploadForm, BlobError>;
    /// Signs a URL that lets anyone holding it read `key` within `expires_in`.
    async fn download_url(&self, key: &BlobKey, expires_in: Duration) -> Result<String, BlobError>;
    /// Returns the size of the object under `key`, `None` when there is none.
    async fn size(&self, key: &BlobKey) -> Result<Option<u64>, BlobError>;
    /// Reads the object under `key` whole, when it has at most `max_bytes` bytes
    /// ([`BlobError::TooLarge`] otherwise, [`BlobError::NotFound`] when there is none).
    async fn read(&self, key: &BlobKey, max_bytes: u64) -> Result<Bytes, BlobError>;
    /// Deletes the object under `key`; deleting what is not there is no error.
    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_plain_segments() {
        for ok in ["rooms/42/7/0190-aa.png", "avatars/7/x", "a", "a.b/c_d-e"] {
            assert!(BlobKey::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/rooms/1",
            "rooms//1",
            "rooms/1/",
            "../etc/passwd",
            "rooms/../../x",
            "rooms/./x",
            "rooms/1/a b",
            "rooms/1/\u{e9}",
            "rooms\\1",
            "rooms/1?x",
        ] {
            assert!(BlobKey::new(bad).is_err(), "{bad:?}");
        }
        assert!(BlobKey::new("a".repeat(BlobKey::MAX_BYTES + 1)).is_err());
    }
}
