//! Downloads: a member of a room asks its user's actor for a short-lived URL of an attachment of
//! that room, signed by the blob store. Membership is the caller's check (the gateway asks the
//! store before it asks the actor); the actor checks that the upload is one of the room's
//! attachments — attached to a message there, or not yet attached but the asker's own — so that
//! an id alone, guessed or read elsewhere, opens nothing.

use std::time::Duration;

use serde::Serialize;
use uuid::Uuid;

use super::AccountPorts;
use crate::model::{RoomId, UserId};
use crate::ports::{BlobKey, UploadPurpose};

/// A signed URL to read one object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Download {
    /// Where to GET the file: absolute for S3, a path of the node (`/api/blobs/…`) for the
    /// embedded store.
    pub url: String,
    /// When the URL stops working (ms since the Unix epoch).
    pub expires_at_ms: i64,
}

/// Why no URL was signed. Each has a stable code ([`DownloadError::code`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, serde::Deserialize)]
pub enum DownloadError {
    /// No attachment of this room has this id (an upload of another room, someone else's
    /// unattached upload or an avatar are not told apart).
    #[error("no attachment {0} in this room")]
    Unknown(Uuid),
    /// The user has no avatar (or does not exist).
    #[error("user {0} has no avatar")]
    NoAvatar(UserId),
    /// The store or the blob store failed; worth retrying later.
    #[error("downloads are unavailable: {0}")]
    Unavailable(String),
}

impl DownloadError {
    /// The error's stable code.
    pub fn code(&self) -> &'static str {
        match self {
            DownloadError::Unknown(_) => "unknown_attachment",
            DownloadError::NoAvatar(_) => "no_avatar",
            DownloadError::Unavailable(_) => "unavailable",
        }
    }
}

/// Signs a URL of upload `id` for `user`, a member of `room`, good for `ttl` from `now_ms`.
pub(super) async fn download_url(
    ports: &AccountPorts,
    user: UserId,
    room: RoomId,
    id: Uuid,
    ttl: Duration,
    now_ms: i64,
) -> Result<Download, DownloadError> {
    let unavailable = |e: &dyn std::fmt::Display| DownloadError::Unavailable(e.to_string());
    let upload = match ports.store.upload(id).await {
        Ok(Some(upload)) => upload,
        Ok(None) => return Err(DownloadError::Unknown(id)),
        Err(e) => return Err(unavailable(&e)),
    };
    let visible = upload.purpose == UploadPurpose::Attachment(room)
        && (upload.used_at_ms.is_some() || upload.user_id == user);
    if !visible {
        return Err(DownloadError::Unknown(id));
    }
    sign(ports, &upload.key, ttl, now_ms).await
}

/// Signs a URL of the object under `key`, good for `ttl` from `now_ms`.
pub(super) async fn sign(
    ports: &AccountPorts,
    key: &str,
    ttl: Duration,
    now_ms: i64,
) -> Result<Download, DownloadError> {
    let unavailable = |e: &dyn std::fmt::Display| DownloadError::Unavailable(e.to_string());
    let key = BlobKey::new(key).map_err(|e| unavailable(&e))?;
    let url = ports
        .blobs
        .download_url(&key, ttl)
        .await
        .map_err(|e| unavailable(&e))?;
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    Ok(Download {
        url,
        expires_at_ms: now_ms.saturating_add(ttl_ms),
    })
}
